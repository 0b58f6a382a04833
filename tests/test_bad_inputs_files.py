"""Bad files: a damaged IDX file or a malformed saved Explanation ends in a ValueError that
says what is wrong, before anything of the size a header claims is allocated (issue 12)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from xaiwidgets import Explanation
from xaiwidgets.datasets import read_idx, write_idx


@pytest.fixture
def images():
    return np.random.default_rng(1).random((2, 6, 5, 1)).astype(np.float32)


# -- read_idx ---------------------------------------------------------------------------
def _idx(tmp_path, header: bytes, data: bytes = b"", name: str = "f.idx"):
    path = tmp_path / name
    path.write_bytes(header + data)
    return path


@pytest.mark.parametrize(
    "header, data, match",
    [
        # four sizes of 2**16: np.prod wrapped the product to 0 and reshape failed inside numpy
        (bytes([0, 0, 8, 4]) + b"\x00\x01\x00\x00" * 4, b"", r"\(18446744073709551616 bytes"),
        # 2**31 * 2**31 * 2: wrapped to a negative byte count
        (
            bytes([0, 0, 8, 3]) + b"\x80\x00\x00\x00" * 2 + b"\x00\x00\x00\x02",
            b"\0" * 8,
            r"\(9223372036854775808 bytes of uint8\) but the file holds 8 bytes",
        ),
        (bytes([0, 0, 8, 1]) + b"\x00\x00\x00\x0a", b"\0" * 4, "holds 4 bytes"),  # truncated
        (bytes([0, 0, 8, 2]) + b"\x00\x00", b"", "truncated IDX header"),
        (bytes([0, 0, 8, 0]), b"", "0 dimensions"),
        (bytes([0, 0, 0x42, 1]), b"", "unknown IDX type code 0x42"),
    ],
)
def test_read_idx_rejects(tmp_path, header, data, match):
    with pytest.raises(ValueError, match=match):
        read_idx(_idx(tmp_path, header, data))


def test_read_idx_damaged_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    write_idx(path, np.arange(100, dtype=np.uint8).reshape(10, 10))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cannot read the IDX file|holds"):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read the IDX file"):
        read_idx(path)


# -- Explanation.load ---------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, images):
    e = Explanation(values=np.ones((2, 6, 5, 1, 3)), data=images, class_names=["a", "b", "c"])
    return e.save(tmp_path / "e.npz")


def _rewrite(path, drop=(), replace=None):
    """Copy the archive with members dropped or replaced (name -> bytes)."""
    replace = replace or {}
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    for name in drop:
        members.pop(name)
    members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npy_header_claiming(shape, dtype="<f8") -> bytes:
    """A .npy member whose header claims ``shape`` but which holds 8 bytes."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 8


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: _rewrite(p, drop=["meta.npy"]), "missing meta"),
        (lambda p: _rewrite(p, drop=["values.npy"]), "missing values"),
        (
            lambda p: _rewrite(p, replace={"meta.npy": _npy(np.array("{not json"))}),
            "not valid JSON",
        ),
        (lambda p: _rewrite(p, replace={"meta.npy": _npy(np.array("[1]"))}), "expected an object"),
        (
            lambda p: _rewrite(p, replace={"meta.npy": _npy(np.array(json.dumps({"format": 1})))}),
            "lacks class_names, method, params",
        ),
        (lambda p: _rewrite(p, replace={"meta.npy": _npy(np.arange(3))}), "not a JSON string"),
        (lambda p: _rewrite(p, replace={"extra.npy": _npy(np.arange(3))}), "unexpected member"),
        (lambda p: _rewrite(p, replace={"values.npy": b"garbage"}), "not a .npy array"),
        (
            lambda p: _rewrite(p, replace={"values.npy": _npy(np.array(["a", "b"]))}),
            "expected numbers",
        ),
        # 4 TB claimed by the header, 8 bytes in the archive: refused before allocating
        (
            lambda p: _rewrite(p, replace={"values.npy": _npy_header_claiming((2**19, 2**20))}),
            "header says shape",
        ),
        (
            lambda p: _rewrite(p, replace={"values.npy": _npy(np.ones((3, 6, 5, 1, 3)))}),
            "data: expected shape",
        ),
        (lambda p: p.write_bytes(b"plain text, not a zip") and p, "not an .npz"),
    ],
)
def test_explanation_load_rejects_malformed_files(saved, change, match):
    change(saved)
    with pytest.raises(ValueError, match=match):
        Explanation.load(saved)


def test_explanation_load_forged_zip_sizes(saved):
    """A zip directory that claims ~4 GB for a member of a small file (and a .npy header
    that claims 4 TB) is refused before anything of that size is read or allocated."""
    import struct

    _rewrite(saved, replace={"values.npy": _npy_header_claiming((2**19, 2**20))})
    raw = bytearray(saved.read_bytes())
    at = raw.find(b"PK\x01\x02", 0)
    while raw[at + 46 : at + 46 + len(b"values.npy")] != b"values.npy":
        at = raw.find(b"PK\x01\x02", at + 4)
    raw[at + 20 : at + 28] = struct.pack("<II", 0xF0000000, 0xF0000000)
    saved.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="claims 4026531840 bytes in a"):
        Explanation.load(saved)


def test_explanation_load_round_trip_still_works(saved):
    e = Explanation.load(saved)
    assert e.class_names == ["a", "b", "c"] and e.values.shape == (2, 6, 5, 1, 3)
