"""The numbers of one column of :class:`~xaiwidgets.widgets.ExplainerComparison`.

:func:`score_explainer` runs one explainer on the compared images and scores its explanation
with the functions of :mod:`xaiwidgets.faithfulness`, called as a user would call them:

- deletion and insertion curves (Petsiuk et al. 2018) with one masker for every explainer, so
  the areas compare on one measuring stick;
- MuFidelity (Bhatt et al. 2020) over ``runs`` random pixel subsets;
- sparseness (Gini index of ``|phi|``);
- the cascading model-randomisation sanity check (Adebayo et al. 2018), when the explainer's
  backend can redraw its weights (torch, Keras); otherwise the column says why not.

The drawing helpers (:func:`keep_masks`, :func:`colour_scales`) are what the widget sends for
the masked overlay and the colour scales: Python computes every number, JS only draws.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._progress import Cancelled
from ..explanation import Explanation
from ..faithfulness import (
    MuFidelity,
    PerturbationCurve,
    RandomisationCheck,
    deletion_curve,
    insertion_curve,
    mufidelity,
    randomisation_check,
    sparseness,
)


@dataclass(frozen=True)
class ScoreSettings:
    """How every column is scored (part of each column's cache key)."""

    masker: str
    steps: int
    runs: int
    subset_size: int | None
    sanity_stages: int
    seed: int


@dataclass(eq=False)
class ColumnResult:
    """One explainer's explanation of the compared images and its scores (``n`` images, one
    output each: ``values`` ``(n, h, w, c, 1)``)."""

    explanation: Explanation
    deletion: PerturbationCurve
    insertion: PerturbationCurve
    mufidelity: MuFidelity
    sparseness: np.ndarray
    sanity: RandomisationCheck | None
    sanity_note: str
    seconds: float

    def summary(self) -> dict[str, Any]:
        """The score-table row: means over the images (``None`` where not a number)."""
        sanity = self.sanity
        return {
            "deletion": _finite(self.deletion.mean_area),
            "insertion": _finite(self.insertion.mean_area),
            "mufidelity": _finite(self.mufidelity.mean),
            "sparseness": _finite(float(self.sparseness.mean())),
            "sanity": None if sanity is None else bool(sanity.passed),
            "sanity_similarity": (
                None if sanity is None else _finite(float(np.nanmean(sanity.similarity[-1])))
            ),
            "sanity_note": self.sanity_note,
            "seconds": float(self.seconds),
        }


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def score_explainer(
    explainer: Any,
    model: Any,
    images: np.ndarray,
    outputs: np.ndarray,
    labels: np.ndarray | None,
    settings: ScoreSettings,
    progress: Callable[[float], None],
    cancel: Any,
) -> ColumnResult:
    """Explain ``images`` ``(n, h, w, c)`` for ``outputs`` ``(n, 1)`` with ``explainer`` and
    score it on ``model``; ``progress(fraction)`` and ``cancel`` as in
    :class:`~xaiwidgets._progress.RunControl` (a set ``cancel`` raises ``Cancelled``)."""
    started = time.perf_counter()

    def part(a: float, b: float) -> Callable[[float], None]:
        return lambda f: progress(a + (b - a) * f)

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()

    check()
    e = explainer(images, outputs, labels=labels, progress=part(0.0, 0.4), cancel=cancel)
    if e.values.shape[:4] != images.shape or e.values.shape[4] != 1:
        raise ValueError(
            f"{type(explainer).__name__} returned values of shape {e.values.shape}; expected "
            f"{images.shape + (1,)} (one map per image for the chosen output)"
        )
    kw = {"steps": settings.steps, "cancel": cancel}
    deletion = deletion_curve(e, model, settings.masker, progress=part(0.4, 0.55), **kw)
    insertion = insertion_curve(e, model, settings.masker, progress=part(0.55, 0.7), **kw)
    mu = mufidelity(
        e, model, runs=settings.runs, subset_size=settings.subset_size, seed=settings.seed,
        progress=part(0.7, 0.8), cancel=cancel,
    )  # fmt: skip
    sanity, note = None, "not run (sanity_stages=0)"
    if settings.sanity_stages > 0:
        check()
        try:
            sanity = randomisation_check(
                explainer, images, outputs, stages=settings.sanity_stages, seed=settings.seed,
                progress=part(0.8, 1.0), cancel=cancel,
            )  # fmt: skip
            note = (
                f"mean Spearman similarity of |attribution| with all {len(sanity.layers)} "
                f"layers redrawn: below {sanity.threshold:g} passes"
            )
        except TypeError as exc:  # a backend that cannot redraw its weights (Flax, NumPy)
            note = f"not available: {exc}"
    progress(1.0)
    return ColumnResult(
        explanation=e,
        deletion=deletion,
        insertion=insertion,
        mufidelity=mu,
        sparseness=sparseness(e),
        sanity=sanity,
        sanity_note=note,
        seconds=time.perf_counter() - started,
    )


def attribution_maps(result: ColumnResult) -> np.ndarray:
    """``(n, h, w)`` float32: the attribution of the explained output summed over channels
    (the score each pixel has in the deletion order)."""
    return result.explanation.values[..., 0].sum(axis=3, dtype=np.float32)


def keep_masks(maps: np.ndarray, fraction: float) -> np.ndarray:
    """``(n, h, w)`` uint8, 1 on the ``max(1, round(fraction * h * w))`` pixels of largest
    attribution of each map (ties in raster order: the order deletion hides them in)."""
    n, h, w = maps.shape
    count = max(1, int(round(fraction * h * w)))
    order = np.argsort(-maps.reshape(n, h * w), axis=1, kind="stable")[:, :count]
    keep = np.zeros((n, h * w), np.uint8)
    np.put_along_axis(keep, order, 1, axis=1)
    return keep.reshape(n, h, w)


def colour_scales(maps: np.ndarray, mode: str) -> np.ndarray:
    """``(e, n)`` max ``|value|`` of each cell's symmetric colour scale, from maps
    ``(e, n, h, w)``: one per column (``"column"``: every image of an explainer on one scale)
    or one per cell (``"cell"``). Maps not computed yet (NaN) and all-zero ones get 1."""
    a = np.abs(maps)
    per_cell = np.where(np.isfinite(a), a, 0.0).max(axis=(2, 3))
    if mode == "column":
        per_cell = np.repeat(per_cell.max(axis=1, keepdims=True), maps.shape[1], axis=1)
    return np.where(per_cell > 0, per_cell, 1.0).astype(np.float32)


def curve_arrays(result: ColumnResult, metric: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """What the widget draws for a clicked score: ``x`` ``(s,)``, ``y`` ``(n + 1, s)`` (row 0
    the mean over the images, then one row per image) and a description. For
    ``"mufidelity"`` a scatter: ``x`` ``(n * r,)`` the attribution sums of the ``r`` random
    subsets of every image, ``y`` ``(1, n * r)`` the output drops they caused."""
    if metric in ("deletion", "insertion"):
        curve = result.deletion if metric == "deletion" else result.insertion
        per_image = curve.scores[:, 0, :]
        verb = "hidden" if metric == "deletion" else "revealed"
        info = {
            "x_label": f"share of pixels {verb} ({curve.masker})",
            "y_label": curve.score,  # "probability" or "output" of the explained class
            "area": float(curve.mean_area),
            "better": "lower" if metric == "deletion" else "higher",
        }
        return curve.fractions.astype(np.float32), _with_mean(per_image), info
    if metric == "sanity":
        check = result.sanity
        if check is None:
            raise ValueError(f"no sanity check for this explainer: {result.sanity_note}")
        per_image = check.similarity[:, :, 0].T  # (n, stages)
        info = {
            "x_label": f"layers redrawn from the output (of {len(check.layers)})",
            "y_label": "similarity (Spearman)",
            "area": float(np.nanmean(check.similarity[-1])),
            "better": "lower",
            "threshold": check.threshold,
        }
        return check.randomised.astype(np.float32), _with_mean(per_image), info
    if metric == "mufidelity":
        mu = result.mufidelity
        info = {
            "kind": "scatter",
            "x_label": f"sum of attributions over {mu.subset_size} random pixels",
            "y_label": f"drop of the {mu.score}",
            "area": _finite(mu.mean),
            "better": "higher",
        }
        x = mu.attribution_sums[:, 0, :].reshape(-1).astype(np.float32)
        return x, mu.output_drops[:, 0, :].reshape(1, -1).astype(np.float32), info
    raise ValueError(
        f"metric: expected 'deletion', 'insertion', 'mufidelity' or 'sanity', got {metric!r}"
    )


def _with_mean(per_image: np.ndarray) -> np.ndarray:
    mean = per_image.mean(axis=0, keepdims=True)
    return np.concatenate([mean, per_image]).astype(np.float32)
