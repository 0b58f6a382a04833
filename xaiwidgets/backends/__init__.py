"""Framework backends behind one protocol (:class:`~xaiwidgets.backends.base.Backend`).

:func:`wrap` picks the backend from the model's type without importing any framework the
user does not already use.
"""

from __future__ import annotations

from typing import Any

from .base import Backend, BaseBackend, output_matrix
from .numpy_backend import NumpyBackend

__all__ = ["Backend", "BaseBackend", "NumpyBackend", "output_matrix", "wrap"]

_ACCEPTED = (
    "a torch.nn.Module, a Keras 3 model, a tf.Module / tf.function, a Flax module with "
    "params=..., a (flax_module, params) pair, a jax function, a plain callable "
    "f(numpy images) -> (n, k), or an existing backend"
)


def _type_roots(obj: Any) -> set[str]:
    """Top-level module names of the object's type and all its bases."""
    return {(cls.__module__ or "").split(".")[0] for cls in type(obj).__mro__}


def wrap(model: Any, **kwargs: Any) -> Backend:
    """Return the backend for ``model``.

    Dispatch, by type: an object that already implements the protocol is returned as is;
    torch ``nn.Module`` → ``TorchBackend``; Keras 3 model → ``KerasBackend``; ``tf.Module`` /
    ``tf.function`` → ``TensorFlowBackend``; Flax module (+ ``params=``) or ``(module, params)``
    → ``JaxBackend``; ``framework="jax"`` with a callable → ``JaxBackend``; any other callable →
    :class:`NumpyBackend`. Keyword arguments go to the backend (``batch_size``, ...).
    """
    if isinstance(model, BaseBackend):
        if kwargs:
            raise TypeError("wrap(): keyword arguments cannot be applied to an existing backend")
        return model
    framework = kwargs.pop("framework", None)
    roots = _type_roots(model)
    if isinstance(model, tuple) and len(model) == 2:
        roots = _type_roots(model[0]) | {"jax-pair"}
    try:
        if framework == "torch" or "torch" in roots:
            from .torch_backend import TorchBackend

            return TorchBackend(model, **kwargs)
        if framework == "keras" or "keras" in roots or "tf_keras" in roots:
            from .keras_backend import KerasBackend

            return KerasBackend(model, **kwargs)
        if framework == "tensorflow" or "tensorflow" in roots:
            from .keras_backend import TensorFlowBackend

            return TensorFlowBackend(model, **kwargs)
        if framework == "jax" or "flax" in roots or "jax" in roots or "jax-pair" in roots:
            from .jax_backend import JaxBackend

            return JaxBackend(model, **kwargs)
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"{exc}. Install the matching extra: pip install 'xaiwidgets[torch]', "
            "'xaiwidgets[tensorflow]' or 'xaiwidgets[jax]'"
        ) from exc
    if framework not in (None, "numpy"):
        raise ValueError(f"framework: expected 'torch', 'keras', 'tensorflow', 'jax' or 'numpy', got {framework!r}")
    if callable(model):
        return NumpyBackend(model, **kwargs)
    raise TypeError(f"cannot explain a {type(model).__module__}.{type(model).__name__}: expected {_ACCEPTED}")
