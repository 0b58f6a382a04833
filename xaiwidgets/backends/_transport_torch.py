"""A torch module as it travels to an executor's workers: its importable class (built without
arguments) and its state dict in torch's own format, read back with ``weights_only=True``.
Used by :mod:`xaiwidgets.dataset_explanation.transport`."""

from __future__ import annotations

import importlib
import io
from typing import Any

import numpy as np
import torch


def _class_path(cls: type) -> str | None:
    module = cls.__module__ or ""
    if module == "__main__" or "<locals>" in cls.__qualname__:
        return None
    return f"{module}:{cls.__qualname__}"


def _load_class(path: str) -> type:
    module, qualname = path.split(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def pack_torch(model: Any) -> dict[str, Any] | None:
    """``{"class", "state", "training", "dtype"}`` of ``model``, or ``None`` when its class
    cannot be rebuilt on a worker (not importable, needs constructor arguments, or does not
    take its own state dict back exactly)."""
    if not isinstance(model, torch.nn.Module):
        return None
    path = _class_path(type(model))
    if path is None:
        return None
    try:
        fresh = _load_class(path)()
        fresh.load_state_dict(model.state_dict(), strict=True)
    except Exception:  # noqa: BLE001 - any failure: the pickle fallback
        return None
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    return {
        "class": path,
        "state": buf.getvalue(),
        "training": bool(model.training),
        "dtype": str(dtype).removeprefix("torch."),
    }


def unpack_torch(packed: dict[str, Any], device: str | None = None) -> Any:
    """The module :func:`pack_torch` described, on ``device`` (default the CPU), in the
    train/eval mode it had."""
    model = _load_class(packed["class"])()
    state = torch.load(io.BytesIO(packed["state"]), map_location="cpu", weights_only=True)
    model.to(getattr(torch, packed["dtype"]))
    model.load_state_dict(state, strict=True)
    model.train(packed["training"])
    return model.to(torch.device(device)) if device is not None else model


def torch_weights(model: Any) -> list[np.ndarray]:
    """The module's state dict as NumPy arrays, in key order (for a fingerprint)."""
    out = []
    for key, value in sorted(model.state_dict().items()):
        out.append(np.frombuffer(key.encode(), np.uint8))
        out.append(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return out
