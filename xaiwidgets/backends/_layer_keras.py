"""A Keras layer's activations and the gradients of chosen outputs with respect to them
(Keras 3 on TensorFlow).

The layer's ``call`` is wrapped on the instance for the duration of one batch (restored
afterwards, also when the model raises), recording its output; the model runs under a
``tf.GradientTape`` watching the input, and the gradient of each requested output column is
taken with respect to the recorded tensor (a partial backward pass, from the outputs down to
the layer). This works for Sequential, functional and nested models alike, since every layer
is called through its ``call``.

``layer`` is a layer name (searched through nested models too; ``"outer/inner"`` names a
layer inside a nested model), the layer object, or ``None``: the last layer, in execution
order, whose output is a spatial grid and still moves the explained output (checked with one
image) — ``conv5_block3_out`` of keras.applications' ResNet50.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from .._arrays import batches
from ._layer_grid import ChosenOutputs, LayerOutput, is_spatial, to_grid, wrapped_calls

#: layer classes whose output is never the layer a user means
_SKIP = ("InputLayer", "Dropout", "Dense", "Identity", "Flatten")


def walk_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, layer)`` for every layer, nested models' layers included (depth first)."""
    for layer in getattr(model, "layers", []):
        path = f"{prefix}{layer.name}"
        yield path, layer
        if getattr(layer, "layers", None):
            yield from walk_layers(layer, path + "/")


def recording(layers: list[Any], store: list[tuple[Any, Any]]) -> Any:
    """Context manager: each layer's output is appended to ``store`` as ``(layer, tensor)``."""

    def record(layer: Any, out: Any) -> Any:
        t = out[0] if isinstance(out, (tuple, list)) else out
        if tf.is_tensor(t):
            store.append((layer, t))
        return out

    return wrapped_calls({layer: layer for layer in layers}, record)


def resolve_layer(backend: Any, x: np.ndarray, layer: Any) -> tuple[Any, str]:
    """The layer ``layer`` names (a name, an ``outer/inner`` path or the layer), or the
    default for ``None``."""
    model = backend.model
    found = list(walk_layers(model))
    if not found:
        raise TypeError("layer: the model has no Keras layers")
    if isinstance(layer, str):
        for path, obj in found:
            if layer in (path, obj.name):
                return obj, path
        some = ", ".join(p for p, _ in found[-12:])
        raise ValueError(f"layer: the model has no layer {layer!r}; its last layers: {some}")
    if layer is not None and not isinstance(layer, (str, int, float)):
        for path, obj in found:
            if obj is layer:
                return obj, path
        raise ValueError(f"layer: the layer {getattr(layer, 'name', layer)!r} is not in the model")
    if layer is not None:
        raise TypeError(f"layer: expected a layer name, a Keras layer or None, got {layer!r}")
    return _default_layer(backend, x[:1], found)


def _default_layer(backend: Any, x1: np.ndarray, found: list) -> tuple[Any, str]:
    paths = {id(obj): path for path, obj in found}
    layers = [obj for _, obj in found if type(obj).__name__ not in _SKIP]
    store: list[tuple[Any, Any]] = []
    xt = backend.to_framework(x1)
    with recording(layers, store), tf.GradientTape() as tape:
        tape.watch(xt)
        out = backend._call(xt)
        top = out[0, int(tf.argmax(out[0]))]
    spatial = [(obj, t) for obj, t in store if is_spatial(tuple(t.shape), backend.channels_first)]
    grads = tape.gradient(top, [t for _, t in spatial])
    for (obj, _), g in reversed(list(zip(spatial, grads))):
        if g is None:
            continue
        grid = _as_grid(g.numpy(), backend, reshape=None)
        if np.count_nonzero(grid):
            return obj, paths[id(obj)]
    raise ValueError("layer: the model has no layer with a spatial output; name one with layer=")


def _as_grid(a: np.ndarray, backend: Any, reshape: Any) -> np.ndarray:
    if a.ndim == 4 and backend.channels_first:
        a = np.moveaxis(a, 1, 3)
    return to_grid(a, reshape, tokens=a.ndim == 3)


def layer_keras(
    backend: Any, x: np.ndarray, layer: Any, idx: Any, reshape: Any = None
) -> LayerOutput:
    """Activations of ``layer`` and the gradients of outputs ``idx`` w.r.t. them; ``idx`` an
    ``(n, o)`` matrix or a callable ``choose(rows, outputs)`` as in
    :func:`._layer_torch.layer_torch` (then one forward pass per batch serves both)."""
    obj, name = resolve_layer(backend, x, layer)
    picked = ChosenOutputs(len(x), idx) if callable(idx) else None
    acts = grads = None
    for s in batches(len(x), backend.batch_size):
        store: list[tuple[Any, Any]] = []
        xt = backend.to_framework(x[s])
        with recording([obj], store), tf.GradientTape(persistent=True) as tape:
            tape.watch(xt)
            out = backend._call(xt)
            if picked is not None:
                idx_s = picked.take(s, np.asarray(out, np.float32))
            else:
                idx_s = idx[s]
            cols = [
                tf.reduce_sum(tf.gather(out, idx_s[:, j], axis=1, batch_dims=1))
                for j in range(idx_s.shape[1])
            ]
        if not store:
            raise ValueError(f"layer {name!r} did not run in the model's forward pass")
        a = store[-1][1]
        if a.shape.rank not in (3, 4):
            raise ValueError(
                f"layer {name!r}: its output has shape {tuple(a.shape)}; expected a spatial "
                "map (n, h, w, c) or tokens (n, t, d)"
            )
        gs = [tape.gradient(c, a) for c in cols]
        del tape
        a_np = _as_grid(a.numpy().astype(np.float32), backend, reshape)
        g_np = np.stack(
            [
                _as_grid(
                    np.zeros(a.shape, np.float32) if g is None else g.numpy(), backend, reshape
                )
                for g in gs
            ],
            axis=-1,
        )
        if acts is None:
            acts = np.empty((len(x),) + a_np.shape[1:], np.float32)
            grads = np.empty(acts.shape + (idx_s.shape[1],), np.float32)
        acts[s], grads[s] = a_np, g_np
    if picked is None:
        return LayerOutput(acts, grads, name)
    return LayerOutput(acts, grads, name, picked.outputs, picked.indices)
