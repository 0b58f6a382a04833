"""`JaxBackend`: Flax linen / NNX modules, Keras 3 models on the JAX backend, and plain jax
functions behind the backend protocol.

Imported lazily by :func:`xaiwidgets.backends.wrap`; importing this module imports jax (flax
only when the model is a Flax module).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._arrays import as_image_batch, batches
from ._checks import check_output_range
from ._jax_models import keras_apply, keras_values, resolve_model
from ._layout import (
    OUTPUT_GROUP,
    as_nhwc_float32,
    bucket_size,
    check_cotangent,
    output_groups,
    pad_rows,
)
from .base import BaseBackend, check_finite, checked_vjp, output_matrix

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "JaxBackend needs JAX; install it with: pip install 'xaiwidgets[jax]'"
    ) from exc


_NOT_TRACEABLE = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerIntegerConversionError,
)


def _first_output(out: Any) -> Any:
    return out[0] if isinstance(out, (tuple, list)) else out


class JaxBackend(BaseBackend):
    """A JAX model: a Flax linen module with its variables, a Flax NNX module, or a function.

    Accepted forms (``wrap`` passes them through):

    - ``JaxBackend(linen_module, params=variables)`` or ``JaxBackend((linen_module,
      variables))``: ``variables`` as ``module.init`` returns them (``{"params": ...}``; a bare
      parameter tree is wrapped as ``{"params": tree}``); the model is
      ``module.apply(variables, x, **call_kwargs)``.
    - ``JaxBackend(nnx_module)``: the module's state is read when wrapped (wrap again after
      more training); it is called on a copy in eval mode (``Dropout`` deterministic,
      ``BatchNorm`` on running averages), so the user's module is never changed.
    - ``JaxBackend(f)``: a function ``f(x) -> (n, k)`` of jax arrays, or ``f(params, x)``
      with ``params=...``.
    - :meth:`from_keras`: a Keras 3 model on the JAX Keras backend (``wrap`` routes it here).

    Every computation is ``jax.jit``-compiled for a fixed batch shape: batches are padded
    (repeating the last image; zero cotangents) to a power of two ``>= 8`` up to
    ``batch_size`` (``buckets=True``, default: at most ``log2(batch_size / 8) + 2`` compiles
    per function, and a one-image call costs at most 8 images) or always to ``batch_size``
    (``buckets=False``: exactly one compile per function). :meth:`grad` takes all requested
    outputs from one forward pass with ``jax.vmap`` of the VJP over one-hot cotangents.
    Inputs may be jax arrays (any accepted image form).

    Parameters
    ----------
    model : see above.
    params : pytree, optional
        Linen variables, or the first argument of ``f(params, x)``.
    batch_size : int or None
        Largest batch per compiled call, also for :meth:`vjp` and :meth:`grad`. Default
        ``None``: from ``memory_budget`` and the residuals the VJP keeps per image (their
        abstract shapes, :meth:`_measure_row_bytes`); :meth:`grad` counts the ``vmap``-ed
        backward passes of an output group.
    memory_budget : int or None
        Working memory in bytes (default 1 GiB); see :class:`~.base.BaseBackend`.
    buckets : bool
        Power-of-two padding buckets (default ``True``) or one fixed batch shape.
    call_kwargs : dict, optional
        Extra keyword arguments of the model call (e.g. ``{"train": False}`` for a linen
        module with Dropout/BatchNorm switched by an argument).

    Attributes (stable, used by the DeepLIFT module and explainers' fast paths)
    ----------
    apply_fn : pure function ``x (n, h, w, c) -> (n, k)`` with the parameters closed over;
        ``jax.jit``-able.
    module : the Flax (linen or NNX) module or Keras model; ``None`` for a plain function.
    params : the parameter pytree passed to the compiled functions (linen variables, NNX
        state, Keras ``(trainable, non_trainable)`` values); ``None`` for ``f(x)``.
    is_nnx : bool, whether ``module`` is a Flax NNX module.
    nnx_graphdef : the NNX module's graph definition (``nnx.split``), for NNX modules.
    apply_with_params : ``(params, x) -> (n, k)``, the same function with explicit params.
    native_vjp(x, cot) : compiled VJP on jax arrays (see there).
    vjp_accepts_callable : ``True``: :meth:`vjp` takes a callable cotangent.
    trace_count : int, how many times a compiled function was traced (compiles).
    """

    framework = "jax"

    def __init__(
        self,
        model: Any,
        params: Any = None,
        *,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        buckets: bool = True,
        call_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__(batch_size=batch_size, memory_budget=memory_budget)
        self.buckets = bool(buckets)
        self.call_kwargs = dict(call_kwargs or {})
        if isinstance(model, tuple):
            if len(model) != 2 or params is not None:
                raise TypeError(
                    "JaxBackend: expected a (flax_module, params) pair, or the module with "
                    "params=..."
                )
            model, params = model
        self._keras_model: Any = None
        resolved = resolve_model(model, params, self.call_kwargs)
        self.module, self.params, self.is_nnx = resolved.module, resolved.params, resolved.is_nnx
        if resolved.is_nnx:
            self.nnx_graphdef = resolved.graphdef
        self._init_compiled(resolved.apply)

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_keras(cls, model: Any, **kwargs: Any) -> JaxBackend:
        """A Keras 3 model on the JAX Keras backend, called statelessly
        (``model.stateless_call(trainable, non_trainable, x, training=False)``) on the
        variables' values read at each call: Keras' own ``fit``/``predict`` donate the
        buffers of the values they replace, so values read once at wrap time would be deleted
        arrays after the user's next ``model.predict`` (and stale after training); see
        :func:`._jax_models.keras_apply`."""
        backend = cls(keras_apply(model), keras_values(model), **kwargs)
        backend.module = backend._keras_model = model
        return backend

    @property
    def params(self) -> Any:
        """The parameter pytree passed to the compiled functions (see the class docstring);
        for a Keras model, its variables' current values."""
        if self._keras_model is not None:
            return keras_values(self._keras_model)
        return self._params

    @params.setter
    def params(self, value: Any) -> None:
        self._params = value

    def _init_compiled(self, apply: Callable[[Any, Any], Any]) -> None:
        self.trace_count = 0

        def call(p: Any, x: Any) -> Any:
            return _first_output(apply(p, x))

        def fwd(p: Any, x: Any) -> Any:
            self.trace_count += 1
            return call(p, x)

        def vjp(p: Any, x: Any, cot: Any) -> Any:
            self.trace_count += 1
            out, pullback = jax.vjp(lambda z: call(p, z), x)
            return out, pullback(cot.astype(out.dtype))[0]

        def forward_with_pullback(p: Any, x: Any) -> Any:
            self.trace_count += 1
            return jax.vjp(lambda z: call(p, z), x)  # the pullback is a pytree (Partial)

        def pull(pullback: Any, cot: Any) -> Any:
            self.trace_count += 1
            return pullback(cot)[0]

        def grad(p: Any, x: Any, idx: Any) -> Any:
            self.trace_count += 1
            out, pullback = jax.vjp(lambda z: call(p, z), x)
            cots = jax.nn.one_hot(idx.T, out.shape[-1], dtype=out.dtype)  # (o, m, k)
            g = jax.vmap(pullback)(cots)[0]  # (o, m, h, w, c)
            return jnp.moveaxis(g, 0, -1)

        self.apply_with_params = call
        self._fwd = jax.jit(fwd)
        self._vjp = jax.jit(vjp)
        self._grad = jax.jit(grad)
        self._forward_with_pullback = jax.jit(forward_with_pullback)
        self._pull = jax.jit(pull)

    @property
    def apply_fn(self) -> Callable[[Any], Any]:
        """``x -> (n, k)`` with the parameters closed over (pure, ``jax.jit``-able)."""
        return functools.partial(self.apply_with_params, self.params)

    # -- helpers -------------------------------------------------------------------
    def to_framework(self, x: Any) -> Any:
        """NHWC images (NumPy) → a float32 jax array on the default device."""
        return jnp.asarray(as_nhwc_float32(x))

    def from_framework_grad(self, g: Any) -> np.ndarray:
        """A jax gradient array → NumPy float32 (already NHWC)."""
        return np.asarray(g, dtype=np.float32)

    def _measure_row_bytes(self, image_shape: tuple[int, ...]) -> int | None:
        """Bytes of the VJP's residuals per image: their abstract shapes (``jax.eval_shape``,
        nothing runs) for two images minus one image (so the weights do not count)."""

        def residual_bytes(m: int) -> int:
            spec = jax.ShapeDtypeStruct((m,) + tuple(image_shape), jnp.float32)

            def pullback(p: Any, x: Any) -> Any:
                return jax.vjp(lambda z: self.apply_with_params(p, z), x)[1]

            leaves = jax.tree_util.tree_leaves(jax.eval_shape(pullback, self.params, spec))
            return int(sum(np.prod(a.shape) * np.dtype(a.dtype).itemsize for a in leaves))

        return max(residual_bytes(2) - residual_bytes(1), 0) or None

    def _run(self, fn: Callable, *args: Any) -> Any:
        x = args[0]
        with self.memory_hint(len(x), tuple(x.shape[1:])):
            return self._run_traced(fn, *args)

    def _run_traced(self, fn: Callable, *args: Any) -> Any:
        try:
            return fn(self.params, *args)
        except _NOT_TRACEABLE as exc:
            raise TypeError(
                "the model cannot be traced by jax.jit (it converts traced values to NumPy or "
                "Python numbers). Wrap it without framework='jax' to use it as a NumPy "
                f"function (model-agnostic explainers only). JAX said: {exc}"
            ) from exc

    def _padded(self, x: np.ndarray, cap: int, *extra: tuple[np.ndarray, str]) -> list:
        size = bucket_size(len(x), cap, self.buckets)
        return [pad_rows(x, size)] + [pad_rows(a, size, mode) for a, mode in extra]

    # -- protocol ------------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        (xp,) = self._padded(x, max(len(x), self.rows_for(x.shape[1:], backward=False)))
        return np.asarray(self._run(self._fwd, xp))[: len(x)]

    def native_vjp(self, x: Any, cot: Any) -> tuple[Any, Any]:
        """Compiled ``(outputs, d sum(outputs * cot) / dx)`` on jax arrays ``(m, h, w, c)`` and
        ``(m, k)``; no padding (each new ``m`` compiles once)."""
        return self._run(self._vjp, x, cot)

    #: :meth:`vjp` takes ``cotangent`` as a callable of the outputs (one forward pass).
    vjp_accepts_callable = True

    def vjp(self, x: Any, cotangent: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs (n, k), d sum(outputs * cotangent) / dx (n, h, w, c))``, batched.

        ``cotangent`` is an ``(n, k)`` array, or a callable ``outputs (m, k) -> (m, k)``
        applied to each batch's outputs between the forward and the backward pass (so it must
        act row by row), for losses whose weights depend on the outputs."""
        x = as_image_batch(x)
        if callable(cotangent):
            return self._vjp_callable(x, cotangent)
        cot = check_cotangent(cotangent, len(x), self._n_outputs(x))
        outs, grads = [], []
        rows = self.rows_for(x.shape[1:])
        for s in batches(len(x), rows):
            xp, cp = self._padded(x[s], rows, (cot[s], "zeros"))
            out, g = self._run(self._vjp, xp, cp)
            m = s.stop - s.start
            outs.append(np.asarray(out, np.float32)[:m])
            grads.append(np.asarray(g, np.float32)[:m])
        return checked_vjp(np.concatenate(outs), np.concatenate(grads))

    def _vjp_callable(self, x: np.ndarray, cot_fn: Any) -> tuple[np.ndarray, np.ndarray]:
        """One compiled forward pass that returns the pullback with its residuals, the
        cotangent from the outputs, one compiled call of the pullback."""
        outs, grads = [], []
        rows = self.rows_for(x.shape[1:])
        for s in batches(len(x), rows):
            m = s.stop - s.start
            (xp,) = self._padded(x[s], rows)
            out_j, pullback = self._run(self._forward_with_pullback, xp)
            out = np.asarray(out_j, np.float32)
            cot = check_cotangent(cot_fn(out[:m]), m, out.shape[1])
            g = self._pull(pullback, jnp.asarray(pad_rows(cot, len(xp), "zeros"), out_j.dtype))
            outs.append(out[:m])
            grads.append(np.asarray(g, np.float32)[:m])
        return checked_vjp(np.concatenate(outs), np.concatenate(grads))

    def grad(self, x: Any, outputs: Any) -> np.ndarray:
        """``(n, h, w, c, o)``: gradient of output ``outputs[i, j]`` of image ``i``, for every
        requested output (``(o,)`` or ``(n, o)``): one compiled call per batch of images and
        group of up to ``OUTPUT_GROUP`` (16) outputs (forward, then ``vmap`` of the VJP)."""
        x = as_image_batch(x)
        idx = check_output_range(output_matrix(outputs, len(x)), self._n_outputs(x))
        o = idx.shape[1]
        res = np.empty(x.shape + (o,), np.float32)
        rows = self.grad_rows(x.shape[1:], idx.shape[1])
        for s in batches(len(x), rows):
            m = s.stop - s.start
            for group in output_groups(o):
                cols = idx[s, group].astype(np.int32)
                width = cols.shape[1]
                if o > OUTPUT_GROUP and width < OUTPUT_GROUP:  # one compiled group width
                    cols = np.pad(cols, ((0, 0), (0, OUTPUT_GROUP - width)), mode="edge")
                xp, ip = self._padded(x[s], rows, (cols, "zeros"))
                g = np.asarray(self._run(self._grad, xp, ip), np.float32)
                res[s, ..., group] = g[:m, ..., :width]
        return check_finite(res, "gradients")

    def grad_rows(self, image_shape: tuple[int, ...], outputs: int = 1) -> int:
        """Rows per compiled :meth:`grad` call: the backward passes of an output group (up to
        ``OUTPUT_GROUP``) are vectorised, so their buffers are held at once."""
        return self.rows_for(image_shape, min(int(outputs), OUTPUT_GROUP), vectorized=True)

    def _n_outputs(self, x: np.ndarray) -> int:
        """The model's number of outputs, from its abstract evaluation (nothing compiled)."""
        if getattr(self, "_k", None) is None:
            spec = jax.ShapeDtypeStruct((1,) + x.shape[1:], jnp.float32)
            self._k = int(jax.eval_shape(self.apply_with_params, self.params, spec).shape[-1])
        return self._k

    def layer(self, x: Any, layer: Any, outputs: Any, *, reshape: Any = None) -> Any:
        """A layer's activations ``(n, h', w', d)`` and the gradients of ``outputs`` w.r.t.
        them ``(n, h', w', d, o)``, with the layer's name; see :mod:`._layer_jax`."""
        from ._layer_jax import layer_jax

        x = as_image_batch(x)
        return layer_jax(self, x, layer, output_matrix(outputs, len(x)), reshape)

    def _deeplift(self, x: Any, baselines: Any, outputs: Any, **options: Any) -> np.ndarray:
        """DeepLIFT (rescale) / DeepSHAP, in passes within the memory budget
        (:func:`._deeplift_jax.deeplift_jax`, which takes ``softmax``, ``max_rows`` and
        ``progress``). ``fallbacks`` is accepted for the common signature: a JAX primitive
        without a rule is named in a warning when the pass is compiled."""
        from ._deeplift_jax import deeplift_jax

        options.pop("fallbacks", None)
        return deeplift_jax(self, x, baselines, outputs, **options)

    def flat_outputs(self) -> JaxBackend:
        """The model with its outputs flattened to ``(n, d)`` (an autoencoder's NHWC images),
        same parameters and batch settings (:func:`._compiled_jax.flat_outputs`)."""
        from ._compiled_jax import flat_outputs

        return flat_outputs(self)

    def compile_step(
        self, program: Callable, constants: Any, image_model: Any = None
    ) -> Callable | None:
        """``program`` as one ``jax.jit`` call (see
        :meth:`~xaiwidgets.backends.base.BaseBackend.compile_step` and
        :func:`._compiled_jax.compile_step`); ``None`` when ``image_model`` is not a JAX
        backend."""
        from ._compiled_jax import compile_step

        return compile_step(self, program, constants, image_model)

    def __repr__(self) -> str:
        what = type(self.module).__name__ if self.module is not None else "function"
        return f"JaxBackend({what}, batch_size={self.batch_size}, buckets={self.buckets})"
