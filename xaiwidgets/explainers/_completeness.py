"""Completeness as a checked guarantee, not a statistic.

Methods that promise completeness (DeepLIFT / DeepSHAP, integrated gradients, expected
gradients) satisfy, per image ``i`` and explained output ``j``,

    sum_pixels phi[i, ..., j] = f(x_i)_j - base_j

(``base`` = the output at the baseline, or its mean over a background). After every call the
explainer measures the gap and the *relative* error

    relative = max_ij |f(x_i)_j - base_ij - sum phi_ij| / max_ij |f(x_i)_j - base_ij|

(the denominator floored at ``1e-6`` so a constant model does not divide by zero). Above the
method's documented tolerance it warns with :class:`IncompleteAttributionWarning`, naming what
broke it (an op or layer, or the number of integration steps that would meet the tolerance);
``strict=True`` raises :class:`IncompleteAttributionError` instead. Nothing is ever rescaled to
make the sums match.
"""

from __future__ import annotations

import warnings

import numpy as np


class IncompleteAttributionWarning(UserWarning):
    """Attributions do not sum to ``f(x) - f(baseline)`` within the method's tolerance."""


class IncompleteAttributionError(ValueError):
    """Raised instead of :class:`IncompleteAttributionWarning` when ``strict=True``."""


def completeness_gap(values: np.ndarray, fx: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``f(x) - base - sum(values)`` per image and output.

    values ``(n, h, w, c, o)``; fx, base ``(n, o)`` -> ``(n, o)`` float64.
    """
    n, o = fx.shape
    sums = np.asarray(values, np.float64).reshape(n, -1, o).sum(axis=1)
    return np.asarray(fx, np.float64) - np.asarray(base, np.float64) - sums


def relative_error(gap: np.ndarray, fx: np.ndarray, base: np.ndarray) -> float:
    """``max |gap| / max |f(x) - base|`` (denominator floored at 1e-6); 0.0 for no rows."""
    if gap.size == 0:
        return 0.0
    delta = np.abs(np.asarray(fx, np.float64) - np.asarray(base, np.float64)).max()
    return float(np.abs(gap).max() / max(delta, 1e-6))


def check_completeness(
    gap: np.ndarray,
    fx: np.ndarray,
    base: np.ndarray,
    *,
    method: str,
    tolerance: float,
    culprit: str | None = None,
    strict: bool = False,
    stacklevel: int = 3,
) -> float:
    """Warn (or raise with ``strict``) when the relative completeness error exceeds
    ``tolerance``; return the relative error.

    ``culprit`` says what broke completeness (``"layer 'blocks.0.attn' (aten.mul)"``, or
    ``"use steps >= 200"``) and is put in the message.
    """
    rel = relative_error(gap, fx, base)
    if not np.isfinite(rel) or rel > tolerance:
        msg = (
            f"{method}: attributions do not sum to f(x) - f(baseline): relative completeness "
            f"error {rel:.3g} > tolerance {tolerance:g} (max absolute {np.abs(gap).max():.3g})"
        )
        if culprit:
            msg += f"; {culprit}"
        if strict:
            raise IncompleteAttributionError(msg)
        warnings.warn(msg, IncompleteAttributionWarning, stacklevel=stacklevel)
    return rel
