"""Cancellation and progress within one image at real size: torchvision resnet18 (random
weights) on one 224 x 224 RGB image, where one model call takes seconds on a CPU.

Each explainer runs on a worker thread; 0.3 s after its progress first moves strictly between
0 and 1 (within the image), the cancel event is set, and the run must raise ``Cancelled``
within :data:`LATENCY_BOUND` seconds, or within :data:`CALLS` times the time of one forward
and backward pass of the model on one image measured just before (on a machine so loaded that
a single such pass takes longer; one DeepLIFT pass of one image and one reference is two
forward and three backward passes): cancel is checked between model calls, and calls slower
than half a second shrink the next ones (gradient rows, DeepLIFT passes, masked batches), so
the wait is about one such call. The goal on a quiet machine is 1 s.
"""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from xaiwidgets._progress import Cancelled  # noqa: E402
from xaiwidgets.explainers import (  # noqa: E402
    DeepExplainer,
    GradientExplainer,
    IntegratedGradients,
    PartitionExplainer,
    ScoreCAM,
)

pytestmark = pytest.mark.slow

#: Seconds from setting the cancel event to the run returning (generous: a loaded CI machine).
LATENCY_BOUND = 3.0
#: ... or this many one-image forward + backward passes, when one takes longer than 0.5 s.
CALLS = 6

SIZE = 224


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.random((1, SIZE, SIZE, 3), dtype=np.float32)
    bg = rng.random((10, SIZE, SIZE, 3), dtype=np.float32)
    return x, bg


EXPLAINERS = {
    "integrated_gradients": lambda net, bg: IntegratedGradients(net, steps=64),
    "expected_gradients": lambda net, bg: GradientExplainer(net, bg, nsamples=100),
    # the default budget holds one image's 10 references in one pass (10 pair rows, 44 s under
    # load before passes were timed): the passes are sized to about half a second from the start
    "deep": lambda net, bg: DeepExplainer(net, bg, background_size=None),
    # 256 MB: two passes of 5 rows by memory, then smaller by time
    "deep_256mb": lambda net, bg: DeepExplainer(
        net, bg, background_size=None, memory_budget=1 << 28
    ),
    "partition": lambda net, bg: PartitionExplainer(net, "blur(112,112)", max_evals=2000),
    # 512 masked images (one per channel of layer4), in paced calls
    "scorecam": lambda net, bg: ScoreCAM(net, "layer4"),
}


def cancel_latency(explainer, x) -> tuple[float, list, str]:
    """Seconds from ``cancel.set()`` to return, the progress seen, and how the run ended."""
    cancel = threading.Event()
    seen: list = []
    outcome: list = []

    def progress(fraction):
        seen.append(fraction)
        if 0 < fraction < 1 and len([f for f in seen if 0 < f < 1]) == 1:
            threading.Timer(0.3, cancel.set).start()

    def run():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                explainer(x, top_k=3, progress=progress, cancel=cancel)
            outcome.append("finished")
        except Cancelled:
            outcome.append("cancelled")

    worker = threading.Thread(target=run)
    worker.start()
    while not cancel.is_set() and worker.is_alive():
        time.sleep(0.005)
    set_at = time.perf_counter()
    worker.join()
    return time.perf_counter() - set_at, seen, outcome[0] if outcome else "raised"


def one_pass_seconds(net, x) -> float:
    """Seconds of one forward and backward pass of ``net`` on one image (best of two)."""
    xt = torch.from_numpy(x[:1].transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    best = float("inf")
    for _ in range(2):
        began = time.perf_counter()
        torch.autograd.grad(net(xt)[0, 0], xt)
        best = min(best, time.perf_counter() - began)
    return best


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_cancel_within_one_image(resnet, data, name):
    x, bg = data
    latency, seen, outcome = cancel_latency(EXPLAINERS[name](resnet, bg), x)
    bound = max(LATENCY_BOUND, CALLS * one_pass_seconds(resnet, x))
    print(f"{name}: cancel returned in {latency:.2f} s (bound {bound:.2f} s)")
    assert outcome == "cancelled", (outcome, seen)
    assert any(0 < f < 1 for f in seen), seen  # progress moved within the one image
    assert latency <= bound, f"{name}: {latency:.2f} s from cancel to return"


def test_cancel_during_the_first_prediction(resnet):
    """The explainers' first prediction (the model's outputs, to choose top-k) on 96 images:
    in paced calls with a cancel check before each, so a cancel 0.3 s into it returns within
    about one call (one call of all the images took seconds)."""
    x = np.random.default_rng(1).random((96, SIZE, SIZE, 3), dtype=np.float32)
    cancel = threading.Event()
    calls: list = []

    def started(module, args):
        if not calls:
            threading.Timer(0.3, cancel.set).start()
        calls.append(len(args[0]))

    handle = resnet.register_forward_pre_hook(started)
    outcome: list = []

    def run():
        try:
            IntegratedGradients(resnet, steps=8)(x, top_k=1, cancel=cancel)
            outcome.append("finished")
        except Cancelled:
            outcome.append("cancelled")

    worker = threading.Thread(target=run)
    try:
        worker.start()
        while not cancel.is_set() and worker.is_alive():
            time.sleep(0.005)
        set_at = time.perf_counter()
        worker.join()
        latency = time.perf_counter() - set_at
    finally:
        handle.remove()
    bound = max(LATENCY_BOUND, CALLS * one_pass_seconds(resnet, x[:1]))
    print(f"first prediction: cancel returned in {latency:.2f} s (bound {bound:.2f} s), {calls}")
    assert outcome == ["cancelled"], outcome
    assert sum(calls) < len(x), calls  # stopped within the prediction
    assert latency <= bound, f"{latency:.2f} s from cancel to return"
