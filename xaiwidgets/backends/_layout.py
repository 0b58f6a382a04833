"""Small NumPy helpers the framework backends share: layouts, padding, chunking, one-hots.

No framework is imported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._checks import check_output_range

#: Smallest padded batch of a compiled (fixed-shape) backend.
MIN_BUCKET = 8


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """``(..., h, w, c)`` → ``(..., c, h, w)``, a fresh C-ordered copy (canonical strides even
    for one channel, so torch does not take it for a channels-last tensor)."""
    return np.moveaxis(x, -1, -3).copy(order="C")


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(..., c, h, w)`` → ``(..., h, w, c)``, a fresh C-ordered copy."""
    return np.moveaxis(x, -3, -1).copy(order="C")


def as_nhwc_float32(x: Any) -> np.ndarray:
    """An NHWC batch as float32 NumPy, without layout guessing (it is NHWC already)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 4:
        raise ValueError(f"expected NHWC images (n, h, w, c), got an array of shape {arr.shape}")
    return arr


def bucket_size(n: int, cap: int, buckets: bool = True) -> int:
    """The padded batch size for ``n`` rows (``1 <= n <= cap``).

    With ``buckets`` the next power of two ``>= max(n, MIN_BUCKET)``, capped at ``cap``: at
    most ``log2(cap / MIN_BUCKET) + 2`` distinct shapes, and a small call pads to at most
    twice its size. Without, always ``cap`` (a single shape).
    """
    if not 1 <= n <= cap:
        raise ValueError(f"bucket_size: expected 1 <= n <= {cap}, got {n}")
    if not buckets:
        return cap
    size = MIN_BUCKET
    while size < n:
        size *= 2
    return min(size, cap)


def pad_rows(a: np.ndarray, size: int, mode: str = "edge") -> np.ndarray:
    """Pad ``a`` along axis 0 to ``size`` rows: repeat the last row (``"edge"``, so padded
    images are real images and cannot produce NaN) or zeros (``"zeros"``, for cotangents)."""
    extra = size - a.shape[0]
    if extra <= 0:
        return a
    if mode == "edge":
        fill = np.repeat(a[-1:], extra, axis=0)
    else:
        fill = np.zeros((extra,) + a.shape[1:], dtype=a.dtype)
    return np.concatenate([a, fill], axis=0)


#: Most outputs whose gradients one vectorised backward pass computes together.
OUTPUT_GROUP = 16


def output_groups(n_outputs: int) -> list[slice]:
    """Column slices of the requested outputs, ``OUTPUT_GROUP`` at a time.

    :meth:`grad` runs one forward pass per batch of images and one backward pass vectorised
    over the one-hot cotangents of each group; the backward's transient memory grows with the
    group, so it is capped at ``OUTPUT_GROUP`` outputs (about the memory of the forward pass's
    saved activations for a network of a dozen layers or more)."""
    return [slice(j, min(j + OUTPUT_GROUP, n_outputs)) for j in range(0, n_outputs, OUTPUT_GROUP)]


def one_hot_stack(idx: np.ndarray, k: int) -> np.ndarray:
    """``(o, n, k)`` float32 cotangents: ``[j, i, idx[i, j]] = 1`` (one per requested output)."""
    n, o = idx.shape
    check_output_range(idx, k)
    cot = np.zeros((o, n, k), np.float32)
    cot[np.arange(o)[:, None], np.arange(n)[None, :], idx.T] = 1.0
    return cot


def check_cotangent(cot: Any, n: int, k: int | None = None) -> np.ndarray:
    """Cotangent ``(n, k)`` as float32, with a clear error for another shape (``k=None``: any
    number of columns)."""
    arr = np.asarray(cot, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n or (k is not None and arr.shape[1] != k):
        raise ValueError(
            f"cotangent: expected shape (n={n}, k={k}), one weight per image and output, "
            f"got {arr.shape}"
        )
    return arr
