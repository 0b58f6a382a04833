"""What a CEM search returns, and what it keeps while it runs.

:class:`CEMResult` holds the pertinent negatives or positives of a search (final or streamed
best-so-far); :class:`SearchBest` the best solution each group (image or setting) has found so
far. Used by :class:`~xaiwidgets.explainers.cem.CEMExplainer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._result import Result

_CEM_ARRAYS = (
    "original", "image", "delta", "found", "original_class", "original_proba", "image_class",
    "image_proba", "c", "distance", "loss",
)  # fmt: skip


@dataclass(eq=False)
class CEMResult(Result):
    """Pertinent negatives or positives for ``n`` images.

    ``original``/``image``/``delta`` are ``(n, h, w, c)``: ``image`` is what the model
    classifies (``original + delta`` for a PN, ``delta`` for a PP, the paper's convention);
    where nothing was found (``found[i]`` False) ``delta`` is 0, ``image_class`` is -1 and
    ``image_proba``, ``c`` and ``distance`` are NaN. ``loss`` ``(n, max_iterations)`` traces the
    objective of the run that gave the answer. ``complete`` is False for the best-so-far results
    streamed to ``on_update`` during a search, ``iterations`` counts the steps taken so far.

    Keeps the result protocol (:class:`~xaiwidgets._result.Result`): ``params``,
    ``save``/``load``, ``widget()`` (the originals and deltas as an attribution grid),
    ``_repr_mimebundle_``.
    """

    _arrays: ClassVar[tuple[str, ...]] = _CEM_ARRAYS
    _required: ClassVar[tuple[str, ...]] = _CEM_ARRAYS
    _meta: ClassVar[tuple[str, ...]] = ("mode", "iterations", "complete", "class_names", "params")
    _shapes = {
        "original": ("n", "h", "w", "c"), "image": ("n", "h", "w", "c"),
        "delta": ("n", "h", "w", "c"), "found": ("n",), "original_class": ("n",),
        "original_proba": ("n", "k"), "image_class": ("n",), "image_proba": ("n", "k"),
        "c": ("n",), "distance": ("n",), "loss": ("n", None),
    }  # fmt: skip
    _choices = {"mode": ("PN", "PP")}

    mode: str
    original: np.ndarray
    image: np.ndarray
    delta: np.ndarray
    found: np.ndarray
    original_class: np.ndarray
    original_proba: np.ndarray
    image_class: np.ndarray
    image_proba: np.ndarray
    c: np.ndarray
    distance: np.ndarray
    loss: np.ndarray
    iterations: int = 0
    complete: bool = True
    class_names: list[str] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def pn(self) -> np.ndarray | None:
        """The pertinent negatives (``None`` for a PP result)."""
        return self.image if self.mode == "PN" else None

    @property
    def pp(self) -> np.ndarray | None:
        """The pertinent positives (``None`` for a PN result)."""
        return self.image if self.mode == "PP" else None

    def __len__(self) -> int:
        return len(self.original)

    def _check_loaded(self) -> None:
        super()._check_loaded()
        k = self.image_proba.shape[1]
        if self.class_names is not None and len(self.class_names) != k:
            raise ValueError(f"class_names: expected {k} names, got {len(self.class_names)}")
        self.found = self.found.astype(bool)

    def __repr__(self) -> str:
        state = "" if self.complete else f", partial after {self.iterations} steps"
        return (
            f"CEMResult(mode={self.mode!r}, n={len(self)}, found={self.found.tolist()}, "
            f"original_class={self.original_class.tolist()}, "
            f"image_class={self.image_class.tolist()}{state})"
        )


class SearchBest:
    """The best solution so far of each group (smallest distance meeting the condition)."""

    def __init__(self, n: int, shape: tuple[int, ...], T: int):
        self.found = np.zeros(n, bool)
        self.dist = np.full(n, np.nan)
        self.c = np.full(n, np.nan)
        self.a = np.zeros((n,) + shape, np.float32)
        self._T = T
        self._trace: list[Any] = [None] * n
        self.improved = False

    def update(
        self,
        ok: np.ndarray,
        dist: np.ndarray,
        a: np.ndarray,
        c: np.ndarray,
        g_of_row: np.ndarray,
        trace: np.ndarray,
    ) -> bool:
        """Take the rows that beat their group's best; True when a group found its first."""
        first, self.improved = False, False
        for r in np.flatnonzero(ok):
            g = g_of_row[r]
            if self.found[g] and dist[r] >= self.dist[g]:
                continue
            first |= not self.found[g]
            self.improved = True
            self.found[g], self.dist[g], self.c[g] = True, dist[r], c[r]
            self.a[g] = a[r]
            self._trace[g] = (trace, r)  # the run's trace, still filling in
        return first

    @property
    def loss(self) -> np.ndarray:
        """``(n, T)`` loss trace of the run that gave each group's best (NaN if none)."""
        out = np.full((len(self.found), self._T), np.nan, np.float32)
        for g, ref in enumerate(self._trace):
            if ref is not None:
                out[g] = ref[0][ref[1]]
        return out
