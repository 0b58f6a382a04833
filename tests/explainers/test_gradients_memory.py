"""Bounded memory, chunking and cancellation of the gradient explainers (Saliency, SmoothGrad,
IntegratedGradients, GradientExplainer): results do not depend on the chunking, peak memory
does not grow with the number of images, cancel returns within one model batch and progress
moves within one image."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import GradientExplainer, IntegratedGradients, Saliency, SmoothGrad
from xaiwidgets.explainers._gradient_rows import CALL_SECONDS, least_rows, plan, row_chunks

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_gradients_memory_probe.py")


class CountingNet(torch.nn.Module):
    """A small smooth conv net that counts its forward passes (and can sleep in each)."""

    def __init__(self, delay: float = 0.0, channels: int = 1):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(channels, 3, 3)
        self.fc = torch.nn.Linear(3 * 4 * 4, 5)
        self.calls, self.delay, self.on_call = 0, delay, None

    def forward(self, x):
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        if self.delay:
            time.sleep(self.delay)
        h = torch.nn.functional.adaptive_avg_pool2d(torch.tanh(self.conv(x)), 4)
        return self.fc(h.flatten(1))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(5, 12, 12, 1)).astype(np.float32)


def _explainers(net, background, **kw):
    return [
        Saliency(net, **kw),
        SmoothGrad(net, nsamples=7, **kw),
        IntegratedGradients(net, steps=9, **kw),
        GradientExplainer(net, background, nsamples=11, **kw),
    ]


def test_results_do_not_depend_on_the_chunking(images):
    """One row per model call (batch_size=1), a tiny budget, and the default give the same
    values: the chunk boundaries (inside images, across images, across output groups) and the
    random draws do not change the result."""
    net = CountingNet()
    bg = images[::-1].copy()
    outputs = [0, 2, 4]
    warnings.simplefilter("ignore")
    ref = [e(images, outputs=outputs) for e in _explainers(net, bg)]
    for kw in ({"batch_size": 1}, {"batch_size": 5}, {"memory_budget": 20_000}):
        for r, e in zip(ref, _explainers(net, bg, **kw)):
            got = e(images, outputs=outputs)
            np.testing.assert_allclose(got.values, r.values, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(got.base_values, r.base_values, rtol=1e-5, atol=1e-7)


def test_plan_keeps_a_call_within_the_budget():
    """Rows x outputs x image bytes of one call stay within the budget; outputs go 16 at a
    time; a 224 x 224 x 3 image gets far fewer rows per call than a 28 x 28 digit."""
    net = CountingNet(channels=3)
    small = Saliency(net, memory_budget=64 << 20).backend
    for shape in ((224, 224, 3), (28, 28, 3)):
        for o in (1, 10, 1000):
            rows, width = plan(small, shape, o)
            assert width == min(o, 16)
            assert rows * (1 + 2 * width) * 4 * np.prod(shape) <= (64 << 20) // 2
    assert plan(small, (224, 224, 3), 1)[0] < plan(small, (28, 28, 3), 1)[0]
    assert [s for s in row_chunks(2, 3, 4)] == [[(0, 0, 3), (1, 0, 1)], [(1, 1, 3)]]


def test_cancel_is_checked_between_model_calls_within_one_image(images):
    """The cancel flag set during the first model call of the run stops it before the next
    model call: no further forward pass, even though the one image needs many."""
    for make in (
        lambda n: IntegratedGradients(n, steps=40, batch_size=4),
        lambda n: SmoothGrad(n, nsamples=40, batch_size=4),
        lambda n: GradientExplainer(n, images, nsamples=40, batch_size=4),
    ):
        net = CountingNet()
        ex = make(net)
        cancel = threading.Event()
        ex.backend.predict(images[:1])  # the model outputs, before the run
        start = net.calls

        def on_call(calls, start=start, cancel=cancel):
            if calls == start + 2:  # the explainer's own prediction, then its first batch
                cancel.set()

        net.on_call = on_call
        with pytest.raises(Cancelled):
            ex(images[:1], outputs=[1], cancel=cancel)
        assert net.calls == start + 2


def test_cancel_from_another_thread_returns_within_one_model_batch(images):
    """Cancel fired from another thread while the model is busy: the run returns within about
    one model call (0.2 s each here; the whole image takes 11 calls)."""
    net = CountingNet(delay=0.2)
    ex = IntegratedGradients(net, steps=40, batch_size=4)
    cancel, fired, result = threading.Event(), [], []

    def run():
        try:
            ex(images[:1], outputs=[0], cancel=cancel)
            result.append("finished")
        except Cancelled:
            result.append(time.perf_counter())

    t = threading.Thread(target=run)
    t.start()
    while net.calls < 3:  # the prediction, then two batches of the path
        time.sleep(0.01)
    fired.append(time.perf_counter())
    cancel.set()
    t.join(10)
    assert result and result[0] != "finished"
    assert result[0] - fired[0] < 0.2 + 0.5  # at most the batch in flight, with slack
    assert net.calls <= 4


class FixedCostNet(CountingNet):
    """A model whose every call costs 0.6 s whatever its rows (a deep network's fixed cost per
    call on a loaded CPU), plus 50 ms a row; records the rows of its gradient calls."""

    def __init__(self):
        super().__init__()
        self.rows: list[int] = []

    def forward(self, x):
        if x.requires_grad:
            self.rows.append(int(x.shape[0]))
        time.sleep(0.6 + 0.05 * x.shape[0])
        return super().forward(x)


def test_slow_calls_do_not_shrink_below_the_least_rows(images):
    """Every call slower than CALL_SECONDS: the calls shrink towards it from the planned rows,
    but not below least_rows (3 rows at two outputs: about five one-image passes), where
    shrinking further only adds calls of the same fixed cost (they went down to one row)."""
    net = FixedCostNet()
    ex = IntegratedGradients(net, steps=40, memory_budget=120_000)
    rows, width = plan(ex.backend, images.shape[1:], 2)
    assert (rows, least_rows(rows, width)) == (13, 3) and 0.6 > CALL_SECONDS
    net.rows.clear()  # the backend's measuring passes
    ex(images[:1], outputs=[0, 1])
    calls = net.rows
    assert sum(calls) == 41 and calls[0] == rows, calls
    assert calls[:-1] == sorted(calls[:-1], reverse=True), calls  # shrinking towards 0.5 s
    assert min(calls[:-1]) == 3, calls  # ... down to least_rows; the last one what is left


def test_progress_moves_within_one_image(images):
    seen = []
    net = CountingNet()
    IntegratedGradients(net, steps=40, batch_size=4)(images[:1], outputs=[0], progress=seen.append)
    inside = [f for f in seen if 0 < f < 1]
    assert len(inside) >= 10 and inside == sorted(inside) and seen[-1] == 1.0


def _probe(kind: str, budget: int, counts: str, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(PROBE), kind, str(budget), counts, str(steps)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ig", "eg"])
def test_peak_memory_does_not_grow_with_the_images(kind):
    """224 x 224 x 3 images, a 4-filter torch conv net, 2 outputs, 8 steps / samples, a 64 MiB
    budget: from 4 to 16 images the process's peak resident memory grows by little more than
    the result (16 x 2 x 0.6 MB value maps; about 50-75 MB measured), where the unchunked
    explainers grew by hundreds of MB (every path point of every image at once), and the
    whole run stays within a few budgets of where it started (torch's first passes included).
    """
    mb = _probe(kind, 64 << 20, "4,16", 8)
    p4, p16 = mb["peaks"]
    assert p16 - p4 < 160, mb
    assert p16 - mb["start"] < 450, mb
