"""DeepLIFT for torch models that cannot be traced to an aten graph: the eager fallback.

A model whose Python depends on tensor values (``if float(h.sum()) > 0``, ``.item()``) cannot
be captured by ``make_fx`` (:mod:`._deeplift_torch_graph`). For those,
:func:`._deeplift_torch.deeplift_torch` falls back to this module, which names the reason in
its report. The model runs once per pair batch under a
:class:`torch.overrides.TorchFunctionMode` that intercepts the nonlinear functions, whether a
module (``nn.ReLU``, ``nn.MaxPool2d``, ``nn.Softmax``, ...) or ``forward`` itself calls them
(``F.relu``, ``torch.sigmoid``, ``x.softmax(1)``, ...). Each returns its ordinary value through
a small ``autograd.Function`` whose backward applies the DeepLIFT multiplier instead of the
derivative; everything else keeps its own backward. Only elementwise activations, max pooling
and softmax have rules here: products of two varying tensors (gates, attention) and
normalisation layers are crossed by their derivative, which the completeness check reports.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .. import _arrays
from . import _deeplift_rules as rules
from ._deeplift_torch_autograd import OPS as _OPS
from ._deeplift_torch_autograd import Scale as _Scale
from ._deeplift_torch_autograd import Softmax as _Softmax
from ._deeplift_torch_autograd import attributions, input_multipliers
from ._torch_conv_grad import ThinConvInputGrad


class _MaxPool(torch.autograd.Function):
    """Value ``y``; backward: the max-pool rule (routed differences over ``Δu``)."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, y: torch.Tensor, parts: tuple) -> Any:
        ctx.parts = parts
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        w_x, w_r, idx_p, idx_r, u_shape = ctx.parts
        flat = idx_p.shape
        out = g.new_zeros(flat[:2] + (int(np.prod(u_shape[2:])),))
        out.scatter_add_(2, idx_p, g.reshape(flat) * w_x)
        out.scatter_add_(2, idx_r, g.reshape(flat) * w_r)
        return out.reshape(u_shape), None, None


def _elementwise_functions() -> set:
    """Elementwise nonlinearities handled by the rescale rule (function, method and
    ``torch.nn.functional`` spellings)."""
    names_f = (
        "relu",
        "relu6",
        "elu",
        "selu",
        "celu",
        "leaky_relu",
        "gelu",
        "silu",
        "mish",
        "softplus",
        "softsign",
        "hardtanh",
        "hardswish",
        "hardsigmoid",
        "logsigmoid",
        "sigmoid",
        "tanh",
        "threshold",
        "tanhshrink",
    )
    names_t = ("relu", "sigmoid", "tanh", "exp", "selu", "celu")
    found = {getattr(F, n) for n in names_f if hasattr(F, n)}
    found |= {getattr(torch, n) for n in names_t if hasattr(torch, n)}
    found |= {getattr(torch.Tensor, n) for n in names_t if hasattr(torch.Tensor, n)}
    found |= {torch.special.expit}
    return found


_ELEMENTWISE = _elementwise_functions()
_POOLS = {
    F.max_pool1d: (F.max_pool1d_with_indices, 6),
    F.max_pool2d: (F.max_pool2d_with_indices, 6),
    F.max_pool3d: (F.max_pool3d_with_indices, 6),
    torch.max_pool1d: (F.max_pool1d_with_indices, 6),
    torch.max_pool2d: (F.max_pool2d_with_indices, 6),
    torch.max_pool3d: (F.max_pool3d_with_indices, 6),
    F.max_pool1d_with_indices: (F.max_pool1d_with_indices, None),
    F.max_pool2d_with_indices: (F.max_pool2d_with_indices, None),
    F.max_pool3d_with_indices: (F.max_pool3d_with_indices, None),
    F.adaptive_max_pool1d: (F.adaptive_max_pool1d_with_indices, 2),
    F.adaptive_max_pool2d: (F.adaptive_max_pool2d_with_indices, 2),
    F.adaptive_max_pool3d: (F.adaptive_max_pool3d_with_indices, 2),
}
_SOFTMAX = {
    F.softmax: False,
    torch.softmax: False,
    torch.Tensor.softmax: False,
    F.log_softmax: True,
    torch.log_softmax: True,
    torch.Tensor.log_softmax: True,
}


_KINDS = {
    **{f: "elementwise" for f in _ELEMENTWISE},
    **{f: "pool" for f in _POOLS},
    **{f: "softmax" for f in _SOFTMAX},
}


def _unsupported_functions() -> set:
    """Nonlinear functions with no DeepLIFT rule here: differentiated as usual, with a
    warning when they meet an input-dependent tensor."""
    names = (
        "relu_",
        "clamp",
        "clip",
        "clamp_min",
        "clamp_max",
        "maximum",
        "minimum",
        "max",
        "amax",
        "min",
        "amin",
        "abs",
        "sqrt",
        "rsqrt",
        "pow",
        "log",
        "square",
        "sigmoid_",
        "tanh_",
        "exp_",
    )
    found = {getattr(torch, n) for n in names if hasattr(torch, n)}
    found |= {getattr(torch.Tensor, n) for n in names if hasattr(torch.Tensor, n)}
    found |= {getattr(F, n) for n in ("relu_", "elu_", "leaky_relu_", "hardtanh_") if hasattr(F, n)}
    return found


_UNSUPPORTED = _unsupported_functions()


class _Call:
    """One intercepted call, normalised: its kind, its input ``u`` and ``f(t)``, the plain
    call on another input ``t`` (with ``return_indices`` for max pooling)."""

    def __init__(self, kind: str, func: Any, args: tuple, kwargs: dict):
        self.kind, self.u = kind, args[0]
        rest = args[1:]
        if kind == "elementwise":
            if "inplace" in kwargs:
                kwargs["inplace"] = False
            self.f = lambda t: func(t, *rest, **kwargs)
        elif kind == "pool":
            with_indices, flag_pos = _POOLS[func]
            self.want_indices = flag_pos is None or bool(kwargs.pop("return_indices", False))
            if flag_pos is not None and len(rest) >= flag_pos:
                self.want_indices = bool(rest[flag_pos - 1])
                rest = rest[: flag_pos - 1]
            self.f = lambda t: with_indices(t, *rest, **kwargs)
        else:
            self.log = _SOFTMAX[func]
            u = self.u
            dim = kwargs.get("dim", rest[0] if rest else None)
            if dim is None:  # torch's legacy implicit dimension
                dim = 0 if u.dim() in (0, 1, 3) else 1
            self.dim = dim % max(u.dim(), 1)
            dtype = kwargs.get("dtype")
            op = torch.log_softmax if self.log else torch.softmax
            self.f = lambda t: op(t if dtype is None else t.to(dtype), self.dim)

    def plain(self) -> Any:
        """The ordinary result of the call."""
        out = self.f(self.u)
        if self.kind == "pool" and not self.want_indices:
            return out[0]
        return out


class _Recorder(TorchFunctionMode):
    """Pass over the references: records the input and value of every intercepted call."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, torch.Tensor, Any]] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = dict(kwargs or {})
        kind = _KINDS.get(func)
        if kind is None or not args or not isinstance(args[0], torch.Tensor):
            return func(*args, **kwargs)
        call = _Call(kind, func, args, kwargs)
        value = call.f(call.u)
        self.records.append((kind, call.u.detach(), value))
        if kind == "pool" and not call.want_indices:
            return value[0]
        return value


class _Replayer(TorchFunctionMode):
    """Pass over the pair rows: the ``t``-th intercepted call meets the ``t``-th record of the
    reference pass and returns its value through a DeepLIFT backward rule.

    Parameters
    ----------
    records : from :class:`_Recorder` (``b`` reference rows).
    pairs : rows of the pair batch, ``c * b``.
    softmax : the softmax rule, see :mod:`._deeplift_rules`.
    """

    def __init__(self, records: list, pairs: int, softmax: str):
        super().__init__()
        self.records, self.pairs, self.softmax = records, int(pairs), softmax
        self.count = 0
        self.warned: set = set()

    def _varies(self, t: Any) -> bool:
        return (
            isinstance(t, torch.Tensor)
            and t.requires_grad
            and t.dim() > 0
            and t.shape[0] == self.pairs
        )

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = dict(kwargs or {})
        kind = _KINDS.get(func)
        if kind is None or not args or not isinstance(args[0], torch.Tensor):
            if func in _UNSUPPORTED and func not in self.warned and args and self._varies(args[0]):
                self.warned.add(func)
                warnings.warn(
                    f"DeepLIFT: no rule for torch function {getattr(func, '__name__', func)!r}; "
                    "it is differentiated as usual (attributions may not sum to the output "
                    "difference)",
                    stacklevel=2,
                )
            return func(*args, **kwargs)
        call = _Call(kind, func, args, kwargs)
        if self.count >= len(self.records) or self.records[self.count][0] != kind:
            raise RuntimeError(_MISMATCH)
        rec_kind, u_ref, value_ref = self.records[self.count]
        self.count += 1
        u = call.u
        n_ref = u_ref.shape[0] if u_ref.dim() else 0
        if not (
            u.requires_grad
            and u.is_floating_point()
            and u.dim() > 0
            and u.shape[0] == self.pairs
            and n_ref
            and self.pairs % n_ref == 0
        ):
            return call.plain()
        if u.shape[1:] != u_ref.shape[1:]:
            raise RuntimeError(_MISMATCH)
        lead = (self.pairs // n_ref, n_ref)
        with torch.no_grad():
            if kind == "elementwise":
                fn, parts = self._elementwise(call, lead, u_ref, value_ref)
            elif kind == "pool":
                fn, parts = self._pool(call, lead, u_ref, value_ref)
            else:
                fn, parts = self._softmax(call, lead, u_ref, value_ref)
        out = fn.apply(call.u, *parts)
        return (out, call.indices) if kind == "pool" and call.want_indices else out

    def _elementwise(self, call: _Call, lead: tuple, u_ref: Any, y_ref: Any) -> Any:
        u = call.u.detach()
        y = call.f(u)
        m = rules.rescale(
            _OPS,
            call.f,
            u.view(lead + u.shape[1:]),
            u_ref[None],
            y.view(lead + y.shape[1:]),
            y_ref[None],
        )
        return _Scale, (y, m.reshape(u.shape))

    def _pool(self, call: _Call, lead: tuple, u_ref: Any, value_ref: Any) -> Any:
        u = call.u.detach()
        y, idx = call.f(u)
        call.indices = idx
        y_ref, idx_ref = value_ref
        to_x, to_r = rules.max_split(_OPS, y.view(lead + y.shape[1:]), y_ref[None])
        inv_du = rules.safe_div(
            _OPS, 1.0, u.view(lead + u.shape[1:]) - u_ref[None], rules.EPS_ROUTE, 0.0
        )
        flat = (self.pairs, idx.shape[1], -1)
        idx_p = idx.reshape(flat)
        idx_r = idx_ref[None].expand(lead + idx_ref.shape[1:]).reshape(flat)
        inv_du = inv_du.reshape(flat)  # multipliers = routed differences / Δu at the argmax
        w_x = to_x.reshape(idx_p.shape) * inv_du.gather(2, idx_p)
        w_r = to_r.reshape(idx_p.shape) * inv_du.gather(2, idx_r)
        return _MaxPool, (y, (w_x, w_r, idx_p, idx_r, tuple(u.shape)))

    def _softmax(self, call: _Call, lead: tuple, u_ref: Any, y_ref: Any) -> Any:
        dim = call.dim
        if dim == 0:
            raise ValueError("DeepLIFT: a softmax over the batch axis cannot be explained")
        u = call.u.detach()
        y = call.f(u)
        z = u.movedim(dim, -1)
        z_p = z.reshape(lead + z.shape[1:])
        z_r = u_ref.movedim(dim, -1)[None]
        if call.log:
            coef = rules.log_softmax_coefficients(_OPS, z_p, z_r)
        else:
            coef = rules.softmax_coefficients(_OPS, z_p, z_r, self.softmax)
        full = lead + z.shape[1:]
        coef = tuple(t.expand(full).reshape(z.shape) for t in coef)
        return _Softmax, (y, coef, (dim, self.softmax, call.log))


_MISMATCH = (
    "DeepLIFT: the model made different nonlinear calls for the references and for the "
    "images (data-dependent control flow?); the pair pass cannot be matched to the reference "
    "pass"
)


def deeplift_torch(
    backend: Any,
    x: np.ndarray,
    refs: np.ndarray,
    idx: np.ndarray,
    *,
    softmax: str = "shapley",
    images_per_pass: int = 1,
    progress: Callable[[float], Any] | None = None,
) -> np.ndarray:
    """DeepLIFT rescale attributions of ``x`` averaged over ``refs`` (DeepSHAP).

    One no-grad forward pass over the references records the inputs of every nonlinearity;
    then per chunk of ``images_per_pass`` images one forward pass over the pair rows (each
    image repeated once per reference) replays them with DeepLIFT backward rules, and one
    backward pass per requested output gives the multipliers of the input; attributions are
    ``mean_k m_ik * (x_i - r_k)``. The inputs are checked by the caller
    (:func:`._deeplift_torch.deeplift_torch`): float32 NHWC ``x`` ``(n, h, w, c)`` and
    ``refs`` ``(b, h, w, c)``, ``idx`` ``(n, o)``. ``progress(fraction)`` is called before
    every pass (it may raise to stop the run).

    Returns
    -------
    ``(n, h, w, c, o)`` float32; ``values[i, ..., j].sum() == f(x_i)[outputs[i, j]] -
    mean_k f(baselines_k)[outputs[i, j]]`` when only these rules' ops are nonlinear.
    """
    n = len(x)
    res = np.empty(x.shape + (idx.shape[1],), np.float32)
    with backend.eval_mode():
        rt = backend.to_framework(refs)
        recorder = _Recorder()
        with torch.no_grad(), recorder:
            backend._call(rt)
        for s in _arrays.batches(n, images_per_pass):
            if progress is not None:
                progress(s.start / n)
            xt = backend.to_framework(x[s])
            attr = _attribute(backend, xt, rt, idx[s], recorder.records, softmax)
            res[s] = np.moveaxis(backend.from_framework_grad(attr), 0, -1)
    return res


def _attribute(
    backend: Any, xt: torch.Tensor, rt: torch.Tensor, idx: np.ndarray, records: list, softmax: str
) -> torch.Tensor:
    """``(o, c, ...)`` attributions of the images ``xt`` (model layout), one pair pass."""
    n_ref = len(rt)
    with torch.enable_grad():
        inp = xt.repeat_interleave(n_ref, 0).requires_grad_(True)
        replayer = _Replayer(records, len(xt) * n_ref, softmax)
        with ThinConvInputGrad(), replayer:
            out = backend._call(inp)
        if replayer.count != len(records):
            raise RuntimeError(_MISMATCH)
        grads = input_multipliers(out, inp, idx, n_ref)
    return attributions(grads, xt, rt)
