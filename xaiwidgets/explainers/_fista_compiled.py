"""One FISTA step of the CEM search as a single compiled call (JAX or TensorFlow backends).

When the classifier's backend compiles (``backend.compile_step``: the JAX and TensorFlow
backends), a whole step of :func:`._fista.fista` - classifier forward and backward at ``y``,
autoencoder forward and backward, gradient clipping, shrinkage, sign projection, momentum, and
the classifier's scores at the new iterate for the PN/PP check - is one ``jax.jit`` or
``tf.function`` call: no NumPy round trip, one Python call per step. The step is written once
here, framework-free, on the backend's array namespace (``ops``, an
:class:`~xaiwidgets.backends._array_ops.ArrayOps`) and differentiated by the framework
(``ops.value_and_grad``); its objective is the one :meth:`._fista.CEMProblem.loss_and_grad`
computes by hand (same hinge, margin, softmax and autoencoder terms), so every path gives the
same iterates to float32 rounding.

Every per-row quantity is an argument, so a step compiles once per row count and is cached on
the classifier's backend (a slider move reuses it).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


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


def fista_step(
    ops: Any,
    model: Any,
    image_model: Any,
    row: dict,
    a: Any,
    y: Any,
    lr: Any,
    zt: Any,
    *,
    soft: bool,
) -> tuple[Any, Any, Any, Any]:
    """One FISTA step from ``(a, y)``: ``(a_new, y_new, loss at y (with the L1 term), scores
    at a_new)``. ``model(z)`` gives the classifier's outputs on NHWC images, ``image_model(z)``
    the autoencoder's images (``None`` without one); ``soft``: scores are the softmax of the
    outputs. The program a backend's ``compile_step`` compiles."""

    def scores(z: Any) -> Any:
        out = model(z)
        return ops.softmax(out) if soft else out

    def loss(y: Any, row: dict) -> tuple[Any, Any]:
        return objective(ops, scores, image_model, y, row)

    (_, per_row), g = ops.value_and_grad(loss)(y, row)
    a_new, y_new = update(ops, a, y, g, lr, zt, row)
    l1 = ops.flat(row["beta"]) * ops.sum_rows(ops.abs(y - row["x0"]))
    return a_new, y_new, per_row + l1, scores(ops.where(row["is_pp"], row["x0"] - a_new, a_new))


#: The two programs (softmax scores or raw outputs), made once so the backends' caches hit.
_PROGRAMS = {soft: functools.partial(fista_step, soft=soft) for soft in (False, True)}


def compiled_step(problem: Any, lo: Any, hi: Any, no_info: Any, clip: tuple) -> Any:
    """A function ``(a, y, lr, zt) -> (a_new, y_new, loss at y, scores at a_new)``, one
    compiled call per step (arrays stay in the framework between steps); ``None`` unless the
    classifier's backend compiles (``backend.compile_step``) and the autoencoder (if used) is
    a model of the same framework."""
    model = problem.model
    x0 = problem.x0
    soft = problem.to_scores(model.predict(x0[:1]))[1]
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
    ae = problem.ae.backend if problem.use_ae else None
    step = model.compile_step(_PROGRAMS[soft], row, image_model=ae)
    if step is None:
        return None
    return lambda a, y, lr, zt: step(a, y, np.float32(lr), np.float32(zt))
