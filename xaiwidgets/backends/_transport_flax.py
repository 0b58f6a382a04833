"""A Flax linen module with its variables as they travel to an executor's workers: the
variables by ``flax.serialization.msgpack_serialize``, the module by its importable class and
its dataclass fields. Used by :mod:`xaiwidgets.dataset_explanation.transport`."""

from __future__ import annotations

import dataclasses
import importlib
import pickle
from typing import Any

import numpy as np


def pack_flax(backend: Any) -> dict[str, Any] | None:
    """``{"class", "fields", "variables", "call_kwargs", "buckets"}`` of a linen module's
    backend, or ``None`` for anything else (NNX modules, jax functions: the pickle fallback)."""
    from flax import linen, serialization

    module = backend.module
    if backend.is_nnx or not isinstance(module, linen.Module):
        return None
    cls = type(module)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    fields = {
        f.name: getattr(module, f.name)
        for f in dataclasses.fields(module)
        if f.init and f.name not in ("parent", "name")
    }
    variables = serialization.to_state_dict(backend.params)
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "fields": pickle.dumps(fields),
        "variables": serialization.msgpack_serialize(variables),
        "call_kwargs": pickle.dumps(backend.call_kwargs),
        "buckets": backend.buckets,
    }


def unpack_flax(packed: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """``(module, variables, backend keywords)`` of what :func:`pack_flax` packed."""
    from flax import serialization

    module_name, qualname = packed["class"].split(":")
    cls: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    module = cls(**pickle.loads(packed["fields"]))
    variables = serialization.msgpack_restore(packed["variables"])
    extra = {"call_kwargs": pickle.loads(packed["call_kwargs"]), "buckets": packed["buckets"]}
    return module, variables, extra


def jax_leaves(params: Any) -> list[np.ndarray]:
    """The leaves of a parameter tree as NumPy arrays (for a fingerprint)."""
    import jax

    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(params)]
