"""TensorFlow's array namespace (:data:`ARRAY_OPS`) and compiled programs
(:func:`compile_step`).

:data:`ARRAY_OPS` is the :class:`~._array_ops.ArrayOps` that framework-free formulas compute
with on tf tensors (the DeepLIFT rules, CEM's FISTA step), its ``value_and_grad`` a
``tf.GradientTape``; :func:`compile_step` runs such a program as one ``tf.function`` for
:meth:`TensorFlowBackend.compile_step
<xaiwidgets.backends.tensorflow_backend.TensorFlowBackend.compile_step>`. Importing this
module imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from ._array_ops import ArrayOps


def _tape_value_and_grad(f: Callable) -> Callable:
    """``(y, *args) -> ((total, aux), d total / d y)`` for ``f(y, *args) -> (total, aux)``,
    by ``tf.GradientTape``."""

    def value_and_grad(y: Any, *args: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(y)
            total, aux = f(y, *args)
        return (total, aux), tape.gradient(total, y)

    return value_and_grad


#: TensorFlow's array functions under the shared names (:mod:`._array_ops`).
ARRAY_OPS = ArrayOps(
    "tensorflow",
    where=tf.where,
    abs=tf.abs,
    square=tf.square,
    exp=tf.exp,
    log=tf.math.log,
    minimum=tf.minimum,
    maximum=tf.maximum,
    clip=tf.clip_by_value,
    reshape=tf.reshape,
    transpose=tf.transpose,
    sum=lambda t, axis, keepdims: tf.reduce_sum(t, axis=axis, keepdims=keepdims),
    max=lambda t, axis, keepdims: tf.reduce_max(t, axis=axis, keepdims=keepdims),
    softmax=lambda t: tf.nn.softmax(t, axis=-1),
    one_hot=lambda idx, k: tf.equal(idx[:, None], tf.range(k, dtype=idx.dtype)[None]),
    value_and_grad=_tape_value_and_grad,
)


def _as_tensor(value: Any) -> Any:
    """A tf tensor as it is; anything else as a constant (float64 as float32)."""
    if tf.is_tensor(value):
        return value
    arr = np.asarray(value)
    return tf.constant(arr.astype(np.float32) if arr.dtype == np.float64 else arr)


def on_nhwc(backend: Any, fn: Callable, images_out: bool) -> Callable:
    """``fn`` (a call of ``backend``'s model) on NHWC tensors, whatever the model's layout;
    image outputs back in NHWC."""
    if not backend.channels_first:
        return fn
    if images_out:
        return lambda z: tf.transpose(fn(tf.transpose(z, [0, 3, 1, 2])), [0, 2, 3, 1])
    return lambda z: fn(tf.transpose(z, [0, 3, 1, 2]))


def compile_step(
    backend: Any, program: Callable, constants: Any, image_model: Any = None
) -> Callable | None:
    """``program(ARRAY_OPS, scores, images, constants, *args)`` as one ``tf.function``
    (``reduce_retracing``): ``scores`` is ``backend``'s model on NHWC tensors (``_call``:
    the ``(n, k)`` scores), ``images`` ``image_model``'s images (``None`` without one).
    Traced once per ``(program, image_model)`` and argument shapes, cached on ``backend``;
    ``constants`` become tensors once, NumPy arguments on every call (float64 as float32).
    ``None`` when ``image_model`` is not a TensorFlow backend."""
    from .tensorflow_backend import TensorFlowBackend

    if image_model is not None and not isinstance(image_model, TensorFlowBackend):
        return None
    steps = backend.__dict__.setdefault("_compiled_steps", {})
    key = (program, image_model)  # the backends themselves: no id reuse
    if key not in steps:
        scores = on_nhwc(backend, backend._call, False)
        images = None if image_model is None else on_nhwc(image_model, image_model._forward, True)

        @tf.function(reduce_retracing=True)
        def run(constants: Any, *args: Any) -> Any:
            return program(ARRAY_OPS, scores, images, constants, *args)

        steps[key] = run
    run = steps[key]
    held = tf.nest.map_structure(_as_tensor, constants)
    return lambda *args: run(held, *(_as_tensor(a) for a in args))
