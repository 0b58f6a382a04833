"""The ``.npz`` file of a result: named NumPy arrays and a JSON header, never a pickle.

:func:`write_npz` writes the arrays and the header (member ``meta``, a JSON string);
:func:`read_npz` reads them back checking everything before a large allocation: a file that is
not such an archive (not a zip, a member missing or unknown, a header that is not JSON, of
another format version or lacking a key, arrays whose ``.npy`` headers claim more data than
the archive holds, Python objects) raises ``ValueError`` naming the file and what was wrong.
Used by :meth:`xaiwidgets.Explanation.save` / :meth:`~xaiwidgets.Explanation.load`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: deflate cannot shrink data by more than about 1032:1; a member claiming more is forged
_MAX_DEFLATE_RATIO = 1100


def npz_path(path: str | Path) -> Path:
    """``path`` with the ``.npz`` suffix (added after any other suffix)."""
    path = Path(path)
    if path.suffix == ".npz":
        return path
    return path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")


def write_npz(path: str | Path, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` (``None`` entries left out) and the JSON header ``meta`` (NumPy
    scalars and arrays as numbers and lists, anything else unknown as text) to ``path``
    (``.npz`` added when missing). Returns the path written."""
    path = npz_path(path)
    members = {name: a for name, a in arrays.items() if a is not None}
    members["meta"] = np.array(json.dumps(dict(meta), default=_json_default))
    np.savez(path, **members)
    return path


def read_npz(
    path: Path,
    what: str,
    *,
    arrays: Iterable[str],
    required: Iterable[str],
    meta_keys: Iterable[str],
    version: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the header fields ``meta_keys`` of a file :func:`write_npz` wrote for a
    ``what`` (e.g. ``"Explanation"``) of format ``version``; members other than ``arrays``
    and ``meta`` are refused, ``required`` ones must be there. ``ValueError`` for anything
    else, ``FileNotFoundError`` when there is no file."""
    import zipfile

    allowed, required, meta_keys = set(arrays), list(required), list(meta_keys)

    def bad(why: str) -> ValueError:
        return ValueError(f"{path}: not a valid {what} file ({why})")

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a file (expected an .npz that {what}.save wrote)")
    if not zipfile.is_zipfile(path):
        raise bad("not an .npz (zip) archive")
    try:
        with zipfile.ZipFile(path) as zf:
            members = {}
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                if name not in allowed and name != "meta":
                    raise bad(f"unexpected member {info.filename!r}")
                members[name] = info
            missing = [m for m in ["meta", *required] if m not in members]
            if missing:
                raise bad(f"missing {', '.join(missing)}")
            size = path.stat().st_size
            raw = {name: _read_member(zf, info, size, bad) for name, info in members.items()}
    except zipfile.BadZipFile as exc:
        raise bad(f"damaged zip archive: {exc}") from exc
    meta_arr = raw.pop("meta")
    if meta_arr.ndim != 0 or meta_arr.dtype.kind != "U":
        raise bad("the header is not a JSON string")
    try:
        meta = json.loads(str(meta_arr))
    except json.JSONDecodeError as exc:
        raise bad(f"the header is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise bad(f"the header is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != version:
        raise bad(f"unknown format {meta.get('format')!r}, expected {version}")
    missing = [key for key in meta_keys if key not in meta]
    if missing:
        raise bad(f"the header lacks {', '.join(missing)}")
    for name, arr in raw.items():
        if arr.dtype.kind not in "biuf":
            raise bad(f"{name} holds {arr.dtype} data, expected numbers")
    return raw, {key: meta[key] for key in meta_keys}


def _read_member(zf: Any, info: Any, archive_size: int, bad: Any) -> np.ndarray:
    """One ``.npy`` member, its header checked against the member's size (and that against
    the archive's size on disk) before the data is allocated."""
    fmt = np.lib.format
    if info.compress_size > archive_size:
        raise bad(
            f"{info.filename} claims {info.compress_size} bytes in a {archive_size}-byte file"
        )
    if info.file_size > info.compress_size * _MAX_DEFLATE_RATIO + 1024:
        raise bad(f"{info.filename} claims {info.file_size} bytes from {info.compress_size}")
    with zf.open(info) as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
        except (ValueError, OSError, EOFError) as exc:
            raise bad(f"{info.filename}: not a .npy array ({exc})") from exc
        if dtype.hasobject:
            raise bad(f"{info.filename} holds Python objects (pickles are never loaded)")
        count = 1
        for s in shape:
            count *= int(s)
        need = count * dtype.itemsize
        have = info.file_size - f.tell()
        if need != have:
            raise bad(
                f"{info.filename}: header says shape {shape} of {dtype} ({need} bytes), "
                f"the archive holds {have} bytes"
            )
        data = f.read(need)
    if len(data) != need:
        raise bad(f"{info.filename} is truncated")
    arr = np.frombuffer(data, dtype=dtype, count=count)
    order = "F" if fortran else "C"
    return arr.reshape(shape, order=order).copy() if shape else arr.reshape(())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
