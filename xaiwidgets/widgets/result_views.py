"""Static views of the results that have no live widget of their own.

- :func:`cem_result_grid`: a :class:`~xaiwidgets.explainers.CEMResult` as an
  :class:`~xaiwidgets.widgets.AttributionGrid`: one row per image, the original and its
  delta (the PN's addition or the PP's kept part) as a red/blue map, labelled with the class
  the model gives the pertinent image (or "no PN found"). For live sliders use
  :class:`~xaiwidgets.widgets.CEMWidget`.
- :func:`curve_figure`: a :class:`~xaiwidgets.faithfulness.PerturbationCurve` as a bqplot
  figure: the score of each explained output (mean over the images) against the share of
  pixels hidden (deletion) or revealed (insertion), with the mean area in the title.
- :func:`mufidelity_figure`: a :class:`~xaiwidgets.faithfulness.MuFidelity` as a scatter of
  the output drops against the attribution sums of the random subsets (first explained
  output, every image), the mean correlation in the title.
- :func:`randomisation_figure`: a :class:`~xaiwidgets.faithfulness.RandomisationCheck` as
  the mean similarity at each stage of the cascade, with the threshold line.

These are what ``result.widget()`` returns; the result modules import this module only when
that is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._views import register_view
from .attribution_grid import AttributionGrid

if TYPE_CHECKING:  # pragma: no cover
    from ..explainers._cem_result import CEMResult
    from ..faithfulness import MuFidelity, PerturbationCurve, RandomisationCheck

#: colours of the curves, one per explained output position (cycled)
CURVE_COLORS = ["#2f6fdf", "#e8184a", "#2a9d4b", "#8a4fd0", "#e07b1a"]


def _name(names: list[str] | None, c: int) -> str:
    if names is not None and 0 <= c < len(names):
        return str(names[c])
    return str(c)


def cem_result_grid(result: CEMResult, **kwargs: Any) -> AttributionGrid:
    """The originals and deltas of a CEM result as an attribution grid (``kwargs`` set the
    grid's display traits: ``cell_size``, ``scale_mode``, ``title``...)."""
    names = result.class_names
    labels, titles = [], []
    for i in range(len(result)):
        oc = int(result.original_class[i])
        titles.append(f"{_name(names, oc)} ({float(result.original_proba[i, oc]):.2f})")
        if bool(result.found[i]):
            c = int(result.image_class[i])
            p = float(result.image_proba[i, c])
            labels.append([f"{result.mode} → {_name(names, c)} ({p:.2f})"])
        else:
            labels.append([f"no {result.mode} found"])
    options = {
        "title": f"CEM {result.mode}" + ("" if result.complete else " (partial)"),
        "colorbar_label": "delta",
        **kwargs,
    }
    return AttributionGrid(
        images=np.asarray(result.original, np.float32),
        values=np.asarray(result.delta, np.float32)[..., None],
        output_labels=labels,
        row_titles=titles,
        **options,
    )


def curve_figure(curve: PerturbationCurve, width: int = 420, height: int = 300) -> Any:
    """A bqplot figure of a deletion/insertion curve (mean over images, one line per explained
    output position)."""
    import bqplot

    sx = bqplot.LinearScale(min=0.0, max=1.0)
    sy = bqplot.LinearScale()
    mean = curve.scores.mean(axis=0)  # (o, s + 1)
    lines = [
        bqplot.Lines(
            x=curve.fractions,
            y=mean[j],
            scales={"x": sx, "y": sy},
            colors=[CURVE_COLORS[j % len(CURVE_COLORS)]],
            stroke_width=2.5,
            labels=[f"output {j + 1}"],
            display_legend=mean.shape[0] > 1,
        )
        for j in range(mean.shape[0])
    ]
    hidden = "hidden" if curve.kind == "deletion" else "revealed"
    axes = [
        bqplot.Axis(scale=sx, label=f"share of pixels {hidden}", tick_format=".1f"),
        bqplot.Axis(scale=sy, label=curve.score, side="left", tick_format=".2f"),
    ]
    title = f"{curve.kind} curve · {curve.masker} · mean area {curve.mean_area:.3f}"
    return _figure(lines, axes, title, width, height)


def _figure(marks: list[Any], axes: list[Any], title: str, width: int, height: int) -> Any:
    import bqplot
    import ipywidgets as widgets

    return bqplot.Figure(
        marks=marks,
        axes=axes,
        title=title,
        fig_margin={"top": 40, "bottom": 44, "left": 60, "right": 14},
        layout=widgets.Layout(width=f"{width}px", height=f"{height}px"),
    )


def mufidelity_figure(result: MuFidelity, width: int = 420, height: int = 320) -> Any:
    """Output drop against attribution sum of every random subset (first explained output)."""
    import bqplot

    sx, sy = bqplot.LinearScale(), bqplot.LinearScale()
    dots = bqplot.Scatter(
        x=result.attribution_sums[:, 0].ravel(),
        y=result.output_drops[:, 0].ravel(),
        scales={"x": sx, "y": sy},
        colors=[CURVE_COLORS[0]],
        default_size=12,
        opacities=[0.5],
    )
    axes = [
        bqplot.Axis(scale=sx, label="attribution sum of the subset", tick_format=".2g"),
        bqplot.Axis(scale=sy, label=f"{result.score} drop", side="left", tick_format=".2g"),
    ]
    title = f"MuFidelity · subsets of {result.subset_size} · mean correlation {result.mean:.3f}"
    return _figure([dots], axes, title, width, height)


def randomisation_figure(result: RandomisationCheck, width: int = 420, height: int = 300) -> Any:
    """Mean similarity to the trained model's map at each stage, and the threshold."""
    import bqplot

    x = np.asarray(result.randomised, np.float64)
    y = result.similarity.reshape(len(x), -1).mean(axis=1)
    sx, sy = bqplot.LinearScale(), bqplot.LinearScale(min=-1.0, max=1.0)
    line = bqplot.Lines(
        x=x, y=y, scales={"x": sx, "y": sy}, colors=[CURVE_COLORS[0]], stroke_width=2.5,
        marker="circle",
    )  # fmt: skip
    limit = bqplot.Lines(
        x=[x.min(), x.max()], y=[result.threshold] * 2, scales={"x": sx, "y": sy},
        colors=["#8a8f98"], line_style="dashed",
    )  # fmt: skip
    axes = [
        bqplot.Axis(scale=sx, label="layers redrawn (from the output)", tick_format="d"),
        bqplot.Axis(scale=sy, label="Spearman similarity", side="left", tick_format=".1f"),
    ]
    verdict = "passed" if result.passed else "failed"
    return _figure([line, limit], axes, f"Randomisation check · {verdict}", width, height)


register_view("CEMResult", cem_result_grid)
register_view("PerturbationCurve", curve_figure)
register_view("MuFidelity", mufidelity_figure)
register_view("RandomisationCheck", randomisation_figure)
