"""`TorchBackend`: a PyTorch ``nn.Module`` behind the backend protocol.

Imported lazily by :func:`xaiwidgets.backends.wrap`; importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np

from .._arrays import as_image_batch, batches
from ._layout import (
    as_nhwc_float32,
    check_cotangent,
    nchw_to_nhwc,
    nhwc_to_nchw,
    one_hot_stack,
)
from .base import BaseBackend, check_finite, checked_vjp, output_matrix

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "TorchBackend needs PyTorch; install it with: pip install 'xaiwidgets[torch]'"
    ) from exc

from ._array_ops import FlatOutputs  # noqa: E402
from ._array_ops_torch import ARRAY_OPS  # noqa: E402
from ._torch_conv_grad import ThinConvInputGrad  # noqa: E402 (needs torch)
from ._torch_model import model_eval_mode, module_device, module_dtype, output_tensor  # noqa: E402


def _c_strides(x: np.ndarray) -> tuple[int, ...]:
    """The strides of a fresh C-ordered array of ``x``'s shape and dtype."""
    return tuple(int(x.itemsize * np.prod(x.shape[i + 1 :])) for i in range(x.ndim))


class TorchBackend(BaseBackend):
    """A PyTorch model (any ``nn.Module``, or a function of torch tensors).

    Forward passes run in eval mode (Dropout off, BatchNorm on its running statistics) under
    ``torch.no_grad()``, on the model's device, in batches of ``batch_size``; every module's
    train/eval flag is restored afterwards, also when the model raises. Gradients come from
    autograd with the parameters frozen (no weight gradients) and the thin first convolution's
    faster input gradient (:mod:`._torch_conv_grad`): :meth:`grad` takes all requested outputs
    of a batch from one forward pass and one backward pass per output (graph retained; on CPU
    this is about twice as fast as a ``torch.func.vmap`` over the one-hot cotangents). A
    framework out-of-memory error is raised as :class:`MemoryError` pointing to
    ``batch_size=``.

    Parameters
    ----------
    model : torch.nn.Module or callable
        ``model(x) -> (n, k)`` class scores (logits or probabilities). A tuple/list output uses
        its first entry; a dict or output object its ``logits``.
    batch_size : int or None
        Images per forward pass, also for :meth:`vjp` and :meth:`grad`. Default ``None``: from
        ``memory_budget`` and the bytes autograd saves per image (measured once per image shape
        on a one- and a two-image forward pass, :meth:`_measure_row_bytes`).
    memory_budget : int or None
        Working memory in bytes (default 1 GiB); see :class:`~.base.BaseBackend`.
    channels_first : bool
        ``True`` (default): the model takes NCHW tensors, converted from the NHWC images of the
        API. ``False``: the model takes NHWC tensors.
    device : str or torch.device, optional
        Where inputs are sent; default the device of the model's first parameter (CPU for a
        parameterless model).

    Attributes (stable, used by the DeepLIFT module and explainers' fast paths)
    ----------
    model : the wrapped module.
    device : torch.device inputs go to.
    dtype : torch.dtype inputs are cast to (the model's floating dtype, float32 by default).
    channels_first : bool, the model's layout.
    to_framework(x) : NHWC NumPy → tensor in the model's layout, on ``device``, in ``dtype``.
    from_framework_grad(t) : tensor ``(..., c, h, w)`` (or ``(..., h, w, c)``) → NumPy NHWC
        float32.
    eval_mode() : context manager forcing eval mode and restoring every module's flag.
    native_vjp(xt, cot) : autograd VJP on tensors (see there).
    vjp_accepts_callable : ``True``: :meth:`vjp` takes a callable cotangent.
    _call(xt) : the model on a tensor, returning the ``(n, k)`` score tensor (output forms
        unpacked, shape checked); the DeepLIFT module runs the model through it.
    """

    framework = "torch"
    #: :meth:`layer` takes a callable ``outputs`` (chosen from its own forward pass)
    layer_chooses_outputs = True

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        channels_first: bool = True,
        device: Any = None,
    ):
        if not callable(model):
            raise TypeError(
                f"TorchBackend: expected a torch.nn.Module or a function of torch tensors, got "
                f"{type(model).__module__}.{type(model).__name__}"
            )
        super().__init__(batch_size=batch_size, memory_budget=memory_budget)
        self.model = model
        self.channels_first = bool(channels_first)
        self.device = torch.device(device) if device is not None else module_device(model)
        self.dtype = module_dtype(model)

    # -- layout ------------------------------------------------------------------
    def to_framework(self, x: Any) -> torch.Tensor:
        """NHWC images (NumPy) → a tensor in the model's layout on its device and dtype."""
        arr = as_nhwc_float32(x)
        if self.channels_first:
            arr = nhwc_to_nchw(arr)
        elif not arr.flags.writeable:  # e.g. a view of a jax array: torch wants writable memory
            arr = arr.copy()
        return torch.from_numpy(arr).to(device=self.device, dtype=self.dtype)

    def from_framework_grad(self, t: torch.Tensor) -> np.ndarray:
        """A gradient tensor in the model's layout (``(..., c, h, w)`` when channels-first)
        → NumPy float32 ``(..., h, w, c)``."""
        arr = t.detach().to("cpu", torch.float32).numpy()
        return nchw_to_nhwc(arr) if self.channels_first else arr

    def eval_mode(self) -> AbstractContextManager[None]:
        """The model read-only while it is explained: every module in eval mode and every
        parameter with ``requires_grad=False`` (autograd then skips the weight gradients, about
        a fifth of a convolutional network's backward pass); each module's flag and each
        parameter's ``requires_grad`` are restored on exit, also when the model raises.

        Calls overlapping on one model (nested, or on several threads) share one switch: the
        first to enter saves and sets the flags, the last to leave restores them."""
        return model_eval_mode(self.model)

    def _call(self, xt: torch.Tensor) -> torch.Tensor:
        out = output_tensor(self.model(xt))
        if out.ndim != 2 or out.shape[0] != xt.shape[0]:
            raise ValueError(
                f"the model returned shape {tuple(out.shape)} for {xt.shape[0]} images; "
                "expected (n, k): one row of class scores per image"
            )
        return out

    def _measure_row_bytes(self, image_shape: tuple[int, ...]) -> int | None:
        """Bytes autograd saves for the backward pass per image (distinct storages seen by
        ``saved_tensors_hooks``), as the difference of a two-image and a one-image forward pass
        (so the weights it saves do not count)."""

        def saved(m: int) -> int:
            seen: dict[tuple[int, int], int] = {}

            def pack(t: torch.Tensor) -> torch.Tensor:
                st = t.untyped_storage()
                seen[(st.data_ptr(), st.nbytes())] = st.nbytes()
                return t

            x = np.zeros((m,) + tuple(image_shape), np.float32)
            with self.eval_mode(), torch.enable_grad():
                xg = self.to_framework(x).requires_grad_(True)
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    with ThinConvInputGrad():
                        out = self._call(xg)
                del out
            return sum(seen.values())

        one = saved(1)
        return max(saved(2) - one, 0) or None

    # -- protocol ----------------------------------------------------------------
    def predict(self, x: Any) -> np.ndarray:
        """``(n, k)`` float32 outputs, eval mode, ``no_grad``, batched."""
        with self.eval_mode(), torch.no_grad():
            return super().predict(x)

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self._call(self.to_framework(x)).to("cpu", torch.float32).numpy()

    # -- optional capability: images in the model's own layout (see base.InputLayout) --------
    @property
    def input_layout(self) -> str:
        """``"nchw"`` for a channels-first model, else ``"nhwc"``."""
        return "nchw" if self.channels_first else "nhwc"

    def predict_in_layout(self, x: np.ndarray) -> np.ndarray:
        """:meth:`predict` on float32 images already in :attr:`input_layout` (finite, as
        made by a masker from checked images: not checked again), sent without a layout
        conversion (the tensor shares the array's memory on a CPU model)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 4:
            raise ValueError(f"expected a batch of images in {self.input_layout}, got {x.shape}")
        if not x.flags.writeable or x.strides != _c_strides(x):
            # torch.from_numpy wants writable memory, and canonical strides: NumPy calls an
            # (n, 1, h, w) transpose contiguous, torch would take it for channels-last
            x = x.copy(order="C")
        shape = (x.shape[2], x.shape[3], x.shape[1]) if self.channels_first else x.shape[1:]
        rows = self.rows_for(shape, backward=False)
        with self.eval_mode(), torch.no_grad(), self.memory_hint(rows, shape):
            outs = [
                self._call(torch.from_numpy(x[s]).to(device=self.device, dtype=self.dtype))
                .to("cpu", torch.float32)
                .numpy()
                for s in batches(len(x), rows)
            ]
        return check_finite(np.concatenate(outs, axis=0))

    def native_vjp(self, xt: torch.Tensor, cot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs and input gradient of ``sum(outputs * cot)`` on tensors in the model's
        layout and device (as :meth:`to_framework` makes them): no conversion, no batching.
        Call it inside :meth:`eval_mode`."""
        with torch.enable_grad():
            xt = xt.detach().requires_grad_(True)
            with ThinConvInputGrad():
                out = self._call(xt)
            if tuple(cot.shape) != tuple(out.shape):
                raise ValueError(
                    f"cotangent: expected shape {tuple(out.shape)} (one weight per image and "
                    f"output), got {tuple(cot.shape)}"
                )
            (g,) = torch.autograd.grad(out, xt, cot.to(out), allow_unused=True)
        return out.detach(), (torch.zeros_like(xt) if g is None else g)

    #: :meth:`vjp` takes ``cotangent`` as a callable of the outputs (one forward pass).
    vjp_accepts_callable = True

    def vjp(self, x: Any, cotangent: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs (n, k), d sum(outputs * cotangent) / dx (n, h, w, c))``, batched.

        ``cotangent`` is an ``(n, k)`` array, or a callable ``outputs (m, k) -> (m, k)``
        applied to each batch's outputs between the forward and the backward pass (so it must
        act row by row), for losses whose weights depend on the outputs."""
        x = as_image_batch(x)
        cot_fn = cotangent if callable(cotangent) else None
        cot = None if cot_fn is not None else check_cotangent(cotangent, len(x))
        outs, grads = [], []
        rows = self.rows_for(x.shape[1:])
        with self.eval_mode(), torch.enable_grad(), self.memory_hint(rows, x.shape[1:]):
            for s in batches(len(x), rows):
                xt = self.to_framework(x[s]).requires_grad_(True)
                with ThinConvInputGrad():
                    out = self._call(xt)
                out_np = out.detach().to("cpu", torch.float32).numpy()
                m, k = out_np.shape
                c = cot_fn(out_np.copy()) if cot_fn is not None else cot[s]
                ct = torch.from_numpy(check_cotangent(c, m, k)).to(out)
                (g,) = torch.autograd.grad(out, xt, ct, allow_unused=True)
                outs.append(out_np)
                grads.append(self.from_framework_grad(torch.zeros_like(xt) if g is None else g))
        return checked_vjp(np.concatenate(outs), np.concatenate(grads))

    def _grad_batch(self, xt: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        """``(o, m, ...)``: one forward pass, one autograd backward pass per output."""
        xg = xt.detach().requires_grad_(True)
        with ThinConvInputGrad():
            out = self._call(xg)
        cots = torch.from_numpy(one_hot_stack(idx, out.shape[1])).to(out)
        gs = []
        for j, cot in enumerate(cots):
            last = j == len(cots) - 1
            (g,) = torch.autograd.grad(out, xg, cot, retain_graph=not last, allow_unused=True)
            gs.append(torch.zeros_like(xg) if g is None else g)
        return torch.stack(gs)

    def grad(self, x: Any, outputs: Any) -> np.ndarray:
        """``(n, h, w, c, o)``: gradient of output ``outputs[i, j]`` of image ``i`` w.r.t. the
        image, for every requested output (``outputs`` ``(o,)`` or ``(n, o)``): per batch of
        images one forward pass and one backward pass per requested output."""
        x = as_image_batch(x)
        idx = output_matrix(outputs, len(x))
        res = np.empty(x.shape + (idx.shape[1],), np.float32)
        rows = self.grad_rows(x.shape[1:], idx.shape[1])
        with self.eval_mode(), torch.enable_grad(), self.memory_hint(rows, x.shape[1:]):
            for s in batches(len(x), rows):
                g = self._grad_batch(self.to_framework(x[s]), idx[s])
                res[s] = np.moveaxis(self.from_framework_grad(g), 0, -1)
        return check_finite(res, "gradients")

    def _deeplift(self, x: Any, baselines: Any, outputs: Any, **options: Any) -> np.ndarray:
        """DeepLIFT (rescale) / DeepSHAP over the model's aten graph, in passes within the
        memory budget (:func:`._deeplift_torch.deeplift_torch`, which takes the options)."""
        from ._deeplift_torch import deeplift_torch

        return deeplift_torch(self, x, baselines, outputs, **options)

    def flat_outputs(self) -> TorchBackend:
        """The model with its outputs flattened to ``(n, d)`` in NHWC order (an autoencoder's
        images), on the same device, layout and batch settings."""
        return TorchBackend(
            FlatOutputs(self.model, ARRAY_OPS, self.channels_first),
            batch_size=self._batch_size,
            memory_budget=self._memory_budget,
            channels_first=self.channels_first,
            device=self.device,
        )

    def __repr__(self) -> str:
        return (
            f"TorchBackend({type(self.model).__name__}, device={self.device}, "
            f"channels_first={self.channels_first}, batch_size={self.batch_size})"
        )

    def parameter_layers(self) -> list[str]:
        """Paths of the modules that hold parameters of their own, in registration order
        (the forward order of ordinary networks)."""
        if not isinstance(self.model, torch.nn.Module):
            return []
        return [
            n
            for n, m in self.model.named_modules()
            if n and any(True for _ in m.parameters(recurse=False))
        ]

    @contextmanager
    def randomized(self, layers: list[str], seed: int = 0) -> Iterator[None]:
        """Within the block, the parameters of ``layers`` are redrawn from a normal
        distribution with each tensor's own mean and standard deviation (0.01 where it is
        constant); the originals are restored on exit, also on error."""
        modules = dict(self.model.named_modules())
        gen = torch.Generator().manual_seed(int(seed))
        saved = []
        try:
            with torch.no_grad():
                for name in layers:
                    if name not in modules:
                        raise ValueError(f"layers: the model has no module {name!r}")
                    for p in modules[name].parameters(recurse=False):
                        saved.append((p, p.detach().clone()))
                        std = float(p.std()) if p.numel() > 1 else 0.0
                        draw = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                        p.copy_(draw.to(p) * (std or 0.01) + p.mean())
            yield
        finally:
            with torch.no_grad():
                for p, value in saved:
                    p.copy_(value)

    def layer(self, x: Any, layer: Any, outputs: Any, *, reshape: Any = None) -> Any:
        """A layer's activations ``(n, h', w', d)`` and the gradients of ``outputs`` w.r.t.
        them ``(n, h', w', d, o)``, with the layer's name. ``outputs`` may be a callable
        ``choose(rows, model_outputs)`` that picks them batch by batch from the layer pass's
        own forward pass (:attr:`layer_chooses_outputs`); see :mod:`._layer_torch`."""
        from ._layer_torch import layer_torch

        x = as_image_batch(x)
        idx = outputs if callable(outputs) else output_matrix(outputs, len(x))
        return layer_torch(self, x, layer, idx, reshape)
