"""The references' side of a torch DeepLIFT pass, evaluated once per chunk of references.

A pass holds ``m`` images x ``R`` references as ``m R`` pair rows (image ``i`` with reference
``k`` at row ``i R + k``). The references' side of those rows is the references tiled ``m``
times, so every value it takes is the tiling of the value the model takes on the ``R``
references alone. The interpreter (:meth:`~._deeplift_torch_interp.Interpreter.references`)
evaluates the model's graph traced at ``R`` rows once per chunk of references and keeps the
values the DeepLIFT rules read; a pass reads them through :func:`tile`, which lays a value
of ``R`` rows out like the pair side's value: along the one axis where the two shapes differ
(``m R`` against ``R``), image-major:

    tile(r)[..., i R + k, ...] = r[..., k, ...]

That layout holds when the batch axis of the model's values stays outermost wherever it is
merged with other axes (a batch of heads ``(n heads, L, d)``, a flattened ``(n L, d)``); a
model that merges it inside another axis (``(L n, d)``, as sequence-first attention does
before its projections) breaks it for those values. So the tiling is checked once per pair
graph and reference graph (:func:`tiling_holds`): both graphs are evaluated on the same
random references (the pair graph on them tiled) and every value a rule reads must be the
tiling of the reference graph's. Where it is not (or the two graphs differ in structure), the
references' side is evaluated by the pair graph on the tiled references instead, as many rows
as the pair side (the cost the tiling saves).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch.fx.node import map_arg

#: Largest relative difference between a value of the pair graph and the tiling of the
#: reference graph's (batch sizes round differently) for :func:`tiling_holds`.
TILING_TOLERANCE = 1e-3


def tile(r: Any, like: torch.Tensor) -> torch.Tensor:
    """``r`` (a value of the reference rows) laid out like ``like`` (the pair rows' value):
    itself when the shapes agree, else repeated image-major along the one axis where they
    differ. Raises ValueError when the shapes admit no such tiling."""
    if r is None:
        raise ValueError("DeepLIFT: no reference value kept for this node")
    if r.shape == like.shape:
        return r
    axis = _tiled_axis(tuple(r.shape), tuple(like.shape))
    if axis is None:
        raise ValueError(
            f"DeepLIFT: cannot tile a reference value {tuple(r.shape)} to {tuple(like.shape)}"
        )
    m = like.shape[axis] // r.shape[axis]
    grown = r.unsqueeze(axis).expand(r.shape[:axis] + (m,) + r.shape[axis:])
    return grown.reshape(like.shape)


def split(p: torch.Tensor, r: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``p`` and ``r`` as two tensors that broadcast like ``p`` against ``tile(r, p)``
    without copying ``r`` ``m`` times: the tiled axis of ``p`` split into ``(m, R)`` (a view
    where ``p``'s strides allow) and ``r`` given a length-one axis there. Arithmetic on them
    gives the split shape; ``.reshape(p.shape)`` lays the result out like ``p``."""
    if r is None:
        raise ValueError("DeepLIFT: no reference value kept for this node")
    if r.shape == p.shape:
        return p, r
    axis = _tiled_axis(tuple(r.shape), tuple(p.shape))
    if axis is None:
        raise ValueError(
            f"DeepLIFT: cannot tile a reference value {tuple(r.shape)} to {tuple(p.shape)}"
        )
    m = p.shape[axis] // r.shape[axis]
    return p.reshape(p.shape[:axis] + (m,) + r.shape[axis:]), r.unsqueeze(axis)


def _tiled_axis(r: tuple, p: tuple) -> int | None:
    """The axis along which ``p`` is ``r`` tiled a whole number of times, or None."""
    if len(r) != len(p):
        return None
    differ = [d for d in range(len(r)) if r[d] != p[d]]
    if len(differ) != 1:
        return None
    d = differ[0]
    return d if r[d] > 0 and p[d] % r[d] == 0 else None


def _leaves(v: Any) -> list:
    if isinstance(v, (tuple, list)):
        return [t for item in v for t in _leaves(item)]
    return [v] if isinstance(v, torch.Tensor) else []


def _tiles_to(r: Any, p: Any) -> bool:
    """Whether ``p`` (pair graph) is ``tile(r)`` (reference graph), to rounding."""
    rs, ps = _leaves(r), _leaves(p)
    if len(rs) != len(ps):
        return False
    for a, b in zip(rs, ps):
        try:
            t = tile(a, b)
        except ValueError:
            return False
        if not (a.is_floating_point() and b.is_floating_point()):
            continue  # indices (argmax of a pooling window): near ties may round either way
        scale = float(b.abs().max()) if b.numel() else 0.0
        if not torch.isfinite(t).equal(torch.isfinite(b)):
            return False
        diff = (t - b).nan_to_num(0.0, 0.0, 0.0).abs()
        if diff.numel() and float(diff.max()) > TILING_TOLERANCE * max(scale, 1e-12):
            return False
    return True


def plain_values(gm: Any, x: torch.Tensor) -> Iterator[tuple[int, Any]]:
    """``(index, value)`` of every node of the graph ``gm`` run on ``x``, each value freed
    after its last use (the caller turns autograd off: a generator suspended inside
    ``torch.no_grad()`` would leave it off for its caller)."""
    nodes = list(gm.graph.nodes)
    free_at = last_uses(nodes)
    env: dict = {}
    for i, node in enumerate(nodes):
        if node.op == "placeholder":
            env[node] = x
        elif node.op == "get_attr":
            target: Any = gm
            for part in node.target.split("."):
                target = getattr(target, part)
            env[node] = target
        elif node.op == "call_function":
            args = map_arg(node.args, env.__getitem__)
            kwargs = map_arg(node.kwargs, env.__getitem__)
            env[node] = node.target(*args, **kwargs)
        else:
            continue
        yield i, env[node]
        for used in free_at[i]:
            env.pop(used, None)


def last_uses(nodes: list) -> list[list]:
    """Per node index, the nodes whose last use it is (to be freed after it)."""
    last: dict = {}
    for i, node in enumerate(nodes):
        for used in node.all_input_nodes:
            last[used] = i
    free_at: list[list] = [[] for _ in nodes]
    for node, i in last.items():
        free_at[i].append(node)
    return free_at


def same_structure(a: Any, b: Any) -> bool:
    """Whether two traced graphs have the same nodes (kinds and ops) in the same order."""
    na, nb = list(a.graph.nodes), list(b.graph.nodes)
    return len(na) == len(nb) and all(
        x.op == y.op and (x.op != "call_function" or x.target == y.target) for x, y in zip(na, nb)
    )


#: pair graph -> {reference graph: whether the tiling holds}
_CHECKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tiling_holds(pair_gm: Any, ref_gm: Any, read: set[int], example: torch.Tensor, m: int) -> bool:
    """Whether the values of nodes ``read`` of ``pair_gm`` (traced at ``m`` times the rows of
    ``ref_gm``) are the tiling of ``ref_gm``'s, both run on random inputs of the shape, dtype
    and device of ``example`` (the references; tiled ``m`` times for ``pair_gm``): checked once
    per pair of graphs."""
    if pair_gm is ref_gm:
        return True
    try:
        known = _CHECKED.setdefault(pair_gm, weakref.WeakKeyDictionary())
    except TypeError:  # pragma: no cover - graph modules are weak-referenceable
        known = {}
    if ref_gm in known:
        return known[ref_gm]
    holds = same_structure(pair_gm, ref_gm)
    if holds:
        gen = torch.Generator(device="cpu").manual_seed(0)
        z = torch.rand(example.shape, generator=gen, dtype=torch.float32)
        z = z.to(device=example.device, dtype=example.dtype)
        tiled = z.repeat((m,) + (1,) * (z.dim() - 1))
        try:
            with torch.no_grad():
                holds = _all_tile(plain_values(ref_gm, z), plain_values(pair_gm, tiled), read)
        except Exception:  # noqa: BLE001 - any failure: evaluate the references tiled
            holds = False
    known[ref_gm] = holds
    return holds


def _all_tile(refs: Iterator, pairs: Iterator, read: set[int]) -> bool:
    """Whether every value ``read`` of ``pairs`` is the tiling of the same node's in ``refs``."""
    for (i, r), (_, p) in zip(refs, pairs):
        if i in read and not _tiles_to(r, p):
            return False
    return True
