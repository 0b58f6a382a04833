"""A layer's activations and the gradients of chosen outputs with respect to them, for Flax
linen and NNX modules and Keras 3 models on the JAX backend.

JAX has no hooks and no gradients with respect to intermediate values, so the layer's output
``a`` is replaced by ``a + δ`` with ``δ = 0`` an extra input: the VJP with respect to ``δ`` is
the gradient with respect to ``a``. The tap is

- linen: a method interceptor (:func:`flax.linen.intercept_methods`);
- NNX: the module is merged afresh from its state for every call (the user's module is never
  touched), and the tapped submodules of that copy get a subclass whose ``__call__`` adds
  ``δ`` (see :mod:`._layer_flax_nnx`);
- Keras: the layer's ``call`` wrapped on the instance for the duration of the call.

One ``jax.jit``-compiled function per layer and output-group width does the forward pass (which
records the activations), and ``jax.vmap`` of its pullback over one-hot cotangents (up to
``OUTPUT_GROUP`` outputs at once). Rows per call come from the backend's memory budget
(:meth:`~.jax_backend.JaxBackend.grad_rows`: the activations of the vectorised backward
passes), padded to the backend's batch buckets.

``layer``: a linen or NNX module path (``"conv2"``, ``"Block_1/Conv_0"``, ``"blocks.3"``;
``.`` or ``/`` separated), an NNX submodule of the wrapped module, or a Keras layer name /
layer; ``None`` picks the last module, in execution order, with a spatial output that still
moves the explained output (checked with one image; remembered per image shape).
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
from ._layout import OUTPUT_GROUP, output_groups

#: module classes whose output is never the layer a user means (dense layers on tokens and
#: attention projections give (n, t, heads, d) outputs that only look like grids)
_SKIP = (
    "Dense",
    "DenseGeneral",
    "Linear",
    "LinearGeneral",
    "Einsum",
    "Embed",
    "Dropout",
    "InputLayer",
    "Identity",
    "Flatten",
)


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
    """Where to tap: linen or NNX module paths or Keras layers, resolved from ``layer``."""

    def __init__(self, backend: Any):
        module = backend.module
        if module is None:
            raise TypeError("layer: the model is a plain jax function; it has no layers")
        self.backend = backend
        keras = hasattr(module, "stateless_call")
        self.kind = "nnx" if backend.is_nnx else "keras" if keras else "linen"
        self.layers: dict[str, Any] = {}
        if self.kind == "keras":
            from ._layer_keras import walk_layers

            self.layers = {p: lyr for p, lyr in walk_layers(module)}
        elif self.kind == "nnx":
            from ._layer_flax_nnx import module_paths

            self.layers = module_paths(module)

    def candidates(self) -> list[str] | None:
        """Every key that may be the default layer (``None``: linen, known while running)."""
        if self.kind == "linen":
            return None
        return [k for k, v in self.layers.items() if type(v).__name__ not in _SKIP]

    def resolve(self, layer: Any) -> list[str] | None:
        """The tapped keys for ``layer`` (``None``: every candidate)."""
        if layer is None:
            return self.candidates()
        if self.kind == "linen":
            if not isinstance(layer, str):
                raise TypeError(
                    f"layer: expected a Flax module path such as 'conv2', got {layer!r}"
                )
            return [layer.replace(".", "/")]
        for key, obj in self.layers.items():
            if layer is obj:
                return [key]
        if self.kind == "keras":
            for key, obj in self.layers.items():
                if layer in (key, getattr(obj, "name", None)):
                    return [key]
        elif isinstance(layer, str) and layer.replace(".", "/") in self.layers:
            return [layer.replace(".", "/")]
        elif not isinstance(layer, str):
            raise TypeError(
                "layer: expected a module path such as 'blocks/3' or a submodule of the "
                f"wrapped NNX module, got {type(layer).__name__}"
            )
        some = ", ".join(k for k in list(self.layers)[-12:] if k)
        raise ValueError(f"layer: the model has no layer {layer!r}; its last layers: {some}")

    def run(self, params: Any, x: Any, keys: list[str] | None, deltas: dict, record: dict) -> Any:
        b = self.backend
        if self.kind == "keras":
            with _keras_taps({k: self.layers[k] for k in keys}, deltas, record):
                return b.apply_with_params(params, x)
        if self.kind == "nnx":
            from ._layer_flax_nnx import nnx_taps

            targets = set(keys) if keys is not None else set(self.candidates() or ())
            with nnx_taps(b, params, targets, deltas, record) as model:
                out = model(x, **b.call_kwargs)
            return out[0] if isinstance(out, (tuple, list)) else out
        with _linen_taps(None if keys is None else set(keys), deltas, record):
            return b.apply_with_params(params, x)


def _grads_fn(taps: _Taps, keys: list[str] | None) -> Callable:
    """``(params, x (m, ...), idx (m, g)) -> (activations {key: a}, gradients {key: (g, m,
    ...)})``: the taps' shapes by abstract evaluation (nothing runs), one forward pass that
    records the activations and returns its pullback, the pullback vectorised over ``g``
    one-hot cotangents."""

    def fn(params: Any, x: Any, idx: Any) -> Any:
        def recorded(x: Any) -> dict:
            record: dict[str, Any] = {}
            taps.run(params, x, keys, {}, record)
            return record

        def f(deltas: dict) -> Any:
            record: dict[str, Any] = {}
            out = taps.run(params, x, list(deltas) if keys is not None else None, deltas, record)
            return out, record

        shapes = jax.eval_shape(recorded, x)
        zeros = {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}
        out, pullback, acts = jax.vjp(f, zeros, has_aux=True)
        cots = jax.nn.one_hot(idx.T, out.shape[-1], dtype=out.dtype)  # (g, m, k)
        (g,) = jax.vmap(pullback)(cots)
        return acts, g

    return fn


def _compiled(backend: Any, taps: _Taps, keys: list[str] | None) -> Callable:
    """The jitted :func:`_grads_fn` for ``keys``, cached on the backend."""
    cache = backend.__dict__.setdefault("_layer_compiled", {})
    ck = None if keys is None else tuple(keys)
    if ck not in cache:
        cache[ck] = jax.jit(_grads_fn(taps, keys))
    return cache[ck]


def layer_jax(
    backend: Any, x: np.ndarray, layer: Any, idx: np.ndarray, reshape: Any = None
) -> LayerOutput:
    """Activations of ``layer`` and the gradients of outputs ``idx`` ``(n, o)`` w.r.t. them,
    in batches of :meth:`grad_rows` images and groups of up to ``OUTPUT_GROUP`` outputs."""
    taps = _Taps(backend)
    keys = taps.resolve(layer)
    if keys is None or len(keys) > 1:
        keys = [_default_key(backend, taps, x[:1], keys)]
    key = keys[0]
    fn = _compiled(backend, taps, keys)
    o = idx.shape[1]
    rows = backend.grad_rows(x.shape[1:], o)
    acts_all = grads_all = None
    for s in batches(len(x), rows):
        m = s.stop - s.start
        a_np = None
        for group in output_groups(o):
            cols = idx[s, group].astype(np.int32)
            width = cols.shape[1]
            if o > OUTPUT_GROUP and width < OUTPUT_GROUP:  # one compiled group width
                cols = np.pad(cols, ((0, 0), (0, OUTPUT_GROUP - width)), mode="edge")
            xp, ip = backend._padded(x[s], rows, (cols, "zeros"))
            with backend.memory_hint(len(xp), x.shape[1:]):
                acts, g = backend._run_traced(fn, jnp.asarray(xp), jnp.asarray(ip))
            if key not in acts:
                raise ValueError(f"layer {key!r} did not run in the model's forward pass")
            tokens = _check_rank(key, acts[key].shape)
            if a_np is None:
                a_np = to_grid(np.asarray(acts[key], np.float32)[:m], reshape, tokens)
            gk = np.moveaxis(np.asarray(g[key], np.float32)[:width, :m], 0, -1)  # (m, ..., w)
            g_np = to_grid(gk, reshape, tokens)
            if acts_all is None:
                acts_all = np.empty((len(x),) + a_np.shape[1:], np.float32)
                grads_all = np.empty(acts_all.shape + (o,), np.float32)
            grads_all[s, ..., group] = g_np
        acts_all[s] = a_np
    return LayerOutput(acts_all, grads_all, key)


def _check_rank(key: str, shape: tuple[int, ...]) -> bool:
    """Whether the layer gives tokens (3-D); a ValueError unless it is a grid or tokens."""
    if len(shape) not in (3, 4):
        raise ValueError(
            f"layer {key!r}: its output has shape {tuple(shape)}; expected a spatial map "
            "(n, h, w, c) or tokens (n, t, d)"
        )
    return len(shape) == 3


def _default_key(backend: Any, taps: _Taps, x1: np.ndarray, keys: list[str] | None) -> str:
    """The last tapped module, in execution order, whose output is spatial and whose gradient
    for the image's top output is not zero (remembered per image shape)."""
    cache = backend.__dict__.setdefault("_default_layer", {})
    shape = tuple(x1.shape[1:])
    if shape in cache:
        return cache[shape]
    xa = jnp.asarray(x1)
    record: dict[str, Any] = {}
    jax.eval_shape(lambda z: taps.run(backend.params, z, keys, {}, record), xa)
    order = list(record)  # execution order (abstract values: their shapes only)
    top = int(np.argmax(backend.predict(x1)[0]))
    spatial = [k for k in order if is_spatial(tuple(record[k].shape), False)]
    if spatial:
        fn = jax.jit(_grads_fn(taps, spatial))
        _, g = backend._run_traced(fn, xa, jnp.asarray([[top]], jnp.int32))
        for key in reversed(order):  # the last one first
            if key in spatial and np.count_nonzero(
                to_grid(np.asarray(g[key][0]), None, tokens=np.ndim(g[key][0]) == 3)
            ):
                cache[shape] = key
                return key
    raise ValueError("layer: the model has no layer with a spatial output; name one with layer=")
