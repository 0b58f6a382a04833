"""Per-chunk partial results of the streamed tilts (:mod:`._tilt_stream`): what one task
computes from rows ``i0:i1`` of the samples. Module-level functions of picklable arguments, so
that they run in worker processes; every result is a sum (or min / max) that merges across
chunks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import as_images
from ._tilt import CHUNK_ELEMENTS, _one_blas_thread, raw_tilt_weights, tilt_moments
from .classification import per_sample_scores


def is_streamed(obj: Any) -> bool:
    """Whether ``obj`` is an array read in chunks (a zarr or dask array), not loaded whole."""
    return type(obj).__module__.split(".")[0] in ("zarr", "dask")


def image_features(x: np.ndarray, channels: str) -> np.ndarray:
    """Features ``(n, p)`` of NHWC images: the channel mean per pixel (``"mean"``) or every
    channel value (``"separate"``)."""
    n, h, w, c = x.shape
    if channels == "mean":
        feats = x[..., 0] if c == 1 else x.mean(axis=-1)
        return feats.reshape(n, h * w)
    return x.reshape(n, h * w * c)


def _read(array: Any, i0: int, i1: int) -> np.ndarray:
    part = array[i0:i1]
    if hasattr(part, "compute"):  # dask: computed here, also inside a worker
        part = part.compute(scheduler="synchronous")
    return np.asarray(part)


@dataclasses.dataclass
class SampleSource:
    """The per-sample inputs of a run, read by rows: images and either probabilities
    (``kind="influence"``) or ``y_true`` / ``y_pred`` and a metric (``kind="performance"``).

    ``layout`` is resolved from the whole array's shape (a chunk's shape may be ambiguous).
    """

    images: Any
    layout: str
    channels: str
    kind: str
    k: int
    probabilities: Any = None
    labels: bool = False
    y_true: Any = None
    y_pred: Any = None
    metric: Callable | None = None

    def slice(self, i0: int, i1: int) -> tuple[SampleSource, int, int]:
        """A source for a task reading rows ``i0:i1``: in-memory arrays travel as the slice."""
        if is_streamed(self.images):
            return self, i0, i1
        fields = {}
        for name in ("images", "probabilities", "y_true", "y_pred"):
            arr = getattr(self, name)
            if arr is not None and not is_streamed(arr):
                fields[name] = arr[i0:i1]
        return dataclasses.replace(self, **fields), 0, i1 - i0

    def features(self, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
        """(float32 NHWC images, (m, p) float32 features) of rows ``i0:i1``."""
        x = as_images(_read(self.images, i0, i1), layout=self.layout)
        return x, image_features(x, self.channels)

    def outputs(self, i0: int, i1: int) -> np.ndarray:
        """(m, k) float64 outputs of rows ``i0:i1``: probabilities, or per-sample scores."""
        if self.kind == "influence":
            arr = _read(self.probabilities, i0, i1)
            if self.labels:
                if arr.size and (arr.min() < 0 or arr.max() >= self.k):
                    raise ValueError(
                        f"probabilities: class labels must be in [0, {self.k}), got "
                        f"{arr.min()}..{arr.max()} in rows {i0}:{i1}"
                    )
                return np.eye(self.k)[arr]
            out = arr.astype(np.float64)
            if not np.isfinite(out).all():
                raise ValueError(f"probabilities: NaN or infinite values in rows {i0}:{i1}")
            return out
        yt, yp = _read(self.y_true, i0, i1), _read(self.y_pred, i0, i1)
        scores = per_sample_scores(self.metric, yt, yp)
        if scores is None:
            raise ValueError(
                f"metric: on streamed images the metric must be a weighted mean of per-sample "
                f"scores (sklearn's accuracy_score or log_loss with default arguments), checked "
                f"chunk by chunk; rows {i0}:{i1} do not allow it (log_loss with labels needs "
                "every class in every chunk: give y_true one-hot, or a larger batch_size)"
            )
        return scores[:, None]


def _stats_chunk(src: SampleSource, i0: int, i1: int) -> dict[str, Any]:
    """Count, min, max, mean and sum of squared deviations of every feature, the sum of the
    images and of the outputs, over rows ``i0:i1``."""
    x, f = src.features(i0, i1)
    return _stats_of(x, f, src.outputs(i0, i1))


def _stats_histogram_chunk(
    src: SampleSource,
    i0: int,
    i1: int,
    pix: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    bins: int,
    levels: bool,
) -> tuple[dict[str, Any], tuple[np.ndarray, ...]]:
    """:func:`_stats_chunk` and :func:`_histogram_chunk` from one read of the chunk (integer
    images: the histogram's range is the dtype's, known before the statistics; ``levels``
    as in :func:`_histogram_of`)."""
    x, f = src.features(i0, i1)
    hist = _histogram_of(_transposed(f), pix, a, b, bins, levels)
    return _stats_of(x, f, src.outputs(i0, i1)), hist


def _stats_of(x: np.ndarray, f: np.ndarray, outs: np.ndarray, rows: int = 1024) -> dict[str, Any]:
    acc = None
    for i in range(0, f.shape[0], rows):  # blocks of samples: a bounded float64 copy
        fb = f[i : i + rows]
        f64 = fb.astype(np.float64)
        mean = f64.mean(axis=0)
        f64 -= mean
        f64 *= f64
        part = {
            "n": fb.shape[0],
            "min": fb.min(axis=0).astype(np.float64),
            "max": fb.max(axis=0).astype(np.float64),
            "mean": mean,
            "m2": f64.sum(axis=0),
            "image_sum": x[i : i + rows].sum(axis=0, dtype=np.float64),
            "out_sum": outs[i : i + rows].sum(axis=0),
        }
        acc = _merge_stats(acc, part)
    return acc


def _merge_stats(acc: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    if acc is None:
        return part
    na, nb = acc["n"], part["n"]
    n = na + nb
    delta = part["mean"] - acc["mean"]
    return {
        "n": n,
        "min": np.minimum(acc["min"], part["min"]),
        "max": np.maximum(acc["max"], part["max"]),
        "mean": acc["mean"] + delta * (nb / n),
        "m2": acc["m2"] + part["m2"] + delta * delta * (na * nb / n),
        "image_sum": acc["image_sum"] + part["image_sum"],
        "out_sum": acc["out_sum"] + part["out_sum"],
    }


def _histogram_chunk(
    src: SampleSource, i0: int, i1: int, pix: np.ndarray, a: np.ndarray, b: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts, mins, maxs and sums ``(J, bins)`` of the values of feature ``pix[j]`` in
    ``[a[j], b[j]]``, binned by ``floor((x - a) * bins / (b - a))`` (monotone in ``x``)."""
    return _histogram_of(_transposed(src.features(i0, i1)[1]), pix, a, b, bins)


def _histogram_of(
    ft: np.ndarray,
    pix: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    bins: int,
    levels: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The histogram of :func:`_histogram_chunk` from the transposed features ``ft`` (p, m).

    ``levels``: the caller knows every value is an integer in ``[a, b]`` with
    ``b - a < bins`` (integer images over their dtype's range), so a bin holds at most one
    level: only the counts are summed, and each bin's min = max = its level, computed by
    binning the levels themselves."""
    m, jobs = ft.shape[1], pix.shape[0]
    counts = np.zeros(jobs * bins, dtype=np.int64)
    sums = np.zeros(jobs * bins)
    mins = np.full(jobs * bins, np.inf)
    maxs = np.full(jobs * bins, -np.inf)
    scale = bins / (b - a)
    step = max(1, 4 * CHUNK_ELEMENTS // max(m, 1))
    for j0 in range(0, jobs, step):
        sl = slice(j0, j0 + step)
        xb = ft[pix[sl]].astype(np.float64)  # (J_b, m)
        lo, hi = a[sl, None], b[sl, None]
        idx = np.minimum(((xb - lo) * scale[sl, None]).astype(np.int64), bins - 1)
        idx += np.arange(j0, j0 + idx.shape[0])[:, None] * bins
        if levels:
            counts += np.bincount(idx.reshape(-1), minlength=jobs * bins)
            continue
        inside = (xb >= lo) & (xb <= hi)
        if inside.all():  # the first pass: every value counts
            flat, vals = idx.reshape(-1), xb.reshape(-1)
        else:
            flat, vals = idx[inside], xb[inside]
        counts += np.bincount(flat, minlength=jobs * bins)
        sums += np.bincount(flat, vals, minlength=jobs * bins)
        np.minimum.at(mins, flat, vals)
        np.maximum.at(maxs, flat, vals)
    shape = (jobs, bins)
    counts, mins, maxs, sums = (v.reshape(shape) for v in (counts, mins, maxs, sums))
    if levels:  # the level of each bin, binned by the same formula
        level = a[:, None] + np.arange(int(np.max(b - a)) + 1)  # (J, L)
        where = np.minimum(((level - a[:, None]) * scale[:, None]).astype(np.int64), bins - 1)
        rows = np.broadcast_to(np.arange(jobs)[:, None], where.shape)
        ok = level <= b[:, None]
        value = np.zeros(shape)
        value[rows[ok], where[ok]] = level[ok]
        seen = counts > 0
        mins[seen] = maxs[seen] = value[seen]
        sums = counts * value
    return counts, mins, maxs, sums


def _moments_chunk(
    src: SampleSource, i0: int, i1: int, rows: np.ndarray, lam: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """(3, a) moments of the problems (feature ``rows``, ``lam``, ``shifts``) over rows
    ``i0:i1``."""
    ft = _transposed(src.features(i0, i1)[1])  # (p, m): contiguous reductions
    out = np.empty((3, rows.shape[0]))
    step = max(1, CHUNK_ELEMENTS // max(ft.shape[1], 1))
    for j0 in range(0, rows.shape[0], step):
        sl = slice(j0, j0 + step)
        out[:, sl] = tilt_moments(ft[rows[sl]].astype(np.float64), lam[sl], shifts[sl])
    return out


def _transposed(f: np.ndarray, tile: int = 256) -> np.ndarray:
    """``f.T`` (p, m) contiguous, copied in tiles of ``tile`` samples (3-4x faster than one
    cache-hostile transpose of the whole chunk)."""
    out = np.empty(f.shape[::-1], dtype=f.dtype)
    for i in range(0, f.shape[0], tile):
        out[:, i : i + tile] = f[i : i + tile].T
    return out


def _reduce_chunk(
    src: SampleSource, i0: int, i1: int, rows: np.ndarray, lam: np.ndarray, shifts: np.ndarray
) -> np.ndarray:
    """(q, k + 1): ``sum_i w_qi out_ik`` and ``sum_i w_qi`` over rows ``i0:i1``."""
    ft = _transposed(src.features(i0, i1)[1])
    outs = src.outputs(i0, i1)
    acc = np.empty((rows.shape[0], outs.shape[1] + 1))
    step = max(1, CHUNK_ELEMENTS // max(ft.shape[1], 1))
    with _one_blas_thread():
        for j0 in range(0, rows.shape[0], step):
            sl = slice(j0, j0 + step)
            w = raw_tilt_weights(ft[rows[sl]].astype(np.float64), lam[sl], shifts[sl])
            acc[sl, :-1] = w @ outs
            acc[sl, -1] = w.sum(axis=1)
    return acc
