"""DeepLIFT (rescale rule) / DeepSHAP for JAX and Flax models, by a jaxpr interpreter.

The model function is traced twice to jaxprs, at the pair-batch size (``c * b`` rows: each
image repeated once per reference) and at the reference-batch size (``b`` rows). The
interpreter walks both in lock step: the reference side is evaluated plainly, the pair side
is evaluated with every nonlinear primitive replaced by a ``jax.custom_vjp`` whose backward
rule is the DeepLIFT multiplier (:mod:`._deeplift_rules`) computed from the two sides:

- elementwise primitives (``exp``, ``tanh``, ``logistic``, ``max(x, 0)``, ...) and named
  activations (``jax.nn.relu``, ``elu``, ``softplus``, ... seen as ``jit``/``custom_jvp_call``
  sub-jaxprs): the rescale rule;
- ``reduce_window_max`` (``flax.linen.max_pool``) and ``reduce_max``: the max-pool rule;
- the softmax pattern ``exp(z - max z) / sum(...)``: the softmax rule; ``x - stop_gradient(s)``
  (the shift of a log-softmax): rescale of ``x``;
- two varying inputs: the Shapley split of elementwise nonlinear binary primitives, and the
  midpoint linearisation of bilinear ones (``mul``, ``dot_general``, convolutions).

Linear primitives (convolutions and dense layers with constant weights, reshapes, average
pooling, sums, ...) keep JAX's own derivative. A nonlinear primitive not listed above is
differentiated as usual, with a warning (completeness may then fail). The whole computation
(forward, one VJP ``vmap``-ed over the requested outputs, and the average over the references)
is one ``jax.jit`` per shape.

Imported only by :meth:`JaxBackend.deeplift <xaiwidgets.backends.jax_backend.JaxBackend>`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import ClosedJaxpr

from . import _deeplift_rules as rules
from ._deeplift_jax_interp import CONST, VARY, _Interpreter
from ._deeplift_passes import Passes
from ._layout import pad_rows

#: the compiled functions of each backend, by shape and options
_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _build(backend: Any, c: int, n_ref: int, o: int, image_shape: tuple, softmax: str) -> Any:
    """The jitted attribution function for one (images, references, outputs) shape."""
    apply = backend.apply_with_params
    params = backend.params

    def spec(rows: int) -> Any:
        return jax.ShapeDtypeStruct((rows,) + image_shape, jnp.float32)

    p_spec = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), a.dtype), params)
    pairs = c * n_ref
    jp = jax.make_jaxpr(apply)(p_spec, spec(pairs))
    jr = jax.make_jaxpr(apply)(p_spec, spec(n_ref))
    unhandled: set[str] = set()

    def attribute(params: Any, xs: Any, refs: Any, idx: Any) -> Any:
        leaves = jax.tree_util.tree_leaves(params)
        interp = _Interpreter((c, n_ref), softmax)

        def f(inp: Any) -> Any:
            consts = [(CONST, a, b) for a, b in zip(jp.consts, jr.consts)]
            args = [(CONST, p, p) for p in leaves] + [(VARY, inp, refs)]
            outs = interp.run(jp.jaxpr, jr.jaxpr, consts, args)
            return outs[0][1]

        inp = jnp.repeat(xs, n_ref, axis=0)
        out, pull = jax.vjp(f, inp)
        unhandled.update(interp.unhandled)
        cots = jax.nn.one_hot(jnp.repeat(idx, n_ref, axis=0).T, out.shape[-1], dtype=out.dtype)
        grads = jax.vmap(pull)(cots)[0]
        delta = (xs[:, None] - refs[None]).reshape((pairs,) + image_shape)
        return jnp.mean((grads * delta).reshape((o, c, n_ref) + image_shape), axis=2)

    return jax.jit(attribute)


def deeplift_jax(
    backend: Any,
    x: Any,
    baselines: Any,
    outputs: Any,
    *,
    softmax: str = "shapley",
    max_rows: int | None = None,
    progress: Callable[[float], Any] | None = None,
) -> np.ndarray:
    """DeepLIFT rescale attributions of ``x`` averaged over ``baselines`` (DeepSHAP).

    Parameters
    ----------
    backend : JaxBackend
        Uses ``apply_with_params``, ``params`` and ``batch_size``.
    x : float32 ``(n, h, w, c)`` images; baselines : float32 ``(b, h, w, c)`` references.
    outputs : ``(o,)`` or ``(n, o)`` class indices.
    softmax : ``"shapley"`` (default) or ``"diagonal"`` (see :mod:`._deeplift_rules`).
    max_rows : pair rows per compiled call. Default: ``max(backend.batch_size, b)``, lowered so
        that a pass keeps about :data:`~._deeplift_rules.MEMORY_BUDGET` (1 GiB) of activations
        (:func:`~._deeplift_rules.plan_passes`; references split into chunks when one image's
        ``b`` rows do not fit), and to passes of about half a second
        (:class:`~._deeplift_passes.Passes`). The last chunk of images is padded, so each
        shape compiles once (twice with a shorter last chunk of references). The budget is
        ``backend.memory_budget`` (1 GiB by default). Given: at most ``max_rows`` rows, no
        budget, no timing.
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
    image_shape = tuple(x.shape[1:])
    cache = _FUNCTIONS.setdefault(backend, {})
    row_bytes = None
    if max_rows is None:
        if ("row_bytes", image_shape) not in cache:
            cache["row_bytes", image_shape] = _row_bytes(backend, image_shape)
        row_bytes = cache["row_bytes", image_shape]
    rows = max_rows or max(backend.batch_size, n_ref)
    # the timed forward passes start at 8 images: the backend pads a call to at least that
    plan = Passes(backend, n, refs, o, rows, row_bytes, paced=max_rows is None, probe_first=8)
    rt = jnp.asarray(refs)
    res = np.empty(x.shape + (o,), np.float32)
    for s in plan.image_chunks():
        m, c = s.stop - s.start, plan.images  # the chunk is padded to the planned images
        xs, ids = jnp.asarray(pad_rows(x[s], c)), jnp.asarray(pad_rows(idx[s], c))
        total = None
        for r in plan.reference_chunks():
            if progress is not None:
                progress(plan.fraction)
            k = r.stop - r.start
            key = (c, k, o, image_shape, softmax)
            compiled = key not in cache  # the first call of a jitted shape compiles it
            if compiled:
                cache[key] = _build(backend, c, k, o, image_shape, softmax)
            began = time.perf_counter()
            attr = np.asarray(cache[key](backend.params, xs, rt[r], ids), np.float64)
            plan.took(time.perf_counter() - began, compiled=compiled)
            attr *= k / n_ref
            total = attr if total is None else total + attr
        res[s] = np.moveaxis(total, 0, -1)[:m]
    return res


def _row_bytes(backend: Any, image_shape: tuple) -> int:
    """Bytes of the model's float activations for one image (every equation's outputs, in
    nested jaxprs too), from a trace at batch size 1."""
    p_spec = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(jnp.shape(a), a.dtype), backend.params
    )
    x_spec = jax.ShapeDtypeStruct((1,) + image_shape, jnp.float32)
    closed = jax.make_jaxpr(backend.apply_with_params)(p_spec, x_spec)

    def total(jaxpr: Any) -> int:
        n = 0
        for eqn in jaxpr.eqns:
            for v in eqn.outvars:
                aval = v.aval
                if hasattr(aval, "dtype") and jnp.issubdtype(aval.dtype, jnp.floating):
                    n += int(np.prod(aval.shape, dtype=np.int64)) * aval.dtype.itemsize
            for p in eqn.params.values():
                for sub in p if isinstance(p, (tuple, list)) else (p,):
                    if isinstance(sub, ClosedJaxpr):
                        n += total(sub.jaxpr)
                    elif hasattr(sub, "eqns"):
                        n += total(sub)
        return n

    return total(closed.jaxpr)
