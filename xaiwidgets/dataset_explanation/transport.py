"""How an explainer travels to an executor's workers: :class:`ExplainerRecipe`.

A recipe holds the explainer without its backend (pickled: its parameters, masker,
background...), the backend's settings (``batch_size``, ``memory_budget``, layout) and the
model in its framework's own format, chosen by the model's type:

- torch ``nn.Module``: ``"torch-state-dict"``: the state dict (``torch.save``, read back with
  ``torch.load(weights_only=True)``) and the module's importable class, when the class can be
  built without arguments and takes the state dict back exactly;
- Keras 3 model (any Keras backend): ``"keras-file"``: the ``.keras`` file of ``model.save``,
  read back by ``keras.saving.load_model``;
- Flax linen module with its variables: ``"flax-msgpack"``: the variables by
  ``flax.serialization.msgpack_serialize``, the module rebuilt from its class and its
  dataclass fields;
- anything else (a NumPy callable, a torch module whose class needs constructor arguments or
  lives in ``__main__``, a Flax NNX module, a tf.Module): ``"pickle"``, the fallback: the
  model (or the NumPy function) pickled, by ``cloudpickle`` where it is installed (it comes
  with dask), so that a class or function defined in a notebook travels too; the backend is
  made again on the worker by :func:`~xaiwidgets.wrap` with the same settings.

On a worker, :meth:`ExplainerRecipe.build` rebuilds the explainer once per process (cached by
the recipe's ``token``, a hash of what it carries).
"""

from __future__ import annotations

import copy
import hashlib
import pickle
from typing import Any

_BUILT: dict[str, Any] = {}


def _roots(obj: Any) -> set[str]:
    return {(c.__module__ or "").split(".")[0] for c in type(obj).__mro__}


def _settings(backend: Any) -> dict[str, Any]:
    out = {"batch_size": backend._batch_size, "memory_budget": backend._memory_budget}
    if hasattr(backend, "channels_first"):
        out["channels_first"] = bool(backend.channels_first)
    if backend.framework == "torch" and getattr(backend, "device", None) is not None:
        out["device"] = str(backend.device)  # the worker computes where the caller does
    return out


def pack_backend(backend: Any) -> tuple[str, dict[str, Any]]:
    """``(transport, payload)`` of a backend (see the module docstring)."""
    model = getattr(backend, "model", None)
    if model is None and getattr(backend, "framework", "") == "jax":
        model = backend.module
    if model is not None and "keras" in _roots(model):
        from ..backends._transport_keras import pack_keras

        return "keras-file", {"model": pack_keras(model), "settings": _settings(backend)}
    if model is not None and "torch" in _roots(model):
        from ..backends._transport_torch import pack_torch

        packed = pack_torch(model)
        if packed is not None:
            return "torch-state-dict", {"model": packed, "settings": _settings(backend)}
    if backend.framework == "jax" and model is not None and "flax" in _roots(model):
        from ..backends._transport_flax import pack_flax

        packed = pack_flax(backend)
        if packed is not None:
            return "flax-msgpack", {"model": packed, "settings": _settings(backend)}
    try:
        return "pickle", _pickled(backend, model)
    except Exception as exc:  # noqa: BLE001 - said in the message
        raise TypeError(
            f"cannot send this {type(backend).__name__} model to the executor's workers: it has "
            "no framework format here (a torch module buildable without arguments, a Keras "
            f"model, a Flax linen module) and pickling it failed ({type(exc).__name__}: {exc}). "
            "Define the model's function or class at module level, or run without executor="
        ) from exc


def _dumps(obj: Any) -> bytes:
    """``obj`` pickled by cloudpickle where installed (notebook classes by value), else pickle."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - dask brings it
        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


def _pickled(backend: Any, model: Any) -> dict[str, Any]:
    """The pickle fallback: the model (NumPy: its functions) and the backend's settings, or
    the backend itself where there is neither."""
    fn = getattr(backend, "fn", None)
    if backend.framework == "numpy" and callable(fn):
        return {"kind": "numpy", "fn": _dumps(fn), "grad_fn": _dumps(backend.grad_fn),
                "settings": _settings(backend)}  # fmt: skip
    if model is not None and backend.framework in ("torch", "tensorflow"):
        return {"kind": "model", "model": _dumps(model), "settings": _settings(backend)}
    return {"kind": "backend", "backend": _dumps(_picklable_backend(backend))}


def _picklable_backend(backend: Any) -> Any:
    """The backend without its caches of compiled functions (rebuilt on first use)."""
    clone = copy.copy(backend)
    for name in ("_compiled", "_graph_cache"):
        if isinstance(getattr(clone, name, None), dict):
            setattr(clone, name, {})
    return clone


def unpack_backend(transport: str, payload: dict[str, Any]) -> Any:
    """The backend :func:`pack_backend` described."""
    from ..backends import wrap

    if transport == "pickle" and payload["kind"] == "backend":
        return pickle.loads(payload["backend"])
    settings = dict(payload["settings"])
    if transport == "pickle" and payload["kind"] == "numpy":
        settings.pop("channels_first", None)
        grad_fn = pickle.loads(payload["grad_fn"])
        return wrap(pickle.loads(payload["fn"]), grad_fn=grad_fn, framework="numpy", **settings)
    if transport == "pickle":
        return wrap(pickle.loads(payload["model"]), **settings)
    if transport == "keras-file":
        from ..backends._transport_keras import unpack_keras

        model = unpack_keras(payload["model"])
        if "channels_first" in settings and settings["channels_first"] is False:
            settings.pop("channels_first")
        return wrap(model, **settings)
    if transport == "torch-state-dict":
        from ..backends._transport_torch import unpack_torch

        return wrap(unpack_torch(payload["model"], settings.get("device")), **settings)
    if transport == "flax-msgpack":
        from ..backends._transport_flax import unpack_flax

        module, variables, extra = unpack_flax(payload["model"])
        settings.pop("channels_first", None)
        return wrap(module, params=variables, **settings, **extra)
    raise ValueError(f"unknown model transport {transport!r}")


class ExplainerRecipe:
    """An explainer as it travels to a worker (see the module docstring).

    ``transport`` says how its model travels; ``token`` identifies the recipe (the worker
    builds each token once); :meth:`build` returns the explainer."""

    def __init__(self, explainer: Any):
        backend = explainer.backend
        self.transport, self.payload = pack_backend(backend)
        shell = copy.copy(explainer)
        shell.backend = None
        try:
            self.explainer = _dumps(shell)
        except Exception as exc:  # noqa: BLE001 - said in the message
            raise TypeError(
                f"cannot send this {type(explainer).__name__} to the executor's workers: its "
                f"settings do not pickle ({type(exc).__name__}: {exc})"
            ) from exc
        digest = hashlib.sha256(self.explainer)
        digest.update(self.transport.encode())
        digest.update(pickle.dumps(self.payload))
        self.token = digest.hexdigest()

    def build(self) -> Any:
        """The explainer (built once per process and token)."""
        built = _BUILT.get(self.token)
        if built is None:
            built = pickle.loads(self.explainer)
            built.backend = unpack_backend(self.transport, self.payload)
            _BUILT.clear()  # one recipe at a time: the previous run's model is released
            _BUILT[self.token] = built
        return built


def model_fingerprint(backend: Any) -> str:
    """A hash of the model's weights where the framework gives them (torch state dict, Keras
    weights, JAX/Flax parameters), else the model's type and name: what a resumed run checks
    to be the same model."""
    model = getattr(backend, "model", None)
    if model is None and getattr(backend, "framework", "") == "jax":
        model = backend.module if backend.module is not None else None
    digest = hashlib.sha256(type(backend).__name__.encode())
    if model is not None and "keras" in _roots(model):
        from ..backends._transport_keras import keras_weights

        arrays = keras_weights(model)
    elif model is not None and "torch" in _roots(model) and hasattr(model, "state_dict"):
        from ..backends._transport_torch import torch_weights

        arrays = torch_weights(model)
    elif (
        getattr(backend, "framework", "") == "jax" and getattr(backend, "params", None) is not None
    ):
        from ..backends._transport_flax import jax_leaves

        arrays = jax_leaves(backend.params)
    else:
        fn = getattr(backend, "fn", model)
        arrays = []
        name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        digest.update(name.encode())
        try:
            digest.update(pickle.dumps(fn))
        except Exception:  # noqa: BLE001 - a closure: its name alone
            pass
    for arr in arrays:
        digest.update(str(arr.dtype).encode() + str(arr.shape).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:32]
