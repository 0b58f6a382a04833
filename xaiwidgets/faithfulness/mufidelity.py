"""MuFidelity and sparseness of attributions.

- MuFidelity / faithfulness correlation (Bhatt, Weller & Moura, IJCAI 2020): over random
  subsets ``S`` of pixels, the Pearson correlation between ``sum_{i in S} phi_i`` and the
  output drop ``f(x) - f(x with S := baseline)``; 1 is best.
- Sparseness (Chalasani et al., ICML 2020): the Gini index of ``|phi|``; 1 when one pixel
  holds all the attribution, 0 when it is spread evenly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._progress import RunControl
from .._result import Result
from ..backends import wrap
from ..explanation import Explanation
from .curves import _check_common, _positive_int


@dataclass(eq=False)
class MuFidelity(Result):
    """Result of :func:`mufidelity` (``n`` images, ``o`` outputs, ``r`` random subsets).

    - ``correlation`` ``(n, o)`` Pearson correlation of attribution sums and output drops
      (``nan`` where either is constant over the subsets)
    - ``attribution_sums`` / ``output_drops`` ``(n, o, r)`` what was correlated
    - ``output_indices`` ``(n, o)``; ``subset_size``, ``baseline``, ``score`` as given
    """

    _arrays: ClassVar[tuple[str, ...]] = (
        "correlation", "attribution_sums", "output_drops", "output_indices"
    )  # fmt: skip
    _required: ClassVar[tuple[str, ...]] = _arrays
    _meta: ClassVar[tuple[str, ...]] = ("subset_size", "baseline", "score")
    _shapes = {"correlation": ("n", "o"), "attribution_sums": ("n", "o", "r"),
               "output_drops": ("n", "o", "r"), "output_indices": ("n", "o")}  # fmt: skip
    _choices = {"score": ("probability", "output")}

    correlation: np.ndarray
    attribution_sums: np.ndarray
    output_drops: np.ndarray
    output_indices: np.ndarray
    subset_size: int
    baseline: float
    score: str

    @property
    def mean(self) -> float:
        """Correlation averaged over images and outputs (``nan`` entries left out)."""
        return float(np.nanmean(self.correlation))

    @property
    def params(self) -> dict[str, Any]:
        """``runs`` (random subsets per image), ``subset_size``, ``baseline``, ``score``."""
        runs = int(self.attribution_sums.shape[-1])
        return {"runs": runs, "subset_size": self.subset_size, "baseline": self.baseline,
                "score": self.score}  # fmt: skip


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (``nan`` where either side is constant)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1), np.nan)


def _rows_per_call(backend: Any, image_shape: tuple[int, ...]) -> int:
    """Masked images per model call: the backend's rows per forward-only call
    (``batch_size`` when given, else by the memory a forward pass keeps), and at most
    :data:`~xaiwidgets.explainers._coalitions.WORK_BYTES` of float32 images."""
    from ..explainers._coalitions import WORK_BYTES, forward_rows

    per_row = 4 * int(np.prod(image_shape))
    return max(1, min(forward_rows(backend, image_shape), WORK_BYTES // per_row))


class _HiddenSubsets:
    """``copies`` copies of the ``n`` images in the model's own layout (NCHW for a torch
    model, :class:`~xaiwidgets.backends.base.InputLayout`; NHWC otherwise), made once. For
    each chunk of subsets ``(b, n, size)`` :meth:`predict` sets the subsets' pixels of the
    first ``b`` copies to the baseline (every channel), runs the model on those ``b * n``
    images and puts the pixels back: per chunk only ``b * n * size * c`` values are written
    twice, and the model reads the buffer as it is (no layout copy, no finiteness re-check of
    images made from checked ones).

    A pixel ``p`` of image ``i`` in copy ``r`` sits at flat offset
    ``(r * n + i) * h * w * c + p * ps + ch * cs`` with ``(ps, cs) = (1, h * w)`` in NCHW
    and ``(c, 1)`` in NHWC."""

    def __init__(self, backend: Any, x: np.ndarray, copies: int):
        n, h, w, c = x.shape
        layout = getattr(backend, "input_layout", None)
        predict = getattr(backend, "predict_in_layout", None)
        if layout in ("nhwc", "nchw") and predict is not None:
            self._predict = predict
        else:
            layout, self._predict = "nhwc", backend.predict
        planes = x.transpose(0, 3, 1, 2) if layout == "nchw" else x
        self._images = np.ascontiguousarray(planes, dtype=np.float32)
        self._buffer = np.empty((copies,) + self._images.shape, np.float32)
        self._buffer[:] = self._images
        self._size = h * w * c
        self._pixel_stride = 1 if layout == "nchw" else c
        channels = np.arange(c) * (h * w if layout == "nchw" else 1)
        # each image's start plus each channel's offset within an image: (n, 1, c)
        self._starts = (np.arange(n) * self._size)[:, None, None] + channels
        self._copy_starts = (np.arange(copies) * n * self._size)[:, None]

    def predict(self, chunk: np.ndarray, baseline: float) -> np.ndarray:
        """Model outputs ``(b * n, k)`` on the images with ``chunk[r, i]`` hidden in image
        ``r * n + i``."""
        b, n, _ = chunk.shape
        pixels = (
            chunk[..., None] if self._pixel_stride == 1 else chunk[..., None] * self._pixel_stride
        )
        src = (pixels + self._starts).reshape(b, -1)  # (b, n * size * c) offsets in the n images
        dst = (src + self._copy_starts[:b]).reshape(-1)
        src = src.reshape(-1)
        flat = self._buffer.reshape(-1)
        flat[dst] = baseline
        try:
            out = self._predict(self._buffer[:b].reshape((b * n,) + self._images.shape[1:]))
        finally:
            flat[dst] = self._images.reshape(-1)[src]
        return out


def mufidelity(
    explanation: Explanation,
    model: Any,
    *,
    runs: int = 100,
    subset_size: int | None = None,
    baseline: float = 0.0,
    score: str = "probability",
    seed: int | None = 0,
    subsets: Any = None,
    progress: Any = None,
    cancel: Any = None,
) -> MuFidelity:
    """MuFidelity (faithfulness correlation) of every image and explained output.

    Parameters
    ----------
    explanation, model : as :func:`deletion_curve`.
    runs : int
        Random pixel subsets per image (default 100).
    subset_size : int, optional
        Pixels per subset (default: 10 % of the ``h * w`` pixels, at least 1).
    baseline : float
        Value the subset's pixels take, in every channel (default 0.0).
    score : ``"probability"`` (default) or ``"output"``, as :func:`deletion_curve`.
    seed : int or None
        Seed of the subsets (default 0).
    subsets : int array ``(runs, n, subset_size)`` of flat pixel indices, optional
        The subsets to use instead of random ones (e.g. to reproduce another tool's draws).
    progress, cancel : as :class:`xaiwidgets._progress.RunControl`.

    Cost: ``n * runs + n`` model evaluations, batched (``n`` masked images per run).
    """
    _check_common(explanation, score)
    backend = wrap(model)
    x = explanation.data
    n, h, w, _, o = explanation.values.shape
    if not np.isfinite(baseline):
        raise ValueError(f"baseline: expected a finite number, got {baseline!r}")
    if subsets is None:
        runs = _positive_int(runs, "runs")
        size = (
            max(1, (h * w) // 10)
            if subset_size is None
            else _positive_int(subset_size, "subset_size")
        )
        if size > h * w:
            raise ValueError(f"subset_size: at most the {h * w} pixels, got {size}")
        rng = np.random.default_rng(seed)
        subsets = np.stack(
            [
                np.stack([rng.choice(h * w, size, replace=False) for _ in range(n)])
                for _ in range(runs)
            ]
        )
    else:
        subsets = np.asarray(subsets)
        if (
            subsets.ndim != 3
            or subsets.shape[1] != n
            or not np.issubdtype(subsets.dtype, np.integer)
        ):
            raise ValueError(
                f"subsets: expected integer pixel indices (runs, n={n}, size), got "
                f"{subsets.dtype} {subsets.shape}"
            )
        if subsets.min() < 0 or subsets.max() >= h * w:
            raise ValueError(f"subsets: pixel indices must be in 0..{h * w - 1}")
        runs, size = subsets.shape[0], subsets.shape[2]
    idx = explanation.output_indices
    outputs = backend.predict(x)
    convert = backend.to_probabilities if score == "probability" else (lambda a: a)
    f_x = np.take_along_axis(convert(outputs), idx, axis=1)  # (n, o)
    attribution = explanation.values.sum(axis=3).reshape(n, h * w, o)
    sums = np.empty((runs, n, o))
    picked = np.empty((runs, n, o), np.float32)  # each run's score of the explained outputs
    images = np.arange(n)[None, :, None]
    per_call = max(1, _rows_per_call(backend, x.shape[1:]) // n)
    hidden = _HiddenSubsets(backend, x, min(per_call, runs))
    with RunControl(progress, cancel, desc="mufidelity") as ctl:
        for start in range(0, runs, per_call):
            ctl.check()
            chunk = subsets[start : start + per_call]  # (b, n, size)
            b = len(chunk)
            out = convert(hidden.predict(chunk, baseline)).reshape(b, n, -1)
            picked[start : start + b] = out[:, images[0], idx]
            sums[start : start + b] = attribution[images, chunk].sum(axis=2)  # (b, n, o)
            ctl.step(min(runs, start + b) / runs)
    drops = np.ascontiguousarray(np.moveaxis(f_x[None] - picked, 0, -1), dtype=np.float64)
    sums = np.ascontiguousarray(np.moveaxis(sums, 0, -1))
    return MuFidelity(
        correlation=_pearson(sums, drops),
        attribution_sums=sums,
        output_drops=drops,
        output_indices=idx.copy(),
        subset_size=int(size),
        baseline=float(baseline),
        score=score,
    )


def sparseness(explanation: Explanation) -> np.ndarray:
    """Gini index of ``|phi|`` (summed over channels) per image and output, ``(n, o)``:

        G = sum_i (2 i - N - 1) a_(i) / (N sum_i a_(i)),  a_(1) <= ... <= a_(N)

    (Chalasani et al., ICML 2020; Hurley & Rickard 2009). 0 for an all-zero map.
    """
    if not isinstance(explanation, Explanation):
        raise TypeError(
            f"explanation: expected an xaiwidgets Explanation, got {type(explanation).__name__}"
        )
    n, h, w, c, o = explanation.values.shape
    p = h * w
    values = explanation.values
    m = values.reshape(n, p, o) if c == 1 else values.sum(axis=3).reshape(n, p, o)
    rows = m.reshape(n, 1, p) if o == 1 else np.moveaxis(m, 1, -1)  # (n, o, p)
    # one batched float32 sort of every map (SIMD); the sums in float64
    a = np.sort(np.abs(rows, dtype=np.float32), axis=-1)
    weights = 2 * np.arange(1, p + 1, dtype=np.float64) - p - 1
    total = a.sum(axis=-1, dtype=np.float64)
    g = (a.reshape(-1, p) @ weights).reshape(n, o) / (p * np.where(total > 0, total, 1.0))
    return np.where(total > 0, g, 0.0)
