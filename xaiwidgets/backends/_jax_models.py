"""Which JAX model :class:`~xaiwidgets.backends.jax_backend.JaxBackend` was given, as one pure
function ``apply(params, x)``: a Flax linen module with its variables, a Flax NNX module, a
Keras 3 model on the JAX Keras backend, or a plain jax function.

Imported by ``jax_backend`` (after jax); flax is imported only when the model is a Flax module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class ResolvedModel(NamedTuple):
    """What :func:`resolve_model` found.

    apply : ``(params, x) -> outputs``, pure (``jax.jit``-able).
    module : the Flax module (linen or NNX); ``None`` for a plain function.
    params : the pytree passed as ``apply``'s first argument (linen variables, NNX state, the
        function's params; ``None`` for ``f(x)``).
    is_nnx : whether ``module`` is a Flax NNX module.
    graphdef : the NNX module's graph definition (``nnx.split``); ``None`` otherwise.
    """

    apply: Callable[[Any, Any], Any]
    module: Any = None
    params: Any = None
    is_nnx: bool = False
    graphdef: Any = None


def resolve_model(model: Any, params: Any, call_kwargs: Mapping[str, Any]) -> ResolvedModel:
    """The pure ``apply(params, x)`` of ``model`` (``call_kwargs`` passed to every call).

    - a Flax NNX module (no ``params``): split into graph and state; each call merges them into
      a fresh copy in eval mode (``Dropout`` deterministic, ``BatchNorm`` on running averages),
      so the user's module is never changed;
    - a Flax linen module with ``params`` (its variables; a bare parameter tree is wrapped as
      ``{"params": tree}``): ``module.apply(variables, x, **call_kwargs)``;
    - any other callable: ``f(x)``, or ``f(params, x)`` when ``params`` is given.

    Raises TypeError for an NNX module with ``params``, a linen module without, or an object
    that is not callable."""
    kw = dict(call_kwargs)
    roots = {(c.__module__ or "").split(".")[0] for c in type(model).__mro__}
    if "flax" in roots:
        from flax import linen, nnx

        if isinstance(model, nnx.Module):
            if params is not None:
                raise TypeError("JaxBackend: an NNX module carries its state; drop params=")
            graphdef, state = nnx.split(model)

            def apply_nnx(state: Any, x: Any) -> Any:
                m = nnx.merge(graphdef, state)
                m.eval()
                return m(x, **kw)

            return ResolvedModel(apply_nnx, model, state, True, graphdef)
        if isinstance(model, linen.Module):
            if params is None:
                raise TypeError(
                    "JaxBackend: a Flax linen module needs its variables: "
                    "wrap(module, params=module.init(...)) or wrap((module, variables))"
                )
            if isinstance(params, Mapping) and "params" not in params:
                params = {"params": params}
            return ResolvedModel(
                lambda variables, x: model.apply(variables, x, **kw), model, params
            )
    if not callable(model):
        raise TypeError(
            "JaxBackend: expected a Flax linen module with params, a Flax NNX module, a "
            f"(module, params) pair or a jax function, got {type(model).__name__}"
        )
    if params is None:
        return ResolvedModel(lambda _, x: model(x, **kw))
    return ResolvedModel(lambda p, x: model(p, x, **kw), params=params)


def keras_values(model: Any) -> tuple[list, list]:
    """The current values of a Keras model's ``(trainable, non_trainable)`` variables."""
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
    )


def keras_apply(model: Any) -> Callable[[Any, Any], Any]:
    """``apply(params, x)`` of a built Keras 3 model on the JAX Keras backend, called
    statelessly: ``model.stateless_call(trainable, non_trainable, x, training=False)``, with
    ``params`` as :func:`keras_values` gives them. Raises ValueError for a model not built."""
    if not getattr(model, "built", True):
        raise ValueError(
            "the Keras model is not built yet: call it once on a batch (or give it an "
            "Input layer) before explaining it"
        )

    def apply_keras(p: Any, x: Any) -> Any:
        return model.stateless_call(p[0], p[1], x, training=False)[0]

    return apply_keras
