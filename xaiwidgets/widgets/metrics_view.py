"""`MetricsView`: confusion matrix, report and PR/ROC curves linked to attribution grids.

The view is where a user finds what to explain. It shows, from
:func:`~xaiwidgets.explainers.metrics_report` (every number is sklearn's):

- the confusion matrix as a bqplot heat map with the counts in the cells (or the row shares,
  toggled above it): rows are the true class, columns the predicted class;
- the classification report (precision, recall, F1, support; accuracy and averages) as text;
- the one-vs-rest precision-recall and ROC curves of a class chosen in a dropdown, with its
  average precision and AUC (with probabilities only).

Clicking a confusion cell (true 4, predicted 9) selects its images: ``selected_cell`` becomes
``(4, 9)`` and ``selected_indices`` their indices in the data set. The grids page through all
of them, ``max_images`` at a time (``cell_page``; the "‹ prev · next ›" buttons of each
grid): the rows of the page are explained in the background by each explainer handed to the
view (any callable ``explainer(images, **kw) -> Explanation``: Deep, Gradient, Partition
explainers...), each drawn in its own :class:`~xaiwidgets.widgets.AttributionGrid` with a
progress bar. A click on another cell or page supersedes the running job; a stale result is
never drawn. Results are cached per cell and page, so going back is instant. Errors of an
explainer show in its grid.

Whole data sets: :meth:`MetricsView.from_dataset` takes a
:class:`~xaiwidgets.DatasetExplanation` (what :func:`~xaiwidgets.explain_dataset` wrote):
its labels and probabilities make the metrics, and a cell's stored explanations are read from
disk page by page (nothing is recomputed). ``images`` may also be an on-disk zarr or dask
array: only the rows of the page shown are read.

Layout: the matrix with the grids of the selected cell beside it (side by side, one per
explainer; below the matrix where the output is narrower), the report and the curves under
both. The grids' box keeps the size of a full selection from the start, so a click fills it in
without moving the page. Hovering a confusion cell shows its true and predicted class and its
count (or row share); the report row of the clicked cell's true class (or of a clicked report
row) is highlighted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets

from ..explainers.classification import MetricsReport, metrics_report
from ._explainer_calls import accepted_keywords, as_explainers, explain_job
from ._image_rows import image_rows
from ._live import LiveWidget
from ._metrics_grids import CellGrids
from ._metrics_pages import CellPages, dataset_metrics
from ._metrics_parts import CurvesPanel, confusion_figure, set_confusion_mode
from .attribution_grid import AttributionGrid
from .report_table import ReportTable


class MetricsView(CellPages, CellGrids, LiveWidget, widgets.VBox):
    """Metrics of a classifier's predictions, linked to attribution grids of chosen images.

    Parameters
    ----------
    y_true : (n,) labels or (n, k) one-hot rows.
    y_pred : (n, k) predicted probabilities (curves and AUCs shown) or (n,) predicted labels.
    images : (n, h, w[, c]) the images the predictions are of (any form
        :func:`~xaiwidgets._arrays.as_images` accepts, a zarr or dask array read page by page,
        or a :class:`~xaiwidgets.DatasetExplanation`), or ``None`` (selection only);
        ``layout=`` names their axes when their shape leaves it open (``"nchw"``, ``"nhwc"``).
    explainer : ``None``, a callable ``explainer(images, **kw) -> Explanation``, a list of them,
        or a dict ``{title: explainer}`` (one grid each, side by side). The keywords
        ``outputs``, ``labels``, ``progress`` and ``cancel`` are passed when it takes them.
    class_names : k names (default ``"0"``, ``"1"``...).
    max_images : images of a selected cell per page (default 6); the grids page through all.
    outputs : what to explain: ``"cell"`` (default: the true and the predicted class of the
        cell, once on the diagonal), ``None`` (the explainer's default), or anything the
        explainer's ``outputs=`` takes (``"top3"``, a list of classes).
    explain_kwargs : more keyword arguments for every explainer call.
    cell_size : width of an attribution cell in CSS pixels (default 76).
    invert_image : draw the images inverted in the grids (``-x``: dark strokes on white);
        default ``None`` inverts images whose mean is below the middle of their value range
        (light digits on black, as MNIST).

    Traits (read from Python; observe them with ``view.observe``): ``selected_cell``
    (``(true, predicted)`` or ``None``), ``selected_indices`` (every image index of the
    selected cell, sorted), ``shown_indices`` (the ones on the page shown), ``cell_page``
    (the page of the cell shown, from 0), ``normalized`` (cells coloured and labelled by row
    share instead of counts).

    Example::

        view = MetricsView(y_test, probs, x_test, {"deep": deep, "gradient": grad})
        view.select(4, 9)        # as a click on the cell (true 4, predicted 9)
        view.selected_indices
    """

    selected_cell = traitlets.Tuple(
        traitlets.Int(), traitlets.Int(), default_value=None, allow_none=True,
        help="(true, predicted) class of the selected confusion cell, or None.",
    )  # fmt: skip
    selected_indices = traitlets.List(
        traitlets.Int(), help="Indices of every image of the selected cell (sorted)."
    )
    shown_indices = traitlets.List(
        traitlets.Int(), help="Indices of the images on the page shown (max_images at most)."
    )
    cell_page = traitlets.Int(0, min=0, help="Page of the selected cell's images shown.")
    normalized = traitlets.Bool(False, help="Show row shares instead of counts in the cells.")

    _live_progress_step = 0.0  # every step of an explainer shows in its grid

    def __init__(
        self,
        y_true: Any,
        y_pred: Any,
        images: Any = None,
        explainer: Any = None,
        *,
        class_names: Any = None,
        max_images: int = 6,
        outputs: Any = "cell",
        explain_kwargs: dict[str, Any] | None = None,
        cell_size: int = 76,
        invert_image: bool | None = None,
        report: MetricsReport | None = None,
        layout: str = "auto",
    ):
        from ..dataset_explanation import DatasetExplanation

        self.dataset = images if isinstance(images, DatasetExplanation) else None
        if self.dataset is not None and report is None and y_true is None and y_pred is None:
            y_true, y_pred = dataset_metrics(self.dataset)
            class_names = class_names if class_names is not None else self.dataset.class_names
        self.report = report if report is not None else metrics_report(y_true, y_pred, class_names)
        n = len(self.report.y_true)
        self.images = None if images is None else image_rows(images, layout=layout)
        self._syncing = False
        if self.images is not None and len(self.images) != n:
            raise ValueError(
                f"images: expected {n} images (one per prediction), got {len(self.images)}"
            )
        if int(max_images) < 1:
            raise ValueError(f"max_images: expected a positive number, got {max_images}")
        self.max_images = int(max_images)
        self.outputs = outputs
        self.explain_kwargs = dict(explain_kwargs or {})
        self.explainers = as_explainers(explainer)
        self._accepts = {name: accepted_keywords(fn) for name, fn in self.explainers.items()}
        # one lane per explainer (each its own worker thread, drawn into its own grid)
        super().__init__(lanes=list(self.explainers) if self.images is not None else [])

        rep = self.report
        self.header = widgets.Label(
            f"{n:,} images · {rep.n_classes} classes · accuracy {rep.accuracy:.3f}"
        )
        self.header.style.font_weight = "bold"
        self.confusion, self.heatmap = confusion_figure(rep)
        self.mode = widgets.ToggleButtons(
            options=[("counts", False), ("row share", True)],
            value=False,
            tooltips=["counts in the cells", "share of each true class (rows sum to 1)"],
            style={"button_width": "84px"},
        )
        widgets.link((self.mode, "value"), (self, "normalized"))
        self.table = ReportTable.from_report(rep)
        self.curves = CurvesPanel(rep)
        self.table.observe(self._on_table_row, ["selected_row", "highlight"])
        self.caption = widgets.Label("Click a confusion cell to see (and explain) its images.")
        self.grids = self._make_grids(int(cell_size), invert_image)

        # the matrix with the selected cell's grids beside it (below it where the output is too
        # narrow); the report and the curves under both. The grids' box holds the space of a
        # full selection from the start, so a click never moves the page (the grids fill in).
        left = widgets.VBox([self.mode, self.confusion], layout=widgets.Layout(flex="0 0 auto"))
        width, height = self._reserved_size(int(cell_size))
        self.grid_row = widgets.HBox(
            list(self.grids.values()),
            layout=widgets.Layout(flex_flow="row nowrap", align_items="flex-start",
                                  overflow_x="auto", overflow_y="hidden"),
        )  # fmt: skip
        self.selection = widgets.VBox(
            [self.caption, self.grid_row],
            layout=widgets.Layout(
                margin="36px 0 0 16px",
                min_height=f"{height}px",
                min_width=f"{min(width, 640)}px",
                flex="1 1 0",
            ),
        )
        right = widgets.VBox([self.table], layout=widgets.Layout(margin="8px 24px 0 0"))
        self.children = [
            self.header,
            widgets.HBox([left, self.selection],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
            widgets.HBox([right, self.curves.widget],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")),
        ]  # fmt: skip
        self.heatmap.observe(self._on_heatmap, "selected")

    # ------------------------------------------------------------------ public API
    @classmethod
    def from_report(cls, report: MetricsReport, images: Any = None, explainer: Any = None,
                    **kwargs: Any) -> MetricsView:  # fmt: skip
        """A view of an existing :class:`~xaiwidgets.explainers.MetricsReport`."""
        return cls(None, None, images, explainer, report=report, **kwargs)

    @classmethod
    def from_dataset(cls, result: Any, explainer: Any = None, **kwargs: Any) -> MetricsView:
        """The metrics of a :class:`~xaiwidgets.DatasetExplanation` (its labels, its
        probabilities, its class names); a cell shows its stored explanations, read from disk
        a page at a time, beside the grids of any ``explainer`` given. The run must have
        stored labels (``explain_dataset(..., labels=...)`` or ``(images, labels)`` batches)."""
        from ..dataset_explanation import DatasetExplanation

        if not isinstance(result, DatasetExplanation):
            raise TypeError(
                f"result: expected a DatasetExplanation (explain_dataset's result), got "
                f"{type(result).__name__}"
            )
        return cls(None, None, result, explainer, **kwargs)

    @property
    def _stored_name(self) -> str | None:
        """Title of the grid of the stored explanations (``None`` without a data set)."""
        return None if self.dataset is None else f"{self.dataset.method or 'stored'} (stored)"

    def show_page(self, page: int) -> None:
        """Show page ``page`` (from 0) of the selected cell's images, as the grids' buttons do."""
        self.cell_page = int(page)

    def select(self, true: int | str, pred: int | str) -> np.ndarray:
        """Select the confusion cell (true class, predicted class), as a click on it does;
        returns the indices of its images. Classes by index or name."""
        t, p = self.report.class_index(true), self.report.class_index(pred)
        self.heatmap.selected = np.array([[t, p]])
        return np.asarray(self.selected_indices, dtype=np.int64)

    def clear_selection(self) -> None:
        """Unselect the cell; running explanations are cancelled and the grids hidden."""
        self.heatmap.selected = None

    def close(self) -> None:
        """Stop the background work and close every widget of the view (a box left open
        would still point at closed grids, and break embedding the notebook's widgets)."""

        def close_tree(w: widgets.Widget) -> None:
            for child in getattr(w, "children", ()):
                close_tree(child)
            if w is not self:
                w.close()

        close_tree(self)
        super().close()

    # ------------------------------------------------------------------ selection
    @traitlets.observe("normalized")
    def _on_normalized(self, change: dict[str, Any]) -> None:
        set_confusion_mode(self.heatmap, self.report, bool(change["new"]))

    def _on_table_row(self, change: dict[str, Any]) -> None:
        """A click on a report row (``selected_row``; its ``highlight`` too, which also
        changes when the row was clicked before and a cell click moved the highlight since):
        that class is highlighted and its curves shown."""
        if change["new"] >= 0:
            self.table.highlight = change["new"]
            self.curves.show(change["new"])

    def _on_heatmap(self, change: dict[str, Any]) -> None:
        cells = change["new"]
        if cells is None or len(cells) == 0:
            self._set_cell(None)
            return
        cells = np.asarray(cells).reshape(-1, 2)
        t, p = (int(v) for v in cells[-1])
        if len(cells) > 1:  # ctrl-click added a cell: keep only the newest
            self.heatmap.selected = np.array([[t, p]])
            return
        self._set_cell((t, p))

    def _set_cell(self, cell: tuple[int, int] | None) -> None:
        rep = self.report
        self._live_supersede()  # a new selection: what runs for the old one is cancelled
        if cell is None:
            self.selected_cell = None
            self.selected_indices, self.shown_indices = [], []
            for grid in self.grids.values():
                self._clear_grid(grid)
                grid.layout.display = "none"
            self.caption.value = "Click a confusion cell to see (and explain) its images."
            self.table.highlight = -1
            return
        t, p = cell
        idx = rep.indices(true=t, pred=p)
        self.selected_cell = cell
        self.selected_indices = [int(i) for i in idx]
        names = rep.class_names
        what = f"true {names[t]}, predicted {names[p]}: {len(idx)} image{'s' * (len(idx) != 1)}"
        if len(idx) > self.max_images:
            what += f", {self.max_images} a page"
        self.caption.value = what
        self.curves.show(t)
        self.table.highlight = t
        if self.cell_page != 0:
            self.cell_page = 0  # observed: shows the first page
        else:
            self._show_cell_page(cell, 0)

    # ------------------------------------------------------------------ paging a cell
    @traitlets.observe("cell_page")
    def _on_cell_page(self, change: dict[str, Any]) -> None:
        if self.selected_cell is not None:
            self._live_supersede()
            self._show_cell_page(tuple(self.selected_cell), int(change["new"]))

    # ------------------------------------------------------------------ background work
    # (LiveWidget: one lane per explainer, the selected cell and its page are the key)
    def _live_status(self, lane: str) -> AttributionGrid:
        return self.grids[lane]

    def _live_error_text(self, lane: str, exc: BaseException) -> str:
        return f"{lane}: {type(exc).__name__}: {exc}"

    def _live_job(self, lane: str, key: Hashable) -> Callable[..., Any]:
        (t, p), page = key  # type: ignore[misc]
        shown = self._page_of((t, p), page)
        labels = self.report.y_true[shown]
        return explain_job(
            self.explainers[lane], self._accepts[lane], self.images[shown], labels, (t, p),
            self.outputs, self.explain_kwargs,
        )  # fmt: skip

    def _live_draw(self, lane: str, key: Hashable, result: Any, cached: bool) -> None:
        self._draw(self.grids[lane], key, result)
