"""Framework backends behind one protocol (:class:`~xaiwidgets.backends.protocol.Backend`).

:func:`wrap` picks the backend from the model's type without importing any framework the
user does not already use.
"""

from __future__ import annotations

from typing import Any

from .base import (
    Backend,
    BaseBackend,
    InputLayout,
    LayerAccess,
    NonFiniteOutputError,
    WeightRandomization,
    check_finite,
    output_matrix,
)
from .numpy_backend import NumpyBackend

__all__ = [
    "Backend",
    "BaseBackend",
    "InputLayout",
    "LayerAccess",
    "NonFiniteOutputError",
    "NumpyBackend",
    "check_finite",
    "keras_backend_of",
    "WeightRandomization",
    "output_matrix",
    "wrap",
]

_ACCEPTED = (
    "a torch.nn.Module, a Keras 3 model, a tf.Module / tf.function, a Flax module with "
    "params=..., a (flax_module, params) pair, a jax function, a plain callable "
    "f(numpy images) -> (n, k), or an existing backend"
)


_EXTRAS = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "flax": "jax"}


def _type_roots(obj: Any) -> set[str]:
    """Top-level module names of the object's type and all its bases."""
    return {(cls.__module__ or "").split(".")[0] for cls in type(obj).__mro__}


def keras_backend_of(model: Any) -> str:
    """The Keras backend a Keras model runs on: ``"tensorflow"``, ``"jax"`` or ``"torch"``
    (``tf_keras`` models: ``"tensorflow"``). Reads the already imported ``keras`` module."""
    import sys

    if type(model).__module__.startswith("tf_keras"):
        return "tensorflow"
    keras = sys.modules.get("keras")
    return str(keras.backend.backend()) if keras is not None else "tensorflow"


def _missing_framework(exc: ImportError, framework: str) -> ImportError:
    extra = _EXTRAS.get(framework, framework)
    return ImportError(
        f"{exc}. This model needs the {framework!r} framework: pip install 'xaiwidgets[{extra}]'"
    )


def wrap(model: Any, **kwargs: Any) -> Backend:
    """Return the backend for ``model``.

    Dispatch, by type (no framework is imported that the model does not come from): an object
    that already implements the protocol (:class:`~.base.Backend`: every method and attribute
    of the contract, checked by name) is returned as is; a Keras model → ``KerasBackend``
    on the TensorFlow Keras backend, ``JaxBackend.from_keras`` on the JAX one, and
    ``TorchBackend(channels_first=False)`` on the torch one; torch ``nn.Module`` →
    ``TorchBackend``; ``tf.Module`` / ``tf.function`` → ``TensorFlowBackend``; Flax module
    (+ ``params=``), ``(flax_module, params)`` or a jitted jax function → ``JaxBackend``;
    ``framework="torch" | "tensorflow" | "keras" | "jax"`` with a callable → that backend;
    any other callable → :class:`NumpyBackend`. Keyword arguments go to the backend
    (``batch_size``, ``channels_first``, ``params``, ...).

    Raises
    ------
    TypeError
        for an object that is none of these (the message lists what is accepted).
    ImportError
        when the model's framework is not installed (the message names the extra to install).
    """
    if isinstance(model, Backend):  # the protocol's methods, whatever the class
        if kwargs:
            raise TypeError("wrap(): keyword arguments cannot be applied to an existing backend")
        return model
    framework = kwargs.pop("framework", None)
    if framework not in (None, "numpy", "torch", "keras", "tensorflow", "jax"):
        raise ValueError(
            "framework: expected 'torch', 'keras', 'tensorflow', 'jax' or 'numpy', "
            f"got {framework!r}"
        )
    roots = _type_roots(model)
    if isinstance(model, tuple) and len(model) == 2 and "flax" in _type_roots(model[0]):
        roots = {"flax"}
    needs = "numpy"
    try:
        if framework == "keras" or (framework is None and roots & {"keras", "tf_keras"}):
            kb = keras_backend_of(model)
            needs = kb
            if kb == "jax":
                from .jax_backend import JaxBackend

                return JaxBackend.from_keras(model, **kwargs)
            if kb == "torch":
                from .torch_backend import TorchBackend

                kwargs.setdefault("channels_first", False)
                return TorchBackend(model, **kwargs)
            from .keras_backend import KerasBackend

            return KerasBackend(model, **kwargs)
        if framework == "torch" or (framework is None and "torch" in roots):
            needs = "torch"
            from .torch_backend import TorchBackend

            return TorchBackend(model, **kwargs)
        if framework == "tensorflow" or (framework is None and "tensorflow" in roots):
            needs = "tensorflow"
            from .tensorflow_backend import TensorFlowBackend

            return TensorFlowBackend(model, **kwargs)
        if framework == "jax" or (framework is None and roots & {"flax", "jax", "jaxlib"}):
            needs = "jax"
            from .jax_backend import JaxBackend

            return JaxBackend(model, **kwargs)
    except ImportError as exc:
        if "xaiwidgets[" in str(exc):
            raise
        raise _missing_framework(exc, needs) from exc
    if callable(model):
        return NumpyBackend(model, **kwargs)
    raise TypeError(
        f"cannot explain a {type(model).__module__}.{type(model).__name__}: expected {_ACCEPTED}"
    )
