"""What :func:`~xaiwidgets.explain_dataset` reads: any image source as numbered chunks.

A source yields :class:`Chunk` objects in order: chunk ``i`` holds the rows ``[start, stop)``
of the data set as ``float32`` NHWC images (and their labels when known). The chunking is a
function of the source and ``batch_size`` alone, so that a second run (a resume) cuts the
same chunks:

- an array (NumPy, zarr, dask, h5py, a torch tensor: anything with ``shape`` and slicing):
  chunk ``i`` is rows ``[i * b, (i + 1) * b)``; chunks already done are not read at all;
- a torch map-style ``Dataset`` (items ``image`` or ``(image, label)``): the same rows, its
  items stacked;
- a torch ``DataLoader``, a ``tf.data.Dataset`` or any other iterable of batches (``images``
  or ``(images, labels)``): the batches as they come, re-cut to ``batch_size`` rows when it is
  given; a ``tf.data.Dataset`` of single images is batched first. A loader that shuffles is
  refused (a resume needs the same order).

Images keep their value range; the layout is decided once, from the first batch (``layout=``
names it; a torch tensor is channels first, a TensorFlow one channels last; a NumPy batch is
read from its shape), and every chunk is converted with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._arrays import LAYOUTS, _framework_layout, _numpy_layout, as_images, framework_of, to_numpy

#: the attributions of one chunk stay under this many bytes by default (10 outputs assumed)
CHUNK_BYTES = 64 * 2**20
MAX_CHUNK_ROWS = 256
_ACCEPTED = (
    "a NumPy, zarr or dask array of images, a torch Dataset or DataLoader, a tf.data.Dataset "
    "or an iterable of batches (images, or (images, labels) pairs)"
)


@dataclass
class Chunk:
    """Rows ``[start, stop)``: ``images`` ``(stop - start, h, w, c)`` float32 (``None`` for a
    chunk that was skipped without being read) and ``labels`` ``(stop - start,)`` or ``None``."""

    index: int
    start: int
    stop: int
    images: np.ndarray | None
    labels: np.ndarray | None


def default_batch_size(image_size: int) -> int:
    """Rows per chunk for images of ``image_size`` numbers: what keeps 10 outputs of
    attributions under :data:`CHUNK_BYTES`, between 1 and :data:`MAX_CHUNK_ROWS`."""
    return int(max(1, min(MAX_CHUNK_ROWS, CHUNK_BYTES // (4 * 10 * max(1, image_size)))))


def _check_batch_size(batch_size: Any) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(
            f"batch_size: expected None or a positive int, got {type(batch_size).__name__} "
            f"{batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size}")
    return int(batch_size)


def _type_names(obj: Any) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(obj).__mro__}


def _is_array(obj: Any) -> bool:
    shape = getattr(obj, "shape", None)
    return isinstance(shape, tuple) and hasattr(obj, "__getitem__") and len(shape) >= 2


def _is_torch_dataset(obj: Any) -> bool:
    return "torch.utils.data.dataset.Dataset" in _type_names(obj) and hasattr(obj, "__len__")


def _is_torch_loader(obj: Any) -> bool:
    return "torch.utils.data.dataloader.DataLoader" in _type_names(obj)


def _is_tf_dataset(obj: Any) -> bool:
    return (type(obj).__module__ or "").startswith("tensorflow") and hasattr(
        obj, "as_numpy_iterator"
    )


class ImageSource:
    """Chunks of an image source (see the module docstring).

    Parameters
    ----------
    images : the source.
    labels : ``(n,)`` labels (or one-hot rows) for an array or Dataset source, or ``None``.
    batch_size : rows per chunk, or ``None`` (an array's own chunk rows when at most 1024,
        else :func:`default_batch_size`; an iterable's batches as they come).
    layout : the axes of the images (``"auto"``, ``"nhwc"``, ``"nchw"``, ``"nhw"``).

    Attributes: ``n`` (rows, ``None`` while unknown), ``batch_size`` (``None`` for an iterable
    cut as it comes), ``kind`` (``"array"``, ``"dataset"``, ``"iterable"``).
    """

    def __init__(
        self, images: Any, labels: Any = None, batch_size: Any = None, layout: str = "auto"
    ):
        self.batch_size = _check_batch_size(batch_size)
        if not isinstance(layout, str) or layout.lower() not in LAYOUTS:
            raise ValueError(
                f"layout: expected one of {', '.join(repr(v) for v in LAYOUTS)}, got {layout!r}"
            )
        self.layout = layout.lower()
        self._layout: str | None = None
        self.images = images
        self.labels = None
        if isinstance(images, (str, bytes, dict)) or images is None:
            raise TypeError(f"images: expected {_ACCEPTED}, got {type(images).__name__}")
        if _is_array(images) and not _is_torch_dataset(images):
            self.kind = "array"
            self.n = int(images.shape[0])
            if len(images.shape) not in (3, 4):
                raise ValueError(
                    "images: expected an array of images (n, h, w), (n, h, w, c) or (n, c, h, w), "
                    f"got shape {tuple(images.shape)}"
                )
            if self.batch_size is None:
                own = _array_chunk_rows(images)
                size = int(np.prod(images.shape[1:]))
                self.batch_size = own if own and own <= 1024 else default_batch_size(size)
        elif _is_torch_dataset(images):
            self.kind = "dataset"
            self.n = len(images)
            if self.batch_size is None:
                first = _split_item(images[0])[0]
                self.batch_size = default_batch_size(int(np.prod(to_numpy(first).shape)))
        elif _is_torch_loader(images) or _is_tf_dataset(images) or isinstance(images, Iterable):
            self.kind = "iterable"
            self.n = None
            if _is_torch_loader(images):
                sampler = type(getattr(images, "sampler", None)).__name__
                if sampler == "RandomSampler":
                    raise ValueError(
                        "images: expected a DataLoader that keeps its order (shuffle=False), got "
                        "one that shuffles: a resumed run must see the same images in the "
                        "same chunks"
                    )
                try:
                    self.n = len(images.dataset)
                except TypeError:
                    self.n = None
            if labels is not None:
                raise ValueError(
                    "labels: an iterable source gives its labels with its batches as "
                    "(images, labels) pairs; expected labels=None, got "
                    f"{type(labels).__name__}"
                )
        else:
            raise TypeError(f"images: expected {_ACCEPTED}, got {type(images).__name__}")
        if labels is not None:
            shape = getattr(labels, "shape", None)
            n_labels = shape[0] if isinstance(shape, tuple) and shape else len(labels)
            if n_labels != self.n:
                raise ValueError(
                    f"labels: expected {self.n} labels (one per image), got {n_labels}"
                )
            self.labels = labels

    # ------------------------------------------------------------------ conversion
    def _to_images(self, batch: Any) -> np.ndarray:
        """One raw batch as float32 NHWC, with the layout decided at the first batch."""
        if self._layout is None:
            self._layout = self._decide_layout(batch)
        arr = to_numpy(batch) if framework_of(batch) is not None else batch
        return as_images(np.asarray(arr), layout=self._layout)

    def _decide_layout(self, batch: Any) -> str:
        shape = tuple(int(s) for s in batch.shape)
        if len(shape) == 3:
            return "nhw"
        if len(shape) != 4:
            raise ValueError(
                "images: expected batches (n, h, w), (n, h, w, c) or (n, c, h, w), got a batch "
                f"of shape {shape}"
            )
        if self.layout in ("nhwc", "nchw"):
            return self.layout
        if self.layout != "auto":
            raise ValueError(f"layout: {self.layout!r} does not name the axes of a batch {shape}")
        fw = framework_of(batch)
        return _framework_layout(fw, shape) if fw is not None else _numpy_layout(shape, "images")

    def head_digest(self, rows: int = 4) -> str | None:
        """A hash of the first ``rows`` images as explained (``None`` for an iterable, which
        cannot be read twice): a resumed run checks that the data are the same."""
        if self.kind == "iterable":
            return None
        stop = min(rows, self.n)
        if self.kind == "array":
            x = self._to_images(_read(self.images, 0, stop))
        else:
            x = self._to_images(
                np.stack([_one_image(_split_item(self.images[j])[0]) for j in range(stop)])
            )
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:32]

    # ------------------------------------------------------------------ chunks
    def chunks(self, skip: Any = ()) -> Iterator[Chunk]:
        """Every chunk in order; those whose index is in ``skip`` come with ``images=None``
        (an array or Dataset source does not read them; an iterable has to)."""
        skip = set(skip)
        if self.kind == "iterable":
            yield from self._iterable_chunks(skip)
            return
        b = int(self.batch_size)
        for i, start in enumerate(range(0, self.n, b)):
            stop = min(start + b, self.n)
            if i in skip:
                yield Chunk(i, start, stop, None, None)
                continue
            if self.kind == "array":
                raw = _read(self.images, start, stop)
                x = self._to_images(raw)
            else:
                items = [_split_item(self.images[j]) for j in range(start, stop)]
                x = self._to_images(np.stack([_one_image(it[0]) for it in items]))
                if self.labels is None and all(it[1] is not None for it in items):
                    yield Chunk(i, start, stop, x, _labels([it[1] for it in items]))
                    continue
            y = None if self.labels is None else _labels(_read(self.labels, start, stop))
            yield Chunk(i, start, stop, x, y)

    def _raw_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        source = self.images
        if _is_tf_dataset(source):
            source = _batched_tf(source, self.batch_size)
        for item in source:
            x, y = _split_item(item)
            if (
                isinstance(x, (str, bytes, dict))
                or not hasattr(x, "shape")
                and not isinstance(x, (list, tuple))
            ):
                raise TypeError(
                    f"images: expected batches of images (arrays) or (images, labels) pairs, "
                    f"got an item of type {type(x).__name__}"
                )
            x = self._to_images(x)
            yield x, None if y is None else _labels(y, len(x))

    def _iterable_chunks(self, skip: set[int]) -> Iterator[Chunk]:
        start = 0
        for i, (x, y) in enumerate(_recut(self._raw_batches(), self.batch_size)):
            stop = start + len(x)
            yield Chunk(i, start, stop, None if i in skip else x, None if i in skip else y)
            start = stop


def _recut(
    batches: Iterator[tuple[np.ndarray, np.ndarray | None]], size: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Batches re-cut to ``size`` rows (the last one shorter); as they come when ``None``."""
    if size is None:
        yield from batches
        return
    xs: list[np.ndarray] = []
    ys: list[np.ndarray | None] = []
    held = 0
    for x, y in batches:
        xs.append(x)
        ys.append(y)
        held += len(x)
        while held >= size:
            xa = np.concatenate(xs)
            ya = None if any(v is None for v in ys) else np.concatenate(ys)
            yield xa[:size], None if ya is None else ya[:size]
            xs, ys = [xa[size:]], [None if ya is None else ya[size:]]
            held -= size
    if held:
        yield np.concatenate(xs), None if any(v is None for v in ys) else np.concatenate(ys)


def _array_chunk_rows(arr: Any) -> int | None:
    """Rows per stored chunk of a zarr (``chunks``: ints) or dask (``chunks``: tuples) array."""
    chunks = getattr(arr, "chunks", None)
    if not chunks:
        return None
    first = chunks[0]
    if isinstance(first, tuple):  # dask: the sizes of every chunk along the axis
        return int(max(first)) if first else None
    return int(first) if isinstance(first, (int, np.integer)) else None


def _read(arr: Any, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of an array (computed when it is a dask array)."""
    part = arr[start:stop]
    compute = getattr(part, "compute", None)
    return compute() if callable(compute) and not isinstance(part, np.ndarray) else part


def _split_item(item: Any) -> tuple[Any, Any]:
    """``(images, labels)`` of a batch or Dataset item: a pair, or images alone."""
    if isinstance(item, (tuple, list)) and len(item) == 2 and hasattr(item[0], "shape"):
        return item[0], item[1]
    return item, None


def _one_image(x: Any) -> np.ndarray:
    return np.asarray(to_numpy(x))


def _labels(y: Any, n: int | None = None) -> np.ndarray:
    from .._arrays import as_labels

    return as_labels(np.asarray(to_numpy(y)) if not isinstance(y, list) else y, n=n, name="labels")


def _batched_tf(ds: Any, batch_size: int | None) -> Iterable[Any]:
    """A ``tf.data.Dataset`` as NumPy batches: single images are batched first."""
    spec = ds.element_spec
    first = spec[0] if isinstance(spec, (tuple, list)) else spec
    shape = getattr(first, "shape", None)
    rank = getattr(shape, "rank", None)
    # one image per element: (h, w) or (h, w, c) with a known first axis (a batch's is None)
    if rank == 2 or (rank == 3 and shape[0] is not None):
        ds = ds.batch(batch_size or 64)
    return ds.as_numpy_iterator()
