""":class:`DatasetExplanation`: the explanations of a whole data set, read lazily from the zarr
group :func:`~xaiwidgets.explain_dataset` wrote.

Nothing is read at opening but the group's attributes; ``result[rows]`` reads those rows of
every array and returns an ordinary :class:`~xaiwidgets.Explanation`. The per-image vectors
(``labels``, ``predictions``, ``probabilities``: ``n`` or ``n x k`` numbers) are read whole
on first use, for confusion matrices and selections.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..explanation import Explanation
from .store import ATTR, ExplanationStore, open_group


class DatasetExplanation:
    """Explanations of ``len(self)`` images on disk (see the module docstring).

    Attributes: ``method``, ``params`` (the explainer's), ``class_names``, ``meta`` (the
    store's attributes), ``group`` (the zarr group). ``complete`` says whether every chunk
    is written; ``done_rows`` which rows are.
    """

    def __init__(self, group: Any):
        self._store = ExplanationStore(group)
        self.group = group
        if "values" not in group:
            raise ValueError("store: no chunk has been written yet (nothing to read)")
        self._cache: dict[str, np.ndarray | None] = {}

    @classmethod
    def open(cls, store: str | Path | Any) -> DatasetExplanation:
        """Open what :func:`~xaiwidgets.explain_dataset` wrote (read only)."""
        if isinstance(store, (str, Path)) and not Path(store).exists():
            raise FileNotFoundError(f"{store}: no such store")
        return cls(open_group(store, "r"))

    #: the result protocol's name for :meth:`open` (a DatasetExplanation lives in zarr)
    load = open

    def save(self, path: str | Path) -> Path:
        """Copy the store to a new zarr group at ``path`` (array by array, one stored chunk
        of rows at a time: bounded memory). Returns the path written."""
        import zarr

        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: exists already (save writes a new store)")
        out = zarr.open_group(str(path), mode="w-")
        for name in self.group.keys():
            src = self.group[name]
            dst = out.create_array(
                name, shape=src.shape, chunks=src.chunks, dtype=src.dtype,
                fill_value=src.fill_value,
            )  # fmt: skip
            step = max(1, int(src.chunks[0]))
            for start in range(0, src.shape[0], step):
                dst[start : start + step] = src[start : start + step]
        out.attrs.update(self.group.attrs.asdict())
        return path

    # ------------------------------------------------------------------ description
    @property
    def meta(self) -> dict[str, Any]:
        return dict(self.group.attrs.asdict()).get(ATTR, {})

    @property
    def method(self) -> str:
        return str(self.meta.get("method", ""))

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.meta.get("params") or {})

    @property
    def class_names(self) -> list[str] | None:
        names = self.meta.get("class_names")
        return None if names is None else [str(v) for v in names]

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.group["data"].shape[1:])

    @property
    def n_outputs(self) -> int:
        return int(self.group["values"].shape[-1])

    def __len__(self) -> int:
        n = self.meta.get("n")
        return int(n) if n is not None else int(self.group["values"].shape[0])

    @property
    def done_rows(self) -> np.ndarray:
        """``(len(self),)`` bool: the rows whose chunk is written."""
        mask = np.zeros(len(self), bool)
        if "chunk_done" in self.group:
            bounds = self.group["chunk_rows"][:]
            for i in np.flatnonzero(self.group["chunk_done"][:]):
                mask[bounds[i, 0] : bounds[i, 1]] = True
        return mask

    @property
    def complete(self) -> bool:
        """Whether every row is written (and the number of rows known)."""
        return self.meta.get("n") is not None and bool(self.done_rows.all())

    def __repr__(self) -> str:
        done = int(self.done_rows.sum())
        return (
            f"DatasetExplanation(method={self.method!r}, images={len(self)}, "
            f"image_shape={self.image_shape}, outputs={self.n_outputs}, done={done})"
        )

    # ------------------------------------------------------------------ per-image vectors
    def _vector(self, name: str) -> np.ndarray | None:
        if name not in self._cache:
            self._cache[name] = self.group[name][:] if name in self.group else None
        return self._cache[name]

    @property
    def labels(self) -> np.ndarray | None:
        """``(n,)`` int64 true labels, or ``None``."""
        return self._vector("labels")

    @property
    def predictions(self) -> np.ndarray | None:
        """``(n, k)`` the model's outputs."""
        return self._vector("predictions")

    @property
    def probabilities(self) -> np.ndarray | None:
        """``(n, k)`` probabilities of the model's outputs."""
        return self._vector("probabilities")

    @property
    def predicted(self) -> np.ndarray | None:
        """``(n,)`` predicted class (argmax of the probabilities, or of the outputs)."""
        src = self.probabilities if self.probabilities is not None else self.predictions
        return None if src is None else src.argmax(axis=1)

    # ------------------------------------------------------------------ selection
    def rows(self, key: Any) -> np.ndarray:
        """The row indices ``key`` selects (int, slice, int list/array, boolean mask), sorted
        as given; ``IndexError`` out of range."""
        n = len(self)
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not -n <= key < n:
                raise IndexError(f"index {key} out of range for {n} images")
            return np.array([int(key) % n])
        if isinstance(key, slice):
            return np.arange(n)[key]
        arr = np.asarray(key)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise IndexError(f"boolean index: expected shape ({n},), got {arr.shape}")
            return np.flatnonzero(arr)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise IndexError(
                f"expected an int, a slice, a list of ints or a boolean mask, got {key!r}"
            )
        if len(arr) and (arr.min() < -n or arr.max() >= n):
            raise IndexError(f"index out of range for {n} images: {arr.min()}..{arr.max()}")
        return arr % n

    def __getitem__(self, key: Any) -> Explanation:
        """The Explanation of the selected rows (read from disk). A row whose chunk is not
        written raises ``ValueError``."""
        idx = self.rows(key)
        if len(idx) == 0:
            raise ValueError("empty selection: at least one image is needed")
        missing = idx[~self.done_rows[idx]]
        if len(missing):
            raise ValueError(
                f"rows {missing[:10].tolist()} are not explained yet (the run was interrupted): "
                "run explain_dataset again on this store to finish them"
            )
        g = self.group

        def read(name: str) -> np.ndarray | None:
            if name not in g:
                return None
            if isinstance(key, slice) and len(idx) and np.all(np.diff(idx) == 1):
                return g[name][int(idx[0]) : int(idx[-1]) + 1]
            order = np.argsort(idx, kind="stable")
            got = g[name].get_orthogonal_selection(idx[order])
            out = np.empty_like(got)
            out[order] = got
            return out

        return Explanation(
            values=read("values"),
            data=read("data"),
            base_values=read("base_values"),
            output_indices=read("output_indices"),
            class_names=self.class_names,
            predictions=read("predictions"),
            probabilities=read("probabilities"),
            labels=read("labels"),
            method=self.method,
            params=self.params,
        )

    def images(self, key: Any) -> np.ndarray:
        """``(len(rows), h, w, c)`` float32: the images of the selected rows alone."""
        idx = self.rows(key)
        order = np.argsort(idx, kind="stable")
        got = self.group["data"].get_orthogonal_selection(idx[order])
        out = np.empty_like(got)
        out[order] = got
        return out

    # ------------------------------------------------------------------ display
    def widget(self, *, page_size: int = 20, **kwargs: Any):
        """An :class:`~xaiwidgets.widgets.AttributionGrid` paging through the rows,
        ``page_size`` at a time (other keywords set the grid's traits)."""
        from .._views import view_of

        return view_of(self, page_size=page_size, **kwargs)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        try:
            bundle.update(self.widget()._repr_mimebundle_(include=include, exclude=exclude) or {})
        except Exception as exc:  # noqa: BLE001 - no widget: the text says why
            bundle["text/plain"] = f"{self!r} (widget unavailable: {exc})"
            return bundle
        bundle["text/plain"] = repr(self)
        return bundle
