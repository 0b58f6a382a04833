"""The pieces of :class:`~xaiwidgets.widgets.MetricsView`, built with bqplot and ipywidgets.

- :func:`confusion_figure`: the confusion matrix as a bqplot ``GridHeatMap`` with the counts
  (or row shares) printed in the cells; a click selects a cell (its ``selected`` trait).
- :class:`CurvesPanel`: per-class precision-recall and ROC curves (bqplot ``Lines``) with a
  class selector; the other classes stay as faint grey lines behind the selected one.

The classification report is a :class:`~xaiwidgets.widgets.report_table.ReportTable`.
"""

from __future__ import annotations

from typing import Any

import bqplot
import ipywidgets as widgets
import numpy as np
from bqplot.traits import array_from_json, array_to_json
from traittypes import Array

from ..explainers.classification import MetricsReport

#: colours of the heat map (light enough for the black cell text) and of the curves
HEAT_COLORS = ["#ffffff", "#c6dbef", "#6baed6", "#3f8fd2"]
CURVE_COLOR = "#2f6fdf"
FAINT_COLOR = "#c8ccd2"
SELECTED_STYLE = {"stroke": "#e8184a", "stroke-width": 3}


def _cells_from_json(value: Any, obj: Any = None) -> np.ndarray | None:
    """``selected`` from the browser: bqplot's heat map sends ``[[row, col], ...]`` as plain
    JSON, which bqplot's own deserializer turns into an object array it then cannot send
    back (``ValueError: Unsupported dtype object``); read it as an int array instead."""
    if isinstance(value, list):
        return np.asarray(value, dtype=np.int32).reshape(-1, 2) if value else None
    return array_from_json(value, obj)


class ConfusionHeatMap(bqplot.GridHeatMap):
    """A ``GridHeatMap`` whose click selection (``selected``, ``[[row, col]]``) arrives in
    Python as an int array."""

    selected = Array(None, allow_none=True).tag(
        sync=True, to_json=array_to_json, from_json=_cells_from_json
    )


def confusion_figure(report: MetricsReport, size: int = 380) -> tuple[bqplot.Figure, Any]:
    """A ``(Figure, GridHeatMap)`` of the confusion matrix: rows the true class (first at the
    top), columns the predicted class, the counts printed in the cells. Clicking a cell sets
    the heat map's ``selected`` to ``[[true, predicted]]``."""
    k = report.n_classes
    names = list(report.class_names)
    row = bqplot.OrdinalScale(domain=names, reverse=True)  # first class at the top
    col = bqplot.OrdinalScale(domain=names)
    color = bqplot.ColorScale(colors=HEAT_COLORS, min=0)
    heat = ConfusionHeatMap(
        row=names,
        column=names,
        color=report.confusion.astype(np.float64),
        scales={"row": row, "column": col, "color": color},
        display_format="d",
        font_style={"font-size": "11px" if k <= 12 else "9px", "fill": "#1f2328"},
        stroke="#ffffff",
        interactions={"click": "select", "hover": "tooltip"},
        selected_style=SELECTED_STYLE,
        anchor_style=SELECTED_STYLE,
        tooltip=bqplot.Tooltip(
            fields=["row", "column", "color"],
            labels=["true", "predicted", "images"],
            formats=["", "", "d"],
        ),
    )
    ax_x = bqplot.Axis(scale=col, label="predicted class", grid_lines="none")
    ax_y = bqplot.Axis(scale=row, side="left", label="true class", grid_lines="none")
    fig = bqplot.Figure(
        marks=[heat],
        axes=[ax_x, ax_y],
        title="Confusion matrix: click a cell",
        padding_x=0,
        padding_y=0,
        fig_margin={"top": 44, "bottom": 44, "left": 54, "right": 12},
        layout=widgets.Layout(width=f"{size}px", height=f"{size}px", flex="0 0 auto"),
        min_aspect_ratio=0.5,
        max_aspect_ratio=2.0,
    )
    return fig, heat


def set_confusion_mode(heat: Any, report: MetricsReport, normalized: bool) -> None:
    """Show counts (``"d"``) or row shares (``".2f"``) in the cells, coloured alike."""
    with heat.hold_sync():
        if normalized:
            heat.color = report.confusion_normalized
            heat.display_format = ".2f"
        else:
            heat.color = report.confusion.astype(np.float64)
            heat.display_format = "d"
    if heat.tooltip is not None:  # hovering a cell: its names and its count or row share
        with heat.tooltip.hold_sync():
            heat.tooltip.labels = ["true", "predicted", "row share" if normalized else "images"]
            heat.tooltip.formats = ["", "", ".2f" if normalized else "d"]


def _grid(curves: list[Any], axis: int, ys: int) -> np.ndarray:
    """Every class's curve resampled on a common 101-point grid (faint background lines)."""
    grid = np.linspace(0, 1, 101)
    out = []
    for c in curves:
        if c is None:
            continue
        x, y = np.asarray(c[axis], float), np.asarray(c[ys], float)
        order = np.argsort(x, kind="stable")
        out.append(np.interp(grid, x[order], y[order]))
    return np.array(out) if out else np.zeros((0, 101))


_TICKS = np.linspace(0.0, 1.0, 6)


class CurvesPanel:
    """Precision-recall and ROC curves of one class at a time, chosen in a dropdown.

    ``widget`` is the ipywidgets box to display; ``show(k)`` draws class ``k``. Without
    probabilities the panel holds a note instead of the figures.
    """

    def __init__(self, report: MetricsReport, width: int = 330, height: int = 300):
        self.report = report
        names = list(report.class_names)
        self.dropdown = widgets.Dropdown(
            options=[(n, i) for i, n in enumerate(names)],
            value=0,
            description="class",
            layout=widgets.Layout(width="220px"),
        )
        if report.pr_curves is None:
            self.note = widgets.Label("PR and ROC curves need predicted probabilities (n, k).")
            self.widget = widgets.VBox([self.note])
            self.pr_figure = self.roc_figure = None
            return
        lay = widgets.Layout(width=f"{width}px", height=f"{height}px", flex="0 0 auto")
        margin = {"top": 40, "bottom": 44, "left": 54, "right": 14}
        self.pr_figure, self.pr_line = self._figure("recall", "precision", lay, margin)
        self.roc_figure, self.roc_line = self._figure("false positive rate", "true positive rate",
                                                      lay, margin)  # fmt: skip
        # background: every class, resampled (precision over recall, tpr over fpr)
        grid = np.linspace(0, 1, 101)
        pr_bg = _grid(report.pr_curves, 1, 0)
        roc_bg = _grid(report.roc_curves, 0, 1)
        self._background(self.pr_figure, grid, pr_bg)
        self._background(self.roc_figure, grid, roc_bg)
        sx, sy = self.roc_figure.marks[0].scales["x"], self.roc_figure.marks[0].scales["y"]
        chance = bqplot.Lines(
            x=[0, 1], y=[0, 1], scales={"x": sx, "y": sy}, colors=["#8a8f98"], line_style="dashed"
        )
        self.roc_figure.marks = [*self.roc_figure.marks, chance]
        self.dropdown.observe(lambda ch: self.show(ch["new"]), "value")
        self.widget = widgets.VBox(
            [self.dropdown, widgets.HBox([self.pr_figure, self.roc_figure])],
            layout=widgets.Layout(overflow="visible"),
        )
        self.show(0)

    @staticmethod
    def _figure(xlabel: str, ylabel: str, layout: Any, margin: dict[str, int]) -> tuple[Any, Any]:
        sx = bqplot.LinearScale(min=0.0, max=1.0)
        sy = bqplot.LinearScale(min=0.0, max=1.0)
        line = bqplot.Lines(
            x=[0.0],
            y=[0.0],
            scales={"x": sx, "y": sy},
            colors=[CURVE_COLOR],
            stroke_width=2.5,
            apply_clip=False,
        )
        axes = [
            bqplot.Axis(scale=sx, label=xlabel, tick_format=".1f", tick_values=_TICKS),
            bqplot.Axis(scale=sy, label=ylabel, side="left", tick_format=".1f",
                        tick_values=_TICKS),
        ]  # fmt: skip
        fig = bqplot.Figure(marks=[line], axes=axes, fig_margin=margin, layout=layout)
        return fig, line

    @staticmethod
    def _background(fig: Any, grid: np.ndarray, ys: np.ndarray) -> None:
        if not len(ys):
            return
        line = fig.marks[0]
        bg = bqplot.Lines(
            x=grid, y=ys, scales=line.scales, colors=[FAINT_COLOR], stroke_width=1, opacities=[0.9]
        )
        fig.marks = [bg, line]

    def show(self, k: int) -> None:
        """Draw the curves of class ``k`` (and select it in the dropdown)."""
        rep = self.report
        k = int(k)
        if self.dropdown.value != k:
            self.dropdown.value = k  # fires show(k) again through the observer
            return
        if self.pr_figure is None:
            return
        name = rep.class_names[k]
        pr, roc = rep.pr_curves[k], rep.roc_curves[k]
        if pr is None:
            self.pr_line.x, self.pr_line.y = [0.0], [0.0]
            self.roc_line.x, self.roc_line.y = [0.0], [0.0]
            self.pr_figure.title = f"{name}: no positive or no negative image"
            self.roc_figure.title = ""
            return
        precision, recall, _ = pr
        fpr, tpr, _ = roc
        with self.pr_line.hold_sync():
            self.pr_line.x, self.pr_line.y = recall, precision
        with self.roc_line.hold_sync():
            self.roc_line.x, self.roc_line.y = fpr, tpr
        self.pr_figure.title = f"Precision-recall · {name} · AP {rep.average_precision[k]:.3f}"
        self.roc_figure.title = f"ROC · {name} · AUC {rep.roc_auc[k]:.3f}"
