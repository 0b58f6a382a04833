"""One FISTA step of the CEM search as a single compiled JAX call.

When the classifier (and the autoencoder, if any) are :class:`~xaiwidgets.backends.JaxBackend`
models, a whole step of :func:`._fista.fista` - classifier forward and backward at ``y``,
autoencoder forward and backward, gradient clipping, shrinkage, sign projection, momentum, and
the classifier's scores at the new iterate for the PN/PP check - is one ``jax.jit`` function:
no NumPy round trip and one Python call per step. The objective is written as a JAX function
of ``y`` and differentiated by ``jax.value_and_grad``; it is the one
:meth:`._fista.CEMProblem.loss_and_grad` computes by hand (same hinge, margin, softmax and
autoencoder terms), so both paths give the same iterates to float32 rounding.

The jitted function takes every per-row quantity as an argument, so it compiles once per row
count and is cached on the classifier's backend (a slider move reuses it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CACHE_ATTR = "_cem_fista_steps"


def _build(model: Any, ae: Any, soft: bool, use_ae: bool) -> Any:
    import jax
    import jax.numpy as jnp

    f = model.apply_with_params
    g_ae = None if ae is None else ae.apply_with_params

    def scores(params: Any, z: Any) -> Any:
        out = f(params, z)
        return jax.nn.softmax(out, axis=-1) if soft else out

    def smooth_loss(y: Any, params: Any, ae_params: Any, row: dict) -> tuple[Any, Any]:
        z = jnp.where(row["is_pp"], row["x0"] - y, y)
        s = scores(params, z)
        n = s.shape[0]
        t = row["target"]
        s_t = s[jnp.arange(n), t]
        others = jnp.where(jax.nn.one_hot(t, s.shape[1], dtype=bool), -jnp.inf, s)
        margin = s_t - jnp.max(others, axis=1)
        pp = row["is_pp"].reshape(n)
        hinge = jnp.where(pp, -margin, margin) + row["kappa"]
        attack = jnp.where(hinge > 0, hinge, 0.0)
        d = (y - row["x0"]).reshape(n, -1)
        per_row = row["c"] * attack + jnp.sum(d * d, axis=1)
        if use_ae:
            r = (g_ae(ae_params, z) - z).reshape(n, -1)
            per_row = per_row + row["gamma"].reshape(n) * jnp.sum(r * r, axis=1)
        return jnp.sum(per_row), per_row

    grad_fn = jax.value_and_grad(smooth_loss, has_aux=True)

    def step(a: Any, y: Any, lr: Any, zt: Any, params: Any, ae_params: Any, row: dict) -> Any:
        x0, beta, is_pp = row["x0"], row["beta"], row["is_pp"]
        lo, hi, no_info = row["lo"], row["hi"], row["no_info"]
        (_, smooth), g = grad_fn(y, params, ae_params, row)
        g = jnp.clip(g, row["clip_lo"], row["clip_hi"])
        z = y - lr * g
        d = z - x0
        shrunk = jnp.where(
            d > beta,
            jnp.minimum(z - beta, hi),
            jnp.where(d < -beta, jnp.maximum(z + beta, lo), x0),
        )

        def project(v: Any) -> Any:
            farther = jnp.abs(v - no_info) > jnp.abs(x0 - no_info)
            return jnp.where(farther != is_pp, v, x0)

        a_new = project(shrunk)
        y_new = project(a_new + zt * (a_new - a))
        n = y.shape[0]
        l1 = jnp.sum(jnp.abs(y - x0).reshape(n, -1), axis=1)
        loss = smooth + beta.reshape(n) * l1
        s_new = scores(params, jnp.where(is_pp, x0 - a_new, a_new))
        return a_new, y_new, loss, s_new

    return jax.jit(step)


def compiled_step(problem: Any, lo: Any, hi: Any, no_info: Any, clip: tuple) -> Any:
    """A function ``(a, y, lr, zt) -> (a_new, y_new, loss at y, scores at a_new)`` on NumPy
    rows, one compiled call per step; ``None`` when the classifier (or the autoencoder) is
    not a JAX model."""
    model = problem.model
    if getattr(model, "framework", None) != "jax" or not hasattr(model, "apply_with_params"):
        return None
    ae = None
    if problem.use_ae:
        ae = problem.ae.backend
        if getattr(ae, "framework", None) != "jax" or not hasattr(ae, "apply_with_params"):
            return None
    import jax.numpy as jnp

    x0 = problem.x0
    probe = model.predict(x0[:1])
    soft = problem.to_scores(probe)[1]
    key = (ae, soft, problem.use_ae)  # the autoencoder's backend itself: no id reuse
    steps = model.__dict__.setdefault(_CACHE_ATTR, {})
    if key not in steps:
        steps[key] = _build(model, ae, soft, problem.use_ae)
    jitted = steps[key]
    col = problem.beta.shape
    row = {
        "x0": jnp.asarray(x0),
        "target": jnp.asarray(problem.target.astype(np.int32)),
        "c": jnp.asarray(problem.c, jnp.float32),
        "kappa": jnp.asarray(problem.kappa, jnp.float32),
        "beta": jnp.asarray(np.broadcast_to(problem.beta, col), jnp.float32),
        "gamma": jnp.asarray(problem.gamma, jnp.float32),
        "is_pp": jnp.asarray(problem.is_pp),
        "lo": jnp.asarray(np.broadcast_to(lo, x0.shape[1:]), jnp.float32),
        "hi": jnp.asarray(np.broadcast_to(hi, x0.shape[1:]), jnp.float32),
        "no_info": jnp.asarray(np.broadcast_to(no_info, x0.shape[1:]), jnp.float32),
        "clip_lo": jnp.float32(clip[0]),
        "clip_hi": jnp.float32(clip[1]),
    }
    ae_params = None if ae is None else ae.params

    def run(a: Any, y: Any, lr: float, zt: float) -> tuple:
        a_new, y_new, loss, s = jitted(
            a, y, jnp.float32(lr), jnp.float32(zt), model.params, ae_params, row
        )
        return a_new, y_new, loss, s

    return run
