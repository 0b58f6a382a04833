"""`ShapleyExplorer`: Partition / Permutation Shapley values of image classifiers, re-run live.

The explorer holds a model, a pool of images (e.g. a test set) with their true labels, and an
explainer setting: the masker (``blur(k,k)``, ``inpaint_telea``, ``inpaint_ns``,
``constant(v)``), the algorithm (``partition`` or ``permutation``), ``max_evals`` and ``top_k``.
It draws the attributions of the selected images as an attribution grid with ranked label rows
(class name and probability). Every change of a setting (in the widget or from Python) re-runs
the explainer **in a worker thread** (:class:`~xaiwidgets.widgets._runner.LatestRunner`): the
kernel stays free, the widget shows the progress, a newer setting cancels the run it
supersedes, and a superseded result is never drawn. Results are cached per setting, so going
back to an earlier one is instant (no model call).

A smaller ``top_k`` is cut from a cached result of a larger one (no model call; the
explanation's ``params["computed_top_k"]`` says which run it came from: for Partition the
region tree was expanded for that larger set of outputs). The picker offers the pool a page at
a time (``page``: the next 8 correct and 8 wrong predictions; ``pool_size`` images in all) and
any image by its index (the widget's "image #" field adds it to ``indices``).

Side by side: ``compare="inpaint_telea"`` draws a second panel, the same images explained with
a second masker. Each panel shows its **deletion area** (Petsiuk et al. 2018; see
:func:`xaiwidgets.faithfulness.deletion_curve`): the pixels are hidden in the order of their
attribution for the predicted class and the area under the model's probability curve is
averaged over the images. Lower is more faithful, so "which masker is better" is a number.
A second masker equal to the first is computed and drawn once, and the message says so.
By default each panel is scored with its own masker; ``deletion_masker="blur(28,28)"`` scores
all of them with one masker, for a comparison on one measuring stick.

Example::

    explorer = ShapleyExplorer(model, x_test, labels=y_test, class_names=names)
    explorer                       # the widget
    explorer.masker = "inpaint_ns" # re-runs in the background
    explorer.wait()
    explorer.explanation           # the Explanation drawn now (first panel)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import traitlets

from .._arrays import check_int
from .._deprecation import renamed_value
from ..backends import wrap
from ..explanation import Explanation
from ..faithfulness import PerturbationCurve
from ..maskers import Masker
from ._base import XaiWidget
from ._explorer_cache import ExplorerResult as _Result
from ._explorer_cache import ResultCache, panel_info, panels_job, spec_text
from ._image_pool import ImagePool
from ._live import MISS, LiveWidget
from ._ndarray_trait import NDArray

#: default ``max_evals`` of each algorithm (as shap: 500 for Partition; the seed's 1600 for
#: Permutation). The widget's algorithm toggle switches ``max_evals`` along when it is at the
#: old algorithm's default; from Python, set both.
DEFAULT_EVALS = {"partition": 500, "permutation": 1600}
_MIN_EVALS = {"partition": 3, "permutation": 4}
_SAME = " · masker B is the same as masker A ("
_THUMB_SIDE = 48  # candidate thumbnails are strided down to at most this many pixels a side


class ShapleyExplorer(LiveWidget, XaiWidget):
    """Explore Partition / Permutation explanations of a model: maskers, budget, top-k, images.

    Parameters
    ----------
    model : any model :func:`xaiwidgets.wrap` accepts, or a backend (wrap it once and pass
        the backend around: a new JAX backend compiles again).
    images : ``(N, h, w, c)`` pool of images to pick from (any form ``as_images`` accepts;
        ``layout=`` names their axes when their shape leaves it open, e.g. ``"nchw"``), or on
        disk: a zarr or dask array, or a :class:`~xaiwidgets.DatasetExplanation` (its images,
        and its labels and class names unless given), read only for the images used.
    labels : ``(N,)`` true classes, optional: the picker then offers correct and wrong
        predictions, and wrong ones are marked.
    class_names : names of the model's ``k`` outputs (label rows), optional.
    indices : pool indices explained at first; default the first 2 correct and the first 2
        wrong predictions (or the first 4 images without labels).
    masker : the masker string (default ``"blur(w,h)"`` of the image size); ``compare``: a
        second masker drawn side by side, or ``None``.
    algorithm : ``"partition"`` (default) or ``"permutation"``; ``max_evals``: model
        evaluations per image (default 500 for partition, 1600 for permutation); ``top_k``:
        outputs explained per image, most probable first (default 5).
    deletion_masker : masker of the deletion score; ``None`` (default): each panel's own.
    candidates : how many correct and how many wrong predictions the picker offers (default 8
        each; indices given explicitly are always offered).
    cell_size, scale_mode : display (CSS pixels per cell; one colour scale for the ``"grid"``
        or one per ``"row"``; ``"shared"`` is the deprecated spelling of ``"grid"``).

    Traits (readable and settable from Python, synced with the widget): ``masker``,
    ``compare`` ("" = off), ``algorithm``, ``max_evals``, ``top_k``, ``indices``, ``page``,
    ``deletion_masker`` ("" = each panel's own), ``cell_size``, ``scale_mode``; plus ``error``
    and ``progress``. A bad setting shows in ``error`` and runs nothing; the widget stays usable.
    Results: :attr:`explanation`, :attr:`explanations`, :attr:`areas`, :meth:`wait`
    (re-runs, cache, progress, errors and supersede: :class:`~xaiwidgets.widgets._live.LiveWidget`).
    """

    _bundle = "shapley_explorer"
    live_settings = (
        "masker", "compare", "algorithm", "max_evals", "top_k", "indices", "deletion_masker"
    )  # fmt: skip
    _live_progress_cap = 0.99

    # ---- settings (two-way)
    masker = traitlets.Unicode("", help="Masker of the first panel, e.g. 'blur(28,28)'.").tag(
        sync=True
    )
    compare = traitlets.Unicode("", help="Masker of a second panel side by side; '' = off.").tag(
        sync=True
    )
    algorithm = traitlets.Enum(
        ["partition", "permutation"], "partition", help="The Shapley explainer."
    ).tag(sync=True)
    max_evals = traitlets.Int(500, help="Model evaluations per image.").tag(sync=True)
    top_k = traitlets.Int(5, help="Outputs explained per image, most probable first.").tag(
        sync=True
    )
    indices = traitlets.List(traitlets.Int(), help="Pool indices of the explained images.").tag(
        sync=True
    )
    deletion_masker = traitlets.Unicode(
        "", help="Masker of the deletion score; '' = each panel's own masker."
    ).tag(sync=True)
    page = traitlets.Int(0, min=0, help="Page of the picker (candidates per group each).").tag(
        sync=True
    )
    cell_size = traitlets.Int(64, min=16, max=512, help="Cell width in CSS pixels.").tag(sync=True)
    scale_mode = traitlets.Enum(
        ["grid", "row", "shared"], "grid", help="'grid': one colour scale; 'row': one per image."
    ).tag(sync=True)

    # ---- what the widget draws (Python -> JS)
    candidates = NDArray(ndim=4, help="(m, h', w', c) thumbnails of the images offered.")
    candidate_info = traitlets.List(
        traitlets.Dict(), help="Per thumbnail: index, label, predicted, probability, correct."
    ).tag(sync=True)
    shown_images = NDArray(ndim=4, help="(n, h, w, c) the images drawn.")
    row_info = traitlets.List(
        traitlets.Dict(), help="Per drawn image: index, label, predicted, correct."
    ).tag(sync=True)
    values = NDArray(ndim=5, help="(panels, n, h, w, o) attributions summed over channels.")
    output_labels = traitlets.List(help="(panels, n, o) names of the explained outputs.").tag(
        sync=True
    )
    output_probabilities = NDArray(ndim=3, help="(panels, n, o) their probabilities.")
    panels = traitlets.List(
        traitlets.Dict(), help="Per panel: masker, algorithm, max_evals, area, curve, ..."
    ).tag(sync=True)
    scores = traitlets.List(
        traitlets.Dict(), help="Deletion areas of every cached setting for these images."
    ).tag(sync=True)
    stale = traitlets.Bool(False, help="True while the drawn panels lag behind the settings.").tag(
        sync=True
    )
    message = traitlets.Unicode("", help="What runs now, or how the drawn result came.").tag(
        sync=True
    )
    image_shape = traitlets.List(traitlets.Int(), help="(h, w) of the images.").tag(sync=True)
    pool_size = traitlets.Int(0, help="Number of images in the pool.").tag(sync=True)
    has_next_page = traitlets.Bool(False, help="Whether a later page offers more images.").tag(
        sync=True
    )

    def __init__(
        self,
        model: Any,
        images: Any,
        labels: Any = None,
        class_names: Any = None,
        indices: Any = None,
        *,
        masker: Any = None,
        compare: Any = None,
        algorithm: str = "partition",
        max_evals: int | None = None,
        top_k: int = 5,
        deletion_masker: Any = None,
        candidates: int = 8,
        layout: str = "auto",
        **kwargs: Any,
    ):
        self._ensure_bundle()
        self._check_kwargs(kwargs)
        self.backend = wrap(model)
        from ..dataset_explanation import DatasetExplanation

        if isinstance(images, DatasetExplanation):
            labels = images.labels if labels is None else labels
            class_names = images.class_names if class_names is None else class_names
        self._pool = ImagePool(self.backend, images, labels, class_names, layout)
        h, w = self._pool.images.shape[1:3]
        self._drawn: list[_Result] = []
        self._per_group = max(1, int(candidates))
        offered, default = self._pool.offer(self._per_group, indices)
        algorithm = str(algorithm)
        state = {
            "masker": spec_text(masker) if masker is not None else f"blur({w},{h})",
            "compare": spec_text(compare) if compare is not None else "",
            "algorithm": algorithm,
            "max_evals": int(DEFAULT_EVALS.get(algorithm, 500) if max_evals is None else max_evals),
            "top_k": check_int(top_k, "top_k", 1),
            "indices": default,
            "deletion_masker": spec_text(deletion_masker) if deletion_masker is not None else "",
            "image_shape": [h, w],
            "pool_size": len(self._pool),
        }
        state.update(kwargs)
        super().__init__(cache=ResultCache(64), **state)
        with self.holding():
            self._set_candidates(offered, self._pool.has_page(self._per_group, 1))
        self._request()

    def __repr__(self) -> str:
        extra = f", compare={self.compare!r}" if self.compare else ""
        return (
            f"ShapleyExplorer(masker={self.masker!r}{extra}, algorithm={self.algorithm!r}, "
            f"max_evals={self.max_evals}, top_k={self.top_k}, indices={list(self.indices)})"
        )

    # ------------------------------------------------------------------ public API
    @property
    def explanation(self) -> Explanation | None:
        """The Explanation drawn now in the first panel (``None`` before the first result)."""
        with self._lock:
            return self._drawn[0].explanation if self._drawn else None

    @property
    def explanations(self) -> list[Explanation]:
        """The Explanations drawn now, one per panel."""
        with self._lock:
            return [r.explanation for r in self._drawn]

    @property
    def deletion_curves(self) -> list[PerturbationCurve]:
        """The deletion curves (predicted class) of the drawn panels."""
        with self._lock:
            return [r.deletion for r in self._drawn]

    @property
    def areas(self) -> dict[str, float]:
        """Mean deletion area of each drawn panel, by masker (lower = more faithful)."""
        with self._lock:
            return {r.explanation.params["masker"]: r.deletion.mean_area for r in self._drawn}

    # ------------------------------------------------------------------ pool and picker
    @property
    def pool(self) -> Any:
        """``(N, h, w, c)`` float32 images the picker chooses from (a NumPy array, or a
        :class:`~xaiwidgets.widgets._image_rows.LazyImages` reading on-disk rows)."""
        return self._pool.images

    @property
    def labels(self) -> np.ndarray | None:
        """``(N,)`` true labels of the pool, or ``None``."""
        return self._pool.labels

    @property
    def class_names(self) -> list[str] | None:
        return self._pool.class_names

    def _set_candidates(self, offered: list[int], has_next: bool | None = None) -> None:
        with self.hold_sync():
            self.candidates = self._pool.thumbnails(offered, _THUMB_SIDE)
            self.candidate_info = [self._pool.info(i) for i in offered]
            if has_next is not None:
                self.has_next_page = has_next

    @traitlets.observe("page")
    def _on_page(self, change: dict[str, Any]) -> None:
        """Offer the page's correct and wrong predictions (and the images explained now)."""
        if self._hold:
            return
        page = int(change["new"])
        offered = self._pool.offer_page(self._per_group, page)
        if not offered and page > 0:  # past the end (set from Python): back to the last page
            self.page = page - 1
            return
        shown = self._pool.check_indices(self.indices) if self.indices else []
        self._set_candidates(
            sorted(set(offered) | set(shown)), self._pool.has_page(self._per_group, page + 1)
        )

    @traitlets.validate("scale_mode")
    def _valid_scale_mode(self, proposal: dict[str, Any]) -> str:
        return renamed_value("ShapleyExplorer.scale_mode", proposal["value"], {"shared": "grid"})

    # ------------------------------------------------------------------ requests (LiveWidget)
    def _live_key(self) -> tuple:
        """Validate the settings; the key of each panel (the same masker twice is one panel)."""
        maskers = [Masker.parse(self.masker)]
        if self.compare.strip():
            second = Masker.parse(self.compare)
            if second.spec != maskers[0].spec:
                maskers.append(second)
        scorer = Masker.parse(self.deletion_masker) if self.deletion_masker.strip() else None
        minimum = _MIN_EVALS[self.algorithm]
        if self.max_evals < minimum:
            raise ValueError(
                f"max_evals: expected at least {minimum} for {self.algorithm}, got {self.max_evals}"
            )
        if not 1 <= self.top_k <= self._pool.n_outputs:
            raise ValueError(f"top_k: expected 1..{self._pool.n_outputs} outputs, got {self.top_k}")
        indices = tuple(self._pool.check_indices(self.indices))
        offered = {d["index"] for d in self.candidate_info}
        if not offered.issuperset(indices):  # picked from Python: offer them too
            self._set_candidates(sorted(offered.union(indices)))
        return tuple(
            (m.spec, self.algorithm, int(self.max_evals), int(self.top_k), indices,
             None if scorer is None else scorer.spec)
            for m in maskers
        )  # fmt: skip

    def _live_job(self, lane: str, key: Hashable) -> Callable[..., Any]:
        idx = np.asarray(key[0][4])  # type: ignore[index]
        y = None if self.labels is None else self.labels[idx]
        return panels_job(
            self.backend, key, self.pool[idx], y, self.class_names, self._cache, self._lock
        )  # type: ignore[arg-type]

    def _live_lookup(self, lane: str, key: Hashable) -> Any:
        cached = [self._cache.get(k) for k in key]  # type: ignore[attr-defined]
        return MISS if any(r is None for r in cached) else (cached, None)

    def _live_store(self, lane: str, key: Hashable, result: Any) -> None:
        """Nothing: the job keeps each panel's result as soon as it is done."""

    def _live_started(self, lane: str, key: Hashable) -> None:
        self.stale = True
        self.message = self._same_note("computing " + " and ".join(k[0] for k in key) + "…")  # type: ignore[attr-defined]

    def _live_same(self, lane: str, key: Hashable) -> None:
        self.message = self._same_note(self.message.split(_SAME)[0])

    def _live_invalid(self, exc: BaseException) -> None:
        self.stale = bool(self._drawn)
        self.message = ""

    def _live_failed(self, lane: str, key: Hashable, exc: BaseException) -> None:
        self.message = ""

    def _live_draw(self, lane: str, key: Hashable, result: Any, cached: bool) -> None:
        results, seconds = result
        if seconds is not None:
            how = f"computed in {seconds:.1f} s"
        else:
            how = "from cache, no model call"
            sliced = {r.explanation.params.get("computed_top_k") for r in results} - {None}
            if sliced:
                top_k = key[0][3]  # type: ignore[index]
                how = f"top-{top_k} cut from the computed top-{max(sliced)}, no model call"
        self._draw(key, results, how)  # type: ignore[arg-type]

    def _same_note(self, message: str) -> str:
        """``message``, with a note when masker B is the same as masker A (drawn once)."""
        try:
            same = bool(self.compare.strip()) and (
                Masker.parse(self.compare).spec == Masker.parse(self.masker).spec
            )
        except (ValueError, TypeError):
            same = False
        if not same:
            return message
        return f"{message}{_SAME}{self.masker}): shown once"

    # ------------------------------------------------------------------ drawing
    def _draw(self, key: tuple, results: list[_Result], how: str) -> None:
        """Send the results of ``key`` to the widget (caller holds the lock)."""
        first = results[0].explanation
        idx = list(key[0][4])
        values = np.stack([r.explanation.values.sum(axis=3, dtype=np.float32) for r in results])
        probs = [r.explanation.output_probabilities for r in results]
        panels = [panel_info(r) for r in results]
        self._drawn = list(results)
        with self.hold_sync():
            self.shown_images = first.data
            self.row_info = [self._pool.info(i) for i in idx]
            self.output_labels = [r.explanation.output_names for r in results]
            self.output_probabilities = None if any(p is None for p in probs) else np.stack(probs)
            self.panels = panels
            self.scores = self._cache.scores(key)  # type: ignore[attr-defined]
            self.values = values
            self.error = ""
            self.progress = -1.0
            self.stale = False
            self.message = self._same_note(how)
