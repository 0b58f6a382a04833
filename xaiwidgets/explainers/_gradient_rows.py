"""Rows of the gradient explainers, chunked within the memory budget.

Every gradient explainer evaluates ``backend.grad`` on *rows*: ``per_image`` points per
explained image (1 for saliency, the noisy copies of SmoothGrad, the path nodes of integrated
gradients, the (reference, α) samples of expected gradients), in image-major order. The rows
go to the model ``rows`` at a time and the explained outputs ``width`` at a time
(:func:`plan`), so a call's working set -- its points, its gradients ``(rows, h, w, c, width)``
and the model's activations -- stays within the backend's memory budget whatever the number of
images, outputs, samples or steps. Cancellation is checked and progress reported between model
calls (:func:`run_rows`), and slow calls are shrunk to about :data:`CALL_SECONDS`.
:class:`GradientBase` is the explainers' shared base.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._arrays import check_int
from .._budget import chunk_rows
from .._progress import RunControl
from ._paced import paced
from .base import Explainer

#: Most outputs whose gradients one model call computes (the backends' vectorised group).
OUTPUTS_PER_CALL = 16

#: A model call slower than this (seconds) shrinks the following calls to about this long, so
#: a cancel is seen within about one such call.
CALL_SECONDS = 0.5

#: A slow call is shrunk to no fewer rows than cost about this many one-image forward and
#: backward passes (a row with ``o`` outputs: one forward and ``o`` backward passes, a backward
#: pass about two forward ones: ``(1 + 2 o) / 3`` such passes), or the planned rows when fewer
#: (:func:`least_rows`). Below it the model's fixed cost per call (a pass over every layer, each
#: op a thread synchronisation) dominates: expected gradients on timm deit_tiny_patch16_224 at
#: 224 x 224 (2-core CPU under load) shrank to calls of one row and ran 0.84x shap's speed
#: (shap: 16 rows a call). A cancel still waits for at most about one such call.
MIN_CALL_PASSES = 5

#: A segment of a chunk: image ``i``, its rows ``j0:j1`` (of ``per_image``).
Segment = tuple[int, int, int]


def plan(backend: Any, image_shape: tuple[int, ...], n_outputs: int) -> tuple[int, int]:
    """``(rows, width)``: rows per model call and outputs per call.

    ``width = min(n_outputs, OUTPUTS_PER_CALL)``; ``rows`` is the backend's ``grad_rows`` for
    that width (its model memory), capped so that the
    explainer's own arrays of a call (the points, the gradients and one weighted copy, about
    ``(1 + 2 width)`` images per row) take at most half the budget.
    """
    img = 4 * int(np.prod(image_shape))
    width = max(1, min(int(n_outputs), OUTPUTS_PER_CALL))
    budget = int(backend.memory_budget)
    rows = int(backend.grad_rows(tuple(image_shape), width))
    return chunk_rows((1 + 2 * width) * img, budget // 2, max(1, rows)), width


def segments(start: int, stop: int, per_image: int) -> list[Segment]:
    """Rows ``start:stop`` of ``n_images * per_image`` rows in image-major order, as their
    per-image segments ``(i, j0, j1)``."""
    segs = []
    q = start
    while q < stop:
        i, j0 = divmod(q, per_image)
        j1 = min(per_image, j0 + stop - q)
        segs.append((i, j0, j1))
        q += j1 - j0
    return segs


def row_chunks(n_images: int, per_image: int, rows: int) -> Iterator[list[Segment]]:
    """Consecutive chunks of ``rows`` rows (the last one shorter) over ``n_images *
    per_image`` rows in image-major order, each as its per-image segments ``(i, j0, j1)``."""
    total = n_images * per_image
    for start in range(0, total, rows):
        yield segments(start, min(start + rows, total), per_image)


def run_rows(
    backend: Any,
    image_shape: tuple[int, ...],
    outputs: np.ndarray,
    per_image: int,
    points: Callable[[list[Segment]], np.ndarray],
    accumulate: Callable[[int, int, int, slice, np.ndarray], None],
    ctl: RunControl,
) -> int:
    """Evaluate the gradients of every row and hand them over per image segment.

    ``points(segments) -> (r, h, w, c)`` builds a chunk's points once (called in row order, so
    random draws do not depend on the chunking); then for each group of outputs ``cols`` one
    ``backend.grad`` call, and ``accumulate(i, j0, j1, cols, g)`` with ``g`` ``(j1 - j0, h, w,
    c, len(cols))``. Cancellation is checked before every model call and progress reported
    after it, by rows done (so it moves within one image). A call that takes longer than
    :data:`CALL_SECONDS` shrinks the next chunks to about that long, but not below
    :func:`least_rows` (a ResNet at 224 x 224 on a CPU then sees a cancel within about one
    such call); fast calls grow back to the planned rows. When the user gave ``batch_size`` the
    chunks keep it (:func:`~._paced.paced`).
    Returns the number of model calls.
    """
    n, o = outputs.shape
    rows, width = plan(backend, image_shape, o)
    groups = [slice(a, min(a + width, o)) for a in range(0, o, width)]
    total = n * per_image
    work = total * len(groups)
    calls = start = 0
    size = rows
    timed = paced(backend)  # a batch_size the user gave is kept
    while start < total:
        ctl.check()
        stop = min(start + size, total)
        segs = segments(start, stop, per_image)
        pts = points(segs)
        image_of_row = np.concatenate([np.full(j1 - j0, i) for i, j0, j1 in segs])
        slowest = 0.0
        for gi, cols in enumerate(groups):
            ctl.check()
            began = time.perf_counter()
            g = np.asarray(backend.grad(pts, outputs[image_of_row, cols]), np.float32)
            slowest = max(slowest, time.perf_counter() - began)
            off = 0
            for i, j0, j1 in segs:
                accumulate(i, j0, j1, cols, g[off : off + j1 - j0])
                off += j1 - j0
            del g
            calls += 1
            ctl.step((start * len(groups) + (gi + 1) * (stop - start)) / work)
        del pts
        if not timed:
            pass
        elif slowest > CALL_SECONDS and stop - start > 1:
            least = least_rows(rows, width)
            size = max(least, int((stop - start) * CALL_SECONDS / slowest))
        elif slowest < CALL_SECONDS / 4 and stop - start == size:
            size = min(rows, 2 * size)
        start = stop
    return calls


def least_rows(rows: int, width: int) -> int:
    """Fewest rows a slow call is shrunk to: ``3 * MIN_CALL_PASSES // (1 + 2 * width)`` rows
    for ``width`` outputs a call (5 rows for one output, 3 for two, 1 from seven on), at least
    1 and at most the planned ``rows``."""
    return max(1, min(int(rows), 3 * MIN_CALL_PASSES // (1 + 2 * int(width))))


def positive_int(value: Any, name: str) -> int:
    return check_int(value, name, 1)


def tolerance_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"tolerance: expected a positive number, got {value!r}")
    return float(value)


class GradientBase(Explainer):
    """Shared: gradients of ``per_image`` rows per image, chunked by :func:`run_rows`."""

    def _rows(
        self,
        x: np.ndarray,
        outputs: np.ndarray,
        per_image: int,
        points: Callable[[list[Segment]], np.ndarray],
        accumulate: Callable[[int, int, int, slice, np.ndarray], None],
        ctl: RunControl,
    ) -> int:
        return run_rows(self.backend, x.shape[1:], outputs, per_image, points, accumulate, ctl)
