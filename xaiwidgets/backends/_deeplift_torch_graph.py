"""The aten graph of a torch model, as DeepLIFT walks it.

:func:`capture` traces ``fn(x)`` with :func:`torch.fx.experimental.proxy_tensor.make_fx`
(fake tensors, falling back to a real pass for data-dependent Python) under
:func:`torch.func.functionalize` (no in-place ops: ``relu_``, ``+=`` become their functional
forms), with scaled dot-product attention forced to its math kernel (so it arrives as
``bmm``/``_softmax``/``mul``) and the normalisation layers decomposed into primitives that have
DeepLIFT rules (:data:`DECOMPOSITIONS`):

- ``native_layer_norm``: ``d = x - mean(x)``, ``v = mean(d * d)``, ``d * rsqrt(v + eps) * w + b``;
- ``native_group_norm``: the same over ``(n, groups, -1)``;
- ``var`` / ``var_mean`` / ``std``: ``sum(d * d) / (N - correction)`` (``sqrt`` of it);
- ``log_sigmoid_forward``: ``-softplus(-x)``.

Everything else stays as traced (eval-mode batch norm is an affine op, activations such as
``gelu``, ``silu``, ``hardswish`` stay whole so the rescale rule sees them as one unit).
Graphs are cached per model, input shape/dtype/device and the identity of its parameters and
buffers (:class:`GraphCache`), so the cost of tracing (a fraction of a second to a few seconds
on ImageNet models) is paid once per shape.
"""

from __future__ import annotations

import inspect
import math
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import torch

aten = torch.ops.aten


def _reduced(x: torch.Tensor, dims: Any) -> list[int]:
    if dims is None:
        return list(range(x.dim()))
    if isinstance(dims, int):
        dims = [dims]
    return [d % max(x.dim(), 1) for d in dims]


def _count(x: torch.Tensor, dims: list[int]) -> int:
    return math.prod(int(x.shape[d]) for d in dims) if dims else 1


def _layer_norm(x: Any, shape: Any, weight: Any, bias: Any, eps: float) -> Any:
    dims = list(range(x.dim() - len(shape), x.dim()))
    mean = aten.mean.dim(x, dims, True)
    d = aten.sub.Tensor(x, mean)
    var = aten.mean.dim(aten.mul.Tensor(d, d), dims, True)
    rstd = aten.rsqrt.default(aten.add.Tensor(var, eps))
    out = aten.mul.Tensor(d, rstd)
    if weight is not None:
        out = aten.mul.Tensor(out, weight)
    if bias is not None:
        out = aten.add.Tensor(out, bias)
    return out, mean, rstd


def _group_norm(x: Any, weight: Any, bias: Any, n: Any, c: Any, hw: Any, group: int, eps: float):
    g = aten.view.default(x, [n, group, -1])
    mean = aten.mean.dim(g, [2], True)
    d = aten.sub.Tensor(g, mean)
    var = aten.mean.dim(aten.mul.Tensor(d, d), [2], True)
    rstd = aten.rsqrt.default(aten.add.Tensor(var, eps))
    out = aten.view.default(aten.mul.Tensor(d, rstd), list(x.shape))
    affine = [1, -1] + [1] * (x.dim() - 2)
    if weight is not None:
        out = aten.mul.Tensor(out, aten.view.default(weight, affine))
    if bias is not None:
        out = aten.add.Tensor(out, aten.view.default(bias, affine))
    return out, aten.view.default(mean, [n, group]), aten.view.default(rstd, [n, group])


def _var(x: Any, dim: Any = None, *, correction: Any = None, keepdim: bool = False) -> Any:
    dims = _reduced(x, dim)
    d = aten.sub.Tensor(x, aten.mean.dim(x, dims, True))
    total = aten.sum.dim_IntList(aten.mul.Tensor(d, d), dims, keepdim)
    corr = 1 if correction is None else correction
    return aten.div.Tensor(total, max(_count(x, dims) - corr, 0))


def _var_mean(x: Any, dim: Any = None, *, correction: Any = None, keepdim: bool = False):
    dims = _reduced(x, dim)
    return _var(x, dim, correction=correction, keepdim=keepdim), aten.mean.dim(x, dims, keepdim)


def _std(x: Any, dim: Any = None, *, correction: Any = None, keepdim: bool = False) -> Any:
    return aten.sqrt.default(_var(x, dim, correction=correction, keepdim=keepdim))


def _log_sigmoid(x: Any) -> Any:
    return aten.neg.default(aten.softplus.default(aten.neg.default(x))), x.new_empty((0,))


def _decompositions() -> dict:
    table = {
        aten.native_layer_norm.default: _layer_norm,
        aten.native_group_norm.default: _group_norm,
        aten.var.correction: _var,
        aten.var_mean.correction: _var_mean,
        aten.std.correction: _std,
        aten.log_sigmoid_forward.default: _log_sigmoid,
    }
    return table


#: The decompositions applied while tracing (aten overload -> Python function of aten ops).
DECOMPOSITIONS = _decompositions()


def _make_fx_options() -> dict:
    from torch.fx.experimental.proxy_tensor import make_fx

    accepted = inspect.signature(make_fx).parameters
    return {k: True for k in ("_allow_non_fake_inputs",) if k in accepted}


def _import_tracing() -> None:
    """Import ``make_fx``'s dependencies (it imports ``torch._inductor``, hence ``triton`` when
    installed). Importing ``triton`` after TensorFlow crashes the process (a native library
    conflict), so with TensorFlow loaded and ``triton`` not yet, torch is made to see no
    ``triton`` (it then runs without it, as on a CPU-only install)."""
    if "triton" in sys.modules or "tensorflow" not in sys.modules:
        import torch._inductor.config  # noqa: F401

        return
    sys.modules["triton"] = None  # type: ignore[assignment]  # import triton -> ImportError
    try:
        import torch._inductor.config  # noqa: F401
    finally:
        del sys.modules["triton"]


def capture(fn: Callable, example: torch.Tensor, *, stack_traces: bool = False) -> Any:
    """The functional aten graph (a ``torch.fx.GraphModule``) of ``fn`` at the shape of
    ``example``. ``stack_traces`` records each node's Python source (slower; used to name the
    layer of an op without a rule)."""
    _import_tracing()
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.nn.attention import SDPBackend, sdpa_kernel

    options = _make_fx_options()
    if stack_traces and "record_stack_traces" in inspect.signature(make_fx).parameters:
        options["record_stack_traces"] = True

    def call(x: torch.Tensor) -> Any:  # a plain one-argument function (not a bound method)
        return fn(x)

    functional = torch.func.functionalize(call, remove="mutations")
    example = example.detach().requires_grad_(True)  # grad on: no inference fast paths
    errors = []
    for mode in ("fake", "real"):
        try:
            with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):
                gm = make_fx(
                    functional, decomposition_table=DECOMPOSITIONS, tracing_mode=mode, **options
                )(example)
        except Exception as err:  # data-dependent Python: retry on real tensors
            errors.append(f"{mode}: {type(err).__name__}: {err}")
            continue
        gm.graph.eliminate_dead_code()
        return gm
    raise NotImplementedError(
        "DeepLIFT: cannot capture the model's aten graph with torch.fx make_fx "
        f"({'; '.join(errors)})"
    )


def source_of(node: Any) -> str:
    """Where a traced node comes from: the innermost frames of its stack trace outside torch."""
    trace = node.meta.get("stack_trace") or ""
    frames = [line.strip() for line in trace.splitlines() if line.strip().startswith("File ")]
    user = [f for f in frames if "/torch/" not in f]
    return user[-1] if user else (frames[-1] if frames else "")


def _identity(model: Any) -> tuple:
    """What invalidates a cached graph: the model's parameter and buffer objects."""
    if not hasattr(model, "named_parameters"):
        return ()
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return tuple((name, id(t), t.dtype, t.device) for name, t in tensors)


class GraphCache:
    """Traced graphs per owner (weakly held) and input signature (at most
    :attr:`MAX_SHAPES` per model: the chunk size and a shorter last chunk)."""

    MAX_SHAPES = 4

    def __init__(self) -> None:
        self._graphs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._plain: dict = {}
        self._lock = threading.Lock()  # widgets explain from worker threads

    def get(self, owner: Any, model: Any, fn: Callable, example: torch.Tensor) -> Any:
        """The graph of ``fn`` (which calls ``model``) at ``example``'s shape, traced once per
        ``owner`` (the backend) and signature."""
        key = (tuple(example.shape), example.dtype, example.device, _identity(model))
        with self._lock:
            return self._get(owner, key, fn, example)

    def _get(self, owner: Any, key: tuple, fn: Callable, example: torch.Tensor) -> Any:
        try:
            per_model = self._graphs.setdefault(owner, {})
        except TypeError:  # not weak-referenceable: keep graphs per id
            per_model = self._plain.setdefault(id(owner), {})
        if key not in per_model:
            while len(per_model) >= self.MAX_SHAPES:  # the oldest shape makes room
                per_model.pop(next(iter(per_model)))
            try:
                per_model[key] = capture(fn, example)
            except NotImplementedError as err:  # remembered: not traced again for this shape
                per_model[key] = err
        found = per_model[key]
        if isinstance(found, NotImplementedError):
            raise found
        return found


GRAPHS = GraphCache()
