"""One FISTA step of the CEM search as a single compiled call (JAX or TensorFlow).

When the classifier (and the autoencoder, if any) are JAX or TensorFlow/Keras models, a whole
step of :func:`._fista.fista` - classifier forward and backward at ``y``, autoencoder forward
and backward, gradient clipping, shrinkage, sign projection, momentum, and the classifier's
scores at the new iterate for the PN/PP check - is one ``jax.jit`` or ``tf.function`` call:
no NumPy round trip, one Python call per step. The objective is written once here, on an
array namespace (:class:`_JaxOps`, :class:`_TfOps`), and differentiated by the framework
(``jax.value_and_grad``, ``tf.GradientTape``); it is the one
:meth:`._fista.CEMProblem.loss_and_grad` computes by hand (same hinge, margin, softmax and
autoencoder terms), so every path gives the same iterates to float32 rounding.

Every per-row quantity is an argument, so a step compiles once per row count and is cached on
the classifier's backend (a slider move reuses it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CACHE_ATTR = "_cem_fista_steps"


def objective(ops: Any, scores: Any, image_model: Any, y: Any, row: dict) -> tuple[Any, Any]:
    """Smooth part of the CEM objective at ``y``: ``(sum over rows, per row)``.

    ``c max(0, hinge) + ||y - x0||^2 + gamma ||AE(z) - z||^2`` with ``z = y`` (PN) or
    ``x0 - y`` (PP) and ``hinge = ±(s_t - max_{j!=t} s_j) + kappa`` on the scores ``s(z)``.
    """
    z = ops.where(row["is_pp"], row["x0"] - y, y)
    s = scores(z)
    is_t = ops.one_hot(row["target"], s.shape[1])
    s_t = ops.sum(ops.where(is_t, s, 0.0), 1)
    margin = s_t - ops.max(ops.where(is_t, -np.inf, s), 1)
    pp = ops.flat(row["is_pp"])
    hinge = ops.where(pp, -margin, margin) + row["kappa"]
    per_row = row["c"] * ops.where(hinge > 0, hinge, 0.0) + ops.sum_rows(ops.square(y - row["x0"]))
    if image_model is not None:
        per_row = per_row + ops.flat(row["gamma"]) * ops.sum_rows(ops.square(image_model(z) - z))
    return ops.sum(per_row, 0), per_row


def update(ops: Any, a: Any, y: Any, g: Any, lr: Any, zt: Any, row: dict) -> tuple[Any, Any]:
    """FISTA's move from ``(a, y)`` with the gradient ``g``: the NumPy loop of
    :func:`._fista.fista`, with its :func:`~._fista.shrink` and :func:`~._fista.project_sign`
    on the framework's ops."""
    from ._fista import project_sign, shrink  # here: _fista imports this module at load

    x0, is_pp, no_info = row["x0"], row["is_pp"], row["no_info"]
    z = y - lr * ops.clip(g, row["clip_lo"], row["clip_hi"])
    a_new = project_sign(
        shrink(z, x0, row["beta"], row["lo"], row["hi"], ops), x0, no_info, is_pp, ops
    )
    return a_new, project_sign(a_new + zt * (a_new - a), x0, no_info, is_pp, ops)


class _CommonOps:
    def flat(self, t: Any) -> Any:
        return self.reshape(t, (-1,))

    def sum_rows(self, t: Any) -> Any:
        return self.sum(self.reshape(t, (t.shape[0], -1)), 1)


class _JaxOps(_CommonOps):
    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp

        self.where, self.abs, self.square, self.clip = jnp.where, jnp.abs, jnp.square, jnp.clip
        self.minimum, self.maximum, self.reshape = jnp.minimum, jnp.maximum, jnp.reshape
        self.sum = lambda t, axis: jnp.sum(t, axis=axis)
        self.max = lambda t, axis: jnp.max(t, axis=axis)
        self.one_hot = lambda t, k: jax.nn.one_hot(t, k, dtype=bool)
        self.softmax = lambda t: jax.nn.softmax(t, axis=-1)


class _TfOps(_CommonOps):
    def __init__(self) -> None:
        import tensorflow as tf

        self.where, self.abs, self.square = tf.where, tf.abs, tf.square
        self.clip = tf.clip_by_value
        self.minimum, self.maximum, self.reshape = tf.minimum, tf.maximum, tf.reshape
        self.sum = lambda t, axis: tf.reduce_sum(t, axis=axis)
        self.max = lambda t, axis: tf.reduce_max(t, axis=axis)
        self.one_hot = lambda t, k: tf.equal(t[:, None], tf.range(k, dtype=t.dtype)[None])
        self.softmax = lambda t: tf.nn.softmax(t, axis=-1)


def _build_jax(model: Any, ae: Any, soft: bool) -> Any:
    import jax

    ops = _JaxOps()

    def loss(y: Any, params: Any, ae_params: Any, row: dict) -> tuple[Any, Any]:
        def scores(z: Any) -> Any:
            out = model.apply_with_params(params, z)
            return ops.softmax(out) if soft else out

        image_model = None if ae is None else (lambda z: ae.apply_with_params(ae_params, z))
        return objective(ops, scores, image_model, y, row)

    grad_fn = jax.value_and_grad(loss, has_aux=True)

    def step(a: Any, y: Any, lr: Any, zt: Any, params: Any, ae_params: Any, row: dict) -> Any:
        (_, per_row), g = grad_fn(y, params, ae_params, row)
        a_new, y_new = update(ops, a, y, g, lr, zt, row)
        out = model.apply_with_params(params, ops.where(row["is_pp"], row["x0"] - a_new, a_new))
        l1 = ops.flat(row["beta"]) * ops.sum_rows(ops.abs(y - row["x0"]))
        return a_new, y_new, per_row + l1, ops.softmax(out) if soft else out

    jitted = jax.jit(step)
    ae_params = None if ae is None else ae.params
    return lambda a, y, lr, zt, row: jitted(a, y, lr, zt, model.params, ae_params, row)


def _in_model_layout(backend: Any, tf: Any, fn: Any, images_out: bool) -> Any:
    """``fn`` (a call of the backend's model) on NHWC tensors, whatever the model's layout."""
    if not getattr(backend, "channels_first", False):
        return fn
    to_nchw = lambda t: tf.transpose(t, [0, 3, 1, 2])  # noqa: E731
    if images_out:
        return lambda z: tf.transpose(fn(to_nchw(z)), [0, 2, 3, 1])
    return lambda z: fn(to_nchw(z))


def _build_tf(model: Any, ae: Any, soft: bool) -> Any:
    import tensorflow as tf

    ops = _TfOps()
    call = _in_model_layout(model, tf, model._call, False)
    image_model = None if ae is None else _in_model_layout(ae, tf, ae._forward, True)

    def scores(z: Any) -> Any:
        out = call(z)
        return ops.softmax(out) if soft else out

    @tf.function(reduce_retracing=True)
    def step(a: Any, y: Any, lr: Any, zt: Any, row: dict) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(y)
            total, per_row = objective(ops, scores, image_model, y, row)
        g = tape.gradient(total, y)
        a_new, y_new = update(ops, a, y, g, lr, zt, row)
        l1 = ops.flat(row["beta"]) * ops.sum_rows(ops.abs(y - row["x0"]))
        s_new = scores(ops.where(row["is_pp"], row["x0"] - a_new, a_new))
        return a_new, y_new, per_row + l1, s_new

    return step


_BUILDERS = {"jax": ("apply_with_params", _build_jax), "tensorflow": ("_forward", _build_tf)}


def compiled_step(problem: Any, lo: Any, hi: Any, no_info: Any, clip: tuple) -> Any:
    """A function ``(a, y, lr, zt) -> (a_new, y_new, loss at y, scores at a_new)``, one
    compiled call per step (arrays stay in the framework between steps); ``None`` unless the
    classifier and the autoencoder (if used) are models of one compiling framework."""
    model = problem.model
    framework = getattr(model, "framework", None)
    if framework not in _BUILDERS or not hasattr(model, _BUILDERS[framework][0]):
        return None
    ae = problem.ae.backend if problem.use_ae else None
    if ae is not None and (
        getattr(ae, "framework", None) != framework or not hasattr(ae, _BUILDERS[framework][0])
    ):
        return None
    x0 = problem.x0
    soft = problem.to_scores(model.predict(x0[:1]))[1]
    key = (ae, soft)  # the autoencoder's backend itself: no id reuse
    steps = model.__dict__.setdefault(_CACHE_ATTR, {})
    if key not in steps:
        steps[key] = _BUILDERS[framework][1](model, ae, soft)
    step = steps[key]
    image = x0.shape[1:]
    f32 = lambda v: np.asarray(v, np.float32)  # noqa: E731
    row = {
        "x0": f32(x0),
        "target": np.asarray(problem.target, np.int32),
        "c": f32(problem.c),
        "kappa": f32(problem.kappa),
        "beta": f32(problem.beta),
        "gamma": f32(problem.gamma),
        "is_pp": np.asarray(problem.is_pp),
        "lo": f32(np.broadcast_to(lo, image)),
        "hi": f32(np.broadcast_to(hi, image)),
        "no_info": f32(np.broadcast_to(no_info, image)),
        "clip_lo": np.float32(clip[0]),
        "clip_hi": np.float32(clip[1]),
    }
    if framework == "tensorflow":
        import tensorflow as tf

        row = {k: tf.constant(v) for k, v in row.items()}
        return lambda a, y, lr, zt: step(
            a, y, tf.constant(lr, tf.float32), tf.constant(zt, tf.float32), row
        )
    import jax.numpy as jnp

    row = {k: jnp.asarray(v) for k, v in row.items()}
    return lambda a, y, lr, zt: step(a, y, jnp.float32(lr), jnp.float32(zt), row)
