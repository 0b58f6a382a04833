"""The zarr group a :func:`~xaiwidgets.explain_dataset` run writes (layout in the package
docstring) and the checks that make a resume safe.

A run's identity (``run_identity``: the explainer's class, method and parameters, the call
keywords, the model's fingerprint, whether labels are stored, the source's kind, length and
chunk rows) is written to the group's attributes when the group is created; a later run on
the same group must have the same identity, else ``ValueError`` names every entry that
differs. Chunks are written array by array, then marked in ``chunk_done``: a chunk
interrupted half-way is simply not done, and is computed again by the next run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..explanation import Explanation
from .sources import Chunk

FORMAT = 1
ATTR = "xaiwidgets"
_ROW_ARRAYS = ("values", "data", "base_values", "output_indices", "predictions", "probabilities")
_INDEX_CHUNK = 4096


def as_json(obj: Any) -> Any:
    """``obj`` as plain JSON values (NumPy scalars and arrays as numbers and lists, anything
    else by its ``str``), so that what is compared is what is stored."""

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.loads(json.dumps(obj, default=default, sort_keys=True))


def open_group(store: Any, mode: str) -> Any:
    """A zarr group from a path (``str``/``Path``) or an open group (returned as it is)."""
    import zarr

    if isinstance(store, zarr.Group):
        return store
    if isinstance(store, (str, Path)):
        return zarr.open_group(str(store), mode=mode)
    raise TypeError(
        f"store: expected a zarr group or the path of one (str or pathlib.Path), got "
        f"{type(store).__name__}"
    )


class ExplanationStore:
    """Reading and writing one run's group. ``meta`` is the group's ``xaiwidgets`` attribute."""

    def __init__(self, group: Any):
        self.group = group
        meta = dict(group.attrs.asdict()).get(ATTR)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(
                f"store: expected a group that explain_dataset wrote (format {FORMAT}), got "
                f"one without it (attributes: {sorted(group.attrs.asdict())})"
            )
        self.meta = meta

    # ------------------------------------------------------------------ creation / resume
    @classmethod
    def begin(cls, store: Any, identity: dict[str, Any], extra: dict[str, Any]) -> ExplanationStore:
        """Create the group (or open it to resume): a group that holds another run's results
        raises ``ValueError`` naming what differs; a group that holds something else too."""
        group = open_group(store, "a")
        identity = as_json(identity)
        attrs = dict(group.attrs.asdict())
        if ATTR not in attrs:
            if len(list(group.keys())):
                raise ValueError(
                    f"store: expected an empty group or one explain_dataset wrote, got a group "
                    f"holding {sorted(group.keys())}"
                )
            group.attrs[ATTR] = {"format": FORMAT, "identity": identity, **as_json(extra)}
            return cls(group)
        self = cls(group)
        before = self.meta.get("identity", {})
        diffs = [
            f"{key}: stored {before.get(key)!r}, this run {identity.get(key)!r}"
            for key in sorted(set(before) | set(identity))
            if before.get(key) != identity.get(key)
        ]
        if diffs:
            raise ValueError(
                "store: it holds the results of another run; resuming it needs the same "
                "explainer, parameters, model and data. Differs: "
                + "; ".join(diffs)
                + ". Use another store (or delete this one) to start again"
            )
        return self

    def update_meta(self, **entries: Any) -> None:
        self.meta = {**self.meta, **as_json(entries)}
        self.group.attrs[ATTR] = self.meta

    # ------------------------------------------------------------------ chunk bookkeeping
    def _index_arrays(self, m: int) -> tuple[Any, Any]:
        g = self.group
        if "chunk_done" not in g:
            g.create_array(
                "chunk_rows", shape=(m, 2), chunks=(_INDEX_CHUNK, 2), dtype="int64", fill_value=-1
            )
            g.create_array(
                "chunk_done", shape=(m,), chunks=(_INDEX_CHUNK,), dtype="bool", fill_value=False
            )
        rows, done = g["chunk_rows"], g["chunk_done"]
        if done.shape[0] < m:
            rows.resize((m, 2))
            done.resize((m,))
        return rows, done

    def done_chunks(self) -> set[int]:
        """Indices of the chunks whose every array is written."""
        if "chunk_done" not in self.group:
            return set()
        return {int(i) for i in np.flatnonzero(self.group["chunk_done"][:])}

    def chunk_bounds(self, index: int) -> tuple[int, int] | None:
        """``(start, stop)`` recorded for chunk ``index``, or ``None``."""
        if "chunk_rows" not in self.group or index >= self.group["chunk_rows"].shape[0]:
            return None
        start, stop = (int(v) for v in self.group["chunk_rows"][index])
        return None if start < 0 else (start, stop)

    # ------------------------------------------------------------------ writing
    def _create_arrays(self, e: Explanation, rows: int, n: int | None) -> None:
        g = self.group
        total = 0 if n is None else int(n)
        o = e.values.shape[-1]
        specs = {
            "values": ((total, *e.values.shape[1:]), "float32"),
            "data": ((total, *e.data.shape[1:]), "float32"),
            "base_values": ((total, o), "float32"),
            "output_indices": ((total, o), "int64"),
        }
        if e.predictions is not None:
            specs["predictions"] = ((total, e.predictions.shape[1]), "float32")
        if e.probabilities is not None:
            specs["probabilities"] = ((total, e.probabilities.shape[1]), "float32")
        if e.labels is not None:
            specs["labels"] = ((total,), "int64")
        for name, (shape, dtype) in specs.items():
            g.create_array(name, shape=shape, chunks=(rows, *shape[1:]), dtype=dtype, fill_value=0)
        self.update_meta(
            method=e.method,
            class_names=e.class_names,
            n_outputs=o,
            image_shape=list(e.data.shape[1:]),
        )

    def write(self, chunk: Chunk, e: Explanation, chunk_rows: int, n: int | None) -> None:
        """Write the explanation of ``chunk`` (its rows), then mark the chunk done."""
        if len(e) != chunk.stop - chunk.start:
            raise ValueError(
                f"the explainer returned {len(e)} rows for chunk {chunk.index} of "
                f"{chunk.stop - chunk.start} images"
            )
        g = self.group
        if "values" not in g:
            self._create_arrays(e, chunk_rows, n)
        self._check_shapes(e, chunk)
        names = [a for a in (*_ROW_ARRAYS, "labels") if a in g]
        for name in names:
            arr = g[name]
            if arr.shape[0] < chunk.stop:
                arr.resize((chunk.stop, *arr.shape[1:]))
            arr[chunk.start : chunk.stop] = getattr(e, name)
        rows, done = self._index_arrays(chunk.index + 1)
        rows[chunk.index] = np.array([chunk.start, chunk.stop], np.int64)
        done[chunk.index] = True

    def _check_shapes(self, e: Explanation, chunk: Chunk) -> None:
        g = self.group
        for name in (*_ROW_ARRAYS, "labels"):
            have = getattr(e, name)
            if (have is None) != (name not in g):
                raise ValueError(
                    f"chunk {chunk.index}: {name} is {'missing' if have is None else 'present'} "
                    "unlike in the chunks before it"
                )
            if have is not None and tuple(have.shape[1:]) != tuple(g[name].shape[1:]):
                raise ValueError(
                    f"chunk {chunk.index}: {name} has shape {tuple(have.shape[1:])} per row, "
                    f"expected {tuple(g[name].shape[1:])} as in the chunks before it (every "
                    "chunk must explain the same number of outputs: include_true=True can add "
                    "a column to some chunks only; use outputs= instead)"
                )
