"""Expected gradients (Erion et al., 2021), as shap's ``GradientExplainer``.

``E_{r ~ background, α ~ U(0,1)}[(x - r) · ∂f(r + α(x - r))/∂x]`` estimated with ``nsamples``
random (reference, α) pairs per image, chunked within the memory budget like the other
gradient explainers (:mod:`._gradient_rows`); completeness ``sum = f(x) - E f(background)`` is
checked within its Monte-Carlo tolerance after every call.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import check_number, check_seed
from .._progress import RunControl
from ._completeness import check_completeness, completeness_gap, relative_error
from ._gradient_rows import GradientBase, Segment, positive_int, tolerance_value
from .deep import BackgroundMean, sample_background

#: Default relative completeness tolerance of expected gradients (a Monte-Carlo estimate:
#: its error shrinks as ``1 / sqrt(nsamples)``).
EG_TOLERANCE = 5e-2


class GradientExplainer(BackgroundMean, GradientBase):
    """Expected gradients over a background, as shap's ``GradientExplainer``.

    For each image ``x`` and sample ``s = 1..nsamples``: a background image ``r_s`` drawn
    uniformly, ``α_s ~ U(0, 1)``, and (with ``local_smoothing > 0``) ``x̃ = x + ε``,
    ``ε ~ N(0, local_smoothing²)``; the attribution is the sample mean of
    ``(x̃ - r_s) · ∂f(r_s + α_s (x̃ - r_s)) / ∂x``. All outputs of an image share its samples.

    Parameters
    ----------
    background : images ``(b, h, w, c)``.
    nsamples : int
        Samples per image (default 200, as shap).
    local_smoothing : float
        Standard deviation of the noise added to the image (default 0: none).
    seed : int or None
        Seed of the samples (and of the background subsample); default 0.
    background_size : int or None
        Keep at most this many background images (default ``None``: all).
    tolerance : float
        Relative completeness tolerance (default :data:`EG_TOLERANCE`, 0.05): the estimate is
        unbiased for ``f(x) - E f(background)``, its error shrinks as ``1 / sqrt(nsamples)``;
        above the tolerance it warns, naming the ``nsamples`` that would meet it
        (``nsamples · (error / tolerance)²``). Not checked with ``local_smoothing > 0`` (the
        sums then estimate ``E f(x̃)``, not ``f(x)``).
    strict : bool
        Raise instead of warning (default ``False``).

    ``base_values`` are the mean model output over the background; ``params`` record the
    call's ``relative_completeness_error``, ``nsamples_for_tolerance`` and
    ``max_standard_error``; the Explanation's ``standard_errors`` ``(n, h, w, c, o)`` are the
    Monte-Carlo standard errors of its values, ``sqrt(var_s(g_s) / nsamples)`` per value
    (``g_s`` the sample's ``(x̃ - r_s) · ∂f/∂x``). Nothing of a call is kept on the explainer.
    """

    method = "expected_gradients"

    def __init__(
        self,
        model: Any,
        background: Any,
        *,
        nsamples: int = 200,
        local_smoothing: float = 0.0,
        seed: int | None = 0,
        background_size: int | None = None,
        tolerance: float = EG_TOLERANCE,
        strict: bool = False,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        self.nsamples = positive_int(nsamples, "nsamples")
        self.local_smoothing = check_number(local_smoothing, "local_smoothing", low=0.0)
        self.seed = check_seed(seed)
        self.background = sample_background(background, background_size, seed)
        self.tolerance = tolerance_value(tolerance)
        self.strict = bool(strict)

    @property
    def standard_errors_(self) -> np.ndarray:
        """Removed: the standard errors are those of one call, in its Explanation."""
        raise AttributeError(
            "GradientExplainer.standard_errors_ was removed: the standard errors belong to one "
            "call (an explainer may run on several threads), read them from its result: "
            "explainer(images).standard_errors"
        )

    def params(self) -> dict[str, Any]:
        return {
            "nsamples": self.nsamples,
            "local_smoothing": self.local_smoothing,
            "seed": self.seed,
            "background": int(len(self.background)),
            "tolerance": self.tolerance,
            "strict": self.strict,
        }

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], np.ndarray]:
        bg = self.background
        if bg.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"images: expected the background's shape {bg.shape[1:]}, got {x.shape[1:]}"
            )
        rng = np.random.default_rng(self.seed)
        ns = self.nsamples
        pick = rng.integers(len(bg), size=(len(x), ns))
        alpha = rng.uniform(size=(len(x), ns)).astype(np.float32)
        values = np.zeros(x.shape + (outputs.shape[1],), np.float32)
        squares = np.zeros_like(values)
        deltas: dict[int, np.ndarray] = {}  # the current chunk's x̃ - r, per image

        def points(segs: list[Segment]) -> np.ndarray:
            deltas.clear()
            out = []
            for i, j0, j1 in segs:
                xt = np.broadcast_to(x[i], (j1 - j0,) + x.shape[1:])
                if self.local_smoothing > 0:
                    noise = rng.standard_normal(xt.shape, dtype=np.float32)
                    xt = xt + np.float32(self.local_smoothing) * noise
                refs = bg[pick[i, j0:j1]]
                deltas[i] = delta = xt - refs
                out.append(refs + alpha[i, j0:j1, None, None, None] * delta)
            return np.concatenate(out)

        def accumulate(i: int, j0: int, j1: int, cols: slice, g: np.ndarray) -> None:
            g *= deltas[i][..., None]
            values[i, ..., cols] += g.sum(0)
            squares[i, ..., cols] += np.square(g, out=g).sum(0)

        self._rows(x, outputs, ns, points, accumulate, ctl)
        values /= np.float32(ns)
        squares /= np.float32(ns)
        squares -= np.square(values)
        np.maximum(squares, 0.0, out=squares)
        standard_errors = np.sqrt(squares / np.float32(ns), out=squares)
        base = self._background_mean(ctl)[outputs].astype(np.float32)
        diagnostics = self._check(values, np.take_along_axis(model_outputs, outputs, axis=1), base)
        diagnostics["max_standard_error"] = float(standard_errors.max()) if values.size else 0.0
        return values, base, diagnostics, standard_errors

    def _check(self, values: np.ndarray, fx: np.ndarray, base: np.ndarray) -> dict[str, Any]:
        gap = completeness_gap(values, fx, base)
        rel = relative_error(gap, fx, base)
        needed = None
        if self.local_smoothing == 0 and np.isfinite(rel) and rel > self.tolerance:
            needed = int(math.ceil(self.nsamples * (rel / self.tolerance) ** 2))
        diagnostics = {"relative_completeness_error": float(rel), "nsamples_for_tolerance": needed}
        if self.local_smoothing > 0:
            return diagnostics
        check_completeness(
            gap,
            fx,
            base,
            method=f"expected gradients (nsamples={self.nsamples})",
            tolerance=self.tolerance,
            culprit=None if needed is None else f"use nsamples >= {needed} to meet it",
            strict=self.strict,
            stacklevel=6,
        )
        return diagnostics
