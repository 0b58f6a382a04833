"""Which pixels a deletion or insertion curve shows at each step: the ``counts[t]`` pixels of
largest attribution hidden (deletion) or revealed (insertion), ties in raster order, as
``np.argsort(-a, kind="stable")`` orders them, without sorting.

Each pixel ``q`` of a row gets a unique 64-bit key that orders the pixels as that stable sort
does: the float32 bits of ``-a[q]`` mapped to an unsigned integer of the same order (sign
bit set: every bit flipped; else the sign bit set; ``-0.0`` made ``+0.0`` first, as the
comparison takes them equal), shifted up 32 bits, plus ``q``. The pixel at position ``k``
of the sorted row is then the ``k``-th smallest key, so one ``np.partition`` of the keys at
the positions ``counts`` (a selection, NumPy's SIMD one for integers) gives thresholds
``T[t]``, and pixel ``q`` is among the first ``counts[t]`` exactly when ``key[q] < T[t]``.
Rows other than float32, or with NaN, go through the stable sort.
"""

from __future__ import annotations

import numpy as np

#: Above every key (a key's high half is at most ``0xFF800000``, from ``-inf``).
_ABOVE_ALL = np.uint64(2**64 - 1)


def _order_keys(values: np.ndarray) -> np.ndarray:
    """``(m, p)`` uint64 keys ordering each row as ``argsort(-row, kind="stable")``."""
    p = values.shape[1]
    bits = (np.negative(values) + np.float32(0.0)).view(np.uint32)
    ordered = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000)).astype(np.uint64)
    return (ordered << np.uint64(32)) | np.arange(p, dtype=np.uint64)


def kept_pixels(values: np.ndarray, counts: np.ndarray, kind: str) -> np.ndarray:
    """``keep`` ``(m, s, p)`` bool for rows ``values`` ``(m, p)`` and ``counts`` ``(s,)``
    (non-decreasing, each in ``0..p``): pixel ``q`` of row ``r`` is visible at step ``t``
    when its rank (position in ``argsort(-values[r], kind="stable")``) is ``>= counts[t]``
    for ``kind="deletion"`` (the largest are hidden), ``< counts[t]`` for ``"insertion"``
    (the largest are revealed)."""
    values = np.asarray(values)
    m, p = values.shape
    counts = np.asarray(counts, np.int64)
    if values.dtype == np.float32 and p < 2**32 and np.isfinite(values).all():
        keys = _order_keys(values)
        inside = counts < p
        positions = np.unique(counts[inside])
        thresholds = np.full((m, len(counts)), _ABOVE_ALL)
        if len(positions):
            picked = np.partition(keys, positions, axis=1)
            thresholds[:, inside] = picked[:, counts[inside]]
        hidden_after = keys[:, None, :] < thresholds[:, :, None]  # rank < counts[t]
    else:
        rank = np.empty((m, p), np.int64)
        for r in range(m):
            rank[r, np.argsort(-values[r], kind="stable")] = np.arange(p)
        hidden_after = rank[:, None, :] < counts[None, :, None]
    return ~hidden_after if kind == "deletion" else hidden_after
