"""Taps on the submodules of a Flax NNX module: their outputs recorded, and ``δ`` added.

NNX has no method interceptor, and ``sow`` / ``perturb`` need the model's own code to call
them. Instead the module is merged afresh from its state for each (traced) call (so the
user's module is never changed), and each tapped submodule of that copy gets a subclass of its
class whose ``__call__`` runs the original and then hands the output to the active taps (a
context variable): ``record[key] = out`` and ``out + deltas[key]``. Python finds ``__call__``
on the type, so the subclass (one per class, cached) is set on the instance, not patched onto
the user's class; instances not tapped in this call behave exactly as before.

Keys are module paths joined by ``/`` (``"blocks/3/conv1"``), as :func:`flax.nnx.iter_modules`
gives them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jax
from flax import nnx

_ACTIVE: contextvars.ContextVar[Any] = contextvars.ContextVar("xaiwidgets_nnx_taps", default=None)
_TAPPED: dict[type, type] = {}


def module_paths(module: Any) -> dict[str, Any]:
    """``{"a/b/0": submodule}`` for every submodule of ``module`` (itself excluded), in the
    order :func:`flax.nnx.iter_modules` gives them."""
    return {"/".join(str(p) for p in path): sub for path, sub in nnx.iter_modules(module) if path}


def _tapped_class(cls: type) -> type:
    """A subclass of ``cls`` whose ``__call__`` passes its output through the active taps."""
    if cls not in _TAPPED:

        def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = cls.__call__(self, *args, **kwargs)
            active = _ACTIVE.get()
            if active is None:
                return out
            keys, deltas, record = active
            key = keys.get(id(self))
            if key is None or not isinstance(out, jax.Array):
                return out
            record[key] = out
            return out + deltas[key] if key in deltas else out

        namespace = {"__call__": __call__, "__module__": cls.__module__}
        _TAPPED[cls] = type(cls.__name__, (cls,), namespace)
    return _TAPPED[cls]


@contextmanager
def nnx_taps(
    backend: Any, state: Any, targets: set[str], deltas: dict, record: dict
) -> Iterator[Any]:
    """A fresh copy of the backend's NNX module (from ``state``, in eval mode) whose
    submodules named in ``targets`` record their output in ``record`` and add ``deltas``."""
    model = nnx.merge(backend.nnx_graphdef, state)
    model.eval()
    keys: dict[int, str] = {}
    for key, sub in module_paths(model).items():
        if key in targets:
            keys[id(sub)] = key
            object.__setattr__(sub, "__class__", _tapped_class(type(sub)))
    token = _ACTIVE.set((keys, deltas, record))
    try:
        yield model
    finally:
        _ACTIVE.reset(token)
