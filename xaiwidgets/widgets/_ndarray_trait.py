"""NumPy arrays as widget traits, sent to JS as binary buffers.

An array crosses as ``{"view": memoryview, "dtype": "float32", "shape": [...]}``: the
``memoryview`` is split off by ipywidgets into a binary message part (and base64-encoded by
``ipywidgets.embed`` into a static HTML export), the header stays JSON. JS decodes it with
``decodeArray`` in ``js/src/lib/arrays.ts``. Arrays are never sent as JSON lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

#: dtypes JS can view without conversion; float64 is sent as float32 (and int64 as int32)
_WIRE_DTYPES = {"float32", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32"}
_NARROW = {"float64": np.float32, "float16": np.float32, "int64": np.int32, "uint64": np.uint32}


def array_to_json(value: np.ndarray | None, widget: Any = None) -> dict[str, Any] | None:
    """Serialize an array to ``{"view": memoryview, "dtype", "shape"}`` (C-contiguous bytes;
    float64 -> float32, int64 -> int32, bool -> uint8). ``None`` stays ``None``."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    target = _NARROW.get(arr.dtype.name)
    if target is not None:
        arr = arr.astype(target)
    if arr.dtype.name not in _WIRE_DTYPES:
        raise TypeError(f"cannot send an array of dtype {arr.dtype} to the browser")
    arr = np.ascontiguousarray(arr)
    return {
        "view": memoryview(arr).cast("B"),
        "dtype": arr.dtype.name,
        "shape": [int(s) for s in arr.shape],
    }


def array_from_json(value: dict[str, Any] | None, widget: Any = None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json` (a read-only view on the received bytes)."""
    if value is None:
        return None
    buf = value.get("view", value.get("buffer"))
    return np.frombuffer(buf, dtype=value["dtype"]).reshape(value["shape"])


class NDArray(traitlets.TraitType):
    """A NumPy array trait synced as a binary buffer.

    ``ndim`` (int or None) is checked on assignment; ``dtype`` (default float32) is what the
    array is converted to (C-contiguous). Assigning anything array-like works; the error for
    a wrong shape says what was expected and what came.
    """

    info_text = "a NumPy array"
    default_value = None

    def __init__(
        self,
        default_value: Any = None,
        *,
        ndim: int | None = None,
        dtype: Any = np.float32,
        allow_none: bool = True,
        **kwargs: Any,
    ) -> None:
        self.ndim = ndim
        self.dtype = np.dtype(dtype)
        super().__init__(default_value=default_value, allow_none=allow_none, **kwargs)
        self.tag(sync=True, to_json=array_to_json, from_json=array_from_json)

    def validate(self, obj: Any, value: Any) -> np.ndarray | None:
        if value is None:
            if self.allow_none:
                return None
            self.error(obj, value)
        try:
            arr = np.asarray(value, dtype=self.dtype)
        except (TypeError, ValueError) as exc:
            raise traitlets.TraitError(
                f"{self.name}: expected an array of numbers, got {type(value).__name__} ({exc})"
            ) from exc
        if self.ndim is not None and arr.ndim != self.ndim:
            raise traitlets.TraitError(
                f"{self.name}: expected a {self.ndim}-d array, got shape {arr.shape}"
            )
        return np.ascontiguousarray(arr)
