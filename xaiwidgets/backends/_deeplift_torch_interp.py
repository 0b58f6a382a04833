"""DeepLIFT over a torch model's aten graph: an interpreter that evaluates every node for the
images and for their references side by side and gives each op its DeepLIFT rule.

Each value that differs between the two sides is a :class:`Pair` ``(p, r)``: ``p`` on the
pair rows (each image repeated once per reference) with autograd, ``r`` on the references
tiled to the same rows without. Both sides have the same shape at every node, so the rules
are positional whatever axis holds the batch (sequence-first attention included). Each op
returns its ordinary value for ``p``; its backward is the DeepLIFT multiplier instead of the
derivative, by the op's rule (see :mod:`._deeplift_torch_ops` for which op takes which):

- linear ops (convolutions and products with a constant factor, views, sums, concatenation,
  average pooling, eval-mode batch norm, ...): their own derivative;
- elementwise nonlinearities: the rescale rule ``m = Δy / Δu`` (the derivative at the midpoint
  where ``|Δu| < 1e-6``),
  two varying inputs (``maximum``, ``div``, ``pow``) by their Shapley split
  (:func:`._deeplift_rules.shapley_pair`);
- products of two varying inputs (``mul``, ``bmm``, ``matmul``, ``addmm``, ``einsum``, ...):
  the Shapley split ``Δ(ab) = ½ Δa (b + b') + ½ (a + a') Δb``, i.e. the derivative of each
  factor at the other's midpoint: gates ``x * sigmoid(g)``, LayerNorm's ``d * rsqrt(var)`` and
  ``d * d``, attention's ``QKᵀ`` and ``·V`` are exact;
- max pooling and max/min reductions: shap's split of ``Δy`` routed to both argmaxes;
- softmax / log-softmax: the rules of :mod:`._deeplift_rules` (``"shapley"`` or ``"diagonal"``).

Each rule satisfies ``Δ(output) = Σ multiplier · Δ(input)`` exactly, so the attributions of the
whole graph sum to ``f(x) - f(r)``. An op outside the tables, a batch-statistics batch norm, or a
discrete value (a comparison, an argmax) that flows back into floats is crossed by its ordinary
derivative and recorded in :attr:`Interpreter.crossed` (node name -> op), which the caller names
in a warning.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch.fx.node import map_arg
from torch.utils._pytree import tree_flatten

from . import _deeplift_rules as rules
from . import _deeplift_torch_ops as ops
from ._deeplift_torch_autograd import OPS, Scale, Softmax
from ._torch_conv_grad import _pair, _qualifies, _ThinConv


class Pair:
    """A value that differs between the image side ``p`` (with autograd) and the reference
    side ``r`` (same shape, no autograd)."""

    __slots__ = ("p", "r")

    def __init__(self, p: Any, r: Any):
        self.p, self.r = p, r


def _wrap(p: Any, r: Any) -> Any:
    """Outputs of an op on both sides -> Pairs (tensors), tuples of them, or plain values."""
    if isinstance(p, torch.Tensor):
        return Pair(p, r)
    if isinstance(p, (tuple, list)):
        return type(p)(_wrap(a, b) for a, b in zip(p, r))
    return p


def _detach(t: Any) -> Any:
    return t.detach() if isinstance(t, torch.Tensor) else t


def _derivative(f: Any, mid: torch.Tensor) -> torch.Tensor:
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


class _Call:
    """One op call with its arguments flattened: which leaves are Pairs, and the argument
    (schema name) each leaf belongs to."""

    def __init__(self, op: Any, args: tuple, kwargs: dict):
        self.op, self.keys = op, list(kwargs)
        self.leaves, self.spec = tree_flatten((list(args), list(kwargs.values())))
        self.vary = [i for i, v in enumerate(self.leaves) if isinstance(v, Pair)]
        names = ops.argument_names(op, len(args)) + self.keys
        owners: list[str] = []
        for name, value in zip(names, list(args) + list(kwargs.values())):
            owners += [name] * len(tree_flatten(value)[0])
        self.owners = owners
        self.names = {owners[i] for i in self.vary}

    def value(self, name: str) -> Any:
        """The leaf of argument ``name`` (the first one)."""
        return self.leaves[self.owners.index(name)] if name in self.owners else None

    def __call__(self, leaves: list) -> Any:
        """The op on ``leaves`` (same structure as :attr:`leaves`)."""
        args, kw = self.spec.unflatten(leaves)
        return self.op(*args, **dict(zip(self.keys, kw)))

    def side(self, which: str, **replace: Any) -> Any:
        """The op on one side (``"p"`` or ``"r"``), leaves ``replace``-d by index."""
        leaves = [getattr(v, which) if isinstance(v, Pair) else v for v in self.leaves]
        for k, v in replace.items():
            leaves[int(k)] = v
        return self(leaves)


class Interpreter:
    """Runs a traced aten graph (:mod:`._deeplift_torch_graph`) with DeepLIFT rules.

    Parameters
    ----------
    gm : the ``GraphModule`` of the model, one input ``(rows, ...)``.
    softmax : ``"shapley"`` or ``"diagonal"`` (see :mod:`._deeplift_rules`).
    """

    def __init__(self, gm: Any, softmax: str):
        self.gm, self.softmax = gm, rules.check_softmax_rule(softmax)
        self.nodes = list(gm.graph.nodes)
        last: dict = {}
        for i, node in enumerate(self.nodes):
            for used in node.all_input_nodes:
                last[used] = i
        self.free_at: list[list] = [[] for _ in self.nodes]
        for node, i in last.items():
            self.free_at[i].append(node)
        #: node name -> op (``"aten.cumprod"``) of the ops crossed by their derivative
        self.crossed: dict[str, str] = {}

    def run(self, xp: torch.Tensor, xr: torch.Tensor) -> Pair:
        """Evaluate on the pair rows ``xp`` (needing grad) and the references ``xr`` (same
        shape); returns the output as a :class:`Pair`."""
        env: dict = {}
        out: Any = None
        for i, node in enumerate(self.nodes):
            if node.op == "placeholder":
                env[node] = Pair(xp, xr)
            elif node.op == "get_attr":
                target: Any = self.gm
                for part in node.target.split("."):
                    target = getattr(target, part)
                env[node] = target
            elif node.op == "call_function":
                args = map_arg(node.args, env.__getitem__)
                kwargs = map_arg(node.kwargs, env.__getitem__)
                env[node] = self._node(node, node.target, args, kwargs)
            elif node.op == "output":
                out = map_arg(node.args[0], env.__getitem__)
            else:  # pragma: no cover - make_fx graphs have no modules or methods
                raise NotImplementedError(f"DeepLIFT: graph node of kind {node.op!r}")
            for used in self.free_at[i]:
                env.pop(used, None)
        found = [v for v in tree_flatten(out)[0] if isinstance(v, Pair)]
        if not found:
            raise ValueError("DeepLIFT: the model's output does not depend on its input")
        return found[0]

    # -- dispatch -------------------------------------------------------------------------
    def _node(self, node: Any, op: Any, args: tuple, kwargs: dict) -> Any:
        if op is operator.getitem:
            return args[0][args[1]]
        call = _Call(op, args, kwargs)
        if not call.vary:
            with torch.no_grad():
                return op(*args, **kwargs)
        name = ops.op_name(op)
        if name in ops.SHAPE_ONLY:
            with torch.no_grad():
                return _detach(call.side("p"))
        if name in ops.IDENTITY and call.names <= {"self", "input"}:
            return args[0]
        if any(ops.is_discrete(call.leaves[i].p) for i in call.vary):
            return self._discrete(node, call)
        rule = self._rule(name, call)
        if rule is None:
            self.crossed.setdefault(node.name, ops.full_name(op))
            return self._linear(call)
        return rule(call)

    def _rule(self, name: str, call: _Call) -> Any:
        names, count = call.names, len(call.vary)
        overload = getattr(call.op, "_overloadname", "")
        if name in ops.BATCH_NORMS and call.value("training"):
            return None
        allowed = ops.LINEAR.get(name, ())
        if name in ops.LINEAR and (allowed is ops.ALL or names <= allowed):
            return self._linear
        if name in ops.LINEAR_IN_SELF and names == {"self"} and call.value("rounding_mode") is None:
            return self._linear
        if name in ops.BILINEAR and names <= ops.BILINEAR[name]:
            if count <= ops.MAX_VARYING.get(name, 3):
                return self._bilinear
            return None
        if name in ops.REDUCE_MAX and overload == "other":  # max(a, b): elementwise
            return self._elementwise if count <= 2 else None
        if name in ops.ELEMENTWISE and count <= 2:
            return self._elementwise
        if names != {"self"}:
            return None
        if name in ops.POOLS:
            return self._pool
        if name in ops.REDUCE_MAX:
            return self._reduce_max
        if name in ops.SOFTMAX:
            return self._softmax
        return None

    # -- rules ----------------------------------------------------------------------------
    def _linear(self, call: _Call) -> Any:
        """Both sides by the op itself: autograd's derivative (linear ops, and the fallback)."""
        p = self._thin_conv(call) if ops.op_name(call.op) == "convolution" else None
        if p is None:
            p = call.side("p")
        with torch.no_grad():
            r = call.side("r")
        return _wrap(p, r)

    def _discrete(self, node: Any, call: _Call) -> Any:
        """An integer/boolean Pair (a comparison, an argmax) is an input: no difference flows
        through it; if the op returns floats it is crossed without a rule."""
        p = call.side("p")
        with torch.no_grad():
            r = call.side("r")
        if any(not ops.is_discrete(t) for t in tree_flatten(p)[0] if isinstance(t, torch.Tensor)):
            self.crossed.setdefault(node.name, ops.full_name(call.op))
        return _wrap(p, r)

    def _thin_conv(self, call: _Call) -> Any:
        """The first convolution's faster input gradient (see :mod:`._torch_conv_grad`)."""
        if call.names != {"input"}:
            return None
        args = call.spec.unflatten(call.leaves)[0]
        x, weight, bias, stride, padding, dilation, transposed, _, groups = args
        if transposed or len(stride) != 2 or not _qualifies(x.p, weight, bias, padding, groups):
            return None
        geom = tuple(_pair(v) for v in (stride, padding, dilation))
        return _ThinConv.apply(x.p, weight, bias, geom)

    def _bilinear(self, call: _Call) -> Any:
        """Products: value ``f(a, b)``; derivative of each varying factor at the others'
        midpoints (``½(b + b')``), the Shapley split of the product."""
        if len(call.vary) == 1:
            return self._linear(call)
        with torch.no_grad():
            y = call.side("p")
            r = call.side("r")
            mid = {k: 0.5 * (call.leaves[k].p.detach() + call.leaves[k].r) for k in call.vary}
        out = y
        for k in call.vary:
            swap = {str(j): (call.leaves[j].p if j == k else mid[j]) for j in call.vary}
            term = call.side("p", **swap)
            out = out + (term - term.detach())
        return Pair(out, r)

    def _elementwise(self, call: _Call) -> Any:
        """Rescale (one varying input) or Shapley pair (two), on the output's shape."""
        ks = call.vary
        u = [call.leaves[k] for k in ks]

        def f(*ts: Any) -> Any:
            return call.side("p", **{str(k): t for k, t in zip(ks, ts)})

        with torch.no_grad():
            y_p = f(*(v.p.detach() for v in u))
            y_r = f(*(v.r for v in u))
            if ops.is_discrete(y_p):
                return Pair(y_p, y_r)
            shape = y_p.shape
            u_p = [v.p.detach().expand(shape) for v in u]
            u_r = [v.r.expand(shape) for v in u]
            if len(u) == 1:
                slope = _derivative(f, 0.5 * (u_p[0] + u_r[0]))
                ms = [rules.safe_div(OPS, y_p - y_r, u_p[0] - u_r[0], rules.EPS_RESCALE, slope)]
            else:
                ms = list(rules.shapley_pair(OPS, f, u_p[0], u_r[0], u_p[1], u_r[1]))
        if len(u) == 1:
            return Pair(Scale.apply(u[0].p.expand(shape), y_p, ms[0]), y_r)
        out = y_p
        for v, m in zip(u, ms):
            vp = v.p.expand(shape)
            out = out + m * (vp - vp.detach())
        return Pair(out, y_r)

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

    def _pool(self, call: _Call) -> Any:
        """Max pooling (with or without indices, adaptive or not): shap's max rule."""
        u = call.leaves[call.vary[0]]
        with torch.no_grad():
            y_p, i_p = call.side("p")
            y_r, i_r = call.side("r")
        d = ops.POOLS[ops.op_name(call.op)]
        out = self._route(
            u.p.flatten(-d),
            u.r.flatten(-d),
            y_p.flatten(-d),
            y_r.flatten(-d),
            i_p.flatten(-d),
            i_r.flatten(-d),
        )
        return Pair(out.reshape(y_p.shape), y_r), Pair(i_p, i_r)

    def _reduce_max(self, call: _Call) -> Any:
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

        u_flat, u_r = flat(u.p), flat(u.r)
        with torch.no_grad():
            i_p = u_flat.detach().argmax(-1, keepdim=True)
            i_r = u_r.argmax(-1, keepdim=True)
            y_p, y_r = u_flat.detach().gather(-1, i_p), u_r.gather(-1, i_r)
        out = sign * self._route(u_flat, u_r, y_p, y_r, i_p, i_r)
        shape = [1 if d in dims else u.p.shape[d] for d in range(nd)] if keepdim else None
        out = out.reshape(shape) if keepdim else out.reshape(tuple(u.p.shape[d] for d in keep))
        ref = sign * y_r.reshape(out.shape)
        if getattr(call.op, "_overloadname", "") == "dim":  # (values, indices)
            with torch.no_grad():
                _, idx_p = call.side("p")
                _, idx_r = call.side("r")
            return Pair(out, ref), Pair(idx_p, idx_r)
        return Pair(out, ref)

    def _softmax(self, call: _Call) -> Any:
        """Softmax / log-softmax along ``dim``: the rules of :mod:`._deeplift_rules`."""
        u = call.leaves[call.vary[0]]
        log = ops.SOFTMAX[ops.op_name(call.op)]
        dim = int(call.value("dim")) % max(u.p.dim(), 1)
        with torch.no_grad():
            y_p = call.side("p")
            y_r = call.side("r")
            z_p, z_r = u.p.detach().movedim(dim, -1), u.r.movedim(dim, -1)
            if log:
                coef = rules.log_softmax_coefficients(OPS, z_p, z_r, exact_shift=True)
            else:
                coef = rules.softmax_coefficients(OPS, z_p, z_r, self.softmax, exact_shift=True)
        return Pair(Softmax.apply(u.p, y_p, coef, (dim, self.softmax, log)), y_r)
