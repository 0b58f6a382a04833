"""Influence and performance tilts of a test set streamed in sample chunks (zarr, dask, or
NumPy on an executor), in passes whose per-chunk partial sums add.

Every quantity :func:`~._tilt.tilt_features` computes from the whole ``(n, p)`` feature
matrix is a reduction over samples, so it is computed here chunk by chunk (``batch_size``
samples at a time) and the chunks' partial results are merged on the caller:

1. statistics pass: per feature ``min``, ``max``, mean and sum of squared deviations (merged
   by Chan, Golub and LeVeque's pairwise update), the mean image and the outputs' sums;
2. quantile passes: the exact order statistics behind the ``alpha`` / ``1 - alpha`` quantiles
   (NumPy's "linear" method), found by histogram refinement: every unresolved order
   statistic lies in an interval ``[a, b]`` of data values with a known count below ``a``; a
   pass bins the values in ``[a, b]`` into up to 256 bins (count, min and max per bin) and
   the bin holding the rank becomes the next interval. An interval whose min equals its max
   is the value. Data on a grid of 256 levels or fewer (8-bit images) resolve in one pass;
3. Newton passes: one safeguarded Newton step (:class:`~._tilt.TiltNewton`) of every
   unconverged tilt per pass, from the moments ``sum_i exp(lambda (x_ij - s)) (x_ij - s)^m``,
   ``m = 0, 1, 2`` (:func:`~._tilt.tilt_moments`), summed over chunks;
4. reduction pass: ``sum_i w_ij out_i`` and ``sum_i w_ij`` per tilt (unnormalised weights
   :func:`~._tilt.raw_tilt_weights`); their ratio is the reweighted mean of the outputs.

The Newton step, the moments, the weights, the targets and the quantile interpolation are the
functions the in-memory path uses; only the sums are split over chunks (the in-memory path runs
the same iteration with all samples in one chunk, pixel block by pixel block). The results
equal the in-memory ones up to the order of floating-point sums (about 1e-12 absolute on the
maps, see the tests).

``executor``: any :class:`concurrent.futures.Executor` (a ``ProcessPoolExecutor``, a Dask
``Client.get_executor()``): every chunk of a pass is one task ``chunk -> partial sums``,
reading its samples itself (a zarr or dask array travels as a reference to its store or
graph, a NumPy array as the chunk's slice); at most a few tasks per worker are in flight and
their results are merged in chunk order, so the result is bitwise the local one.
Memory on the caller is ``O(p * 256)`` beyond one chunk, whatever ``n``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any

import numpy as np

from .._arrays import LAYOUTS, _numpy_layout, check_int
from .._progress import RunControl
from ._tilt import (
    TiltNewton,
    finish_maps,
    lerp_order_statistics,
    quantile_ranks,
    tilt_moments,
    tilt_targets,
)
from ._tilt_chunks import (
    SampleSource,
    _histogram_chunk,
    _merge_stats,
    _moments_chunk,
    _reduce_chunk,
    _stats_chunk,
    _stats_histogram_chunk,
)

#: Default samples per chunk: about this many feature values (16 MB in float64).
SAMPLE_CHUNK_ELEMENTS = 2_000_000
#: Most histogram bins of one order statistic in a quantile pass.
MAX_BINS = 256
#: Most (interval, bin) cells of one quantile pass (count, min and max each).
MAX_CELLS = 4_000_000


# -- the passes --------------------------------------------------------------------------


def _in_flight(executor: Executor) -> int:
    workers = getattr(executor, "_max_workers", None)
    return 2 * int(workers) if isinstance(workers, int) and workers > 0 else 8


def _run_pass(
    fn: Callable,
    src: SampleSource,
    bounds: list[tuple[int, int]],
    extra: tuple,
    merge: Callable[[Any], None],
    executor: Executor | None,
    ctl: RunControl,
    span: tuple[float, float],
) -> None:
    """``merge(fn(src, i0, i1, *extra))`` for every chunk, in chunk order, reporting progress
    from ``span[0]`` to ``span[1]`` and checking cancellation after every chunk."""
    n_chunks = len(bounds)

    def report(done: int) -> None:
        ctl.step(span[0] + (span[1] - span[0]) * done / n_chunks)

    if executor is None:
        for done, (i0, i1) in enumerate(bounds, 1):
            merge(fn(src, i0, i1, *extra))
            report(done)
        return
    pending: deque = deque()
    tasks: Iterator = (src.slice(i0, i1) for i0, i1 in bounds)
    try:
        for task in tasks:
            pending.append(executor.submit(fn, *task, *extra))
            if len(pending) >= _in_flight(executor):
                break
        done = 0
        while pending:
            result = pending.popleft().result()
            for task in tasks:
                pending.append(executor.submit(fn, *task, *extra))
                break
            merge(result)
            done += 1
            report(done)
    finally:
        for fut in pending:
            fut.cancel()


def _merge_histograms(acc: list[Any], part: tuple[np.ndarray, ...]) -> None:
    if acc[0] is None:
        acc[0] = list(part)
    else:
        acc[0][0] += part[0]
        np.minimum(acc[0][1], part[1], out=acc[0][1])
        np.maximum(acc[0][2], part[2], out=acc[0][2])
        acc[0][3] += part[3]


def _bins(jobs: int) -> int:
    return int(np.clip(MAX_CELLS // max(jobs, 1), 2, MAX_BINS))


def _quantile_values(
    stats: dict[str, Any],
    ranks: np.ndarray,
    run: Callable,
    start: tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
    """The order statistics ``ranks`` (r,) of every feature, (p, r) float64, exactly, and
    the first pass's histogram ``(features, counts, mins, maxs, sums)`` (``None`` if every
    feature is constant). ``start``: ``(a, b, histogram)`` the first pass, already made over
    ``[a_j, b_j]`` for every feature ``j`` (default: a pass over ``[min_j, max_j]``)."""
    p, r = stats["min"].shape[0], ranks.shape[0]
    lo0, hi0 = (stats["min"], stats["max"]) if start is None else start[:2]
    a = np.repeat(lo0[:, None], r, axis=1)
    b = np.repeat(hi0[:, None], r, axis=1)
    below = np.zeros((p, r), dtype=np.int64)
    rank = np.broadcast_to(ranks, (p, r))
    value = np.where(a == b, a, np.nan)
    n_pass = 0
    first = None
    while np.isnan(value).any():
        todo = np.argwhere(np.isnan(value))  # (t, 2): feature, which rank
        keys = np.stack([todo[:, 0], a[tuple(todo.T)], b[tuple(todo.T)]], axis=1)
        uniq, job_of = np.unique(keys, axis=0, return_inverse=True)
        job_of = job_of.reshape(-1)
        pix, ja, jb = uniq[:, 0].astype(np.int64), uniq[:, 1], uniq[:, 2]
        acc: list[Any] = [None]
        if n_pass == 0 and start is not None:
            if not np.array_equal(pix, np.arange(p)):  # pragma: no cover - by construction
                raise AssertionError("the first histogram must hold every feature")
            acc[0] = start[2]
        else:
            f0, f1 = 0.1 + 0.1 * (1 - 0.5**n_pass), 0.1 + 0.1 * (1 - 0.5 ** (n_pass + 1))
            extra = (pix, ja, jb, _bins(len(pix)))
            run(_histogram_chunk, extra, lambda part, acc=acc: _merge_histograms(acc, part), f0, f1)
        n_pass += 1
        counts, mins, maxs, sums = acc[0]
        if first is None:
            first = (pix, counts, mins, maxs, sums)
        c = counts[job_of]  # (t, bins)
        cum = below[tuple(todo.T)][:, None] + np.cumsum(c, axis=1)
        want = rank[tuple(todo.T)]
        i = (cum <= want[:, None]).sum(axis=1)  # the bin holding the rank
        below[tuple(todo.T)] = cum[np.arange(len(i)), i] - c[np.arange(len(i)), i]
        lo, hi = mins[job_of, i], maxs[job_of, i]
        a[tuple(todo.T)], b[tuple(todo.T)] = lo, hi
        value[tuple(todo.T)] = np.where(lo == hi, lo, np.nan)
    return value, first


def _histogram_lambdas(
    hist: tuple[np.ndarray, ...],
    taus: np.ndarray,
    stats: dict[str, Any],
    max_iterations: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Tilts ``(2p,)`` solved on the histogram of every feature (each bin's values at their
    mean, weighted by their count; NaN where it found none), and ``(2p,)`` whether that
    histogram is the data (every bin holds one distinct value).

    The Newton passes over the data start from these tilts. Where the histogram is the data
    (8-bit images: at most 256 levels per feature), its moments are the data's moments summed
    by value, so its solution is the data's and no pass over the data is needed."""
    pix, counts, mins, maxs, sums = hist
    p = taus.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / counts, stats["min"][pix, None])
    weights = counts.astype(np.float64)
    n = weights.sum(axis=1)
    hmean = (weights * values).sum(axis=1) / n
    hstd = np.sqrt((weights * (values - hmean[:, None]) ** 2).sum(axis=1) / n)
    hmin = np.where(counts > 0, values, np.inf).min(axis=1)
    hmax = np.where(counts > 0, values, -np.inf).max(axis=1)
    rows = np.concatenate([np.arange(len(pix)), np.arange(len(pix))])
    targets = np.concatenate([taus[0, pix], taus[1, pix]])
    newton = TiltNewton(targets, hmin[rows], hmax[rows], hmean[rows], hstd[rows], tol)
    while newton.iterations < max_iterations:
        act = newton.active()
        if act.size == 0:
            break
        r = rows[act]
        newton.step(act, *tilt_moments(values[r], newton.lam[act], newton.shifts(act), weights[r]))
    lam = np.full((2, p), np.nan)
    lam[:, pix] = np.where(newton.converged, newton.lam, np.nan).reshape(2, -1)
    exact = np.zeros((2, p), dtype=bool)
    exact[:, pix] = ((counts == 0) | (mins == maxs)).all(axis=1)
    return lam.reshape(-1), exact.reshape(-1)


def _value_range(dtype: np.dtype) -> tuple[float, float] | None:
    """``(min, max)`` an integer (or bool) image dtype can hold, else ``None``."""
    if dtype == np.bool_:
        return 0.0, 1.0
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return None


def stream_tilt_features(
    src: SampleSource,
    n: int,
    alpha: float,
    *,
    max_iterations: int,
    tol: float,
    batch_size: int | None,
    executor: Executor | None,
    progress: Any,
    cancel: Any,
    desc: str,
) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """:func:`~._tilt.tilt_features` over a :class:`SampleSource` of ``n`` samples, streamed.

    Returns ``((maps, plus, minus, taus, lambdas, converged), mean_image, output_means)``,
    shapes as in :func:`~._tilt.tilt_features`, ``mean_image`` (h, w, c) float32 and
    ``output_means`` (k,) float64.
    """
    if not (
        executor is None
        or isinstance(executor, Executor)
        or callable(getattr(executor, "submit", None))  # explain_dataset's convention too
    ):
        raise TypeError(
            "executor: expected a concurrent.futures.Executor (ProcessPoolExecutor, "
            f"dask's Client.get_executor()) or None, got {type(executor).__name__}"
        )
    x0, f0 = src.features(0, 1)
    p, c = f0.shape[1], x0.shape[-1]
    if batch_size is None:
        batch = max(1, SAMPLE_CHUNK_ELEMENTS // p)
        chunks = getattr(src.images, "chunks", None)
        first = chunks[0] if chunks else None
        first = first[0] if isinstance(first, tuple) else first
        if isinstance(first, int) and first > 0:  # whole chunks of the array's own chunking
            batch = first * max(1, batch // first) if first * p <= 4 * batch * p else batch
    else:
        batch = check_int(batch_size, "batch_size", 1)
    bounds = [(i, min(i + batch, n)) for i in range(0, n, batch)]

    with RunControl(progress, cancel, desc=desc) as ctl:

        def run(fn, extra, merge, start, stop):
            _run_pass(fn, src, bounds, extra, merge, executor, ctl, (start, stop))

        box: list[Any] = [None]
        hist_acc: list[Any] = [None]
        first_pass = None
        grid = _value_range(np.dtype(src.images.dtype))
        if grid is None:

            def merge_stats(part):
                box[0] = _merge_stats(box[0], part)

            run(_stats_chunk, (), merge_stats, 0.0, 0.1)
        else:  # integer images: statistics and the first histogram in one pass

            def merge_both(part):
                box[0] = _merge_stats(box[0], part[0])
                _merge_histograms(hist_acc, part[1])

            a0, b0 = np.full(p, grid[0]), np.full(p, grid[1])
            # integer features (not channel means) with at most one level per bin
            levels = grid[1] - grid[0] < _bins(p) and (src.channels == "separate" or c == 1)
            extra = (np.arange(p), a0, b0, _bins(p), bool(levels))
            run(_stats_histogram_chunk, extra, merge_both, 0.0, 0.2)
            first_pass = (a0, b0, hist_acc[0])
        stats = box[0]
        std = np.sqrt(stats["m2"] / n)
        lo, hi, g = quantile_ranks(n, alpha)
        ranks = np.concatenate([lo, hi])
        values, hist = _quantile_values(stats, ranks, run, first_pass)
        q = lerp_order_statistics(values[:, :2], values[:, 2:], g)
        taus = tilt_targets(stats["mean"], q[:, 0], q[:, 1])  # (2, p)

        rows = np.concatenate([np.arange(p), np.arange(p)])
        newton = TiltNewton(
            taus.reshape(-1), stats["min"][rows], stats["max"][rows], stats["mean"][rows],
            std[rows], tol,
        )  # fmt: skip
        if hist is not None:
            lam0, exact = _histogram_lambdas(hist, taus, stats, max_iterations, tol)
            newton.warm_start(lam0)
            newton.converged |= exact & np.isfinite(lam0)  # the histogram's solution is exact
        while newton.iterations < max_iterations:
            act = newton.active()
            if act.size == 0:
                break
            moments = np.zeros((3, act.size))

            def add(part, moments=moments):
                moments += part

            t = newton.iterations
            start, stop = 0.2 + 0.6 * (1 - 0.5**t), 0.2 + 0.6 * (1 - 0.5 ** (t + 1))
            extra = (rows[act], newton.lam[act], newton.shifts(act))
            run(_moments_chunk, extra, add, start, stop)
            newton.step(act, *moments)

        sums = np.zeros((2 * p, src.k + 1))

        def add_sums(part):
            sums[...] += part

        run(_reduce_chunk, (rows, newton.lam, newton.shifts()), add_sums, 0.8, 1.0)
    reduced = sums[:, :-1] / sums[:, -1:]  # (2p, k)
    minus, plus = reduced[:p].T.copy(), reduced[p:].T.copy()
    lambdas = newton.lam.reshape(2, p)
    converged = newton.converged.reshape(2, p)
    out = finish_maps(plus, minus, taus, lambdas, converged, desc, tol, max_iterations)
    mean_image = (stats["image_sum"] / n).astype(np.float32)
    return out, mean_image, stats["out_sum"] / n


def resolve_layout(shape: tuple[int, ...], layout: str, name: str = "images") -> str:
    """The explicit batch layout (``"nhwc"``, ``"nchw"`` or ``"nhw"``) of a streamed array of
    ``shape``; a single image or an unknown layout raises ``ValueError``."""
    if not isinstance(layout, str) or layout.lower() not in LAYOUTS:
        raise ValueError(
            f"layout: expected one of {', '.join(repr(v) for v in LAYOUTS)}, got {layout!r}"
        )
    layout = layout.lower()
    if len(shape) not in (3, 4):
        raise ValueError(
            f"{name}: a streamed array must be a batch (n, h, w), (n, h, w, c) or (n, c, h, w), "
            f"got shape {tuple(shape)}"
        )
    if layout == "auto":
        layout = "nhw" if len(shape) == 3 else _numpy_layout(tuple(shape), name)
    if layout not in ("nhwc", "nchw", "nhw") or len(layout) != len(shape):
        raise ValueError(
            f"{name}: layout {layout!r} does not fit a batch of shape {tuple(shape)}; "
            "expected 'nhw' (3-D) or 'nhwc' / 'nchw' (4-D)"
        )
    return layout
