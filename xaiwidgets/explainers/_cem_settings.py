"""The settings of the Contrastive Explanation Method, checked: what
:class:`~xaiwidgets.explainers.CEMExplainer` accepts for ``mode``, ``kappa``, ``beta``,
``gamma``, ``c_init``, ``c_steps``, ``max_iterations``, ``clip``, ``learning_rate_init``,
``search``, ``c_grid``, ``update_every``, ``feature_range`` and ``no_info_val``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_MODES = ("PN", "PP")
_SEARCHES = ("batched", "sequential")


def _positive(name: str, value: Any, *, allow_zero: bool = True, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not np.isfinite(float(value)) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(
            f"{name}: expected a {'non-negative' if allow_zero else 'positive'} "
            f"finite number, got {value!r}"
        )
    if integer:
        if int(value) != value:
            raise ValueError(f"{name}: expected a whole number, got {value!r}")
        return int(value)
    return float(value)


def finite_array(name: str, value: Any) -> np.ndarray:
    """``value`` (a number or an array of them) as float32, finite, else a ``TypeError`` /
    ``ValueError`` saying so."""
    try:
        arr = np.asarray(value, np.float32)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected numbers, got {value!r}") from exc
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite numbers, got {value!r}")
    return arr


def pair(name: str, value: Any) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name}: expected a (low, high) pair, got {value!r}")
    lo, hi = (finite_array(name, v) for v in value)
    try:
        ordered = not np.any(lo >= hi)
    except ValueError as exc:  # shapes that do not broadcast
        raise ValueError(f"{name}: low and high do not fit together: {exc}") from None
    if not ordered:
        raise ValueError(f"{name}: expected low < high, got {value!r}")
    return lo, hi


def check_settings(s: dict[str, Any], *, has_ae: bool) -> dict[str, Any]:
    """``s`` (every setting of :class:`~xaiwidgets.explainers.CEMExplainer`) checked and
    normalised: numbers as float/int, ``clip`` a float pair, ``c_grid`` a float64 array (its
    default from ``c_steps`` when ``None``); ``ValueError``/``TypeError`` naming the setting
    otherwise. ``has_ae``: whether an autoencoder was given (``gamma > 0`` needs one)."""
    if s["mode"] not in _MODES:
        raise ValueError(f"mode: expected 'PN' or 'PP', got {s['mode']!r}")
    if s["search"] not in _SEARCHES:
        raise ValueError(f"search: expected 'batched' or 'sequential', got {s['search']!r}")
    for name in ("kappa", "beta", "gamma"):
        s[name] = _positive(name, s[name])
    for name in ("c_init", "learning_rate_init"):
        s[name] = _positive(name, s[name], allow_zero=False)
    for name in ("c_steps", "max_iterations", "update_every"):
        s[name] = _positive(name, s[name], allow_zero=False, integer=True)
    lo, hi = pair("clip", s["clip"])
    s["clip"] = (float(lo), float(hi))
    if s["gamma"] > 0 and not has_ae:
        raise ValueError("gamma > 0 needs an autoencoder: pass ae_model=...")
    if s["c_grid"] is None:
        s["c_grid"] = np.unique(np.r_[1.0, np.geomspace(1e3, 1e-2, s["c_steps"] - 1)])
    try:
        grid = np.asarray(s["c_grid"], np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(
            f"c_grid: expected positive multiples of c_init (numbers), got {s['c_grid']!r}"
        ) from None
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"c_grid: expected positive multiples of c_init, got {s['c_grid']!r}")
    s["c_grid"] = grid
    return s
