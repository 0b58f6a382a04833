"""DeepLIFT (rescale rule) / DeepSHAP for PyTorch models, over the model's aten graph.

The model is traced once per input shape to a functional aten graph
(:mod:`._deeplift_torch_graph`: ``make_fx``, attention on its math kernel, layer/group norm and
variance decomposed into primitives). Per chunk of references the interpreter
(:mod:`._deeplift_torch_interp`) evaluates the graph traced at the references' rows once and
keeps the values the rules read (kept for the next chunks of images while the memory budget
allows); per pass it evaluates the graph on the pair rows (each image of a chunk repeated once
per reference) against those values tiled to its rows (:mod:`._deeplift_torch_refs`: where
that layout does not hold, the references tiled to the pair rows are evaluated instead),
giving every op its DeepLIFT rule (linear ops their derivative, elementwise nonlinearities the rescale rule, products of two
varying inputs their Shapley split, max pooling shap's max rule, softmax the rules of
:mod:`._deeplift_rules`); one backward pass per requested output gives the multipliers of the
input. Completeness ``sum(phi) = f(x) - mean_r f(r)`` then holds op by op, through residuals,
normalisation, gates and attention.

An op with no rule is crossed by its derivative and named (op, graph node and the model's
source line) in a warning, and in the list ``fallbacks`` when the caller passes one.

Imported only by :meth:`TorchBackend.deeplift <xaiwidgets.backends.torch_backend.TorchBackend>`
and :class:`~xaiwidgets.explainers.DeepExplainer`.
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import _deeplift_rules as rules
from ._deeplift_passes import Passes
from ._deeplift_torch_autograd import attributions, input_multipliers
from ._deeplift_torch_graph import GRAPHS, capture, source_of
from ._deeplift_torch_interp import Interpreter, References
from ._deeplift_torch_refs import tiling_holds


def deeplift_torch(
    backend: Any,
    x: Any,
    baselines: Any,
    outputs: Any,
    *,
    softmax: str = "shapley",
    max_rows: int | None = None,
    fallbacks: list | None = None,
    progress: Callable[[float], Any] | None = None,
) -> np.ndarray:
    """DeepLIFT rescale attributions of ``x`` averaged over ``baselines`` (DeepSHAP).

    Parameters
    ----------
    backend : TorchBackend
        Uses ``model``, ``_call``, ``to_framework``, ``from_framework_grad``, ``eval_mode``,
        ``batch_size``, ``row_bytes`` and ``memory_budget``.
    x : float32 ``(n, h, w, c)`` images; baselines : float32 ``(b, h, w, c)`` references.
    outputs : ``(o,)`` or ``(n, o)`` class indices.
    softmax : ``"shapley"`` (default) or ``"diagonal"`` (shap's PyTorch rule).
    max_rows : pair rows per pass. Default: ``max(backend.batch_size, b)``, lowered so that a
        pass keeps ``ROW_COPIES`` x the model's activations per row within
        ``backend.memory_budget`` (:func:`~._deeplift_rules.plan_passes`; the references are
        split into equal chunks when one image's ``b`` rows do not fit, and the attributions
        are the chunks' weighted mean), and to passes of about half a second
        (:class:`~._deeplift_passes.Passes`: timed from a plain forward pass, then from the
        passes themselves). Given: at most ``max_rows`` rows, no budget, no timing.
    fallbacks : a list to which a description of every op crossed without a DeepLIFT rule is
        appended (then no warning is given: the caller reports them); ``None``: warn.
    progress : ``progress(fraction)`` is called before every pass with the fraction of pair
        rows done, and before each of its backward passes (one per output) with the part of
        the pass done added; it may raise (a cancelled run stops there).

    Returns
    -------
    ``(n, h, w, c, o)`` float32; ``values[i, ..., j].sum() == f(x_i)[outputs[i, j]] -
    mean_k f(baselines_k)[outputs[i, j]]`` (to float32 rounding) when every op has a rule.
    """
    x, refs, idx = rules.prepare_inputs(x, baselines, outputs, softmax)
    n, n_ref = len(x), len(refs)
    row_bytes = None if max_rows else backend.row_bytes(x.shape[1:])
    rows = max_rows or max(backend.batch_size, n_ref)
    plan = Passes(backend, n, refs, idx.shape[1], rows, row_bytes, paced=max_rows is None)
    first = plan.first()
    res = np.empty(x.shape + (idx.shape[1],), np.float32)
    crossed: dict[str, str] = {}
    with backend.eval_mode():
        rt = backend.to_framework(refs)
        try:  # trace (or find) the graph of the first pass's shape
            inp, _ = _rows(backend.to_framework(x[first[0]]), rt[first[1]])
            GRAPHS.get(backend, backend.model, backend._call, inp)
            del inp
        except NotImplementedError as err:
            return _eager(backend, x, refs, idx, softmax, plan.images, fallbacks, err, progress)
        sides = _ReferenceSides(backend, softmax, rt, plan, row_bytes)
        for s in plan.image_chunks():
            xt = backend.to_framework(x[s])
            acc = None
            for r in plan.reference_chunks():
                if progress is not None:
                    progress(plan.fraction)
                # and between the pass's backward passes (one per output): a cancel is seen
                # within one backward pass of a pass that cannot be smaller (one pair row)
                within = None if progress is None else _between(plan, progress, idx.shape[1])
                inp = xt.repeat_interleave(r.stop - r.start, 0)
                graph = GRAPHS.get(backend, backend.model, backend._call, inp)  # once per shape
                side = sides.get(r, graph, len(xt))
                crossed.update(side.crossed)
                attr, seconds = _attribute(graph, inp, xt, rt[r], side, idx[s], softmax, within)
                plan.took(seconds)  # a slow pass (a large model on a CPU) shrinks the next
                if r.stop - r.start < n_ref:
                    attr = attr.double().mul_((r.stop - r.start) / n_ref)
                acc = attr if acc is None else acc.add_(attr.to(acc.dtype))
            res[s] = np.moveaxis(backend.from_framework_grad(acc.float()), 0, -1)
        if crossed:
            found = _describe(backend, crossed, x[first[0]], rt[first[1]])
    if crossed:
        if fallbacks is None:
            warnings.warn(
                "DeepLIFT: no rule for " + "; ".join(found) + ". These ops are crossed by their "
                "derivative, so the attributions may not sum to f(x) - f(reference)",
                stacklevel=2,
            )
        else:
            fallbacks.extend(found)
    return res


def _eager(
    backend: Any,
    x: np.ndarray,
    refs: np.ndarray,
    idx: np.ndarray,
    softmax: str,
    per_pass: int,
    fallbacks: list | None,
    err: Exception,
    progress: Callable[[float], Any] | None,
) -> np.ndarray:
    """The model cannot be traced: DeepLIFT by intercepting its torch functions
    (:mod:`._deeplift_torch_eager`), with the reason reported."""
    from ._deeplift_torch_eager import deeplift_torch as eager

    reason = (
        f"the whole model (not traceable to an aten graph: {str(err).splitlines()[0][:200]}; "
        "eager rules for "
        "activations, max pooling and softmax only)"
    )
    if fallbacks is None:
        warnings.warn(f"DeepLIFT: no graph rules for {reason}", stacklevel=3)
    else:
        fallbacks.append(reason)
    return eager(
        backend, x, refs, idx, softmax=softmax, images_per_pass=per_pass, progress=progress
    )


def _rows(xt: torch.Tensor, rt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair rows (image ``i`` with reference ``k`` at row ``i * b + k``) and the references
    tiled to the same rows."""
    c = len(xt)
    inp = xt.repeat_interleave(len(rt), 0)
    return inp, rt.repeat((c,) + (1,) * (rt.dim() - 1))


def _between(plan: Passes, progress: Callable[[float], Any], o: int) -> Callable[[int], Any]:
    """``before(j)`` for :func:`input_multipliers`: progress within the current pass (its
    forward pass and ``j`` of its ``o`` backward passes done)."""
    return lambda j: progress(plan.within((j + 1) / (o + 1)))


def _attribute(
    graph: Any,
    inp: torch.Tensor,
    xt: torch.Tensor,
    rt: torch.Tensor,
    side: References,
    idx: np.ndarray,
    softmax: str,
    before: Callable[[int], Any] | None = None,
) -> tuple[torch.Tensor, float]:
    """``(o, c, ...)`` attributions of the images ``xt`` (model layout) against the
    references ``rt``, one pass over the pair rows ``inp`` (``graph`` traced at their shape)
    with the references' side ``side``, and the seconds it took; ``before(j)`` is called
    before the backward pass of output ``j``."""
    began = time.perf_counter()
    with torch.enable_grad():
        inp = inp.detach().requires_grad_(True)
        out = Interpreter(graph, softmax).run(inp, side).p
        grads = input_multipliers(out, inp, idx, len(rt), before)
    del out, inp
    values = attributions(grads, xt, rt)
    return values, time.perf_counter() - began


class _ReferenceSides:
    """The references' side of each chunk of references (:meth:`Interpreter.references
    <._deeplift_torch_interp.Interpreter.references>`), evaluated on the chunk's own rows
    by the graph traced at them and tiled to each pass's pair rows where that layout holds
    (:func:`~._deeplift_torch_refs.tiling_holds`), else evaluated by the pair graph on the
    references tiled to its rows. Kept for the next chunks of images while all chunks' sides
    fit in the memory budget beside the passes (``rows x ROW_COPIES x row_bytes``)."""

    def __init__(self, backend: Any, softmax: str, rt: torch.Tensor, plan: Passes, row_bytes):
        self.backend, self.softmax, self.rt = backend, softmax, rt
        budget = getattr(backend, "memory_budget", None) or rules.MEMORY_BUDGET
        passes = plan.images * plan.refs_per * rules.ROW_COPIES * (row_bytes or 0)
        self.room = max(0, int(budget) - passes)
        self.known: dict = {}

    def get(self, r: slice, graph: Any, m: int) -> References:
        """The side of references ``r`` for a pass of ``m`` images over ``graph``."""
        rt = self.rt[r]
        side = self._side((r.start, r.stop), rt, None)
        if side is not None and tiling_holds(graph, side.graph, set(side.kept), rt, m):
            return side
        tiled = rt.repeat((m,) + (1,) * (rt.dim() - 1))
        return self._side((r.start, r.stop, m), tiled, graph)

    def _side(self, key: tuple, rows: torch.Tensor, graph: Any) -> References | None:
        if key in self.known:
            return self.known[key]
        if graph is None:
            try:  # the graph at the reference rows (traced once per shape)
                graph = GRAPHS.get(self.backend, self.backend.model, self.backend._call, rows)
            except NotImplementedError:
                return None
        side = Interpreter(graph, self.softmax).references(rows)
        size = side.nbytes
        if size <= self.room:
            self.known[key] = side
            self.room -= size
        return side


_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _describe(backend: Any, crossed: dict, x: np.ndarray, rt: torch.Tensor) -> list[str]:
    """``"aten.cumprod (node cumprod, File "net.py", line 21, in forward)"`` per crossed op:
    the graph is traced once more with stack traces to find the model's source line (once
    per backend and shape)."""
    inp, _ = _rows(backend.to_framework(x), rt)
    key = (tuple(inp.shape), inp.dtype)
    known = _SOURCES.setdefault(backend, {})
    if key not in known:
        try:
            gm = capture(backend._call, inp, stack_traces=True)
            known[key] = {node.name: source_of(node) for node in gm.graph.nodes}
        except NotImplementedError:  # pragma: no cover - it traced a moment ago
            known[key] = {}
    where = known[key]
    return [
        f"{op} (node {name}" + (f", {where[name]})" if where.get(name) else ")")
        for name, op in crossed.items()
    ]
