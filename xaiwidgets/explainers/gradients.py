"""Gradient explainers: saliency, SmoothGrad, integrated gradients and expected gradients.

All of them evaluate ``backend.grad`` (every requested output of a batch from one forward
pass and a batched backward pass) on batches of points built in NumPy, and never import a
framework.

- :class:`Saliency`: ``∂f_j/∂x`` (Simonyan, Vedaldi & Zisserman, 2014), optionally ``|·|`` or
  times the input.
- :class:`SmoothGrad`: the gradient averaged over noisy copies ``x + N(0, σ²)``,
  ``σ = noise · (max x - min x)`` (Smilkov et al., 2017).
- :class:`IntegratedGradients`: ``(x - x') · ∫₀¹ ∂f(x' + α(x - x'))/∂x dα`` (Sundararajan,
  Taly & Yan, ICML 2017) by a Riemann sum (trapezoid by default); completeness
  ``sum = f(x) - f(x')`` holds as ``steps → ∞`` and its error is reported.
- :class:`GradientExplainer`: expected gradients (Erion et al., 2021), as shap's
  ``GradientExplainer``: ``E_{r ~ background, α ~ U(0,1)}[(x - r) · ∂f(r + α(x - r))/∂x]``
  estimated with ``nsamples`` random (reference, α) pairs per image, with optional local
  smoothing noise on ``x``; reproducible with ``seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_images, batches
from .._progress import RunControl
from .base import Explainer
from .deep import BackgroundMean, sample_background

_RULES = ("trapezoid", "left", "right", "middle")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _row_budget(backend: Any) -> int:
    """Points per ``backend.grad`` call: a few of the backend's batches."""
    return 4 * int(getattr(backend, "batch_size", 256))


class _GradientBase(Explainer):
    """Shared: gradients of many points per image, averaged with weights."""

    def _grads(self, points: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.backend.grad(points, outputs), np.float32)


class Saliency(_GradientBase):
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
        for s in batches(len(x), _row_budget(self.backend)):
            ctl.check()
            g = self._grads(x[s], outputs[s])
            if self.times_input:
                g = g * x[s][..., None]
            values[s] = np.abs(g) if self.absolute else g
            ctl.step(s.stop / len(x))
        return values, np.zeros(outputs.shape, np.float32)


class SmoothGrad(_GradientBase):
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
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise: expected a non-negative number, got {noise!r}")
        self.noise = float(noise)
        self.nsamples = _positive_int(nsamples, "nsamples")
        self.squared, self.times_input, self.seed = bool(squared), bool(times_input), seed

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
        values = np.empty(x.shape + (outputs.shape[1],), np.float32)
        per_call = max(1, _row_budget(self.backend) // ns)
        for s in batches(len(x), per_call):
            ctl.check()
            xs = x[s]
            span = xs.reshape(len(xs), -1).max(1) - xs.reshape(len(xs), -1).min(1)
            sigma = (self.noise * span).astype(np.float32).reshape(-1, 1, 1, 1, 1)
            noisy = xs[:, None] + sigma * rng.standard_normal(
                (len(xs), ns) + xs.shape[1:], dtype=np.float32
            )
            g = self._grads(noisy.reshape((-1,) + xs.shape[1:]), np.repeat(outputs[s], ns, 0))
            g = g.reshape((len(xs), ns) + g.shape[1:])
            avg = (g * g).mean(1) if self.squared else g.mean(1)
            values[s] = avg * xs[..., None] if self.times_input else avg
            ctl.step(s.stop / len(x))
        return values, np.zeros(outputs.shape, np.float32)


class IntegratedGradients(_GradientBase):
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

    ``base_values`` are ``f(x')``; ``completeness_error_`` ``(n, o)`` holds
    ``f(x) - f(x') - sum(values)`` of the last call, and ``params()`` its largest absolute
    value (``max_completeness_error``). It shrinks as ``steps`` grows.
    """

    method = "integrated_gradients"

    def __init__(
        self,
        model: Any,
        baseline: Any = 0.0,
        *,
        steps: int = 50,
        rule: str = "trapezoid",
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        if rule not in _RULES:
            raise ValueError(f"rule: expected one of {_RULES}, got {rule!r}")
        self.steps = _positive_int(steps, "steps")
        self.rule = rule
        self.baseline = baseline
        self.completeness_error_: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        err = self.completeness_error_
        base = self.baseline
        return {
            "steps": self.steps,
            "rule": self.rule,
            "baseline": float(base) if np.ndim(base) == 0 else "image",
            "max_completeness_error": None if err is None else float(np.abs(err).max()),
        }

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Path positions ``α`` and weights of the Riemann rule."""
        m = self.steps
        if self.rule == "trapezoid":
            alphas = np.linspace(0.0, 1.0, m + 1)
            weights = np.full(m + 1, 1.0 / m)
            weights[[0, -1]] = 0.5 / m
        else:
            shift = {"left": 0.0, "right": 1.0, "middle": 0.5}[self.rule]
            alphas = (np.arange(m) + shift) / m
            weights = np.full(m, 1.0 / m)
        return alphas.astype(np.float32), weights.astype(np.float32)

    def _baselines(self, x: np.ndarray) -> np.ndarray:
        base = self.baseline
        if np.ndim(base) == 0:
            return np.full_like(x, float(base))
        arr = np.asarray(base, np.float32)
        if arr.shape == x.shape[1:]:
            return np.broadcast_to(arr, x.shape).astype(np.float32)
        arr = as_images(base, name="baseline")
        if arr.shape == x.shape:
            return arr
        if arr.shape[0] == 1 and arr.shape[1:] == x.shape[1:]:
            return np.broadcast_to(arr, x.shape).astype(np.float32)
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
        values = np.empty(x.shape + (outputs.shape[1],), np.float32)
        per_call = max(1, _row_budget(self.backend) // k)
        for s in batches(len(x), per_call):
            ctl.check()
            xs, bs = x[s], base_img[s]
            diff = xs - bs
            shape = (-1, 1, 1, 1)
            pts = bs[:, None] + alphas.reshape(shape)[None] * diff[:, None]
            g = self._grads(pts.reshape((-1,) + xs.shape[1:]), np.repeat(outputs[s], k, 0))
            g = g.reshape((len(xs), k) + g.shape[1:])
            avg = np.tensordot(weights, g, axes=([0], [1]))
            values[s] = avg * diff[..., None]
            ctl.step(s.stop / len(x))
        f_base = np.take_along_axis(self.backend.predict(base_img), outputs, axis=1)
        fx = np.take_along_axis(model_outputs, outputs, axis=1)
        self.completeness_error_ = fx - f_base - values.reshape(len(x), -1, outputs.shape[1]).sum(1)
        return values, f_base.astype(np.float32)


class GradientExplainer(BackgroundMean, _GradientBase):
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

    ``base_values`` are the mean model output over the background; ``standard_errors_``
    ``(n, h, w, c, o)`` the Monte-Carlo standard errors of the last call.
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
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        if not np.isfinite(local_smoothing) or local_smoothing < 0:
            raise ValueError(
                f"local_smoothing: expected a non-negative number, got {local_smoothing!r}"
            )
        self.nsamples = _positive_int(nsamples, "nsamples")
        self.local_smoothing = float(local_smoothing)
        self.seed = seed
        self.background = sample_background(background, background_size, seed)
        self.standard_errors_: np.ndarray | None = None

    def params(self) -> dict[str, Any]:
        return {
            "nsamples": self.nsamples,
            "local_smoothing": self.local_smoothing,
            "seed": self.seed,
            "background": int(len(self.background)),
        }

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        bg = self.background
        if bg.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"images: expected the background's shape {bg.shape[1:]}, got {x.shape[1:]}"
            )
        rng = np.random.default_rng(self.seed)
        ns = self.nsamples
        o = outputs.shape[1]
        values = np.empty(x.shape + (o,), np.float32)
        errors = np.empty_like(values)
        per_call = max(1, _row_budget(self.backend) // ns)
        for s in batches(len(x), per_call):
            ctl.check()
            xs = x[s]
            pick = rng.integers(len(bg), size=(len(xs), ns))
            alpha = rng.uniform(size=(len(xs), ns)).astype(np.float32).reshape(len(xs), ns, 1, 1, 1)
            xt = np.broadcast_to(xs[:, None], (len(xs), ns) + xs.shape[1:])
            if self.local_smoothing > 0:
                noise = rng.standard_normal(xt.shape, dtype=np.float32)
                xt = xt + np.float32(self.local_smoothing) * noise
            refs = bg[pick]
            delta = xt - refs
            pts = refs + alpha * delta
            g = self._grads(pts.reshape((-1,) + xs.shape[1:]), np.repeat(outputs[s], ns, 0))
            samples = g.reshape((len(xs), ns) + g.shape[1:]) * delta[..., None]
            mean = samples.mean(1)
            var = np.maximum(np.square(samples).mean(1) - np.square(mean), 0.0)
            values[s] = mean
            errors[s] = np.sqrt(var / ns)
            ctl.step(s.stop / len(x))
        self.standard_errors_ = errors
        return values, self.expected_value[outputs].astype(np.float32)
