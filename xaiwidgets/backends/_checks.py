"""Checks at the backend boundary, shared by every backend: what the model gives back (NaN or
infinite outputs and gradients), what a caller asks for (the requested outputs) and whether a
framework error means out of memory.

No framework is imported here. The public names are re-exported by
:mod:`xaiwidgets.backends.base` (explainers import them from there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_OOM_MARKERS = ("out of memory", "resource_exhausted", "resourceexhausted", "outofmemory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a framework's (or NumPy's) out-of-memory error."""
    if isinstance(exc, MemoryError):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in _OOM_MARKERS)


class NonFiniteOutputError(ValueError):
    """The model (or its gradient) gave NaN or infinite values; ``rows`` are the indices of the
    images concerned, in the array the backend was called with."""

    def __init__(self, message: str, rows: np.ndarray):
        super().__init__(message)
        self.rows = np.asarray(rows, np.int64)


def rows_text(rows: np.ndarray, limit: int = 10) -> str:
    """Image indices for an error message: ``[3, 7, ... (12 in all)]``, at most ``limit``."""
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f", ... ({len(rows)} in all)" if len(rows) > limit else ""
    return f"[{shown}{more}]"


def check_finite(values: np.ndarray, what: str = "outputs", offset: int = 0) -> np.ndarray:
    """Raise :class:`NonFiniteOutputError` when ``values`` (rows = images, any trailing shape)
    hold a NaN or an infinity; ``offset`` is added to the row numbers (the batch's first image).
    Returns ``values``. ``what`` says what was checked ("outputs", "gradients", ...)."""
    arr = np.asarray(values)
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.inexact):
        return values
    if np.isfinite(arr).all():
        return values
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    rows = np.flatnonzero(bad) + int(offset)
    kind = "NaN" if np.isnan(arr).any() else "infinite"
    if kind == "NaN" and np.isinf(arr).any():
        kind = "NaN and infinite"
    raise NonFiniteOutputError(
        f"the model's {what} are {kind} for image(s) {rows_text(rows)}: a NaN or infinity in "
        "the model (a division by zero, a log of 0, an overflow) or in these images would make "
        "every attribution NaN. Check the model on these images",
        rows,
    )


def checked_vjp(outputs: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, grads)`` of a ``vjp``, both checked by :func:`check_finite`."""
    return check_finite(outputs), check_finite(grads, "gradients")


class BatchMemoryError(MemoryError):
    """Out of memory in a model call, with the batch size to lower (raised once, not
    re-wrapped by an enclosing call)."""


def output_matrix(outputs: Any, n: int) -> np.ndarray:
    """Requested outputs as an ``(n, o)`` int64 matrix (``(o,)`` is broadcast to every image)."""
    arr = np.asarray(outputs)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (n, arr.shape[0]))
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
        raise ValueError(
            f"outputs: expected (o,) or (n={n}, o) class indices, got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"outputs: expected integer class indices, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_output_range(idx: np.ndarray, k: int) -> np.ndarray:
    """``idx`` (requested class indices, any shape) when every index is in ``0..k-1`` for a
    model with ``k`` outputs; ValueError naming the range otherwise."""
    if idx.size and (idx.min() < 0 or idx.max() >= k):
        raise ValueError(
            f"outputs: class indices must be in 0..{k - 1}, got {idx.min()}..{idx.max()}"
        )
    return idx
