"""The DeepLIFT pass planner (:mod:`xaiwidgets.backends._deeplift_passes`) on a fake backend
and a fake clock: passes sized to about PASS_SECONDS from timed forward passes, within the
memory plan; a cheap model (or a busy machine's short calls) bounded by memory alone; one
re-plan after a slow pass; compiling passes and an explicit ``max_rows`` left alone.
Framework-free and deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.backends import _deeplift_passes as passes
from xaiwidgets.backends._deeplift_passes import Passes, pass_units


class Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


class FakeBackend:
    """``predict`` costs ``per_call + per_row`` x images seconds of the fake clock."""

    memory_budget = 1 << 30

    def __init__(self, clock, per_row, finite=True, per_call=0.0):
        self.clock, self.per_row, self.finite, self.per_call = clock, per_row, finite, per_call
        self.predicted: list[int] = []

    def predict(self, x):
        self.predicted.append(len(x))
        self.clock.now += self.per_call + self.per_row * len(x)
        if not self.finite:
            raise ValueError("the model's outputs are NaN for image(s) [0]")
        return np.zeros((len(x), 3), np.float32)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(passes, "time", c)
    return c


def refs(b=10, size=4):
    return np.zeros((b, size, size, 3), np.float32)


def walk(plan, seconds_per_row=None, compiled=False):
    """Every pass as (images, references), telling the plan each one took
    ``seconds_per_row`` x its pair rows (no timing when ``None``)."""
    seen = []
    for s in plan.image_chunks():
        for r in plan.reference_chunks():
            rows = (s.stop - s.start) * (r.stop - r.start)
            seen.append((s.start, s.stop, r.start, r.stop))
            if seconds_per_row is not None:
                plan.took(seconds_per_row * rows, compiled=compiled)
    return seen


def test_passes_sized_to_about_pass_seconds_from_a_timed_forward_pass(clock):
    unit = 0.04  # seconds of one image's forward pass
    backend = FakeBackend(clock, unit)
    plan = Passes(backend, 3, refs(10), 1, 100, None)
    # each size timed twice, doubling until a call takes PROBE_SECONDS (4 x 0.04 = 0.16 s)
    assert backend.predicted == [1, 1, 2, 2, 4, 4]
    rows = int(passes.PASS_SECONDS / (unit * pass_units(1)))  # 0.5 / (0.04 * 4) -> 3 rows
    assert (plan.images, plan.refs_per) == (1, rows)
    seen = walk(plan)
    # each image's 10 references in equal chunks of at most 3 (2, 3, 3, 2 by rounding)
    assert [r1 - r0 for _, _, r0, r1 in seen[:4]] == [2, 3, 3, 2] and len(seen) == 12
    assert plan.fraction == 1.0


def test_memory_plan_and_row_cap_still_bound_fast_models(clock):
    backend = FakeBackend(clock, 1e-6)  # a tiny model: time allows thousands of rows
    plan = Passes(backend, 20, refs(10), 2, 64, None)
    assert (plan.images, plan.refs_per) == (6, 10)  # 64 rows: 6 images x 10 references
    row_bytes = backend.memory_budget // (2 * 10)  # ROW_COPIES x row bytes: 10 rows fit
    plan = Passes(backend, 20, refs(10), 2, 64, row_bytes)
    assert (plan.images, plan.refs_per) == (1, 10)


def test_measured_once_per_backend_and_shape(clock):
    backend = FakeBackend(clock, 0.01)
    plan = Passes(backend, 2, refs(10), 3, 100, None)
    probes = list(backend.predicted)
    assert probes == [1, 1, 2, 2, 4, 4, 8, 8, 16, 16]  # 16 images in 0.16 s
    assert (plan.images, plan.refs_per) == (1, 6)  # 0.5 / (0.01 * 8) = 6 rows
    again = Passes(backend, 5, refs(10), 1, 100, None)
    assert backend.predicted == probes  # nothing measured again
    assert (again.images, again.refs_per) == (1, 10)  # 0.5 / (0.01 * 4) = 12 rows
    Passes(backend, 2, refs(10, size=5), 1, 100, None)  # another image shape: measured
    assert len(backend.predicted) > len(probes)


def test_short_calls_on_a_busy_machine_leave_a_cheap_model_to_the_memory_plan(clock):
    """Every call waits 0.1 s for a core whatever its size: no call reaches PROBE_SECONDS,
    so the passes are as large as memory and the row cap allow."""
    backend = FakeBackend(clock, 1e-5, per_call=0.1)
    plan = Passes(backend, 3, refs(12), 10, 256, None)
    assert backend.predicted[-1] == 36  # up to the largest planned pass: 3 x 12 rows
    assert (plan.images, plan.refs_per) == (3, 12)
    assert passes._units(backend)[(4, 4, 3)] == 0.0


def test_a_slow_pass_replans_the_rest_once(clock):
    backend = FakeBackend(clock, 1e-6)  # the estimate says: fast
    five = backend.memory_budget // (2 * 5)  # row bytes with which 5 pair rows fit
    plan = Passes(backend, 2, refs(10), 1, 100, five)
    assert (plan.images, plan.refs_per) == (1, 5)
    seen = walk(plan, seconds_per_row=2.0)  # every pass far slower than PASS_SECONDS
    # the first pass (5 references, 10 s); then the rest of that image's references one a
    # pass, and the next image's too: one re-plan, although every later pass (2 s) is slow
    assert seen == [(0, 1, 0, 5)] + [(0, 1, k, k + 1) for k in range(5, 10)] + [
        (1, 2, k, k + 1) for k in range(10)
    ]
    assert plan.fraction == 1.0


def test_a_slow_pass_shrinks_the_chunks_of_images(clock):
    """A chunk of images finishes its references at its size; the next chunks are smaller."""
    plan = Passes(FakeBackend(clock, 1e-6), 7, refs(4), 1, 12, None)
    seen = walk(plan, seconds_per_row=0.06)  # 3 images x 4 refs in 0.72 s: not slow
    assert [(a, b) for a, b, _, _ in seen] == [(0, 3), (3, 6), (6, 7)]
    plan = Passes(FakeBackend(clock, 1e-6), 7, refs(4), 1, 12, None)
    seen = walk(plan, seconds_per_row=0.1)  # 12 rows in 1.2 s: 5 rows fit, one image a pass
    assert [(a, b) for a, b, _, _ in seen] == [(0, 3), (3, 4), (4, 5), (5, 6), (6, 7)]


def test_compiling_passes_neither_teach_nor_replan(clock):
    backend = FakeBackend(clock, 1e-6)
    plan = Passes(backend, 2, refs(9), 1, 100, None)
    seen = walk(plan, seconds_per_row=10.0, compiled=True)
    assert seen == [(0, 2, 0, 9)] and (plan.images, plan.refs_per) == (2, 9)


def test_explicit_max_rows_is_the_plan(clock):
    backend = FakeBackend(clock, 1.0)  # a very slow model
    plan = Passes(backend, 3, refs(10), 1, 20, None, paced=False)
    assert backend.predicted == []  # nothing timed
    assert (plan.images, plan.refs_per) == (2, 10)
    walk(plan, seconds_per_row=100.0)
    assert (plan.images, plan.refs_per) == (2, 10)  # and never re-planned


def test_no_estimate_when_the_references_give_non_finite_outputs(clock):
    backend = FakeBackend(clock, 1.0, finite=False)
    plan = Passes(backend, 3, refs(10), 1, 20, None)
    assert (plan.images, plan.refs_per) == (2, 10)  # the row cap alone


def test_a_given_batch_size_is_not_paced(clock):
    """The user's batch_size is kept (small passes cost more per row): nothing timed."""
    backend = FakeBackend(clock, 1.0)
    backend.batch_size_given = True
    plan = Passes(backend, 3, refs(10), 1, 20, None)
    assert backend.predicted == [] and (plan.images, plan.refs_per) == (2, 10)
    walk(plan, seconds_per_row=100.0)
    assert (plan.images, plan.refs_per) == (2, 10)
