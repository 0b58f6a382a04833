"""`Result`: the protocol every result of xaiwidgets keeps, and its safe file format.

Every result (:class:`~xaiwidgets.Explanation`, :class:`~xaiwidgets.CEMResult`,
:class:`~xaiwidgets.InfluenceResult`, :class:`~xaiwidgets.MetricsReport`,
:class:`~xaiwidgets.PerturbationCurve`) has

- ``params``: the parameters it was computed with (a JSON-ready dict);
- ``save(path) -> Path`` and ``Result.load(path)``: one ``.npz`` of plain numeric arrays and a
  JSON header (``meta``: ``format``, ``result`` (the class name) and the non-array fields);
  no pickle is ever written or read;
- ``widget(**kw)``: its interactive view (imported on first use: no result module imports a
  view at import time);
- ``_repr_mimebundle_``: the view in a notebook, with a ``text/plain`` line (and only the text
  when the view cannot be made, e.g. the JS bundle is not built).

A subclass names its array fields (``_arrays``; those in ``_required`` must be present, the
others may be ``None``) and its JSON fields (``_meta``); ``_check_loaded()`` validates what
``load`` read (shapes agree) and raises ``ValueError``/``TypeError``.

Loading checks every member of the archive before reading it: only the expected names, a
``.npy`` header whose shape and dtype match the bytes the member holds, a member no larger
than the file and no more deflated than deflate can, numbers only (no object arrays), so a
forged file is refused (``ValueError`` naming the file and what was wrong) before any large
allocation.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

#: version of the header; a file with another one is refused
FORMAT_VERSION = 1
#: deflate cannot shrink data by more than about 1032:1; a member claiming more is forged
_MAX_DEFLATE_RATIO = 1100


class Result:
    """Mixin of every result: ``params``, ``save``/``load``, ``widget``, ``_repr_mimebundle_``."""

    #: array fields written as ``.npy`` members (a ``None`` one is left out)
    _arrays: ClassVar[tuple[str, ...]] = ()
    #: array fields every file must hold
    _required: ClassVar[tuple[str, ...]] = ()
    #: JSON fields of the header
    _meta: ClassVar[tuple[str, ...]] = ()
    #: accept a header that does not name its result (files written before it did)
    _legacy_header: ClassVar[bool] = False
    #: shapes of the array fields with named sizes, e.g. ``{"area": ("n", "o")}``: checked
    #: on loading, a size named twice must agree (``None``: any size)
    _shapes: ClassVar[dict[str, tuple[str | None, ...]]] = {}
    #: allowed values of JSON fields, e.g. ``{"kind": ("deletion", "insertion")}``
    _choices: ClassVar[dict[str, tuple[Any, ...]]] = {}

    params: dict[str, Any]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (numeric arrays + a JSON header, no pickle); ``.npz`` is appended
        to a path without it. Returns the path written."""
        path = npz_path(path)
        arrays, meta = self._to_saved()
        header = {"format": FORMAT_VERSION, "result": type(self).__name__, **meta}
        members = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
        members["meta"] = np.array(json.dumps(header, default=json_default))
        np.savez(path, **members)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read what :meth:`save` wrote (``allow_pickle=False``); a file that is not one
        raises ``ValueError`` naming the file and what was wrong, before any large
        allocation."""
        if not isinstance(path, (str, Path)):
            raise TypeError(f"path: expected a str or pathlib.Path, got {type(path).__name__}")
        path = Path(path)
        arrays, meta = read_npz(
            path, cls.__name__, cls._arrays, cls._required, cls._meta, cls._legacy_header
        )
        try:
            result = cls._from_saved(arrays, meta)
            result._check_loaded()
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not a valid {cls.__name__} file: {exc}") from exc
        return result

    def _to_saved(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The arrays and the JSON fields to write (default: the named fields)."""
        arrays = {k: getattr(self, k) for k in self._arrays}
        meta = {k: getattr(self, k) for k in self._meta}
        return arrays, meta

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
        """The result from what :meth:`_to_saved` wrote (default: the constructor)."""
        return cls(**{k: arrays.get(k) for k in cls._arrays}, **meta)

    def _check_loaded(self) -> None:
        """Raise ``ValueError`` when what was loaded is inconsistent: a field outside its
        ``_choices``, an array whose shape disagrees with ``_shapes``."""
        for name, allowed in self._choices.items():
            if getattr(self, name) not in allowed:
                want = " or ".join(repr(a) for a in allowed)
                raise ValueError(f"{name}: expected {want}, got {getattr(self, name)!r}")
        sizes: dict[str, int] = {}
        for name, dims in self._shapes.items():
            arr = getattr(self, name)
            if arr is None:
                continue
            shape = np.shape(arr)
            bound = tuple(sizes.get(d) if d else None for d in dims)
            check_shape(arr, bound, name)
            sizes.update({d: s for d, s in zip(dims, shape) if d})

    # ------------------------------------------------------------------ display
    def widget(self, **kwargs: Any) -> Any:
        """The interactive view of this result: the view registered for its class in
        :mod:`xaiwidgets._views` (algorithms import no view; the views register themselves)."""
        from ._views import view_of

        return view_of(self, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """The :meth:`widget` view, and a ``text/plain`` line (the text alone when the view
        cannot be made)."""
        bundle: dict[str, Any] = {}
        text = repr(self)
        include = set(include or ())
        if not include or "application/vnd.jupyter.widget-view+json" in include:
            try:
                bundle.update(
                    self.widget()._repr_mimebundle_(include=include, exclude=exclude) or {}
                )
            except Exception as exc:  # no widget bundle: still say what the result is
                text = f"{text} (widget unavailable: {exc})"
        bundle["text/plain"] = text
        return bundle


def check_shape(arr: Any, shape: tuple[int | None, ...], name: str) -> np.ndarray:
    """``arr`` as an array of ``shape`` (``None``: any size there); ``ValueError`` else."""
    arr = np.asarray(arr)
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        want = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"{name}: expected shape {want}, got {arr.shape}")
    return arr


def npz_path(path: str | Path) -> Path:
    """``path`` with ``.npz`` appended when it has another suffix (or none)."""
    path = Path(path)
    if path.suffix == ".npz":
        return path
    return path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")


def json_default(obj: Any) -> Any:
    """JSON form of NumPy scalars and arrays (anything else: its ``str``)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def read_npz(
    path: Path,
    kind: str,
    arrays: tuple[str, ...],
    required: tuple[str, ...],
    fields: tuple[str, ...],
    legacy: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and the JSON fields of a file ``kind.save`` wrote; ``ValueError`` for
    anything else. ``legacy``: a header without ``result`` is accepted (files written before
    the header named its result)."""

    def bad(why: str) -> ValueError:
        return ValueError(f"{path}: not a valid {kind} file ({why})")

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: not a file (expected an .npz that {kind}.save wrote)")
    if not zipfile.is_zipfile(path):
        raise bad("not an .npz (zip) archive")
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            members = {info.filename.removesuffix(".npy"): info for info in zf.infolist()}
            if "meta" not in members:
                raise bad("missing meta")
            meta = _read_header(_read_member(zf, members["meta"], size, bad), bad)
            written = meta.get("result", kind if legacy else None)
            if written != kind:
                raise bad(f"it holds a {written!r} result, expected {kind!r}")
            unexpected = [m.filename for k, m in members.items() if k not in (*arrays, "meta")]
            if unexpected:
                raise bad(f"unexpected member {unexpected[0]!r}")
            missing = [m for m in required if m not in members]
            if missing:
                raise bad(f"missing {', '.join(missing)}")
            raw = {
                k: _read_member(zf, info, size, bad) for k, info in members.items() if k != "meta"
            }
    except zipfile.BadZipFile as exc:
        raise bad(f"damaged zip archive: {exc}") from exc
    missing = [key for key in fields if key not in meta]
    if missing:
        raise bad(f"the header lacks {', '.join(missing)}")
    for name, arr in raw.items():
        if arr.dtype.kind not in "biuf":
            raise bad(f"{name} holds {arr.dtype} data, expected numbers")
    return raw, {key: meta[key] for key in fields}


def _read_header(meta_arr: np.ndarray, bad: Any) -> dict[str, Any]:
    """The JSON header (``meta``), of the known format."""
    if meta_arr.ndim != 0 or meta_arr.dtype.kind != "U":
        raise bad("the header is not a JSON string")
    try:
        meta = json.loads(str(meta_arr))
    except json.JSONDecodeError as exc:
        raise bad(f"the header is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise bad(f"the header is a JSON {type(meta).__name__}, expected an object")
    if meta.get("format") != FORMAT_VERSION:
        raise bad(f"unknown format {meta.get('format')!r}, expected {FORMAT_VERSION}")
    return meta


def _read_member(zf: zipfile.ZipFile, info: Any, archive_size: int, bad: Any) -> np.ndarray:
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
