"""Torch DeepLIFT keeps its working set within the memory budget at real image size: peak
resident memory on 224 x 224 x 3 images does not grow with the number of images.

The passes are planned by :func:`~xaiwidgets.backends._deeplift_rules.plan_passes` from the
activations autograd saves per image (``backend.row_bytes``), ``ROW_COPIES`` of them per pair
row (the image side with its multipliers, and the reference side). The peak is sampled every
2 ms from ``/proc/self/statm`` (Linux only).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from xaiwidgets.backends import wrap  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/statm")

MB = 2**20
BUDGET = 128 * MB


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _return_free_memory() -> None:
    """Hand the allocator's free pages back to the system (glibc's ``malloc_trim``), so that
    what a call needs is allocated during the call and seen in its peak, whatever earlier
    calls left cached."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the peak may read low, never high
        pass


def peak_above_start(fn) -> int:
    """Peak resident bytes during ``fn()`` above those before it (free memory returned first)."""
    _return_free_memory()
    start, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return max(peak[0], _rss()) - start


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.SiLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    ).eval()


def test_peak_memory_does_not_grow_with_the_images(monkeypatch):
    # the memory plan alone: passes sized by time on a busy CPU differ from call to call
    from xaiwidgets.backends import _deeplift_passes

    monkeypatch.setattr(_deeplift_passes, "PASS_SECONDS", 1e9)
    backend = wrap(_net(), memory_budget=BUDGET)
    rng = np.random.default_rng(0)
    x = rng.random((6, 224, 224, 3), dtype=np.float32)
    refs = rng.random((4, 224, 224, 3), dtype=np.float32)
    backend.deeplift(x[:1], refs, [0, 1])  # trace, measure row bytes, warm the allocator
    one = max(peak_above_start(lambda: backend.deeplift(x[:1], refs, [0, 1])) for _ in range(2))
    six = peak_above_start(lambda: backend.deeplift(x, refs, [0, 1]))
    # what grows with the images by design: the inputs' tensor, the float64 sums and the
    # float32 result (6, 224, 224, 3, 2); the rest is one pass at a time (4 pair rows here),
    # give or take the allocator (about +-50 MB between calls on these machines)
    per_image = x.nbytes + x.nbytes * 2 * 3
    assert six <= one + per_image + 96 * MB, ((six - one) / MB, one / MB)
    # one pass: the activations the plan counts, and the rule temporaries about as much again
    assert six <= 3 * BUDGET + per_image, (six / MB, backend.row_bytes(x.shape[1:]) / MB)
