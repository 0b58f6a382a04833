"""DeepLIFT over a torch model's aten graph: an interpreter that evaluates the graph on the
references once per chunk of references, then on the pair rows of each pass with every op's
DeepLIFT rule.

Each value that differs between an image and a reference is a :class:`Pair` ``(p, r)``: ``p``
on the pair rows (``m`` images x ``R`` references, image ``i`` with reference ``k`` at row
``i R + k``) with autograd, ``r`` on the ``R`` reference rows without. The references' side is
the same for every image, so it is evaluated once per chunk of references
(:meth:`Interpreter.references`, by the graph traced at ``R`` rows), which also names each
node's kind and keeps the reference values the rules read; a pass (:meth:`Interpreter.run`)
evaluates the pair side only, reading those values tiled to its rows
(:mod:`._deeplift_torch_refs`). Each op returns its ordinary value for ``p``; its backward is
the DeepLIFT multiplier instead of the derivative, by the op's kind (see
:mod:`._deeplift_torch_ops` for which op takes which, :mod:`._deeplift_torch_apply` for the
rules):

- ``linear`` (convolutions and products with a constant factor, views, sums, concatenation,
  average pooling, eval-mode batch norm, ...): their own derivative;
- ``elementwise`` nonlinearities: the rescale rule ``m = Δy / Δu`` (the derivative at the
  midpoint where ``|Δu| < 1e-6``), two varying inputs (``maximum``, ``div``, ``pow``) by their
  Shapley split (:func:`._deeplift_rules.shapley_pair`);
- ``product`` s of two varying inputs (``mul``, ``bmm``, ``matmul``, ``addmm``, ``einsum``,
  ...): the Shapley split ``Δ(ab) = ½ Δa (b + b') + ½ (a + a') Δb``: gates ``x * sigmoid(g)``,
  LayerNorm's ``d * rsqrt(var)`` and ``d * d``, attention's ``QKᵀ`` and ``·V`` are exact;
- max ``pool`` ing and max/min reductions (``reduce_max``): shap's split of ``Δy`` routed to
  both argmaxes;
- ``softmax`` / log-softmax: the rules of :mod:`._deeplift_rules` (``"shapley"`` or
  ``"diagonal"``).

Each rule satisfies ``Δ(output) = Σ multiplier · Δ(input)`` exactly, so the attributions of the
whole graph sum to ``f(x) - f(r)``. An op outside the tables, a batch-statistics batch norm, or a
discrete value (a comparison, an argmax) that flows back into floats is ``crossed`` by its
ordinary derivative and recorded in :attr:`References.crossed` (node name -> op), which the
caller names in a warning.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.fx.node import map_arg
from torch.utils._pytree import tree_flatten

from . import _deeplift_rules as rules
from . import _deeplift_torch_ops as ops
from ._deeplift_torch_apply import READS_OUTPUT, Rules
from ._deeplift_torch_refs import last_uses
from ._torch_conv_grad import _pair, _qualifies, _ThinConv


class Pair:
    """A value that differs between the pair rows ``p`` (with autograd) and the reference rows
    ``r`` (no autograd; ``None`` where no rule reads it)."""

    __slots__ = ("p", "r")

    def __init__(self, p: Any, r: Any):
        self.p, self.r = p, r


def _pairs(v: Any) -> Any:
    """A reference-side value as Pairs ``(v, v)`` (tensors), tuples of them, or plain values."""
    if isinstance(v, torch.Tensor):
        return Pair(v, v)
    if isinstance(v, (tuple, list)):
        return type(v)(_pairs(a) for a in v)
    return v


def _pair_side(v: Any) -> Any:
    """A pass's value of an op: tensors become Pairs without their reference side."""
    if isinstance(v, torch.Tensor):
        return Pair(v, None)
    if isinstance(v, (tuple, list)):
        return type(v)(_pair_side(a) for a in v)
    return v


def _p(v: Any) -> Any:
    """The pair side of a value (Pairs, tuples of them, or plain values)."""
    if isinstance(v, Pair):
        return v.p
    if isinstance(v, (tuple, list)) and any(isinstance(a, (Pair, tuple, list)) for a in v):
        return type(v)(_p(a) for a in v)
    return v


def _r(v: Any) -> Any:
    """The reference side kept of a value: tensors, tuples of them, None elsewhere."""
    if isinstance(v, Pair):
        return v.r
    if isinstance(v, (tuple, list)):
        return tuple(_r(a) for a in v)
    return None


def _attach(v: Any, r: Any) -> None:
    """Set the reference side of the Pairs of ``v`` from ``r`` (same structure)."""
    if isinstance(v, Pair):
        v.r = r
    elif isinstance(v, (tuple, list)) and isinstance(r, tuple):
        for a, b in zip(v, r):
            _attach(a, b)


def _varying(v: Any) -> bool:
    if isinstance(v, Pair):
        return True
    return isinstance(v, (tuple, list)) and any(_varying(a) for a in v)


def _detach(t: Any) -> Any:
    return t.detach() if isinstance(t, torch.Tensor) else t


class Call:
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


@dataclass
class References:
    """The references' side of the passes of one chunk of references.

    ``kinds``: per graph node, how a pass evaluates it (``"const"``, ``"shape"``,
    ``"identity"``, ``"getitem"``, ``"linear"``, ``"crossed"``, ``"discrete"`` or a rule of
    :meth:`~._deeplift_torch_apply.Rules.table`); ``kept``: node index -> the references'
    value (tensor or tuple) of the nodes whose value a rule reads; ``rows``: the reference
    rows they were evaluated on; ``crossed``: node name -> op of the ops crossed by their
    derivative; ``graph``: the graph evaluated."""

    kinds: list
    kept: dict
    rows: int
    crossed: dict = field(default_factory=dict)
    graph: Any = None

    @property
    def nbytes(self) -> int:
        """Bytes of the kept values (distinct storages)."""
        seen: dict = {}
        for v in self.kept.values():
            for t in tree_flatten(v)[0]:
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    seen[st.data_ptr()] = st.nbytes()
        return sum(seen.values())


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
        self.index = {node: i for i, node in enumerate(self.nodes)}
        self.free_at = last_uses(self.nodes)
        self.rules = Rules(softmax).table()

    def _attr(self, node: Any) -> Any:
        target: Any = self.gm
        for part in node.target.split("."):
            target = getattr(target, part)
        return target

    # -- the references' side -------------------------------------------------------------
    def references(self, xr: torch.Tensor) -> References:
        """Evaluate on the reference rows ``xr`` (no autograd): every node's kind, and the
        values the rules of a pass read (their varying inputs', and their own output's for
        :data:`~._deeplift_torch_apply.READS_OUTPUT`)."""
        env: dict = {}
        refs = References([None] * len(self.nodes), {}, len(xr), graph=self.gm)
        with torch.no_grad():
            for i, node in enumerate(self.nodes):
                if node.op == "placeholder":
                    env[node] = Pair(xr, xr)
                elif node.op == "get_attr":
                    env[node] = self._attr(node)
                elif node.op == "call_function":
                    args = map_arg(node.args, env.__getitem__)
                    kwargs = map_arg(node.kwargs, env.__getitem__)
                    kind, env[node] = self._classify(node, args, kwargs, refs.crossed)
                    refs.kinds[i] = kind
                    if kind in self.rules:
                        for used in node.all_input_nodes:
                            j = self.index[used]
                            if j not in refs.kept and _varying(env[used]):
                                refs.kept[j] = _r(env[used])
                        if kind in READS_OUTPUT:
                            refs.kept[i] = _r(env[node])
                elif node.op != "output":  # pragma: no cover - make_fx graphs have no modules
                    raise NotImplementedError(f"DeepLIFT: graph node of kind {node.op!r}")
                for used in self.free_at[i]:
                    env.pop(used, None)
        return refs

    def _classify(self, node: Any, args: tuple, kwargs: dict, crossed: dict) -> tuple:
        """``(kind, value)`` of a node on the reference rows (values that vary as Pairs)."""
        op = node.target
        if op is operator.getitem:
            return "getitem", args[0][args[1]]
        call = Call(op, args, kwargs)
        if not call.vary:
            return "const", op(*args, **kwargs)
        name = ops.op_name(op)
        if name in ops.SHAPE_ONLY:
            return "shape", _detach(call.side("r"))
        if name in ops.IDENTITY and call.names <= {"self", "input"}:
            return "identity", args[0]
        value = call.side("r")
        if any(ops.is_discrete(call.leaves[i].p) for i in call.vary):
            # an integer/boolean Pair (a comparison, an argmax) is an input: no difference
            # flows through it; if the op returns floats it is crossed without a rule
            found = [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]
            if any(not ops.is_discrete(t) for t in found):
                crossed.setdefault(node.name, ops.full_name(op))
            return "discrete", _pairs(value)
        kind = self._rule(name, call)
        if kind is None:
            crossed.setdefault(node.name, ops.full_name(op))
            kind = "crossed"
        return kind, _pairs(value)

    @staticmethod
    def _rule(name: str, call: Call) -> str | None:
        names, count = call.names, len(call.vary)
        overload = getattr(call.op, "_overloadname", "")
        if name in ops.BATCH_NORMS and call.value("training"):
            return None
        allowed = ops.LINEAR.get(name, ())
        if name in ops.LINEAR and (allowed is ops.ALL or names <= allowed):
            return "linear"
        if name in ops.LINEAR_IN_SELF and names == {"self"} and call.value("rounding_mode") is None:
            return "linear"
        if name in ops.BILINEAR and names <= ops.BILINEAR[name]:
            if count <= ops.MAX_VARYING.get(name, 3):
                return "linear" if count == 1 else "product"
            return None
        if name in ops.REDUCE_MAX and overload == "other":  # max(a, b): elementwise
            return "elementwise" if count <= 2 else None
        if name in ops.ELEMENTWISE and count <= 2:
            return "elementwise"
        if names != {"self"}:
            return None
        if name in ops.POOLS:
            return "pool"
        if name in ops.REDUCE_MAX:
            return "reduce_max"
        if name in ops.SOFTMAX:
            return "softmax"
        return None

    # -- a pass -------------------------------------------------------------------------
    def run(self, xp: torch.Tensor, refs: References) -> Pair:
        """Evaluate on the pair rows ``xp`` (needing grad) against the references' side
        ``refs`` (of a graph with the same nodes); returns the output as a :class:`Pair`."""
        env: dict = {}
        out: Any = None
        kept = refs.kept
        for i, node in enumerate(self.nodes):
            if node.op == "placeholder":
                env[node] = Pair(xp, kept.get(i))
                continue
            if node.op == "get_attr":
                env[node] = self._attr(node)
            elif node.op == "call_function":
                value = self._node(node, refs.kinds[i], env, kept.get(i))
                if i in kept:
                    _attach(value, kept[i])
                env[node] = value
            elif node.op == "output":
                out = map_arg(node.args[0], env.__getitem__)
            for used in self.free_at[i]:
                env.pop(used, None)
        found = [v for v in tree_flatten(out)[0] if isinstance(v, Pair)]
        if not found:
            raise ValueError("DeepLIFT: the model's output does not depend on its input")
        return found[0]

    def _node(self, node: Any, kind: str, env: dict, out_r: Any) -> Any:
        op = node.target
        if kind == "getitem":
            args = map_arg(node.args, env.__getitem__)
            return args[0][args[1]]
        if kind == "identity":
            return env[node.args[0]]
        if kind == "const":
            with torch.no_grad():
                return op(
                    *map_arg(node.args, env.__getitem__), **map_arg(node.kwargs, env.__getitem__)
                )
        if kind in self.rules:
            args = map_arg(node.args, env.__getitem__)
            kwargs = map_arg(node.kwargs, env.__getitem__)
            return _pair_side(self.rules[kind](Call(op, args, kwargs), out_r))
        args = map_arg(node.args, lambda n: _p(env[n]))
        kwargs = map_arg(node.kwargs, lambda n: _p(env[n]))
        if kind == "shape":
            with torch.no_grad():
                return _detach(op(*args, **kwargs))
        # linear, crossed (by the derivative) and discrete: the op itself on the pair rows
        p = self._thin_conv(op, args) if op is torch.ops.aten.convolution.default else None
        return _pair_side(op(*args, **kwargs) if p is None else p)

    @staticmethod
    def _thin_conv(op: Any, args: tuple) -> Any:
        """The first convolution's faster input gradient (see :mod:`._torch_conv_grad`)."""
        x, weight, bias, stride, padding, dilation, transposed, _, groups = args
        if transposed or len(stride) != 2 or not _qualifies(x, weight, bias, padding, groups):
            return None
        geom = tuple(_pair(v) for v in (stride, padding, dilation))
        return _ThinConv.apply(x, weight, bias, geom)
