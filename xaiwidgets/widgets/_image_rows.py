"""Images a view reads row by row: in memory (a NumPy NHWC array, as before) or on disk (a
zarr or dask array, the images of a :class:`~xaiwidgets.DatasetExplanation`), read only for
the rows asked for (a page of a confusion cell)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import as_images


class LazyImages:
    """``(n, h, w, c)`` float32 images read on demand: ``images[rows]`` reads those rows
    (an int array, in the order given) and nothing else; ``shape`` and ``len`` are known
    without reading. ``sample()`` gives the first rows (at most 256), for display choices."""

    def __init__(self, read: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]):
        self._read = read
        self.shape = tuple(int(s) for s in shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        idx = np.arange(len(self))[rows] if isinstance(rows, slice) else np.asarray(rows)
        idx = np.atleast_1d(idx).astype(np.int64)
        if len(idx) == 0:
            return np.zeros((0, *self.shape[1:]), np.float32)
        order = np.argsort(idx, kind="stable")
        got = self._read(idx[order])
        out = np.empty_like(got)
        out[order] = got
        return out

    def sample(self, k: int = 256) -> np.ndarray:
        return self[np.arange(min(k, len(self)))]


def image_rows(images: Any, layout: str = "auto") -> np.ndarray | LazyImages:
    """``images`` as rows a view can index: a :class:`LazyImages` for a
    :class:`~xaiwidgets.DatasetExplanation` or an on-disk array (zarr, dask: anything with
    ``chunks`` that is not NumPy), else :func:`~xaiwidgets._arrays.as_images` in memory."""
    from ..dataset_explanation import DatasetExplanation

    if isinstance(images, DatasetExplanation):
        return LazyImages(images.images, (len(images), *images.image_shape))
    if getattr(images, "chunks", None) is not None and not isinstance(images, np.ndarray):
        from ..dataset_explanation.sources import ImageSource

        source = ImageSource(images, batch_size=1, layout=layout)
        first = source._to_images(_read_rows(images, np.array([0])))  # decides the layout

        def read(rows: np.ndarray) -> np.ndarray:
            return source._to_images(_read_rows(images, rows))

        return LazyImages(read, (source.n, *first.shape[1:]))
    return as_images(images, layout=layout)


def _read_rows(arr: Any, rows: np.ndarray) -> Any:
    """Sorted rows of a zarr array (orthogonal selection) or a dask array (computed)."""
    oindex = getattr(arr, "get_orthogonal_selection", None)
    if callable(oindex):
        return oindex((rows,))
    part = arr[rows]
    compute = getattr(part, "compute", None)
    return compute() if callable(compute) else np.asarray(part)
