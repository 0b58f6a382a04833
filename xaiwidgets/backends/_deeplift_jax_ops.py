"""Building blocks of the JAX DeepLIFT interpreter (:mod:`._deeplift_jax`).

- Custom VJPs (``scaled``, ``scaled_pair``, ``routed``, ``windowed``, ``softmax_rule``,
  ``bilinear``): each takes the value of a nonlinear primitive as computed plainly and returns
  it unchanged; its backward rule applies DeepLIFT multipliers (precomputed, passed as
  arguments with zero cotangents) instead of the derivative. Pair rows first, as in the
  interpreter.
- Jaxpr helpers: plain evaluation of an equation (``bind``), the name of a call
  (``call_name``), and the non-overlapping max-pool windows (``plain_window``,
  ``window_split``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import ClosedJaxpr, jaxpr_as_fun

from . import _deeplift_rules as rules
from ._compiled_jax import ARRAY_OPS

OPS = ARRAY_OPS  # the array namespace :mod:`._deeplift_rules` computes with


@jax.custom_vjp
def scaled(u: Any, y: Any, m: Any) -> Any:
    """Value ``y``; cotangent of ``u``: ``g * m`` (summed to ``u``'s shape)."""
    return y


scaled.defvjp(
    lambda u, y, m: (y, (m, u)), lambda res, g: (unbroadcast(g * res[0], res[1].shape), None, None)
)


@jax.custom_vjp
def scaled_pair(a: Any, b: Any, y: Any, m_a: Any, m_b: Any) -> Any:
    """Value ``y``; cotangents ``g * m_a`` and ``g * m_b``."""
    return y


scaled_pair.defvjp(
    lambda a, b, y, m_a, m_b: (y, (m_a, m_b, a, b)),
    lambda res, g: (
        unbroadcast(g * res[0], res[2].shape),
        unbroadcast(g * res[1], res[3].shape),
        None,
        None,
        None,
    ),
)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def routed(pool: Any, u: Any, y: Any, u_rt: Any, to_x: Any, to_r: Any, inv_du: Any) -> Any:
    """Value ``y``; the max-pool rule: ``(pool'(u)ᵀ(g to_x) + pool'(u')ᵀ(g to_r)) / Δu``."""
    return y


def _routed_fwd(pool: Any, u: Any, y: Any, u_rt: Any, to_x: Any, to_r: Any, inv_du: Any):
    return y, (u, u_rt, to_x, to_r, inv_du)


def _routed_bwd(pool: Any, res: tuple, g: Any) -> tuple:
    u, u_rt, to_x, to_r, inv_du = res
    routed = jax.vjp(pool, u)[1](g * to_x)[0] + jax.vjp(pool, u_rt)[1](g * to_r)[0]
    return routed * inv_du, None, None, None, None, None


routed.defvjp(_routed_fwd, _routed_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def windowed(spec: tuple, u: Any, y: Any, weights: Any) -> Any:
    """Value ``y``; backward of a max pool with non-overlapping windows: ``g`` spread over each
    window with precomputed ``weights`` ``(..., window size)``."""
    return y


windowed.defvjp(
    lambda spec, u, y, weights: (y, weights),
    lambda spec, weights, g: (window_merge(g[..., None] * weights, *spec), None, None),
)


def window_split(t: Any, window: tuple) -> Any:
    """``t`` cropped to whole windows, as ``(*window grid, window size)``."""
    grid = tuple(s // w for s, w in zip(t.shape, window))
    t = t[tuple(slice(0, g * w) for g, w in zip(grid, window))]
    t = t.reshape(tuple(x for g, w in zip(grid, window) for x in (g, w)))
    nd = len(window)
    t = t.transpose(tuple(range(0, 2 * nd, 2)) + tuple(range(1, 2 * nd, 2)))
    return t.reshape(grid + (-1,))


def window_merge(t: Any, shape: tuple, window: tuple) -> Any:
    """Inverse of :func:`window_split`, zero-padded back to ``shape``."""
    grid = tuple(s // w for s, w in zip(shape, window))
    nd = len(window)
    t = t.reshape(grid + window)
    order = [0] * (2 * nd)
    for i in range(nd):
        order[2 * i], order[2 * i + 1] = i, nd + i
    t = t.transpose(order).reshape(tuple(g * w for g, w in zip(grid, window)))
    return jnp.pad(t, [(0, s - g * w) for s, g, w in zip(shape, grid, window)])


def first_max(u_windows: Any, y: Any) -> Any:
    """1.0 at the first maximum of each window, 0.0 elsewhere."""
    hit = u_windows == y[..., None]
    return (hit & (jnp.cumsum(hit, axis=-1) == 1)).astype(u_windows.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def softmax_rule(rule: str, axis: int, z: Any, y: Any, coef: tuple) -> Any:
    """Value ``y``; the softmax rule along ``axis`` with the coefficients ``coef`` of
    :func:`~._deeplift_rules.softmax_coefficients` (3, or 5 with the exact shift)."""
    return y


softmax_rule.defvjp(
    lambda rule, axis, z, y, coef: (y, coef),
    lambda rule, axis, res, g: (
        jnp.moveaxis(rules.softmax_apply(OPS, res, jnp.moveaxis(g, axis, -1), rule), -1, axis),
        None,
        tuple(jnp.zeros_like(t) for t in res),
    ),
)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def bilinear(f: Any, a: Any, b: Any, y: Any, mid_a: Any, mid_b: Any) -> Any:
    """Value ``y = f(a, b)``; cotangents of ``f`` linearised at the midpoints:
    ``∂f(·, b̄)`` and ``∂f(ā, ·)``, exact for bilinear ``f``."""
    return y


bilinear.defvjp(
    lambda f, a, b, y, mid_a, mid_b: (y, (a, b, mid_a, mid_b)),
    lambda f, res, g: (
        jax.vjp(lambda t: f(t, res[3]), res[0])[1](g)[0],
        jax.vjp(lambda t: f(res[2], t), res[1])[1](g)[0],
        None,
        None,
        None,
    ),
)


def unbroadcast(g: Any, shape: tuple) -> Any:
    """Sum ``g`` over the axes a smaller (broadcast) operand of ``shape`` was stretched on."""
    if g.shape == tuple(shape):
        return g
    if len(shape) == 0:
        return jnp.sum(g)
    axes = tuple(i for i, (s, t) in enumerate(zip(shape, g.shape)) if s == 1 and t != 1)
    return jnp.sum(g, axis=axes, keepdims=True).reshape(shape)


# -- jaxpr helpers ----------------------------------------------------------------------
CALLS = {
    "jit": "jaxpr",
    "pjit": "jaxpr",
    "closed_call": "call_jaxpr",
    "core_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "custom_vjp_call_jaxpr": "fun_jaxpr",
    "remat": "jaxpr",
    "remat2": "jaxpr",
    "checkpoint": "jaxpr",
}


def bind(eqn: Any, vals: list) -> list:
    """Evaluate one equation plainly; always a list of outputs."""
    name = eqn.primitive.name
    if name in CALLS:
        sub = eqn.params[CALLS[name]]
        sub = sub if isinstance(sub, ClosedJaxpr) else ClosedJaxpr(sub, ())
        return list(jaxpr_as_fun(sub)(*vals))
    out = eqn.primitive.bind(*vals, **eqn.params)
    return list(out) if eqn.primitive.multiple_results else [out]


def call_name(eqn: Any) -> str | None:
    name = eqn.params.get("name")
    if name is None:
        sub = eqn.params.get(CALLS.get(eqn.primitive.name, ""), None)
        info = getattr(getattr(sub, "jaxpr", sub), "debug_info", None)
        name = getattr(info, "func_name", None)
    return name


def plain_window(ep: Any) -> tuple | None:
    """The window of a ``reduce_window_max`` whose windows tile the input without overlap
    (stride = window, no padding or dilation), else ``None``."""
    if ep.primitive.name != "reduce_window_max":
        return None
    prm = ep.params
    window = tuple(prm["window_dimensions"])
    if (
        tuple(prm["window_strides"]) != window
        or any(p != (0, 0) for p in prm["padding"])
        or any(d != 1 for d in prm["base_dilation"])
        or any(d != 1 for d in prm["window_dilation"])
    ):
        return None
    return window


def pool_fn(ep: Any, t: Any) -> Any:
    return bind(ep, [t])[0]


def bilinear_fn(ep: Any, a: Any, b: Any) -> Any:
    return bind(ep, [a, b])[0]
