"""DeepLIFT (rescale rule) / DeepSHAP for PyTorch models, over the model's aten graph.

The model is traced once per input shape to a functional aten graph
(:mod:`._deeplift_torch_graph`: ``make_fx``, attention on its math kernel, layer/group norm and
variance decomposed into primitives). Per chunk of images the interpreter
(:mod:`._deeplift_torch_interp`) evaluates that graph on the pair rows (each image repeated
once per reference) and on the references tiled to the same rows, giving every op its DeepLIFT
rule (linear ops their derivative, elementwise nonlinearities the rescale rule, products of two
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

import warnings
import weakref
from typing import Any

import numpy as np
import torch

from .. import _arrays
from . import _deeplift_rules as rules
from ._deeplift_torch_graph import GRAPHS, capture, source_of
from ._deeplift_torch_interp import Interpreter


def deeplift_torch(
    backend: Any,
    x: Any,
    baselines: Any,
    outputs: Any,
    *,
    softmax: str = "shapley",
    max_rows: int | None = None,
    fallbacks: list | None = None,
) -> np.ndarray:
    """DeepLIFT rescale attributions of ``x`` averaged over ``baselines`` (DeepSHAP).

    Parameters
    ----------
    backend : TorchBackend
        Uses ``model``, ``_call``, ``to_framework``, ``from_framework_grad``, ``eval_mode`` and
        ``batch_size``.
    x : float32 ``(n, h, w, c)`` images; baselines : float32 ``(b, h, w, c)`` references.
    outputs : ``(o,)`` or ``(n, o)`` class indices.
    softmax : ``"shapley"`` (default) or ``"diagonal"`` (shap's PyTorch rule).
    max_rows : pair rows per pass (default ``max(backend.batch_size, b)``): each pass holds
        ``max(1, max_rows // b)`` images.
    fallbacks : a list to which a description of every op crossed without a DeepLIFT rule is
        appended (then no warning is given: the caller reports them); ``None``: warn.

    Returns
    -------
    ``(n, h, w, c, o)`` float32; ``values[i, ..., j].sum() == f(x_i)[outputs[i, j]] -
    mean_k f(baselines_k)[outputs[i, j]]`` (to float32 rounding) when every op has a rule.
    """
    x, refs, idx = rules.prepare_inputs(x, baselines, outputs, softmax)
    n, n_ref = len(x), len(refs)
    per_pass = rules.images_per_pass(n_ref, max_rows or max(backend.batch_size, n_ref))
    res = np.empty(x.shape + (idx.shape[1],), np.float32)
    crossed: dict[str, str] = {}
    with backend.eval_mode():
        rt = backend.to_framework(refs)
        try:  # trace (or find) the graph of the first pass's shape
            inp, _ = _rows(backend.to_framework(x[: min(per_pass, n)]), rt)
            GRAPHS.get(backend, backend.model, backend._call, inp)
        except NotImplementedError as err:
            return _eager(backend, x, refs, idx, softmax, max_rows, fallbacks, err)
        for s in _arrays.batches(n, per_pass):
            xt = backend.to_framework(x[s])
            attr = _attribute(backend, xt, rt, idx[s], softmax, crossed)
            res[s] = np.moveaxis(backend.from_framework_grad(attr), 0, -1)
        if crossed:
            found = _describe(backend, crossed, x[: min(per_pass, n)], rt)
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
    max_rows: int | None,
    fallbacks: list | None,
    err: Exception,
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
    return eager(backend, x, refs, idx, softmax=softmax, max_rows=max_rows)


def _rows(xt: torch.Tensor, rt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair rows (image ``i`` with reference ``k`` at row ``i * b + k``) and the references
    tiled to the same rows."""
    c = len(xt)
    inp = xt.repeat_interleave(len(rt), 0)
    return inp, rt.repeat((c,) + (1,) * (rt.dim() - 1))


def _attribute(
    backend: Any, xt: torch.Tensor, rt: torch.Tensor, idx: np.ndarray, softmax: str, crossed: dict
) -> torch.Tensor:
    """``(o, c, ...)`` attributions of the images ``xt`` (model layout), one pass."""
    c, n_ref = len(xt), len(rt)
    inp, ref = _rows(xt, rt)
    interp = Interpreter(GRAPHS.get(backend, backend.model, backend._call, inp), softmax)
    with torch.enable_grad():
        inp.requires_grad_(True)
        out = interp.run(inp, ref).p
        crossed.update(interp.crossed)
        o = idx.shape[1]
        cot = torch.zeros((o,) + tuple(out.shape), dtype=out.dtype, device=out.device)
        cols = torch.from_numpy(np.repeat(idx, n_ref, axis=0).T.copy()).to(out.device)
        cot.scatter_(2, cols[:, :, None], 1.0)
        grads = torch.stack(
            [torch.autograd.grad(out, inp, cot[j], retain_graph=j < o - 1)[0] for j in range(o)]
        )
    delta = (inp - ref).detach()
    return (grads * delta).reshape((o, c, n_ref) + tuple(xt.shape[1:])).mean(2)


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
