"""DeepLIFT (rescale rule) / DeepSHAP for Keras 3 and TensorFlow models, op by op.

Inside one ``tf.function`` the model is called twice: on the ``b`` references, plainly, and on
the pair rows (each image repeated once per reference). The ops of the pair call that depend
on the images are then walked in graph order: each gets the DeepLIFT rule of its type
(:mod:`._deeplift_tensorflow_ops`: rescale for elementwise nonlinearities, the Shapley split for
products of two varying inputs and divisions, shap's rules for ``MaxPool`` and ``Softmax``)
by setting its gradient op type, or keeps TensorFlow's gradient when it is linear. The
``t``-th such op of the pair call meets the ``t``-th of the reference call, whose inputs and
outputs give the reference side of the rule. An op type with neither a rule nor known
linearity is named in a :class:`UserWarning` (its own gradient is used, so completeness may
fail); a nested ``tf.function`` is crossed only when its body is linear (Keras' grouped
convolution, compiled with XLA). Dropout is off (``training=False``). One ``tf.gradients``
per requested output gives the input multipliers.

Imported only by :meth:`TensorFlowBackend.deeplift
<xaiwidgets.backends.tensorflow_backend.TensorFlowBackend>`.
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

from . import _deeplift_rules as rules
from . import _deeplift_tensorflow_ops as tf_ops
from ._deeplift_passes import Passes
from ._layout import pad_rows
from ._tensorflow_conv_grad import GRADIENT_NAME as _CONV_GRADIENT

_OPS = tf_ops.OPS
_STATE = tf_ops.STATE
_sides = tf_ops.sides
_cached = tf_ops.cached


def _maxpool_grad(op: Any, grad: Any) -> Any:
    u = op.inputs[0]
    attrs = {k: op.get_attr(k) for k in ("ksize", "strides", "padding", "data_format")}
    window = _tiling_window(u, attrs)
    if window is None:
        return _maxpool_grad_general(op, grad, attrs)
    kh, kw = window
    n, h, w, ch = (int(d) for d in u.shape)
    gh, gw = h // kh, w // kw

    def make() -> Any:
        (u_p, u_r), (y_p, y_r) = _sides(op), _sides(op, 0, "outputs")
        to_x, to_r = rules.max_split(_OPS, y_p, y_r)
        # each part of the difference lands on its own argmax (TensorFlow's tie-break)
        routed = tf.raw_ops.MaxPoolGrad(orig_input=u_p, orig_output=y_p, grad=to_x, **attrs)
        routed += tf.raw_ops.MaxPoolGrad(orig_input=u_r, orig_output=y_r, grad=to_r, **attrs)
        d = u_p - u_r
        weights = tf.where(tf.abs(d) < rules.EPS_ROUTE, 0.0, routed / d)
        return tf.reshape(weights[:, : gh * kh, : gw * kw], (n, gh, kh, gw, kw, ch))

    weights = _cached(op, make)
    routed = tf.reshape(grad[:, :, None, :, None, :] * weights, (n, gh * kh, gw * kw, ch))
    if gh * kh != h or gw * kw != w:
        routed = tf.pad(routed, [[0, 0], [0, h - gh * kh], [0, w - gw * kw], [0, 0]])
    return routed


def _maxpool_grad_general(op: Any, grad: Any, attrs: dict) -> Any:
    """The max-pool rule through TensorFlow's own ``MaxPoolGrad`` (any layout or padding)."""
    if attrs["padding"] == b"EXPLICIT":
        attrs["explicit_paddings"] = op.get_attr("explicit_paddings")

    def make() -> Any:
        (u_p, u_r), (y_p, y_r) = _sides(op), _sides(op, 0, "outputs")
        to_x, to_r = rules.max_split(_OPS, y_p, y_r)
        inv_du = rules.safe_div(_OPS, 1.0, u_p - u_r, rules.EPS_ROUTE, 0.0)
        return to_x, to_r, inv_du, u_r, y_r

    to_x, to_r, inv_du, u_r, y_r = _cached(op, make)
    u, y = op.inputs[0], op.outputs[0]
    routed = tf.raw_ops.MaxPoolGrad(orig_input=u, orig_output=y, grad=grad * to_x, **attrs)
    routed += tf.raw_ops.MaxPoolGrad(orig_input=u_r, orig_output=y_r, grad=grad * to_r, **attrs)
    return routed * inv_du


def _tiling_window(u: Any, attrs: dict) -> tuple[int, int] | None:
    """``(kh, kw)`` of an NHWC max pool whose windows tile its input (stride = window, no
    padding), else ``None``."""
    ksize, strides = list(attrs["ksize"]), list(attrs["strides"])
    if (
        attrs["data_format"] != b"NHWC"
        or len(ksize) != 4
        or ksize != strides
        or ksize[0] != 1
        or ksize[3] != 1
        or not u.shape.is_fully_defined()
    ):
        return None
    h, w = int(u.shape[1]), int(u.shape[2])
    if attrs["padding"] == b"SAME" and (h % ksize[1] or w % ksize[2]):
        return None
    if attrs["padding"] not in (b"VALID", b"SAME"):
        return None
    return ksize[1], ksize[2]


def _softmax_grad(op: Any, grad: Any) -> Any:
    log = op.type == "LogSoftmax"
    rule = _STATE.softmax

    def make() -> Any:
        z_p, z_r = _sides(op)
        if log:
            coef = rules.log_softmax_coefficients(_OPS, z_p, z_r)
        else:
            coef = rules.softmax_coefficients(_OPS, z_p, z_r, rule)
        return tuple(tf.broadcast_to(t, tf.shape(z_p)) for t in coef)

    coef = _cached(op, make)
    if log:
        return rules.log_softmax_apply(_OPS, coef, grad)
    return rules.softmax_apply(_OPS, coef, grad, rule)


tf_ops.register({"MaxPool": _maxpool_grad, "Softmax": _softmax_grad, "LogSoftmax": _softmax_grad})
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _path(graph: Any, start: int, source: Any) -> tuple[list, set]:
    """The ops created since ``start`` that read a tensor depending on ``source``, in graph
    order, and the set of (refs of) those dependent tensors."""
    varying = {source.ref()}
    ops = []
    for op in graph.get_operations()[start:]:
        if any(t.ref() in varying for t in op.inputs):
            ops.append(op)
            varying.update(t.ref() for t in op.outputs)
    return ops, varying


def _nested_body(graph: Any, op: Any) -> list[str]:
    """Op types of a nested function call's body that are not linear (empty: it may be
    crossed with its own gradient)."""
    fn = graph._get_function(op.get_attr("f").name)
    body = getattr(fn, "graph", None)
    if body is None:
        return [op.type]
    return sorted({o.type for o in body.get_operations() if o.type not in tf_ops.NESTED_OK})


def _assign_rules(graph: Any, pair_ops: list) -> list[str]:
    """Give every op on the images' path its DeepLIFT rule (its gradient op type); return the
    ops without one, as ``"Type (name)"``."""
    missing = []
    for op in pair_ops:
        if op.type in tf_ops.CALLS:
            inner = _nested_body(graph, op)
            if inner:
                raise NotImplementedError(
                    "DeepLIFT cannot look inside a nested tf.function with nonlinear ops "
                    f"({op.name} holds {', '.join(inner)}): pass the Keras model, or the "
                    "undecorated Python function"
                )
            continue
        rule = tf_ops.rule_of(op)
        if rule == "?":
            missing.append(f"{op.type} ({op.name})")
        elif rule is not None:
            value = attr_value_pb2.AttrValue(s=(tf_ops.PREFIX + rule).encode())
            op._set_attr("_gradient_op_type", value)
    return missing


def _build(
    backend: Any, c: int, n_ref: int, o: int, image_shape: tuple, softmax: str
) -> tuple[Any, list[str]]:
    """The traced attribution function for one (images, references, outputs) shape, and the
    ops it crossed without a DeepLIFT rule."""
    missing: list[str] = []

    def attribute(xt: Any, rt: Any, cot: Any) -> Any:
        graph = tf.compat.v1.get_default_graph()
        start = len(graph.get_operations())
        backend._call(rt)
        ref_ops, _ = _path(graph, start, rt)
        inp = tf.repeat(xt, n_ref, axis=0)
        start = len(graph.get_operations())
        with graph.gradient_override_map({"Conv2D": _CONV_GRADIENT}):
            out = backend._call(inp)
        pair_ops, varying = _path(graph, start, inp)
        if [op.type for op in ref_ops] != [op.type for op in pair_ops]:
            raise RuntimeError(
                "DeepLIFT: the model made different ops for the references and the images "
                "(data-dependent control flow?)"
            )
        _STATE.varying = varying
        missing[:] = _assign_rules(graph, pair_ops)
        _STATE.mapping = {p.name: r for p, r in zip(pair_ops, ref_ops)}
        _STATE.lead, _STATE.softmax, _STATE.cache = (c, n_ref), softmax, {}
        try:
            grads = tf.stack([tf.gradients(out, inp, grad_ys=cot[j])[0] for j in range(o)])
        finally:
            _STATE.mapping, _STATE.cache, _STATE.varying = {}, {}, set()
        delta = tf.reshape(xt[:, None] - rt[None], (c * n_ref,) + image_shape)
        return tf.reduce_mean(tf.reshape(grads * delta, (o, c, n_ref) + image_shape), axis=2)

    spec = [
        tf.TensorSpec((c,) + image_shape, tf.float32),
        tf.TensorSpec((n_ref,) + image_shape, tf.float32),
        tf.TensorSpec((o, c * n_ref, None), tf.float32),
    ]
    fn = tf.function(attribute, input_signature=spec, autograph=False)
    fn.get_concrete_function()
    return fn, missing


def deeplift_keras(
    backend: Any,
    x: Any,
    baselines: Any,
    outputs: Any,
    *,
    softmax: str = "shapley",
    max_rows: int | None = None,
    fallbacks: list | None = None,
    progress: Callable[[float], Any] | None = None,
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
    max_rows : pair rows per pass. Default: ``max(2 * backend.batch_size, b)`` (measured on
        CPU, one pass of 400 rows beats four of 100 by a fifth), lowered so that a pass keeps
        its activations within ``backend.memory_budget`` (1 GiB by default;
        :func:`~._deeplift_rules.plan_passes`; references split into equal chunks when one
        image's ``b`` rows do not fit), and to passes of about half a second
        (:class:`~._deeplift_passes.Passes`). The last chunk of images is padded to the
        others' size, so each shape is traced once. Given: at most ``max_rows`` rows, no
        budget, no timing.
    fallbacks : a list to which the TensorFlow ops crossed without a DeepLIFT rule are
        appended (then no warning is given: the caller reports them); ``None``: warn.
    progress : ``progress(fraction)`` is called before every pass with the fraction of pair
        rows done, and may raise (a cancelled run stops there).

    Returns
    -------
    ``(n, h, w, c, o)`` float32 attributions; for each image and output they sum to
    ``f(x_i) - mean_k f(baselines_k)``.
    """
    x, refs, idx = rules.prepare_inputs(x, baselines, outputs, softmax)
    n, n_ref = len(x), len(refs)
    o = idx.shape[1]
    rt = backend.to_framework(refs)
    image_shape = tuple(rt.shape[1:])
    backend._ensure_built(image_shape)
    k = int(backend._call(rt[:1]).shape[1])
    row_bytes = None if max_rows else _row_bytes(backend, image_shape)
    rows = max_rows or max(2 * backend.batch_size, n_ref)
    plan = Passes(backend, n, refs, o, rows, row_bytes, paced=max_rows is None)
    cache = _FUNCTIONS.setdefault(backend, {})
    res = np.empty(x.shape + (o,), np.float32)
    missing: list[str] = []
    for s in plan.image_chunks():
        m, c = s.stop - s.start, plan.images  # the chunk is padded to the planned images
        xs, ids = pad_rows(x[s], c), pad_rows(idx[s], c)
        xt = backend.to_framework(xs)
        total = None
        for r in plan.reference_chunks():
            if progress is not None:
                progress(plan.fraction)
            b = r.stop - r.start
            key = (c, b, o, image_shape, softmax)
            compiled = key not in cache  # traced here; its first run also optimises the graph
            if compiled:
                cache[key] = _build(backend, c, b, o, image_shape, softmax)
            fn, missing = cache[key]
            cot = np.zeros((o, c * b, k), np.float32)
            cot[
                np.arange(o)[:, None],
                np.arange(c * b)[None, :],
                np.repeat(ids, b, axis=0).T,
            ] = 1.0
            began = time.perf_counter()
            attr = fn(xt, rt[r.start : r.stop], tf.constant(cot)).numpy().astype(np.float64)
            plan.took(time.perf_counter() - began, compiled=compiled)
            attr *= b / n_ref
            total = attr if total is None else total + attr
        res[s] = np.moveaxis(backend.from_framework_grad(total), 0, -1)[:m]
    backend.deeplift_unsupported = tuple(missing)
    if missing and fallbacks is not None:
        fallbacks.extend(f"TensorFlow op {op}" for op in missing)
    elif missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        warnings.warn(
            f"DeepLIFT has no rule for the TensorFlow ops {shown}: they are differentiated as "
            "usual, so the attributions may not sum to f(x) - f(baseline)",
            UserWarning,
            stacklevel=3,
        )
    return res


def _row_bytes(backend: Any, image_shape: tuple) -> int:
    """Bytes of the model's float activations for one image: the outputs of every op of the
    backend's traced forward function whose leading (batch) dimension is free."""
    graph = backend._functions(image_shape)["fwd"].get_concrete_function().graph
    n = 0
    for op in graph.get_operations():
        for t in op.outputs:
            shape = t.shape
            if t.dtype.is_floating and shape.rank and shape[0] is None:
                n += int(np.prod([d or 1 for d in shape.as_list()[1:]])) * t.dtype.size
    return n
