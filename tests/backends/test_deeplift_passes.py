"""The DeepLIFT pass planner (:mod:`xaiwidgets.backends._deeplift_passes`) on a fake backend
and a fake clock: passes sized to about PASS_SECONDS from a timed forward pass, within the
memory plan; the cost learned from the passes; one re-plan after a slow pass; compiling passes
and an explicit ``max_rows`` left alone. Framework-free and deterministic."""

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
    """``predict`` costs ``per_row`` seconds of the fake clock per image."""

    memory_budget = 1 << 30

    def __init__(self, clock, per_row, finite=True):
        self.clock, self.per_row, self.finite = clock, per_row, finite
        self.predicted: list[int] = []

    def predict(self, x):
        self.predicted.append(len(x))
        self.clock.now += self.per_row * len(x)
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
    assert backend.predicted == [4, 4]  # two timed forward passes on PROBE_ROWS references
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


def test_the_cost_is_learned_from_the_passes(clock):
    backend = FakeBackend(clock, 0.001)
    plan = Passes(backend, 2, refs(10), 1, 100, None)
    assert (plan.images, plan.refs_per) == (2, 10)
    walk(plan, seconds_per_row=0.02)  # the real passes are far slower than the estimate
    assert len(backend.predicted) == 2
    again = Passes(backend, 2, refs(10), 1, 100, None)
    assert backend.predicted == [4, 4]  # nothing measured again
    # 0.02 s a row = 0.005 s a unit: 0.5 / (0.005 * 4) = 25 rows -> 2 images x 10 references
    assert (again.images, again.refs_per) == (2, 10)
    slower = Passes(backend, 2, refs(10), 3, 100, None)  # 3 outputs: 8 units a row
    assert (slower.images, slower.refs_per) == (1, 10)  # 0.5 / (0.005 * 8) = 12 rows


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
    assert seen == [(0, 2, 0, 9)]
    assert passes._units(backend)[(4, 4, 3)] == pytest.approx(1e-6)  # the probe's, kept


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
