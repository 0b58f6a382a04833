"""The jaxpr interpreter of JAX DeepLIFT (:func:`._deeplift_jax.deeplift_jax`): the tables of
primitives by kind (elementwise, bilinear, linear, maxes, named activations) and
:class:`_Interpreter`, which walks the pair-side and reference-side jaxprs in lock step and
replaces each nonlinear primitive by its DeepLIFT rule (see the driver's module docstring).
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.extend.core import ClosedJaxpr, DropVar, Literal

from . import _deeplift_rules as rules
from ._deeplift_jax_ops import (
    CALLS,
    OPS,
    bilinear,
    bilinear_fn,
    bind,
    call_name,
    first_max,
    plain_window,
    pool_fn,
    routed,
    scaled,
    scaled_pair,
    softmax_rule,
    window_split,
    windowed,
)

CONST, VARY, NUISANCE = 0, 1, 2

_UNARY = {
    "exp",
    "exp2",
    "log",
    "log1p",
    "expm1",
    "tanh",
    "logistic",
    "sqrt",
    "rsqrt",
    "cbrt",
    "integer_pow",
    "square",
    "sin",
    "cos",
    "erf",
    "erfc",
    "abs",
    "sign",
    "atan",
    "asinh",
    "max",
    "min",
    "pow",
    "clamp",
    "erf_inv",
    "tan",
    "floor",
    "ceil",
    "round",
}
_BINARY = {"max", "min", "div", "pow", "atan2", "mul", "rem", "nextafter"}
_BILINEAR = {"mul", "dot_general", "conv_general_dilated"}
_LINEAR = {
    "add",
    "sub",
    "neg",
    "reshape",
    "broadcast_in_dim",
    "transpose",
    "reduce_sum",
    "convert_element_type",
    "squeeze",
    "expand_dims",
    "concatenate",
    "pad",
    "slice",
    "dynamic_slice",
    "dynamic_update_slice",
    "gather",
    "select_n",
    "reduce_window_sum",
    "cumsum",
    "copy",
    "copy_p",
    "rev",
    "add_any",
    "reduce_precision",
    "mul",
    "div",
    "dot_general",
    "conv_general_dilated",
    "sharding_constraint",
    "split",
    "real",
    "mesh_cast",
    "pjit_sharding_constraint",
    "optimization_barrier",
}
_MAXES = {"reduce_window_max", "reduce_max"}
_ACTIVATIONS = {
    "relu",
    "relu6",
    "elu",
    "selu",
    "celu",
    "gelu",
    "leaky_relu",
    "sigmoid",
    "silu",
    "swish",
    "softplus",
    "soft_sign",
    "hard_tanh",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "log_sigmoid",
    "mish",
    "tanh",
    "sparse_plus",
    "squareplus",
}


# -- the interpreter -------------------------------------------------------------------------
class _Interpreter:
    """Walks the pair and reference jaxprs together (see the module docstring).

    Values are ``(status, pair_value, ref_value)``; ``status`` is ``CONST`` (no batch
    dependence), ``VARY`` (depends on the input; multipliers flow) or ``NUISANCE`` (depends on
    the input through ``stop_gradient`` or a non-float op; nothing flows).
    """

    def __init__(self, lead: tuple[int, int], softmax: str):
        self.c, self.b = lead
        self.pairs = self.c * self.b
        self.softmax = softmax
        self.maxes: dict = {}  # var -> z whose (broadcast, stopped) max it is
        self.centered: dict = {}  # var -> z for z - max z
        self.exps: dict = {}  # var -> z for exp(z - max z)
        self.sums: dict = {}  # var -> (z, exp var, axes) for sum(exp(z - max z))
        self.transposed: dict = {}  # var -> (z, permutation) for transpose(z)
        self.unhandled: set[str] = set()

    def tile(self, r: Any, like: Any) -> Any:
        """Reference-side value ``r`` tiled to the pair rows of ``like`` (its pair-side value):
        along the one axis where the pair side has ``c`` times the rows (the batch axis, first
        or not: Keras' attention on JAX puts a unit axis in front), nothing where the shapes
        already agree."""
        rs, ps = tuple(r.shape), tuple(like.shape)
        if rs == ps:
            return r
        axes = [
            a
            for a in range(len(rs))
            if len(ps) == len(rs)
            and ps[a] == self.c * rs[a]
            and rs[a] % self.b == 0
            and ps[:a] + ps[a + 1 :] == rs[:a] + rs[a + 1 :]
        ]
        if not axes:
            raise NotImplementedError(
                "DeepLIFT for JAX needs a batch axis in every nonlinearity's input; got shape "
                f"{rs} for {self.b} references and {ps} for {self.pairs} pair rows"
            )
        reps = [1] * len(rs)
        reps[axes[0]] = self.c
        return jnp.tile(r, reps)

    def run(self, jp: Any, jr: Any, consts: list, args: list) -> list:
        env: dict = {}

        def read(vp: Any, vr: Any) -> tuple:
            if isinstance(vp, Literal):
                return (CONST, vp.val, vr.val)
            return env[vp]

        for vp, val in zip(jp.constvars, consts):
            env[vp] = val
        for vp, val in zip(jp.invars, args):
            env[vp] = val
        for ep, er in zip(jp.eqns, jr.eqns, strict=True):
            if ep.primitive is not er.primitive:
                raise RuntimeError(
                    "DeepLIFT: the model traces differently for the references and for the images"
                )
            ins = [read(a, b) for a, b in zip(ep.invars, er.invars)]
            outs = self.eqn(ep, er, ins)
            for v, out in zip(ep.outvars, outs):
                if not isinstance(v, DropVar):
                    env[v] = out
        return [read(a, b) for a, b in zip(jp.outvars, jr.outvars)]

    def eqn(self, ep: Any, er: Any, ins: list) -> list:
        status = [s for s, _, _ in ins]
        name = ep.primitive.name
        if all(s == CONST for s in status):
            pv = bind(ep, [p for _, p, _ in ins])
            rv = bind(er, [r for _, _, r in ins])
            return [(CONST, p, r) for p, r in zip(pv, rv)]
        rv = bind(er, [r for _, _, r in ins])
        floats = all(jnp.issubdtype(v.aval.dtype, jnp.floating) for v in ep.outvars)
        if VARY not in status or name == "stop_gradient" or not floats:
            pv = bind(ep, [p for _, p, _ in ins])
            self._track(ep, ins)
            return [(NUISANCE, lax.stop_gradient(p), r) for p, r in zip(pv, rv)]
        self._track(ep, ins)
        pv = self.pair_value(ep, er, ins, rv)
        return [(VARY, p, r) for p, r in zip(pv, rv)]

    # softmax pattern: exp(z - max z) / broadcast(sum(exp(z - max z)))
    def _track(self, ep: Any, ins: list) -> None:
        name, v = ep.primitive.name, ep.invars
        out = ep.outvars[0]
        key = v[0] if v and not isinstance(v[0], Literal) else None
        if name == "reduce_max" and len(ep.params["axes"]) == 1:
            self.maxes[out] = (key, ep.params["axes"][0], ins[0])
        elif name in ("broadcast_in_dim", "stop_gradient", "reshape") and key in self.maxes:
            self.maxes[out] = self.maxes[key]
        elif name == "max" and len(v) == 2:
            for a in v:
                if not isinstance(a, Literal) and a in self.maxes:
                    self.maxes[out] = self.maxes[a]
        elif name == "transpose" and key is not None:  # NNX attention transposes z and max z
            if key in self.maxes:
                self.maxes[out] = self.maxes[key]
            else:
                self.transposed[out] = (key, tuple(ep.params["permutation"]))
        elif name == "sub" and len(v) == 2 and not isinstance(v[1], Literal):
            if v[1] in self.maxes and self.maxes[v[1]][0] is v[0]:
                self.centered[out] = self.maxes[v[1]]
            elif v[1] in self.maxes and self.transposed.get(v[0], (None,))[0] is not None:
                source, axis, _ = self.maxes[v[1]]
                of, perm = self.transposed[v[0]]
                if of is source:  # z transposed, then centred: the axis moves with it
                    self.centered[out] = (v[0], perm.index(axis), ins[0])
        elif name == "exp" and key in self.centered:
            self.exps[out] = self.centered[key]
        elif name == "reduce_sum" and key in self.exps:
            if tuple(ep.params["axes"]) == (self.exps[key][1],):
                self.sums[out] = (key, self.exps[key])
        elif name in ("broadcast_in_dim", "reshape") and key in self.sums:
            self.sums[out] = self.sums[key]

    def _softmax_source(self, ep: Any) -> tuple | None:
        """``(z value, axis)`` when ``ep`` is the division that ends a softmax of ``z``."""
        v = ep.invars
        if ep.primitive.name != "div" or any(isinstance(a, Literal) for a in v):
            return None
        if v[0] in self.exps and v[1] in self.sums:
            exp_var, source = self.sums[v[1]]
            if exp_var is v[0] and source[2][0] == VARY:
                return source[2], source[1]
        return None

    def pair_value(self, ep: Any, er: Any, ins: list, rv: list) -> list:
        name = ep.primitive.name
        status = [s for s, _, _ in ins]
        vary = [i for i, s in enumerate(status) if s == VARY]
        if name in CALLS:
            return self.call(ep, er, ins, rv)
        src = self._softmax_source(ep)
        if src is not None:
            return [self.softmax_unit(*src)]
        if name in _MAXES and vary == [0]:
            return [self.routed(ep, ins[0], rv[0])]
        if name in ("add", "sub") and len(ins) == 2 and NUISANCE in status:
            return [self.rescale(ep, ins, vary[0], rv[0])]
        if len(vary) == 1 and (name in _UNARY or (name in ("div", "pow") and vary == [1])):
            return [self.rescale(ep, ins, vary[0], rv[0])]
        if len(vary) == 2 and name in _BILINEAR:
            return [self.bilinear(ep, ins, rv[0])]
        if len(vary) == 2 and name in _BINARY:
            return [self.shapley(ep, ins, rv[0])]
        if (name not in _LINEAR or NUISANCE in status) and name not in self.unhandled:
            self.unhandled.add(name)
            warnings.warn(
                f"DeepLIFT: no rule for the JAX primitive {name!r}; it is "
                "differentiated as usual (attributions may not sum to the output "
                "difference)",
                stacklevel=4,
            )
        return bind(ep, [p for _, p, _ in ins])

    def call(self, ep: Any, er: Any, ins: list, rv: list) -> list:
        name = call_name(ep)
        vary = [i for i, (s, _, _) in enumerate(ins) if s == VARY]
        if (
            name in _ACTIVATIONS
            and len(vary) == 1
            and len(ep.outvars) == 1
            and ep.outvars[0].aval.shape == ep.invars[vary[0]].aval.shape
            and all(s == CONST for i, (s, _, _) in enumerate(ins) if i != vary[0])
        ):
            return [self.rescale(ep, ins, vary[0], rv[0])]
        key = CALLS[ep.primitive.name]
        sp, sr = ep.params[key], er.params[key]
        sp = sp if isinstance(sp, ClosedJaxpr) else ClosedJaxpr(sp, ())
        sr = sr if isinstance(sr, ClosedJaxpr) else ClosedJaxpr(sr, ())
        consts = [(CONST, a, b) for a, b in zip(sp.consts, sr.consts)]
        outs = self.run(sp.jaxpr, sr.jaxpr, consts, ins)
        return [p for _, p, _ in outs]

    def rescale(self, ep: Any, ins: list, i: int, y_r: Any) -> Any:
        """Elementwise rule on input ``i``; the other inputs keep their own (pair) values."""
        vals = [p for _, p, _ in ins]
        u_p, u_r = ins[i][1], self.tile(ins[i][2], ins[i][1])

        def f(t: Any) -> Any:
            return bind(ep, vals[:i] + [t] + vals[i + 1 :])[0]

        y_p = f(u_p)
        if y_p.shape != u_p.shape:
            raise NotImplementedError(
                f"DeepLIFT: the JAX primitive {ep.primitive.name!r} broadcasts its varying input"
            )
        # the derivative at the midpoint (where |Δu| is tiny) by JAX's own JVP: a central
        # difference steps out of the domain of rsqrt / log near zero (NaN in LayerNorm)
        mid = 0.5 * (u_p + u_r)
        slope = jax.jvp(f, (mid,), (jnp.ones_like(mid),))[1]
        m = rules.safe_div(OPS, y_p - self.tile(y_r, y_p), u_p - u_r, rules.EPS_RESCALE, slope)
        return scaled(u_p, lax.stop_gradient(y_p), lax.stop_gradient(m))

    def routed(self, ep: Any, inp: tuple, y_r: Any) -> Any:
        u_p, u_r = inp[1], self.tile(inp[2], inp[1])
        pool = partial(pool_fn, ep)
        y_p = pool(u_p)
        y_r = self.tile(y_r, y_p)
        to_x, to_r = rules.max_split(OPS, y_p, y_r)
        inv_du = rules.safe_div(OPS, 1.0, u_p - u_r, rules.EPS_ROUTE, 0.0)
        sg = lax.stop_gradient
        window = plain_window(ep)
        if window is not None:
            w_x = first_max(window_split(u_p, window), y_p)
            w_r = first_max(window_split(u_r, window), y_r)
            weights = to_x[..., None] * w_x + to_r[..., None] * w_r
            weights = weights * window_split(inv_du, window)
            return windowed((tuple(u_p.shape), window), u_p, sg(y_p), sg(weights))
        return routed(pool, u_p, sg(y_p), sg(u_r), sg(to_x), sg(to_r), sg(inv_du))

    def shapley(self, ep: Any, ins: list, y_r: Any) -> Any:
        (_, a_p, a_r), (_, b_p, b_r) = ins

        def f(a: Any, b: Any) -> Any:
            return bind(ep, [a, b])[0]

        a_r, b_r = self.tile(a_r, a_p), self.tile(b_r, b_p)
        m_a, m_b = rules.shapley_pair(OPS, f, a_p, a_r, b_p, b_r)
        sg = lax.stop_gradient
        return scaled_pair(a_p, b_p, sg(f(a_p, b_p)), sg(m_a), sg(m_b))

    def bilinear(self, ep: Any, ins: list, y_r: Any) -> Any:
        (_, a_p, a_r), (_, b_p, b_r) = ins
        f = partial(bilinear_fn, ep)
        mid_a = 0.5 * (a_p + self.tile(a_r, a_p))
        mid_b = 0.5 * (b_p + self.tile(b_r, b_p))
        sg = lax.stop_gradient
        return bilinear(f, a_p, b_p, sg(f(a_p, b_p)), sg(mid_a), sg(mid_b))

    def softmax_unit(self, z: tuple, axis: int) -> Any:
        _, z_p, z_r = z
        zl_p = jnp.moveaxis(z_p, axis, -1)
        zl_r = jnp.moveaxis(self.tile(z_r, z_p), axis, -1)
        # the exact shift: where a logit does not move (a ViT's class token: constant query
        # and key), the change of the row maximum reaches the argmaxes through the max rule
        exact = self.softmax == "shapley"
        coef = rules.softmax_coefficients(OPS, zl_p, zl_r, self.softmax, exact_shift=exact)
        coef = tuple(lax.stop_gradient(jnp.broadcast_to(t, zl_p.shape)) for t in coef)
        y = lax.stop_gradient(jax.nn.softmax(z_p, axis=axis))
        return softmax_rule(self.softmax, axis, z_p, y, coef)
