"""DeepLIFT (rescale rule) / DeepSHAP for Keras 3 and TensorFlow models.

Inside one ``tf.function`` the model is called twice: on the ``b`` references, plainly, and on
the pair rows (each image repeated once per reference) under a gradient override map that
gives the nonlinear TensorFlow ops (``Relu``, ``Elu``, ``Sigmoid``, ``Tanh``, ``Softplus``,
``MaxPool``, ``Softmax``, ...) a DeepLIFT gradient. The ``t``-th nonlinear op of the pair call
meets the ``t``-th of the reference call, whose input and output give the reference side of
the rule (:mod:`._deeplift_rules`); linear ops keep their own gradients and Dropout is off
(``training=False``). One ``tf.gradients`` per requested output gives the input multipliers.

Imported only by :meth:`TensorFlowBackend.deeplift
<xaiwidgets.backends.keras_backend.TensorFlowBackend>`.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import tensorflow as tf

from .. import _arrays
from . import _deeplift_rules as rules
from .base import output_matrix


class _Ops:
    """The array namespace :mod:`._deeplift_rules` computes with."""

    where = staticmethod(tf.where)
    abs = staticmethod(tf.abs)
    maximum = staticmethod(tf.maximum)
    exp = staticmethod(tf.exp)
    log = staticmethod(tf.math.log)

    @staticmethod
    def sum_last(t: Any) -> Any:
        return tf.reduce_sum(t, axis=-1, keepdims=True)

    @staticmethod
    def max_last(t: Any) -> Any:
        return tf.reduce_max(t, axis=-1, keepdims=True)


_OPS = _Ops()

#: Elementwise op types and how to evaluate them from an op's attributes.
_ELEMENTWISE = {
    "Relu": lambda op: tf.nn.relu,
    "Relu6": lambda op: tf.nn.relu6,
    "Elu": lambda op: tf.nn.elu,
    "Selu": lambda op: tf.nn.selu,
    "Sigmoid": lambda op: tf.sigmoid,
    "Tanh": lambda op: tf.tanh,
    "Softplus": lambda op: tf.nn.softplus,
    "Softsign": lambda op: tf.nn.softsign,
    "Exp": lambda op: tf.exp,
    "LeakyRelu": lambda op: lambda t: tf.nn.leaky_relu(t, alpha=op.get_attr("alpha")),
}
_HANDLED = (*_ELEMENTWISE, "MaxPool", "Softmax", "LogSoftmax")
_PREFIX = "XaiwidgetsDeepLift"

_STATE = threading.local()


def _pair_split(op: Any) -> tuple[Any, Any, tuple[int, int]]:
    """The reference op matched to ``op`` and the ``(c, b)`` lead shape of the pair rows."""
    ref = _STATE.mapping[op.name]
    return ref, _STATE.lead


def _lead_view(t: Any, lead: tuple[int, int]) -> Any:
    return tf.reshape(t, lead + tuple(t.shape[1:]))


def _cached(op: Any, make: Any) -> Any:
    """Coefficients of ``op``, computed once per trace (each output's ``tf.gradients`` call
    asks again)."""
    cache = _STATE.cache
    if op.name not in cache:
        cache[op.name] = make()
    return cache[op.name]


def _elementwise_grad(op: Any, grad: Any) -> Any:
    ref, lead = _pair_split(op)
    f = _ELEMENTWISE[op.type](op)

    def make() -> Any:
        u, y = op.inputs[0], op.outputs[0]
        m = rules.rescale(
            _OPS,
            f,
            _lead_view(u, lead),
            ref.inputs[0][None],
            _lead_view(y, lead),
            ref.outputs[0][None],
        )
        return tf.reshape(m, tf.shape(u))

    return grad * _cached(op, make)


def _maxpool_grad(op: Any, grad: Any) -> Any:
    ref, lead = _pair_split(op)
    u, y = op.inputs[0], op.outputs[0]
    reps = [lead[0]] + [1] * (len(u.shape) - 1)
    attrs = {k: op.get_attr(k) for k in ("ksize", "strides", "padding", "data_format")}
    if attrs["padding"] == b"EXPLICIT":
        attrs["explicit_paddings"] = op.get_attr("explicit_paddings")

    def make() -> Any:
        u_r, y_r = ref.inputs[0], ref.outputs[0]
        to_x, to_r = rules.max_split(_OPS, _lead_view(y, lead), y_r[None])
        inv_du = rules.safe_div(_OPS, 1.0, _lead_view(u, lead) - u_r[None], rules.EPS_ROUTE, 0.0)
        return (
            tf.reshape(to_x, tf.shape(y)),
            tf.reshape(to_r, tf.shape(y)),
            tf.reshape(inv_du, tf.shape(u)),
            tf.tile(u_r, reps),
            tf.tile(y_r, reps),
        )

    to_x, to_r, inv_du, u_rt, y_rt = _cached(op, make)
    routed = tf.raw_ops.MaxPoolGrad(orig_input=u, orig_output=y, grad=grad * to_x, **attrs)
    routed += tf.raw_ops.MaxPoolGrad(orig_input=u_rt, orig_output=y_rt, grad=grad * to_r, **attrs)
    return routed * inv_du


def _softmax_grad(op: Any, grad: Any) -> Any:
    ref, lead = _pair_split(op)
    log = op.type == "LogSoftmax"
    rule = _STATE.softmax

    def make() -> Any:
        z_p, z_r = _lead_view(op.inputs[0], lead), ref.inputs[0][None]
        if log:
            coef = rules.log_softmax_coefficients(_OPS, z_p, z_r)
        else:
            coef = rules.softmax_coefficients(_OPS, z_p, z_r, rule)
        full = lead + tuple(op.inputs[0].shape[1:])
        return tuple(tf.reshape(tf.broadcast_to(t, full), tf.shape(op.inputs[0])) for t in coef)

    coef = _cached(op, make)
    if log:
        return rules.log_softmax_apply(_OPS, coef, grad)
    return rules.softmax_apply(_OPS, coef, grad, rule)


def _register() -> None:
    for op_type in _HANDLED:
        fn = (
            _maxpool_grad
            if op_type == "MaxPool"
            else _softmax_grad
            if op_type in ("Softmax", "LogSoftmax")
            else _elementwise_grad
        )
        try:
            tf.RegisterGradient(_PREFIX + op_type)(fn)
        except KeyError:  # already registered (module reloaded)
            pass


_register()
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _handled_ops(graph: Any, start: int) -> list:
    return [op for op in graph.get_operations()[start:] if op.type in _HANDLED]


def _build(backend: Any, c: int, n_ref: int, o: int, image_shape: tuple, softmax: str) -> Any:
    """The traced attribution function for one (images, references, outputs) shape."""

    def attribute(xt: Any, rt: Any, cot: Any) -> Any:
        graph = tf.compat.v1.get_default_graph()
        start = len(graph.get_operations())
        backend._call(rt)
        ref_ops = _handled_ops(graph, start)
        inp = tf.repeat(xt, n_ref, axis=0)
        start = len(graph.get_operations())
        with graph.gradient_override_map({t: _PREFIX + t for t in _HANDLED}):
            out = backend._call(inp)
        pair_ops = _handled_ops(graph, start)
        if [op.type for op in ref_ops] != [op.type for op in pair_ops]:
            raise RuntimeError(
                "DeepLIFT: the model made different nonlinear ops for the references and the "
                "images (data-dependent control flow?)"
            )
        _STATE.mapping = {p.name: r for p, r in zip(pair_ops, ref_ops)}
        _STATE.lead, _STATE.softmax, _STATE.cache = (c, n_ref), softmax, {}
        try:
            grads = tf.stack([tf.gradients(out, inp, grad_ys=cot[j])[0] for j in range(o)])
        finally:
            _STATE.mapping, _STATE.cache = {}, {}
        delta = tf.reshape(xt[:, None] - rt[None], (c * n_ref,) + image_shape)
        return tf.reduce_mean(tf.reshape(grads * delta, (o, c, n_ref) + image_shape), axis=2)

    spec = [
        tf.TensorSpec((c,) + image_shape, tf.float32),
        tf.TensorSpec((n_ref,) + image_shape, tf.float32),
        tf.TensorSpec((o, c * n_ref, None), tf.float32),
    ]
    return tf.function(attribute, input_signature=spec)


def deeplift_keras(
    backend: Any,
    x: Any,
    baselines: Any,
    outputs: Any,
    *,
    softmax: str = "shapley",
    max_rows: int | None = None,
) -> np.ndarray:
    """DeepLIFT rescale attributions of ``x`` averaged over ``baselines`` (DeepSHAP).

    Parameters
    ----------
    backend : KerasBackend or TensorFlowBackend
        Uses ``_call``, ``_ensure_built``, ``to_framework``, ``from_framework_grad``,
        ``channels_first`` and ``batch_size``.
    x : float32 ``(n, h, w, c)`` images; baselines : float32 ``(b, h, w, c)`` references.
    outputs : ``(o,)`` or ``(n, o)`` class indices.
    softmax : ``"shapley"`` (default, shap's TensorFlow rule) or ``"diagonal"``.
    max_rows : pair rows per pass (default ``max(backend.batch_size, b)``).

    Returns
    -------
    ``(n, h, w, c, o)`` float32 attributions; for each image and output they sum to
    ``f(x_i) - mean_k f(baselines_k)``.
    """
    x = _arrays.as_images(x, layout="nhwc")
    refs = _arrays.as_images(baselines, name="baselines", layout="nhwc")
    if refs.shape[1:] != x.shape[1:]:
        raise ValueError(f"baselines: expected images of shape {x.shape[1:]}, got {refs.shape[1:]}")
    n, n_ref = len(x), len(refs)
    idx = output_matrix(outputs, n)
    o = idx.shape[1]
    rules.check_softmax_rule(softmax)
    per_pass = min(n, rules.images_per_pass(n_ref, max_rows or max(backend.batch_size, n_ref)))
    rt = backend.to_framework(refs)
    image_shape = tuple(rt.shape[1:])
    backend._ensure_built(image_shape)
    k = int(backend._call(rt[:1]).shape[1])
    cache = _FUNCTIONS.setdefault(backend, {})
    key = (per_pass, n_ref, o, image_shape, softmax)
    if key not in cache:
        cache[key] = _build(backend, per_pass, n_ref, o, image_shape, softmax)
    fn = cache[key]
    res = np.empty(x.shape + (o,), np.float32)
    for s in _arrays.batches(n, per_pass):
        m = s.stop - s.start
        xs = np.concatenate([x[s], np.repeat(x[s.stop - 1 : s.stop], per_pass - m, 0)])
        ids = np.concatenate([idx[s], np.repeat(idx[s.stop - 1 : s.stop], per_pass - m, 0)])
        cot = np.zeros((o, per_pass * n_ref, k), np.float32)
        cot[
            np.arange(o)[:, None],
            np.arange(per_pass * n_ref)[None, :],
            np.repeat(ids, n_ref, axis=0).T,
        ] = 1.0
        attr = fn(backend.to_framework(xs), rt, tf.constant(cot))
        res[s] = np.moveaxis(backend.from_framework_grad(attr.numpy()), 0, -1)[:m]
    return res
