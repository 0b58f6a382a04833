"""Gradient explainers: saliency, SmoothGrad, integrated gradients and expected gradients.

All of them evaluate ``backend.grad`` (every requested output of a batch from one forward
pass and a batched backward pass) on *rows* built in NumPy -- ``per_image`` points per image --
and never import a framework. Rows go to the model one model batch at a time and outputs up to
16 at a time (:mod:`._gradient_rows`), so the working set stays within the backend's
``memory_budget`` (default 1 GiB beyond the model, the images and the result) whatever the
number of images, outputs, samples or steps; cancellation is checked and progress reported
between model calls, also within one image. Random draws do not depend on the chunking.

- :class:`Saliency`: ``∂f_j/∂x`` (Simonyan, Vedaldi & Zisserman, 2014), optionally ``|·|`` or
  times the input.
- :class:`SmoothGrad`: the gradient averaged over noisy copies ``x + N(0, σ²)``,
  ``σ = noise · (max x - min x)`` (Smilkov et al., 2017).
- :class:`IntegratedGradients`: ``(x - x') · ∫₀¹ ∂f(x' + α(x - x'))/∂x dα`` (Sundararajan,
  Taly & Yan, ICML 2017) by a Riemann sum (trapezoid by default); completeness
  ``sum = f(x) - f(x')`` is checked after every call against a documented tolerance.
- :class:`GradientExplainer` (in :mod:`.expected_gradients`, re-exported here): expected
  gradients (Erion et al., 2021), as shap's ``GradientExplainer``: ``E_{r ~ background, α ~ U(0,1)}[(x - r) · ∂f(r + α(x - r))/∂x]``
  estimated with ``nsamples`` random (reference, α) pairs per image, with optional local
  smoothing noise on ``x``; reproducible with ``seed``; completeness
  ``sum = f(x) - E f(background)`` checked within its Monte-Carlo tolerance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import as_images, check_baseline, check_number, check_seed
from .._progress import RunControl
from ._completeness import check_completeness, completeness_gap, relative_error
from ._gradient_rows import GradientBase, Segment, positive_int, tolerance_value
from ._paced import predict_paced
from .expected_gradients import EG_TOLERANCE, GradientExplainer

__all__ = [
    "EG_TOLERANCE",
    "IG_TOLERANCE",
    "GradientExplainer",
    "IntegratedGradients",
    "Saliency",
    "SmoothGrad",
    "steps_for_tolerance",
]

_RULES = ("trapezoid", "left", "right", "middle")

#: Default relative completeness tolerance of integrated gradients: the Riemann sum's error
#: ``max |f(x) - f(x') - sum(values)|`` at most 1 % of ``max |f(x) - f(x')|``.
IG_TOLERANCE = 1e-2


class Saliency(GradientBase):
    """Gradient of each explained output with respect to the image.

    Parameters
    ----------
    model : any model :func:`~xaiwidgets.backends.wrap` accepts (with gradients).
    absolute : bool
        Absolute value of the gradient (default ``False``: signed).
    times_input : bool
        Multiply by the image (gradient × input; default ``False``).

    ``values`` ``(n, h, w, c, o)``; ``base_values`` are zeros.
    """

    method = "saliency"

    def __init__(
        self,
        model: Any,
        *,
        absolute: bool = False,
        times_input: bool = False,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        self.absolute, self.times_input = bool(absolute), bool(times_input)

    def params(self) -> dict[str, Any]:
        return {"absolute": self.absolute, "times_input": self.times_input}

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        values = np.empty(x.shape + (outputs.shape[1],), np.float32)

        def points(segs: list[Segment]) -> np.ndarray:
            return x[[i for i, _, _ in segs]]

        def accumulate(i: int, j0: int, j1: int, cols: slice, g: np.ndarray) -> None:
            v = g[0] * x[i][..., None] if self.times_input else g[0]
            values[i, ..., cols] = np.abs(v) if self.absolute else v

        self._rows(x, outputs, 1, points, accumulate, ctl)
        return values, np.zeros(outputs.shape, np.float32)


class SmoothGrad(GradientBase):
    """Gradient averaged over ``nsamples`` noisy copies of the image.

    Parameters
    ----------
    noise : float
        Noise level ``σ / (max x - min x)`` per image (default 0.15).
    nsamples : int
        Noisy copies per image (default 50).
    squared : bool
        Average the squared gradients (SmoothGrad², default ``False``).
    times_input : bool
        Multiply the average by the image (default ``False``).
    seed : int or None
        Seed of the noise (default 0): the same call gives the same result.
    """

    method = "smoothgrad"

    def __init__(
        self,
        model: Any,
        *,
        noise: float = 0.15,
        nsamples: int = 50,
        squared: bool = False,
        times_input: bool = False,
        seed: int | None = 0,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        self.noise = check_number(noise, "noise", low=0.0)
        self.nsamples = positive_int(nsamples, "nsamples")
        self.squared, self.times_input = bool(squared), bool(times_input)
        self.seed = check_seed(seed)

    def params(self) -> dict[str, Any]:
        return {
            "noise": self.noise,
            "nsamples": self.nsamples,
            "squared": self.squared,
            "times_input": self.times_input,
            "seed": self.seed,
        }

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        ns = self.nsamples
        flat = x.reshape(len(x), -1)
        sigma = (self.noise * (flat.max(1) - flat.min(1))).astype(np.float32)
        values = np.zeros(x.shape + (outputs.shape[1],), np.float32)

        def points(segs: list[Segment]) -> np.ndarray:
            return np.concatenate(
                [
                    x[i] + sigma[i] * rng.standard_normal((j1 - j0,) + x.shape[1:], np.float32)
                    for i, j0, j1 in segs
                ]
            )

        def accumulate(i: int, j0: int, j1: int, cols: slice, g: np.ndarray) -> None:
            if self.squared:
                g = np.square(g, out=g)
            values[i, ..., cols] += g.sum(0) / np.float32(ns)

        self._rows(x, outputs, ns, points, accumulate, ctl)
        if self.times_input:
            for i in range(len(x)):
                values[i] *= x[i][..., None]
        return values, np.zeros(outputs.shape, np.float32)


def steps_for_tolerance(
    steps: int, error: float, coarse_error: float | None, tolerance: float
) -> int:
    """Steps that would bring a Riemann error ``error`` at ``steps`` below ``tolerance``.

    The error decays as ``steps^-p``: ``p = 2`` (a smooth integrand under the trapezoid or
    midpoint rule) when the error at half the steps (``coarse_error``, the sum over every other
    node) is at least ``2^1.5`` times larger, else ``p = 1`` (the rate of a piecewise-linear
    network, whose gradient jumps along the path; also when it cannot be measured). Then
    ``steps · (error / tolerance)^(1/p)``, rounded up.
    """
    p = 1.0
    if coarse_error is not None and coarse_error >= 2**1.5 * error > 0:
        p = 2.0
    return int(math.ceil(steps * (error / tolerance) ** (1.0 / p)))


class IntegratedGradients(GradientBase):
    """Integrated gradients from a baseline, by a Riemann sum over ``steps`` intervals.

    Parameters
    ----------
    baseline : float, image ``(h, w, c)`` or images ``(n, h, w, c)``
        The reference ``x'`` (default ``0.0``, a black image); one per explained image when
        ``n`` are given.
    steps : int
        Intervals of the path ``α ∈ [0, 1]`` (default 50): ``steps + 1`` gradient points per
        image for ``"trapezoid"``, ``steps`` otherwise.
    rule : {"trapezoid", "left", "right", "middle"}
        Riemann rule (default ``"trapezoid"``).
    tolerance : float
        Relative completeness tolerance (default :data:`IG_TOLERANCE`, 1e-2): after every call
        ``max |f(x) - f(x') - sum(values)| / max |f(x) - f(x')|`` above it warns with
        :class:`~xaiwidgets.explainers._completeness.IncompleteAttributionWarning`, naming the
        number of steps that would meet it (from the error's decay between ``steps / 2`` and
        ``steps``, see :func:`steps_for_tolerance`).
    strict : bool
        Raise :class:`~xaiwidgets.explainers._completeness.IncompleteAttributionError` instead
        of warning (default ``False``).

    ``base_values`` are ``f(x')``. The Explanation's ``params`` record, for that call,
    ``max_completeness_error`` (absolute, the largest ``|f(x) - f(x') - sum(values)|``;
    every entry is ``predictions[idx] - base_values - values.sum()`` of the Explanation),
    ``relative_completeness_error``, ``tolerance`` and ``steps_for_tolerance`` (the
    estimate; ``None`` when the tolerance is met).
    """

    method = "integrated_gradients"

    def __init__(
        self,
        model: Any,
        baseline: Any = 0.0,
        *,
        steps: int = 50,
        rule: str = "trapezoid",
        tolerance: float = IG_TOLERANCE,
        strict: bool = False,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        if rule not in _RULES:
            raise ValueError(f"rule: expected one of {_RULES}, got {rule!r}")
        self.steps = positive_int(steps, "steps")
        self.rule = rule
        self.baseline = check_baseline(baseline)
        self.tolerance = tolerance_value(tolerance)
        self.strict = bool(strict)

    def params(self) -> dict[str, Any]:
        base = self.baseline
        return {
            "steps": self.steps,
            "rule": self.rule,
            "baseline": float(base) if np.ndim(base) == 0 else "image",
            "tolerance": self.tolerance,
            "strict": self.strict,
        }

    def _nodes(self, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Path positions ``α`` and weights of the Riemann rule."""
        m = self.steps if steps is None else steps
        if self.rule == "trapezoid":
            alphas = np.linspace(0.0, 1.0, m + 1)
            weights = np.full(m + 1, 1.0 / m)
            weights[[0, -1]] = 0.5 / m
        else:
            shift = {"left": 0.0, "right": 1.0, "middle": 0.5}[self.rule]
            alphas = (np.arange(m) + shift) / m
            weights = np.full(m, 1.0 / m)
        return alphas.astype(np.float32), weights.astype(np.float32)

    def _coarse_weights(self) -> np.ndarray | None:
        """Weights of the rule with ``steps / 2`` intervals on this rule's nodes (every other
        node), or ``None`` when those nodes are not a subset (odd steps, midpoint rule)."""
        m = self.steps
        if m % 2 or self.rule == "middle":
            return None
        _, wc = self._nodes(m // 2)
        full = np.zeros(len(self._nodes()[0]), np.float64)
        if self.rule == "right":
            full[1::2] = wc
        else:
            full[::2] = wc
        return full

    def _baselines(self, x: np.ndarray) -> np.ndarray:
        """The baselines, ``(n, h, w, c)`` (a broadcast view for one number or one image)."""
        base = self.baseline
        if np.ndim(base) == 0:
            return np.broadcast_to(np.float32(base), x.shape)
        arr = np.asarray(base, np.float32)
        if arr.shape == x.shape[1:]:
            return np.broadcast_to(arr, x.shape)
        arr = as_images(base, name="baseline")
        if arr.shape == x.shape:
            return arr
        if arr.shape[0] == 1 and arr.shape[1:] == x.shape[1:]:
            return np.broadcast_to(arr[0], x.shape)
        raise ValueError(
            f"baseline: expected a number, an image {x.shape[1:]} or {len(x)} "
            f"images, got shape {np.shape(base)}"
        )

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        base_img = self._baselines(x)
        alphas, weights = self._nodes()
        k = len(alphas)
        values = np.zeros(x.shape + (outputs.shape[1],), np.float32)
        # sum over pixels of g_k · (x - x') per image, node and output: the completeness terms
        node_sums = np.zeros((len(x), k, outputs.shape[1]), np.float64)

        def points(segs: list[Segment]) -> np.ndarray:
            return np.concatenate(
                [
                    base_img[i] + alphas[j0:j1, None, None, None] * (x[i] - base_img[i])
                    for i, j0, j1 in segs
                ]
            )

        def accumulate(i: int, j0: int, j1: int, cols: slice, g: np.ndarray) -> None:
            flat = g.reshape(j1 - j0, -1, g.shape[-1])
            values[i, ..., cols] += np.tensordot(weights[j0:j1], flat, axes=1).reshape(
                values.shape[1:-1] + (g.shape[-1],)
            )
            diff = (x[i] - base_img[i]).reshape(-1)
            node_sums[i, j0:j1, cols] = np.tensordot(flat, diff, axes=([1], [0]))

        self._rows(x, outputs, k, points, accumulate, ctl)
        for i in range(len(x)):
            values[i] *= (x[i] - base_img[i])[..., None]
        f_base = np.take_along_axis(predict_paced(self.backend, base_img, ctl), outputs, axis=1)
        fx = np.take_along_axis(model_outputs, outputs, axis=1)
        gap = completeness_gap(values, fx, f_base)
        diagnostics = self._check(gap, fx, f_base, node_sums)
        return values, f_base.astype(np.float32), diagnostics

    def _check(
        self, gap: np.ndarray, fx: np.ndarray, f_base: np.ndarray, node_sums: np.ndarray
    ) -> dict[str, Any]:
        """Completeness against ``tolerance``; the steps that would meet it in the warning.
        Returns the call's diagnostics (its Explanation's params)."""
        rel = relative_error(gap, fx, f_base)
        needed = None
        if np.isfinite(rel) and rel > self.tolerance:
            wc = self._coarse_weights()
            coarse = None
            if wc is not None:
                coarse_gap = fx - f_base - np.tensordot(node_sums, wc, axes=([1], [0]))
                coarse = relative_error(coarse_gap, fx, f_base)
            needed = steps_for_tolerance(self.steps, rel, coarse, self.tolerance)
        diagnostics = {
            "max_completeness_error": float(np.abs(gap).max()) if gap.size else 0.0,
            "relative_completeness_error": float(rel),
            "steps_for_tolerance": needed,
        }
        check_completeness(
            gap,
            fx,
            f_base,
            method=f"integrated gradients ({self.rule}, steps={self.steps})",
            tolerance=self.tolerance,
            culprit=None
            if needed is None
            else f"about steps={needed} would meet it (from the error's decay)",
            strict=self.strict,
            stacklevel=6,
        )
        return diagnostics
