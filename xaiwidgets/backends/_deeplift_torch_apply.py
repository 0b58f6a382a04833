"""The DeepLIFT rule of each kind of aten op, applied on the pair rows of a torch pass.

Each rule gets the op's call (:class:`~._deeplift_torch_interp.Call`: its arguments, the
varying ones :class:`~._deeplift_torch_interp.Pair` s ``(p, r)`` with ``p`` on the pair rows
and ``r`` on the reference rows) and the references' value of the op's own output where the
rule reads it; a reference value is laid out like the pair rows by
:func:`~._deeplift_torch_refs.tile`. Each returns the op's ordinary value on the pair rows
whose backward is the DeepLIFT multiplier instead of the derivative (the references' side
of the output is the interpreter's to attach):

- :meth:`Rules.product`: ``Δ(ab) = ½ Δa (b + b') + ½ (a + a') Δb``, the derivative of each
  factor at the other's midpoint (``mul`` through :class:`Product`, one op forward and its
  ordinary backward cost);
- :meth:`Rules.elementwise`: rescale ``m = Δy / Δu`` (the derivative at the midpoint where
  ``|Δu| < 1e-6``, computed only when there is such an element), two varying inputs by
  their Shapley split;
- :meth:`Rules.pool` and :meth:`Rules.reduce_max`: shap's max rule, ``Δy`` routed to both
  argmaxes;
- :meth:`Rules.softmax`: the rules of :mod:`._deeplift_rules`.
"""

from __future__ import annotations

from typing import Any

import torch

from . import _deeplift_rules as rules
from . import _deeplift_torch_ops as ops
from ._deeplift_torch_autograd import OPS, Scale, Softmax
from ._deeplift_torch_refs import split, tile


def derivative(f: Any, mid: torch.Tensor) -> torch.Tensor:
    """``f'(mid)`` of an elementwise ``f`` by autograd (the rescale rule's value where
    ``|Δu| < 1e-6``): exact, and never outside ``f``'s domain as a secant step can be (``rsqrt``
    of a small variance); the central difference only for an op autograd cannot differentiate."""
    try:
        with torch.enable_grad():
            t = mid.detach().requires_grad_(True)
            (d,) = torch.autograd.grad(f(t).sum(), t, allow_unused=True)
    except RuntimeError:
        return rules.secant_derivative(f, mid)
    return torch.zeros_like(mid) if d is None else d


#: The derivative of a pointwise op is taken at the elements that need it alone when they are
#: at most 1 / FEW of the tensor (gathering more costs more than the whole tensor's).
FEW = 16


def rescale(f: Any, u_p: Any, u_r: Any, y_p: Any, y_r: Any, pointwise: bool) -> torch.Tensor:
    """``(y_p - y_r) / (u_p - u_r)``, and ``f'`` at the midpoint where ``|u_p - u_r| <
    EPS_RESCALE`` (:func:`._deeplift_rules.safe_div` with the derivative as its fill), shaped
    like ``u_p``. ``u_r`` and ``y_r`` are on the reference rows (broadcast by
    :func:`~._deeplift_torch_refs.split`). The derivative is evaluated only when some element
    needs it, and then at those elements alone when ``f`` acts on each element alone
    (``pointwise``) and they are few (:data:`FEW`)."""
    shape = u_p.shape
    u_p, u_r = split(u_p, u_r)
    y_p, y_r = split(y_p, y_r)
    du = u_p - u_r
    m = (y_p - y_r).div_(du)
    du.abs_()  # |Δu|, in place: each fresh tensor costs its pages
    if du.numel() == 0 or float(du.amin()) >= rules.EPS_RESCALE:
        return m.reshape(shape)
    small = du < rules.EPS_RESCALE
    count = int(torch.count_nonzero(small))
    if pointwise and count * FEW <= small.numel():  # the few elements that need it
        at = torch.unravel_index(small.view(-1).nonzero().squeeze(1), small.shape)
        mid = 0.5 * (u_p.expand(small.shape)[at] + u_r.expand(small.shape)[at])
        m[at] = derivative(f, mid).to(m.dtype)
        return m.reshape(shape)
    slope = derivative(f, (0.5 * (u_p + u_r)).reshape(shape))
    if count == small.numel():
        return slope
    return torch.where(small, slope.view(small.shape), m).reshape(shape)


def _sum_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``g`` summed over the axes along which a factor of ``shape`` was broadcast."""
    if g.shape == shape:
        return g
    lead = g.dim() - len(shape)
    dims = list(range(lead)) + [
        lead + d for d, n in enumerate(shape) if n == 1 and g.shape[lead + d] != 1
    ]
    out = g.sum(dims, keepdim=True) if dims else g
    return out.reshape(shape)


class Product(torch.autograd.Function):
    """``a * b`` (both varying); backward: each factor's gradient at the other's midpoint,
    ``g * ½(b + b')`` and ``g * ½(a + a')``."""

    @staticmethod
    def forward(ctx: Any, a: Any, b: Any, mid_a: Any, mid_b: Any) -> Any:
        ctx.save_for_backward(mid_a, mid_b)
        ctx.shapes = (a.shape, b.shape)
        return a * b

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        mid_a, mid_b = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        grad_a = _sum_to(g * mid_b, shape_a) if ctx.needs_input_grad[0] else None
        grad_b = _sum_to(g * mid_a, shape_b) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None, None


def _midpoint(v: Any) -> torch.Tensor:
    """``½(p + r)`` laid out like ``p``."""
    p, r = split(v.p.detach(), v.r)
    return torch.add(p, r).mul_(0.5).reshape(v.p.shape)


class Rules:
    """The rules of one pass (``softmax``: the softmax rule, ``"shapley"`` or ``"diagonal"``)."""

    def __init__(self, softmax: str):
        self.softmax = softmax

    def product(self, call: Any, out_r: Any) -> Any:
        """Products of two or more varying factors: value ``f(a, b)``; derivative of each
        varying factor at the others' midpoints (``½(b + b')``), the Shapley split."""
        mul = ops.op_name(call.op) == "mul" and len(call.vary) == 2
        with torch.no_grad():
            mid = {k: _midpoint(call.leaves[k]) for k in call.vary}
        if mul and all(call.leaves[k].p.is_floating_point() for k in call.vary):
            a, b = (call.leaves[k] for k in call.vary)
            return Product.apply(a.p, b.p, mid[call.vary[0]], mid[call.vary[1]])
        with torch.no_grad():
            out = call.side("p")
        for k in call.vary:
            swap = {str(j): (call.leaves[j].p if j == k else mid[j]) for j in call.vary}
            term = call.side("p", **swap)
            out = out + (term - term.detach())
        return out

    def elementwise(self, call: Any, out_r: Any) -> Any:
        """Rescale (one varying input) or Shapley pair (two), on the output's shape."""
        ks = call.vary
        u = [call.leaves[k] for k in ks]

        def f(*ts: Any) -> Any:
            return call.side("p", **{str(k): t for k, t in zip(ks, ts)})

        with torch.no_grad():
            y_p = f(*(v.p.detach() for v in u))
            if ops.is_discrete(y_p):
                return y_p
            shape = y_p.shape
            if len(u) == 1 and u[0].p.shape == shape:
                pointwise = all(
                    not isinstance(v, torch.Tensor) or v.dim() == 0
                    for i, v in enumerate(call.leaves)
                    if i not in ks
                )
                ms = [rescale(f, u[0].p.detach(), u[0].r, y_p, out_r, pointwise)]
            else:
                y_r = tile(out_r, y_p)
                u_p = [v.p.detach().expand(shape) for v in u]
                u_r = [tile(v.r, v.p).expand(shape) for v in u]
                if len(u) == 1:
                    slope = derivative(f, 0.5 * (u_p[0] + u_r[0]))
                    ms = [rules.safe_div(OPS, y_p - y_r, u_p[0] - u_r[0], rules.EPS_RESCALE, slope)]
                else:
                    ms = list(rules.shapley_pair(OPS, f, u_p[0], u_r[0], u_p[1], u_r[1]))
        if len(u) == 1:
            up = u[0].p if u[0].p.shape == shape else u[0].p.expand(shape)
            return Scale.apply(up, y_p, ms[0])
        out = y_p
        for v, m in zip(u, ms):
            vp = v.p.expand(shape)
            out = out + m * (vp - vp.detach())
        return out

    @staticmethod
    def _route(u_flat: Any, u_r: Any, y_p: Any, y_r: Any, i_p: Any, i_r: Any) -> Any:
        """Max rule on flattened windows: ``u_flat (..., L)`` (with autograd) and ``u_r``;
        outputs ``y (..., M)`` taken at indices ``i (..., M)``. The difference
        ``(max(y, y') - y') + (y - max(y, y'))`` is routed to the image's and the reference's
        argmax, each divided by ``Δu`` there."""
        with torch.no_grad():
            to_x, to_r = rules.max_split(OPS, y_p, y_r)
            inv = rules.safe_div(OPS, 1.0, u_flat.detach() - u_r, rules.EPS_ROUTE, 0.0)
            w_x, w_r = to_x * inv.gather(-1, i_p), to_r * inv.gather(-1, i_r)
        lin = u_flat.gather(-1, i_p) * w_x + u_flat.gather(-1, i_r) * w_r
        return y_p + (lin - lin.detach())

    def pool(self, call: Any, out_r: Any) -> Any:
        """Max pooling (with or without indices, adaptive or not): shap's max rule."""
        u = call.leaves[call.vary[0]]
        with torch.no_grad():
            y_p, i_p = call.side("p")
            y_r, i_r = tile(out_r[0], y_p), tile(out_r[1], i_p)
        d = ops.POOLS[ops.op_name(call.op)]
        out = self._route(
            u.p.flatten(-d),
            tile(u.r, u.p).flatten(-d),
            y_p.flatten(-d),
            y_r.flatten(-d),
            i_p.flatten(-d),
            i_r.flatten(-d),
        )
        return out.reshape(y_p.shape), i_p

    def reduce_max(self, call: Any, out_r: Any) -> Any:
        """``amax``/``amin``/``max``/``min`` over dimensions: the max rule over the reduced
        elements (``min`` as ``-max(-u)``)."""
        name = ops.op_name(call.op)
        sign = ops.REDUCE_MAX[name]
        u = call.leaves[call.vary[0]]
        nd = u.p.dim()
        dims = call.value("dim")
        if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
            dims = list(range(nd))
        dims = sorted({int(d) % max(nd, 1) for d in ([dims] if isinstance(dims, int) else dims)})
        keep = [d for d in range(nd) if d not in dims]
        keepdim = bool(call.value("keepdim"))

        def flat(t: Any) -> Any:
            t = (sign * t).permute(keep + dims)
            return t.reshape(tuple(t.shape[: len(keep)]) + (-1,))

        u_flat, u_r = flat(u.p), flat(tile(u.r, u.p))
        with torch.no_grad():
            i_p = u_flat.detach().argmax(-1, keepdim=True)
            i_r = u_r.argmax(-1, keepdim=True)
            y_p, y_r = u_flat.detach().gather(-1, i_p), u_r.gather(-1, i_r)
        out = sign * self._route(u_flat, u_r, y_p, y_r, i_p, i_r)
        shape = [1 if d in dims else u.p.shape[d] for d in range(nd)] if keepdim else None
        out = out.reshape(shape) if keepdim else out.reshape(tuple(u.p.shape[d] for d in keep))
        if getattr(call.op, "_overloadname", "") == "dim":  # (values, indices)
            with torch.no_grad():
                _, idx_p = call.side("p")
            return out, idx_p
        return out

    def softmax_rule(self, call: Any, out_r: Any) -> Any:
        """Softmax / log-softmax along ``dim``: the rules of :mod:`._deeplift_rules`."""
        u = call.leaves[call.vary[0]]
        log = ops.SOFTMAX[ops.op_name(call.op)]
        dim = int(call.value("dim")) % max(u.p.dim(), 1)
        with torch.no_grad():
            y_p = call.side("p")
            z_p, z_r = u.p.detach().movedim(dim, -1), tile(u.r, u.p).movedim(dim, -1)
            if log:
                coef = rules.log_softmax_coefficients(OPS, z_p, z_r, exact_shift=True)
            else:
                coef = rules.softmax_coefficients(OPS, z_p, z_r, self.softmax, exact_shift=True)
        return Softmax.apply(u.p, y_p, coef, (dim, self.softmax, log))

    def table(self) -> dict[str, Any]:
        """Rule kind (as :meth:`~._deeplift_torch_interp.Interpreter.references` names it) ->
        rule."""
        return {
            "product": self.product,
            "elementwise": self.elementwise,
            "pool": self.pool,
            "reduce_max": self.reduce_max,
            "softmax": self.softmax_rule,
        }


#: Rule kinds that read the references' value of their own output (besides their inputs').
READS_OUTPUT = {"elementwise", "pool"}
