"""jax's array namespace (:data:`ARRAY_OPS`), compiled programs (:func:`compile_step`) and
flattened image models (:func:`flat_outputs`).

:data:`ARRAY_OPS` is the :class:`~._array_ops.ArrayOps` that framework-free formulas compute
with on jax arrays (the DeepLIFT rules, CEM's FISTA step); :func:`compile_step` runs such a
program as one ``jax.jit`` call for :meth:`JaxBackend.compile_step
<xaiwidgets.backends.jax_backend.JaxBackend.compile_step>`. Importing this module imports jax.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ._array_ops import ArrayOps, FlatOutputs

#: jax's array functions under the shared names (:mod:`._array_ops`).
ARRAY_OPS = ArrayOps(
    "jax",
    where=jnp.where,
    abs=jnp.abs,
    square=jnp.square,
    exp=jnp.exp,
    log=jnp.log,
    minimum=jnp.minimum,
    maximum=jnp.maximum,
    clip=jnp.clip,
    reshape=jnp.reshape,
    transpose=jnp.transpose,
    sum=lambda t, axis, keepdims: jnp.sum(t, axis=axis, keepdims=keepdims),
    max=lambda t, axis, keepdims: jnp.max(t, axis=axis, keepdims=keepdims),
    softmax=lambda t: jax.nn.softmax(t, axis=-1),
    one_hot=lambda idx, k: jax.nn.one_hot(idx, k, dtype=bool),
    value_and_grad=lambda f: jax.value_and_grad(f, has_aux=True),
)


def compile_step(
    backend: Any, program: Callable, constants: Any, image_model: Any = None
) -> Callable | None:
    """``program(ARRAY_OPS, scores, images, constants, *args)`` as one ``jax.jit`` call, the
    parameters of both models passed as arguments (not baked in as constants): ``scores`` is
    ``backend``'s model, ``images`` ``image_model``'s (``None`` without one). Compiled once per
    ``(program, image_model)`` and argument shapes, cached on ``backend``; ``constants`` go to
    the device once. ``None`` when ``image_model`` is not a JAX backend."""
    from .jax_backend import JaxBackend

    if image_model is not None and not isinstance(image_model, JaxBackend):
        return None
    steps = backend.__dict__.setdefault("_compiled_steps", {})
    key = (program, image_model)  # the backends themselves: no id reuse
    if key not in steps:
        apply = backend.apply_with_params
        ae_apply = None if image_model is None else image_model.apply_with_params

        def run(params: Any, ae_params: Any, constants: Any, *args: Any) -> Any:
            scores = functools.partial(apply, params)
            images = None if ae_apply is None else functools.partial(ae_apply, ae_params)
            return program(ARRAY_OPS, scores, images, constants, *args)

        steps[key] = jax.jit(run)
    run = steps[key]
    held = jax.tree_util.tree_map(jnp.asarray, constants)
    ae_params = None if image_model is None else image_model.params

    def step(*args: Any) -> Any:
        args = tuple(jnp.float32(a) if isinstance(a, float) else a for a in args)
        return run(backend.params, ae_params, held, *args)

    return step


def flat_outputs(backend: Any) -> Any:
    """A :class:`~xaiwidgets.backends.jax_backend.JaxBackend` of ``backend``'s model with its
    outputs flattened to ``(n, d)``, same parameters and batch settings."""
    apply = backend.apply_with_params
    flat = type(backend)(
        lambda p, x: FlatOutputs(functools.partial(apply, p), ARRAY_OPS)(x),
        backend.params,
        batch_size=backend._batch_size,
        memory_budget=backend._memory_budget,
        buckets=backend.buckets,
    )
    flat.module = backend.module
    return flat
