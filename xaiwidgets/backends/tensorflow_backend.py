"""`TensorFlowBackend` (a ``tf.Module``, ``tf.function`` or any function of tf tensors)
behind the backend protocol; Keras models on TensorFlow use its subclass
:class:`~xaiwidgets.backends.keras_backend.KerasBackend`.

Imported lazily by :func:`xaiwidgets.backends.wrap`; importing this module imports
TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import as_image_batch, batches
from ._checks import check_output_range
from ._layout import (
    OUTPUT_GROUP,
    as_nhwc_float32,
    check_cotangent,
    nchw_to_nhwc,
    nhwc_to_nchw,
    output_groups,
)
from .base import BaseBackend, check_finite, checked_vjp, output_matrix

try:
    import tensorflow as tf
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "TensorFlowBackend needs TensorFlow; install it with: pip install 'xaiwidgets[tensorflow]'"
    ) from exc

from ._array_ops import FlatOutputs  # noqa: E402
from ._compiled_tensorflow import ARRAY_OPS  # noqa: E402


def _output_tensor(out: Any) -> Any:
    """The class-score tensor of a model output (a tensor, the first of a list/tuple, or the
    only / ``logits`` / ``output_0`` entry of a dict, as SavedModel signatures return)."""
    if isinstance(out, dict):
        if len(out) == 1:
            return next(iter(out.values()))
        for key in ("logits", "output_0", "predictions", "probabilities"):
            if key in out:
                return out[key]
        raise TypeError(f"the model returned a dict with keys {sorted(out)}; expected one output")
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


class TensorFlowBackend(BaseBackend):
    """A TensorFlow model: a ``tf.Module`` with ``__call__``, a ``tf.function``, or any
    function ``f(x) -> (n, k)`` of tf tensors.

    Forward and gradient computations are ``tf.function``s with a fixed input signature
    ``(None, h, w, c)`` (batch dimension left free): they are traced once per image shape and
    serve every batch size without retracing or padding. Gradients use ``tf.GradientTape``;
    :meth:`grad` takes all requested outputs of a batch from one forward pass and one backward
    pass vectorised over one-hot cotangents (``tf.vectorized_map``).

    Parameters
    ----------
    model : callable on tf tensors, ``(n, h, w, c) -> (n, k)`` class scores.
    batch_size : int or None
        Images per call, also for :meth:`vjp` and :meth:`grad`. Default ``None``: from
        ``memory_budget`` and the bytes of the forward graph's per-image tensors
        (:meth:`_measure_row_bytes`); :meth:`grad` counts the vectorised backward passes of an
        output group.
    memory_budget : int or None
        Working memory in bytes (default 1 GiB); see :class:`~.base.BaseBackend`.
    channels_first : bool
        ``False`` (default): the model takes NHWC tensors; ``True``: NCHW.

    Attributes (stable, used by the DeepLIFT module and explainers' fast paths)
    ----------
    model : the wrapped model.
    channels_first : bool.
    to_framework(x) : NHWC NumPy → float32 tf tensor in the model's layout.
    from_framework_grad(t) : tf gradient in the model's layout → NumPy NHWC float32.
    native_vjp(x, cot) : compiled VJP on tf tensors (see there).
    trace_count : int, how many times a compiled function was traced.
    _call(x) : the model on a tf tensor, returning the ``(n, k)`` score tensor (output forms
        unpacked, rank checked); ``_ensure_built(image_shape)`` builds a lazy model. The
        DeepLIFT module runs the model through them.
    """

    framework = "tensorflow"
    #: :meth:`layer` takes a callable ``outputs`` (chosen from its own forward pass)
    layer_chooses_outputs = True

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        channels_first: bool = False,
    ):
        if not callable(model):
            raise TypeError(
                "TensorFlowBackend: expected a tf.Module, a tf.function or a function of tf "
                f"tensors, got {type(model).__module__}.{type(model).__name__}"
            )
        super().__init__(batch_size=batch_size, memory_budget=memory_budget)
        self.model = model
        self.channels_first = bool(channels_first)
        self.trace_count = 0
        self._compiled: dict[tuple[int, ...], dict[str, Callable]] = {}

    # -- model call and layout -----------------------------------------------------
    def _forward(self, x: Any) -> Any:
        return self.model(x)

    def _ensure_built(self, shape: tuple[int, ...]) -> None:
        """Hook for models that create their variables on the first call (Keras)."""

    def _call(self, x: Any) -> Any:
        out = _output_tensor(self._forward(x))
        if out.shape.rank != 2:
            raise ValueError(
                f"the model returned shape {tuple(out.shape)}; expected (n, k): one row of "
                "class scores per image"
            )
        return out

    def to_framework(self, x: Any) -> Any:
        """NHWC images (NumPy) → a float32 tf tensor in the model's layout."""
        arr = as_nhwc_float32(x)
        return tf.convert_to_tensor(nhwc_to_nchw(arr) if self.channels_first else arr)

    def from_framework_grad(self, t: Any) -> np.ndarray:
        """A gradient ``(..., c, h, w)`` (channels-first) or ``(..., h, w, c)`` → NumPy NHWC."""
        arr = np.asarray(t, dtype=np.float32)
        return nchw_to_nhwc(arr) if self.channels_first else arr

    # -- compiled functions ----------------------------------------------------------
    def _functions(self, image_shape: tuple[int, ...]) -> dict[str, Callable]:
        """The ``tf.function``s for one image shape (model layout), traced once each."""
        fns = self._compiled.get(image_shape)
        if fns is not None:
            return fns
        self._ensure_built(image_shape)
        x_spec = tf.TensorSpec((None,) + image_shape, tf.float32)

        def fwd(x: Any) -> Any:
            self.trace_count += 1
            return self._call(x)

        def vjp(x: Any, cot: Any) -> Any:
            self.trace_count += 1
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = self._call(x)
            g = tape.gradient(out, x, output_gradients=tf.cast(cot, out.dtype))
            return out, tf.zeros_like(x) if g is None else g

        def grad(x: Any, idx: Any) -> Any:
            self.trace_count += 1
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                out = self._call(x)
            cots = tf.one_hot(tf.transpose(idx), tf.shape(out)[1], dtype=out.dtype)

            def pull(cot: Any) -> Any:
                g = tape.gradient(out, x, output_gradients=cot)
                return tf.zeros_like(x) if g is None else g

            return tf.vectorized_map(pull, cots)  # (o, m, ...)

        fns = {
            "fwd": tf.function(fwd, input_signature=[x_spec]),
            "vjp": tf.function(
                vjp, input_signature=[x_spec, tf.TensorSpec((None, None), tf.float32)]
            ),
            "grad": tf.function(
                grad, input_signature=[x_spec, tf.TensorSpec((None, None), tf.int32)]
            ),
        }
        self._compiled[image_shape] = fns
        return fns

    def _fns_for(self, x: np.ndarray) -> dict[str, Callable]:
        h, w, c = x.shape[1:]
        return self._functions((c, h, w) if self.channels_first else (h, w, c))

    def _measure_row_bytes(self, image_shape: tuple[int, ...]) -> int | None:
        """Bytes per image of the compiled forward graph's tensors with a free batch dimension
        (every op output but identities and variable reads): an upper bound of what the
        backward pass keeps."""
        h, w, c = image_shape
        graph = self._functions((c, h, w) if self.channels_first else (h, w, c))["fwd"]
        total = 0
        for op in graph.get_concrete_function().graph.get_operations():
            if op.type in ("Identity", "ReadVariableOp", "Placeholder", "Const"):
                continue
            for t in op.outputs:
                dims = t.shape.as_list() if t.shape.rank else None
                if dims and dims[0] is None and all(d is not None for d in dims[1:]):
                    total += int(np.prod(dims[1:])) * t.dtype.size
        return total or None

    # -- protocol ------------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return self._fns_for(x)["fwd"](self.to_framework(x)).numpy()

    def native_vjp(self, x: Any, cot: Any) -> tuple[Any, Any]:
        """Compiled ``(outputs, d sum(outputs * cot) / dx)`` on tf tensors in the model's
        layout; any batch size, no retracing."""
        shape = tuple(int(d) for d in x.shape[1:])
        return self._functions(shape)["vjp"](x, tf.cast(cot, tf.float32))

    def vjp(self, x: Any, cotangent: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs (n, k), d sum(outputs * cotangent) / dx (n, h, w, c))``, batched.

        ``cotangent`` is an ``(n, k)`` array, or a callable ``outputs (m, k) -> (m, k)``
        applied to each batch's outputs (so it must act row by row): a compiled forward pass
        gives the outputs, the compiled VJP the gradient (two forward passes per batch)."""
        x = as_image_batch(x)
        cot_fn = cotangent if callable(cotangent) else None
        k = self._n_outputs(x)
        cot = None if cot_fn is not None else check_cotangent(cotangent, len(x), k)
        fns = self._fns_for(x)
        outs, grads = [], []
        rows = self.rows_for(x.shape[1:])
        with self.memory_hint(rows, x.shape[1:]):
            for s in batches(len(x), rows):
                xt = self.to_framework(x[s])
                if cot_fn is not None:
                    c = cot_fn(fns["fwd"](xt).numpy().astype(np.float32))
                    c = check_cotangent(c, s.stop - s.start, k)
                else:
                    c = cot[s]
                out, g = fns["vjp"](xt, tf.convert_to_tensor(c))
                outs.append(out.numpy().astype(np.float32))
                grads.append(self.from_framework_grad(g))
        return checked_vjp(np.concatenate(outs), np.concatenate(grads))

    def grad(self, x: Any, outputs: Any) -> np.ndarray:
        """``(n, h, w, c, o)``: gradient of output ``outputs[i, j]`` of image ``i``, for every
        requested output (``(o,)`` or ``(n, o)``): one compiled call per batch of images and
        group of up to ``OUTPUT_GROUP`` (16) outputs (forward, then a backward pass vectorised
        over the group's one-hot cotangents)."""
        x = as_image_batch(x)
        idx = check_output_range(output_matrix(outputs, len(x)), self._n_outputs(x))
        fn = self._fns_for(x)["grad"]
        res = np.empty(x.shape + (idx.shape[1],), np.float32)
        rows = self.grad_rows(x.shape[1:], idx.shape[1])
        with self.memory_hint(rows, x.shape[1:]):
            for s in batches(len(x), rows):
                xt = self.to_framework(x[s])
                for group in output_groups(idx.shape[1]):
                    g = fn(xt, tf.convert_to_tensor(idx[s, group].astype(np.int32)))
                    res[s, ..., group] = np.moveaxis(self.from_framework_grad(g), 0, -1)
        return check_finite(res, "gradients")

    def grad_rows(self, image_shape: tuple[int, ...], outputs: int = 1) -> int:
        """Rows per compiled :meth:`grad` call: the backward passes of an output group (up to
        ``OUTPUT_GROUP``) are vectorised, so their buffers are held at once."""
        return self.rows_for(image_shape, min(int(outputs), OUTPUT_GROUP), vectorized=True)

    def _n_outputs(self, x: np.ndarray) -> int:
        """The model's number of outputs (from one compiled forward pass on one image)."""
        if getattr(self, "_k", None) is None:
            self._k = int(self._predict_batch(x[:1]).shape[1])
        return self._k

    def _deeplift(self, x: Any, baselines: Any, outputs: Any, **options: Any) -> np.ndarray:
        """DeepLIFT (rescale) / DeepSHAP, in passes within the memory budget
        (:func:`._deeplift_keras.deeplift_keras`, which takes the options); ``fallbacks`` (a
        list) receives the TensorFlow ops crossed without a rule instead of a warning."""
        from ._deeplift_keras import deeplift_keras

        return deeplift_keras(self, x, baselines, outputs, **options)

    def flat_outputs(self) -> TensorFlowBackend:
        """The model with its outputs flattened to ``(n, d)`` in NHWC order (an autoencoder's
        images), same class, layout and batch settings."""
        return type(self)(
            FlatOutputs(self.model, ARRAY_OPS, self.channels_first),
            batch_size=self._batch_size,
            memory_budget=self._memory_budget,
            channels_first=self.channels_first,
        )

    def compile_step(
        self, program: Callable, constants: Any, image_model: Any = None
    ) -> Callable | None:
        """``program`` as one ``tf.function`` (see
        :meth:`~xaiwidgets.backends.base.BaseBackend.compile_step` and
        :func:`._compiled_tensorflow.compile_step`); ``None`` when ``image_model`` is not a
        TensorFlow backend."""
        from ._compiled_tensorflow import compile_step

        return compile_step(self, program, constants, image_model)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, batch_size={self.batch_size})"
