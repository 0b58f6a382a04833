"""A layer's activations and the gradients of chosen outputs with respect to them, for Flax
linen modules and Keras 3 models on the JAX backend.

JAX has no hooks and no gradients with respect to intermediate values, so the layer's output
``a`` is replaced by ``a + δ`` with ``δ = 0`` an extra input (a linen method interceptor,
:func:`flax.linen.intercept_methods`, or the Keras layer's ``call`` wrapped on the instance
for the duration of the call): the VJP with respect to ``δ`` is the gradient with respect to
``a``, one forward pass and one pullback per requested output (``jax.vmap`` over one-hot
cotangents).

``layer``: a linen module path (``"conv2"``, ``"Block_1/Conv_0"``, ``.`` or ``/``
separated) or a Keras layer name / layer; ``None`` picks the last module, in execution order,
with a spatial output that still moves the explained output (checked with one image).
Flax NNX modules have no layer access yet (a ``TypeError`` says so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._arrays import batches
from ._layer_grid import LayerOutput, is_spatial, to_grid, wrapped_calls

_SKIP = ("Dense", "Dropout", "InputLayer", "Identity", "Flatten")


def _key(path: Any) -> str:
    return "/".join(str(p) for p in path)


@contextmanager
def _linen_taps(targets: set[str] | None, deltas: dict, record: dict) -> Iterator[None]:
    from flax import linen

    def interceptor(next_fun: Callable, args: Any, kwargs: Any, context: Any) -> Any:
        out = next_fun(*args, **kwargs)
        if context.method_name != "__call__" or not isinstance(out, jax.Array):
            return out
        key = _key(context.module.path)
        if not key or type(context.module).__name__ in _SKIP:
            return out
        if targets is None or key in targets:
            record[key] = out
            if key in deltas:
                out = out + deltas[key]
        return out

    with linen.intercept_methods(interceptor):
        yield


def _keras_taps(layers: dict[str, Any], deltas: dict, record: dict) -> Any:
    """Context manager: each tapped Keras layer's output is recorded and gets its ``δ``."""

    def tap(key: str, out: Any) -> Any:
        if not hasattr(out, "shape"):  # a tuple (attention scores...): not a tap
            return out
        record[key] = out
        return out + deltas[key] if key in deltas else out

    return wrapped_calls(layers, tap)


class _Taps:
    """Where to tap: linen paths or Keras layers, resolved from ``layer``."""

    def __init__(self, backend: Any):
        if backend.is_nnx:
            raise TypeError("layer access for Flax NNX modules is not supported yet")
        module = backend.module
        if module is None:
            raise TypeError("layer: the model is a plain jax function; it has no layers")
        self.backend = backend
        self.keras = hasattr(module, "stateless_call")
        self.layers: dict[str, Any] = {}
        if self.keras:
            from ._layer_keras import walk_layers

            self.layers = {p: lyr for p, lyr in walk_layers(module)}

    def resolve(self, layer: Any) -> list[str] | None:
        """The tapped keys for ``layer`` (``None``: every candidate)."""
        if layer is None:
            if self.keras:
                return [k for k, v in self.layers.items() if type(v).__name__ not in _SKIP]
            return None
        if self.keras:
            for key, obj in self.layers.items():
                if layer is obj or layer in (key, getattr(obj, "name", None)):
                    return [key]
            raise ValueError(f"layer: the model has no layer {layer!r}")
        if not isinstance(layer, str):
            raise TypeError(f"layer: expected a Flax module path such as 'conv2', got {layer!r}")
        return [layer.replace(".", "/")]

    def run(self, x: Any, keys: list[str] | None, deltas: dict, record: dict) -> Any:
        b = self.backend
        if self.keras:
            with _keras_taps({k: self.layers[k] for k in keys}, deltas, record):
                return b.apply_with_params(b.params, x)
        with _linen_taps(None if keys is None else set(keys), deltas, record):
            return b.apply_with_params(b.params, x)


def _grads(taps: _Taps, x: Any, keys: list[str] | None, idx: np.ndarray):
    """Activations ``{key: a}`` and gradients ``{key: (o, ...)}`` of outputs ``idx``: the
    taps' shapes by abstract evaluation (nothing runs), then one forward pass that records the
    activations and returns its pullback, and one pullback per output."""

    def recorded(x: Any) -> dict:
        record: dict[str, Any] = {}
        taps.run(x, keys, {}, record)
        return record

    def f(deltas: dict) -> Any:
        record: dict[str, Any] = {}
        out = taps.run(x, list(deltas) if keys is not None else None, deltas, record)
        return out, record

    shapes = jax.eval_shape(recorded, x)
    zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}
    out, pullback, acts = jax.vjp(f, zeros, has_aux=True)
    cots = jax.nn.one_hot(jnp.asarray(idx).T, out.shape[-1], dtype=out.dtype)  # (o, m, k)
    (g,) = jax.vmap(pullback)(cots)
    return acts, g


def layer_jax(
    backend: Any, x: np.ndarray, layer: Any, idx: np.ndarray, reshape: Any = None
) -> LayerOutput:
    """Activations of ``layer`` and the gradients of outputs ``idx`` ``(n, o)`` w.r.t. them."""
    taps = _Taps(backend)
    keys = taps.resolve(layer)
    if keys is None or len(keys) > 1:
        keys = [_default_key(taps, x[:1], keys)]
    key = keys[0]
    acts_all = grads_all = None
    for s in batches(len(x), backend.batch_size):
        acts, g = _grads(taps, jnp.asarray(x[s]), keys, idx[s])
        if key not in acts:
            raise ValueError(f"layer {key!r} did not run in the model's forward pass")
        a = np.asarray(acts[key], np.float32)
        if a.ndim not in (3, 4):
            raise ValueError(
                f"layer {key!r}: its output has shape {a.shape}; expected a spatial map "
                "(n, h, w, c) or tokens (n, t, d)"
            )
        gk = np.moveaxis(np.asarray(g[key], np.float32), 0, -1)  # (m, ..., o)
        a_np = to_grid(a, reshape, tokens=a.ndim == 3)
        g_np = to_grid(gk, reshape, tokens=a.ndim == 3)
        if acts_all is None:
            acts_all = np.empty((len(x),) + a_np.shape[1:], np.float32)
            grads_all = np.empty(acts_all.shape + (idx.shape[1],), np.float32)
        acts_all[s], grads_all[s] = a_np, g_np
    return LayerOutput(acts_all, grads_all, key)


def _default_key(taps: _Taps, x1: np.ndarray, keys: list[str] | None) -> str:
    xa = jnp.asarray(x1)
    record: dict[str, Any] = {}
    out = taps.run(xa, keys, {}, record)
    top = int(jnp.argmax(out[0]))
    spatial = [k for k, v in record.items() if is_spatial(tuple(v.shape), False)]
    _, g = _grads(taps, xa, spatial, np.array([[top]]))
    for key in reversed(list(record)):  # execution order: the last one first
        if key in spatial and np.count_nonzero(
            to_grid(np.asarray(g[key][0]), None, tokens=np.ndim(g[key][0]) == 3)
        ):
            return key
    raise ValueError("layer: the model has no layer with a spatial output; name one with layer=")
