"""A torch module's activations and the gradients of chosen outputs with respect to them.

One forward pass per batch with a forward hook on the layer (removed afterwards, also when the
model raises: the user's model is left as it was; it records only its own thread's calls, so
calls on several threads may share the model), then one partial backward pass per
requested output, from the outputs down to the layer only. Convolutional maps come back
channels last; token layers ``(n, t, d)`` of a vision transformer as a grid (see
:mod:`._layer_grid`).

``layer`` is a module path (``"layer4"``, ``"blocks.11.norm1"``), the module object, or
``None``: the last module, in execution order, whose output is a spatial grid and still moves
the explained output (a non-zero gradient at the grid positions, checked with one image) —
``layer4`` of a ResNet, ``blocks[-1].norm1`` of a timm ViT, where the class token's later
layers no longer look at the patches.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from torch import nn

from .._arrays import batches
from ._layer_grid import ChosenOutputs, LayerOutput, is_spatial, token_grid
from ._layout import one_hot_stack

#: module types whose output is never the layer a user means (identity, dropout, projections)
_SKIP = (nn.Identity, nn.Dropout, nn.Linear)


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def resolve_layer(backend: Any, x: np.ndarray, layer: Any) -> tuple[nn.Module, str]:
    """The module ``layer`` names (a path or the module itself), or the default for ``None``."""
    model = backend.model
    if not isinstance(model, nn.Module):
        raise TypeError("layer: the model is a function, not an nn.Module; it has no layers")
    names = {m: n for n, m in model.named_modules() if n}
    if isinstance(layer, nn.Module):
        if layer not in names:
            raise ValueError(f"layer: the module {type(layer).__name__} is not part of the model")
        return layer, names[layer]
    if isinstance(layer, str):
        try:
            return model.get_submodule(layer), layer
        except AttributeError:
            some = ", ".join(list(dict.fromkeys(n.split(".")[0] for n in names.values()))[:12])
            raise ValueError(
                f"layer: the model has no module {layer!r}; its top-level modules: {some}"
            ) from None
    if layer is not None:
        raise TypeError(f"layer: expected a module path, an nn.Module or None, got {layer!r}")
    return _default_layer(backend, x[:1], names)


def _default_layer(backend: Any, x1: np.ndarray, names: dict) -> tuple[nn.Module, str]:
    seen: list[tuple[nn.Module, torch.Tensor]] = []
    thread = threading.get_ident()

    def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
        t = _first_tensor(out)
        if threading.get_ident() != thread:  # another call on the same model
            return
        if t is not None and t.requires_grad and is_spatial(tuple(t.shape), backend.channels_first):
            seen.append((mod, t))

    handles = [m.register_forward_hook(hook) for m in names if not isinstance(m, _SKIP)]
    try:
        with backend.eval_mode(), torch.enable_grad():
            xt = backend.to_framework(x1).requires_grad_(True)
            out = backend._call(xt)
            top = out[0].argmax()
            grads = torch.autograd.grad(out[0, top], [t for _, t in seen], allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    for (mod, t), g in reversed(list(zip(seen, grads))):
        if g is None:
            continue
        grid = _as_grid(g.detach(), backend, tokens=t.ndim == 3, reshape=None)
        if torch.count_nonzero(grid).item() > 0:
            return mod, names[mod]
    raise ValueError("layer: the model has no layer with a spatial output; name one with layer=")


def _as_grid(t: torch.Tensor, backend: Any, tokens: bool, reshape: Any) -> torch.Tensor:
    """Channels-last grid of an activation-shaped tensor ``(m, ...)``; tokens keep only the
    grid tokens."""
    if t.ndim == 4 and backend.channels_first:
        t = t.permute(0, 2, 3, 1)
    if tokens:
        gh, gw, p = token_grid(t.shape[1], reshape)
        t = t[:, p : p + gh * gw].reshape(t.shape[0], gh, gw, t.shape[2])
    return t


def layer_torch(
    backend: Any, x: np.ndarray, layer: Any, idx: Any, reshape: Any = None
) -> LayerOutput:
    """Activations of ``layer`` and the gradients of outputs ``idx`` w.r.t. them.

    ``idx`` is an ``(n, o)`` int matrix, or a callable ``choose(rows, outputs)`` that picks
    the outputs of the images ``rows`` (a slice) from their model outputs ``(m, k)`` (float32
    NumPy), so that the layer pass's own forward pass serves to choose them (top-k): one
    forward and ``o`` partial backward passes per batch; the result then carries ``outputs``
    ``(n, k)`` and ``indices`` ``(n, o)``."""
    module, name = resolve_layer(backend, x, layer)
    picked = ChosenOutputs(len(x), idx) if callable(idx) else None
    thread = threading.get_ident()
    acts = grads = None
    with backend.eval_mode(), torch.enable_grad():
        for s in batches(len(x), backend.batch_size):
            store: list[torch.Tensor] = []

            def hook(_mod: nn.Module, _inp: Any, out: Any, store: list = store) -> None:
                t = _first_tensor(out)
                if t is not None and threading.get_ident() == thread:  # not another call's
                    store.append(t)

            handle = module.register_forward_hook(hook)
            try:
                xt = backend.to_framework(x[s]).requires_grad_(True)
                out = backend._call(xt)
            finally:
                handle.remove()
            if not store:
                raise ValueError(f"layer {name!r} did not run in the model's forward pass")
            a = store[-1]
            if a.ndim not in (3, 4):
                raise ValueError(
                    f"layer {name!r}: its output has shape {tuple(a.shape)}; expected a "
                    "spatial map (n, c, h, w) or tokens (n, t, d)"
                )
            if picked is not None:
                idx_s = picked.take(s, out.detach().to("cpu", torch.float32).numpy())
            else:
                idx_s = idx[s]
            cots = torch.from_numpy(one_hot_stack(idx_s, out.shape[1])).to(out)
            gs = []
            for j, cot in enumerate(cots):
                (g,) = torch.autograd.grad(
                    out, a, cot, retain_graph=j < len(cots) - 1, allow_unused=True
                )
                gs.append(torch.zeros_like(a) if g is None else g)
            tokens = a.ndim == 3
            a_np = _as_grid(a.detach(), backend, tokens, reshape).to("cpu", torch.float32)
            g_np = torch.stack([_as_grid(g, backend, tokens, reshape) for g in gs], dim=-1)
            if acts is None:
                acts = np.empty((len(x),) + tuple(a_np.shape[1:]), np.float32)
                grads = np.empty(acts.shape + (idx_s.shape[1],), np.float32)
            acts[s] = a_np.numpy()
            grads[s] = g_np.to("cpu", torch.float32).numpy()
    if picked is None:
        return LayerOutput(acts, grads, name)
    return LayerOutput(acts, grads, name, picked.outputs, picked.indices)
