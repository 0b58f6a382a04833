"""`ExplainerComparison`: the same images through several explainers, side by side, scored.

Which explanation to believe, in numbers. The widget holds a few images and several explainers
(``GradCAM``, ``Occlusion``, ``IntegratedGradients``, ``DeepExplainer``, ``PartitionExplainer``
...; a list, or a dict name -> explainer). It draws one column per explainer and one row per
image, each cell the attribution of one output (the predicted class unless ``outputs=`` says
otherwise), in one of three overlays: ``"heatmap"`` (the diverging map over a faint copy of
the image), ``"blend"`` (the map over the image itself) or ``"mask"`` (the image keeping only
its ``keep_fraction`` top-attributed pixels). Below, a score table, one row per explainer,
that sorts by a click on a column header:

- **deletion** / **insertion** area (Petsiuk et al. 2018; lower / higher is more faithful),
  with one masker for every explainer (``masker``, default ``blur(w,h)``);
- **MuFidelity** (Bhatt et al. 2020; 1 is best);
- **sparseness** (Gini index of ``|phi|``);
- **sanity**: the cascading model-randomisation check (Adebayo et al. 2018) passed or not.

Clicking a deletion, insertion or sanity score draws its curves (the mean and each image),
clicking a MuFidelity score the scatter of attribution sums against output drops it correlates.
Every number comes from :mod:`xaiwidgets.faithfulness` (see
:mod:`~xaiwidgets.widgets._comparison_scores`); JS only draws.

The explainers run **in a worker thread** (a :class:`~xaiwidgets.widgets._live.LiveWidget`:
settings keys, cache, progress, errors in place, supersede, ``wait``/``close``), one column
after the other, each drawn as soon as it is scored; the bar shows progress; a newer request
(another choice of ``shown`` explainers, another masker...) cancels the older one and a
superseded result is never drawn. Results are cached per explainer and scoring setting, so
showing an explainer again is instant (no model call). An explainer that fails shows its error in its column
(and in the banner); the others and the widget stay usable.

Note: the sanity check redraws the model's weights for a moment (restored after each stage,
also on error or cancel); do not use the same model object elsewhere while it runs.

Example::

    cmp = ExplainerComparison(
        {"Grad-CAM": GradCAM(model), "IG": IntegratedGradients(model)}, x[:4],
        labels=y[:4], class_names=names,
    )
    cmp                         # the widget
    cmp.wait().scores           # the table's rows
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import traitlets

from .._arrays import as_images, as_labels, check_class_names, check_int, check_number
from .._progress import Cancelled
from ..backends import wrap
from ..maskers import Masker
from ._base import XaiWidget
from ._comparison_inputs import named_explainers, outputs_of, row_title
from ._comparison_scores import (
    ColumnResult,
    ScoreSettings,
    attribution_maps,
    colour_scales,
    curve_arrays,
    keep_masks,
    score_explainer,
)
from ._live import MISS, LiveCache, LiveWidget
from ._ndarray_trait import NDArray

OVERLAYS = ("heatmap", "blend", "mask")
SCALE_MODES = ("column", "cell")
METRICS = ("deletion", "insertion", "mufidelity", "sanity")


class ExplainerComparison(LiveWidget, XaiWidget):
    """Several explainers on the same images: one column each, overlays, a sortable score
    table and the curves behind the scores.

    Parameters
    ----------
    explainers : dict name -> explainer, or a list of explainers (named by their class,
        ``"GradCAM"``, ``"GradCAM 2"``...). Each is called as
        ``explainer(images, outputs, labels=..., progress=..., cancel=...)``.
    images : ``(n, h, w, c)`` images (any form :func:`~xaiwidgets._arrays.as_images` reads).
    outputs : ``(n,)`` class index per image, optional (default: the class the model predicts).
    labels : ``(n,)`` true classes, optional (row titles and the explainers' label rows).
    class_names : names of the model's outputs, optional.
    model : the model the scores evaluate (default: the first explainer's backend).
    shown : names shown (default: all), in order; the widget's chooser edits it.
    masker : deletion / insertion masker for every column (default ``blur(w,h)``).
    steps : deletion / insertion steps (default 20).
    runs, subset_size : MuFidelity subsets (default 50, 10 % of the pixels).
    sanity_stages : stages of the randomisation check (default 3; 0 skips it).
    seed : seed of MuFidelity's subsets and of the redrawn weights (default 0).

    Traits (synced): ``shown``, ``overlay`` ("heatmap" | "blend" | "mask"),
    ``keep_fraction``, ``scale_mode`` ("column" | "cell"), ``masker``, ``steps``,
    ``sanity_stages``, ``sort_by``, ``sort_descending``, ``curve``, ``cell_size``, ``title``;
    drawn: ``names``, ``images``, ``row_titles``, ``columns``, ``values``, ``scales``,
    ``keep``, ``scores``, ``curve_x``, ``curve_y``, ``curve_info``; and ``error``/``progress``.
    """

    _bundle = "explainer_comparison"
    live_settings = ("shown", "masker", "steps", "sanity_stages")

    shown = traitlets.List(traitlets.Unicode(), help="Names of the explainers shown").tag(sync=True)
    overlay = traitlets.Unicode("heatmap", help="heatmap | blend | mask").tag(sync=True)
    keep_fraction = traitlets.Float(0.2, help="Share of pixels the mask overlay keeps").tag(
        sync=True
    )
    scale_mode = traitlets.Unicode("column", help="column | cell colour scales").tag(sync=True)
    masker = traitlets.Unicode("", help="Deletion/insertion masker").tag(sync=True)
    steps = traitlets.Int(20, help="Deletion/insertion steps").tag(sync=True)
    sanity_stages = traitlets.Int(3, help="Randomisation-check stages (0: none)").tag(sync=True)
    sort_by = traitlets.Unicode("", help="Score the table is sorted by ('' = given order)").tag(
        sync=True
    )
    sort_descending = traitlets.Bool(False).tag(sync=True)
    curve = traitlets.Dict(help="{'explainer': name, 'metric': ...} whose curve shows").tag(
        sync=True
    )
    cell_size = traitlets.Int(96, help="Cell width in CSS pixels").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    names = traitlets.List(traitlets.Unicode(), help="Every explainer offered").tag(sync=True)
    images = NDArray(ndim=4, help="(n, h, w, c) the compared images")
    row_titles = traitlets.List(traitlets.Unicode()).tag(sync=True)
    columns = traitlets.List(traitlets.Dict(), help="Per shown explainer: name, status").tag(
        sync=True
    )
    values = NDArray(ndim=4, help="(e, n, h, w) attribution maps; NaN until computed")
    scales = NDArray(ndim=2, help="(e, n) max |value| of each cell's colour scale")
    keep = NDArray(ndim=4, dtype=np.uint8, help="(e, n, h, w) pixels the mask overlay keeps")
    scores = traitlets.List(traitlets.Dict(), help="Score-table rows, in `shown` order").tag(
        sync=True
    )
    curve_x = NDArray(ndim=1)
    curve_y = NDArray(ndim=2, help="(n + 1, s): the mean, then one curve per image")
    curve_info = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        explainers: Any,
        images: Any,
        outputs: Any = None,
        *,
        labels: Any = None,
        class_names: Any = None,
        model: Any = None,
        runs: int = 50,
        subset_size: int | None = None,
        seed: int = 0,
        **kwargs: Any,
    ):
        self._ensure_bundle()
        self._check_kwargs(kwargs)
        self._explainers = named_explainers(explainers)
        x = as_images(images)
        self._x = x
        self._model = wrap(model) if model is not None else next(
            iter(self._explainers.values())
        ).backend  # fmt: skip
        n, h, w, _ = x.shape
        self._labels = None if labels is None else as_labels(labels, n=n, name="labels")
        probs = self._model.to_probabilities(self._model.predict(x))
        idx = outputs_of(outputs, probs)
        self._outputs = idx.astype(np.int64)[:, None]
        self._runs = check_int(runs, "runs", 2)
        self._subset = (
            None if subset_size is None else check_int(subset_size, "subset_size", 1, h * w)
        )
        self._seed = check_int(seed, "seed", 0)
        names = check_class_names(class_names, probs.shape[1])
        self._lock = threading.RLock()
        self._failed: dict[Hashable, str] = {}  # the current request's failed columns
        self._drawn: tuple = ()  # the key of the columns drawn now
        self._marks: tuple = ((), ())  # its columns being computed now, and queued
        state: dict[str, Any] = {
            "names": list(self._explainers),
            "shown": list(self._explainers),
            "masker": f"blur({w},{h})",
            "images": x,
            "row_titles": [row_title(i, idx[i], probs[i], self._labels, names) for i in range(n)],
        }
        state.update(kwargs)
        super().__init__(cache=LiveCache(64), **state)
        self._request()

    def __repr__(self) -> str:
        return f"ExplainerComparison(shown={list(self.shown)}, images={len(self._x)})"

    # ------------------------------------------------------------------ public API
    @property
    def results(self) -> dict[str, ColumnResult]:
        """The scored columns drawn now, by explainer name."""
        with self._lock:
            found = {k: self._cache.get(k) for k in self._drawn}
            return {k[0]: r for k, r in found.items() if r is not None}

    # ------------------------------------------------------------------ requests
    @traitlets.observe("overlay", "keep_fraction", "scale_mode")
    def _on_look(self, change: dict[str, Any]) -> None:
        """A new look (no model call): drawn again at once; a bad value is named in place."""
        if self._hold:
            return
        with self._lock:
            try:
                self._check_look()
            except (ValueError, TypeError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                return
            self._publish(self._drawn, *self._marks)
            self.error = self._failures()

    @traitlets.observe("curve")
    def _on_curve(self, change: dict[str, Any]) -> None:
        if not self._hold:
            with self._lock, self.report_errors():
                self._send_curve(strict=True)

    def _check_look(self) -> None:
        if self.overlay not in OVERLAYS:
            raise ValueError(f"overlay: expected one of {OVERLAYS}, got {self.overlay!r}")
        if self.scale_mode not in SCALE_MODES:
            raise ValueError(f"scale_mode: expected one of {SCALE_MODES}, got {self.scale_mode!r}")
        check_number(self.keep_fraction, "keep_fraction", low=0.0, high=1.0, low_open=True)

    def _settings(self) -> ScoreSettings:
        """The scoring settings, checked (``ValueError``/``TypeError`` name what is wrong)."""
        unknown = [s for s in self.shown if s not in self._explainers]
        if unknown:
            raise ValueError(
                f"shown: unknown explainer {unknown[0]!r}; expected names among "
                f"{list(self._explainers)}"
            )
        if len(set(self.shown)) != len(self.shown):
            raise ValueError(f"shown: expected each explainer once, got {list(self.shown)}")
        return ScoreSettings(
            masker=Masker.parse(self.masker).spec,
            steps=check_int(self.steps, "steps", 1),
            runs=self._runs,
            subset_size=self._subset,
            sanity_stages=check_int(self.sanity_stages, "sanity_stages", 0),
            seed=self._seed,
        )

    def _live_key(self) -> tuple:
        """One ``(name, settings)`` per shown explainer: each is cached on its own."""
        self._check_look()
        settings = self._settings()
        return tuple((name, settings) for name in self.shown)

    def _live_lookup(self, lane: str, key: Hashable) -> Any:
        """Every shown column scored already: drawn at once, no model call."""
        found = {k: self._cache.get(k) for k in key}  # type: ignore[union-attr]
        return MISS if any(r is None for r in found.values()) else found

    def _live_store(self, lane: str, key: Hashable, result: Any) -> None:
        for k, r in result.items():
            if isinstance(r, ColumnResult):  # failures are not kept: the next request retries
                self._cache.put(k, r)

    def _live_begin(self, lane: str, key: Hashable) -> None:
        self._failed = {}
        todo = [k for k in key if k not in self._cache]  # type: ignore[union-attr]
        if todo:  # draw what is cached now, mark the others
            self._publish(key, running=todo[:1], waiting=todo[1:])  # type: ignore[arg-type]

    def _live_job(self, lane: str, key: Hashable) -> Callable[..., Any]:
        keys = tuple(key)  # type: ignore[arg-type]
        with self._lock:
            done = {k: self._cache.get(k) for k in keys if k in self._cache}
        todo = [k for k in keys if k not in done]

        def job(progress: Callable[[float], None], cancel: Any) -> dict:
            results: dict[Hashable, Any] = dict(done)
            for step, k in enumerate(todo):
                name, settings = k

                def part(f: float, step: int = step) -> None:
                    progress((step + f) / len(todo))

                try:
                    results[k] = score_explainer(
                        self._explainers[name], self._model, self._x, self._outputs,
                        self._labels, settings, part, cancel,
                    )  # fmt: skip
                except Cancelled:
                    raise
                except Exception as exc:  # shown in its column; the other columns go on
                    if cancel.is_set():
                        raise Cancelled() from exc
                    results[k] = f"{type(exc).__name__}: {exc}"
                with self._lock:  # this column now, while the next one computes
                    if self._lanes[lane].current == key and not cancel.is_set():
                        if isinstance(results[k], ColumnResult):
                            self._cache.put(k, results[k])
                        else:
                            self._failed[k] = results[k]
                        nxt = todo[step + 1 :]
                        self._publish(keys, running=nxt[:1], waiting=nxt[1:])
            return results

        return job

    def _live_draw(self, lane: str, key: Hashable, result: Any, cached: bool) -> None:
        self._failed = {k: r for k, r in result.items() if isinstance(r, str)}
        self._publish(key, results=result)  # type: ignore[arg-type]

    def _live_invalid(self, exc: BaseException) -> None:
        """Bad settings: nothing runs, so no column is marked as computing any more."""
        self._publish(self._drawn)

    def _live_done(self, name: str) -> None:
        """Drawn: the failed columns (if any) are named in the banner too."""
        self.progress = -1.0
        self.error = self._failures()

    def _failures(self) -> str:
        return "\n".join(f"{k[0]}: {m}" for k, m in self._failed.items())

    # ------------------------------------------------------------------ drawing
    def _publish(
        self, keys: tuple, running: Any = (), waiting: Any = (), results: Any = None
    ) -> None:
        """Send the columns of ``keys`` (scored ones drawn, the others marked) to the widget;
        ``results`` (key -> result) come first, then the cache. The caller holds the lock."""
        self._drawn = tuple(keys)
        self._marks = (tuple(running), tuple(waiting))
        n, h, w, _ = self._x.shape
        maps = np.full((len(keys), n, h, w), np.nan, np.float32)
        columns, scores = [], []
        running, waiting = set(running), set(waiting)
        for e, key in enumerate(keys):
            name = key[0]
            result = (results or {}).get(key)
            if not isinstance(result, ColumnResult):
                result = self._cache.get(key)
            method = getattr(
                self._explainers[name], "method", type(self._explainers[name]).__name__
            )
            column: dict[str, Any] = {"name": name, "method": str(method)}
            if result is not None:
                maps[e] = attribution_maps(result)
                column["status"] = "done"
                scores.append({"name": name, **result.summary()})
            else:
                column["status"] = (
                    "error" if key in self._failed
                    else "running" if key in running
                    else "waiting" if key in waiting
                    else "cancelled"
                )  # fmt: skip
                column["message"] = self._failed.get(key, "")
            columns.append(column)
        fraction = float(self.keep_fraction) if 0 < self.keep_fraction <= 1 else 0.2
        mode = self.scale_mode if self.scale_mode in SCALE_MODES else "column"
        empty = not len(keys)  # nothing shown: no arrays (a zero-size buffer cannot be sent)
        with self.hold_sync():
            self.columns = columns
            self.scores = scores
            self.scales = None if empty else colour_scales(maps, mode)
            self.keep = None if empty else np.stack([keep_masks(m, fraction) for m in maps])
            self.values = None if empty else maps
            self._send_curve()

    def _send_curve(self, strict: bool = False) -> None:
        """The curves of the clicked score (``curve``), or none; the caller holds the lock.
        ``strict``: a bad ``curve`` raises ``ValueError`` (else it just shows no curve)."""
        name, metric = self.curve.get("explainer"), self.curve.get("metric")
        result = next((self._cache.get(k) for k in self._drawn if k[0] == name), None)
        arrays, problem = None, None
        try:
            if self.curve and metric not in METRICS:
                raise ValueError(f"curve: expected a metric among {METRICS}, got {metric!r}")
            if self.curve and name not in self._explainers:
                raise ValueError(
                    f"curve: unknown explainer {name!r}; expected one of {list(self._explainers)}"
                )
            if result is not None:
                arrays = curve_arrays(result, metric)
        except ValueError as exc:
            problem = exc
        with self.hold_sync():
            if arrays is None:
                self.curve_x, self.curve_y, self.curve_info = None, None, {}
            else:
                x, y, info = arrays
                self.curve_x, self.curve_y = x, y
                self.curve_info = {"explainer": name, "metric": metric, **info}
        if problem is not None and strict:
            raise problem
