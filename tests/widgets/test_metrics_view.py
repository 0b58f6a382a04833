"""MetricsView on the Python side: the parts equal sklearn's numbers, a confusion-cell click
(the heat map's ``selected`` trait) selects exactly its images, the explanation computed in
the background lands in the grid, and a newer click supersedes an older one."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xaiwidgets import Explanation
from xaiwidgets.explainers import metrics_report
from xaiwidgets.widgets import AttributionGrid, MetricsView

K = 5
XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def data():
    """50 random 6x6 images, 5 classes; true 3 predicted 4 at 4 images, 4 -> 3 at 1."""
    rng = np.random.default_rng(0)
    x = rng.random((50, 6, 6, 1)).astype(np.float32)
    y_true = np.arange(50) % K
    y_pred = y_true.copy()
    y_pred[[3, 8, 13, 18]] = 4
    y_pred[[4]] = 3
    probs = rng.random((50, K)) * 0.2
    probs[np.arange(50), y_pred] += 0.8
    probs /= probs.sum(1, keepdims=True)
    return x, y_true, y_pred, probs


def scale_explainer(images, outputs=None, labels=None, progress=None, cancel=None):
    """Attribution of class c = image * (c + 1): values that say which class they are of."""
    o = np.asarray(outputs if outputs is not None else range(K))
    if progress is not None:
        progress(0.5)
    values = images[..., None] * (o + 1.0)
    return Explanation(
        values=values, data=images, labels=labels, output_indices=np.tile(o, (len(images), 1))
    )


def _cell(y_true, y_pred, t, p):
    return np.flatnonzero((y_true == t) & (y_pred == p))


def test_parts_show_sklearn_numbers(data):
    x, y_true, _, probs = data
    view = MetricsView(y_true, probs, x, scale_explainer, class_names=list("abcd") + [XSS])
    ref = metrics_report(y_true, probs, list("abcd") + [XSS])
    np.testing.assert_array_equal(view.heatmap.color, ref.confusion)
    assert view.heatmap.display_format == "d"
    assert view.table.rows[4][0] == XSS  # a class name is a string cell, shown as text
    assert view.table.rows[3] == [
        "d", *(f"{ref.report[3][c]:.3f}" for c in ("precision", "recall", "f1-score")),
        str(ref.report[3]["support"]),
    ]  # fmt: skip
    assert view.table.footer[0][3] == f"{ref.accuracy:.3f}"
    # curves of class 0 at first; the dropdown shows another class's curves
    np.testing.assert_allclose(view.curves.pr_line.x, ref.pr_curves[0][1])
    view.curves.dropdown.value = 2
    np.testing.assert_allclose(view.curves.roc_line.y, ref.roc_curves[2][1])
    assert f"AUC {ref.roc_auc[2]:.3f}" in view.curves.roc_figure.title
    view.table.selected_row = 3  # a click on a report row shows that class's curves
    assert view.curves.dropdown.value == 3
    view.normalized = True
    np.testing.assert_allclose(view.heatmap.color, ref.confusion_normalized)
    assert view.heatmap.display_format == ".2f" and view.mode.value is True
    assert "accuracy" in view.header.value


def test_click_selects_exactly_the_cell_and_the_explanation_lands(data):
    x, y_true, y_pred, probs = data
    view = MetricsView(y_true, probs, x, scale_explainer, max_images=3)
    grid = view.grids["scale_explainer"]
    assert isinstance(grid, AttributionGrid) and grid.layout.display == "none"
    view.heatmap.selected = np.array([[3, 4]])  # what a click on (true 3, predicted 4) sets
    view.wait(5)
    want = _cell(y_true, y_pred, 3, 4)
    assert view.selected_cell == (3, 4)
    assert view.selected_indices == want.tolist() and len(want) == 4
    assert view.shown_indices == want[:3].tolist()
    np.testing.assert_array_equal(grid.images, x[want[:3]])
    assert grid.values.shape == (3, 6, 6, 2)  # the true and the predicted class
    np.testing.assert_allclose(grid.values[..., 1], 5 * x[want[:3], ..., 0])  # class 4: x * 5
    assert grid.output_labels == [["3", "4"]] * 3
    assert grid.row_titles == [f"#{i}" for i in want[:3]]
    assert grid.progress == -1.0 and grid.error == "" and grid.layout.display == ""
    assert "true 3, predicted 4: 4 images, 3 a page" == view.caption.value
    assert view.table.highlight == 3 and view.curves.dropdown.value == 3


def test_browser_click_message_and_python_select_agree(data):
    x, y_true, y_pred, probs = data
    view = MetricsView(y_true, probs, x, scale_explainer)
    # the browser sends the cell as plain JSON lists (bqplot's own deserializer fails on it)
    view.heatmap.set_state({"selected": [[4, 3]]})
    view.wait(5)
    assert view.selected_cell == (4, 3)
    assert view.selected_indices == _cell(y_true, y_pred, 4, 3).tolist()
    assert view.heatmap.get_state()["selected"]["dtype"] == "int32"
    idx = view.select("1", "1")  # by name; the diagonal explains one class
    view.wait(5)
    assert idx.tolist() == view.selected_indices == _cell(y_true, y_pred, 1, 1).tolist()
    assert view.grids["scale_explainer"].output_labels[0] == ["1"]
    view.heatmap.selected = np.array([[0, 0], [2, 2]])  # ctrl-click: the newest cell wins
    view.wait(5)
    assert view.selected_cell == (2, 2) and view.heatmap.selected.tolist() == [[2, 2]]
    view.clear_selection()
    assert view.selected_cell is None and view.selected_indices == []
    assert view.grids["scale_explainer"].images is None
    assert view.table.highlight == -1


def test_newer_click_supersedes_and_stale_result_is_never_drawn(data):
    x, y_true, y_pred, probs = data
    gate, started, cancels = threading.Event(), threading.Event(), []

    def slow(images, outputs=None, progress=None, cancel=None):
        cancels.append(cancel)
        if len(cancels) == 1:  # the first request blocks until released, then ignores cancel
            started.set()
            gate.wait(5)
        return scale_explainer(images, outputs)

    view = MetricsView(y_true, probs, x, {"slow": slow})
    grid = view.grids["slow"]
    drawn = []
    grid.observe(lambda ch: drawn.append(None if ch["new"] is None else ch["new"].copy()), "images")
    view.select(3, 4)
    assert started.wait(5)
    assert grid.progress == 0.0  # a bar shows while it runs
    view.select(4, 3)  # supersedes: the first request's cancel event is set
    assert cancels[0].is_set()
    gate.set()
    view.wait(5)
    view.wait(5)
    second = x[_cell(y_true, y_pred, 4, 3)]
    np.testing.assert_array_equal(grid.images, second)
    first = x[_cell(y_true, y_pred, 3, 4)]
    assert not any(d is not None and d.shape == first.shape and np.array_equal(d, first)
                   for d in drawn)  # fmt: skip
    assert view.selected_cell == (4, 3)
    # going back to a computed cell comes from the cache at once
    calls = len(cancels)
    view.select(4, 3)
    assert len(cancels) == calls and np.array_equal(grid.images, second)


def test_errors_show_in_the_grid_and_the_view_stays_usable(data):
    x, y_true, _, probs = data

    def broken(images, outputs=None):
        if 4 in outputs:
            raise ValueError("this explainer cannot do class 4")
        return scale_explainer(images, outputs)

    view = MetricsView(y_true, probs, x, {"broken": broken, "wrong": lambda images: 42})
    view.select(3, 4)
    view.wait(5)
    assert view.grids["broken"].error == "broken: ValueError: this explainer cannot do class 4"
    assert view.grids["broken"].progress == -1.0
    assert "wrong: TypeError: the explainer returned int" in view.grids["wrong"].error
    view.select(2, 2)
    view.wait(5)
    assert view.grids["broken"].error == "" and view.grids["broken"].values.shape[-1] == 1


def test_without_explainer_and_without_probabilities(data):
    x, y_true, y_pred, _ = data
    view = MetricsView(y_true, y_pred, x)  # labels only: no curves, images without attributions
    assert view.curves.pr_figure is None and "probabilities" in view.curves.note.value
    view.select(3, 4)
    grid = view.grids["images"]
    np.testing.assert_array_equal(grid.images, x[_cell(y_true, y_pred, 3, 4)])
    assert not grid.values.any() and grid.output_labels[0] == ["predicted 4"]
    view.select(0, 1)  # an empty cell
    assert view.selected_indices == [] and grid.layout.display == "none"
    assert view.caption.value == "true 0, predicted 1: 0 images"
    bare = MetricsView(y_true, y_pred)  # no images: selection only
    bare.select(3, 4)
    assert bare.selected_indices == _cell(y_true, y_pred, 3, 4).tolist() and not bare.grids


def test_bad_input_says_what_was_expected(data):
    x, y_true, _, probs = data
    with pytest.raises(ValueError, match="images: expected 50 images"):
        MetricsView(y_true, probs, x[:10])
    with pytest.raises(TypeError, match="explainer: expected a callable"):
        MetricsView(y_true, probs, x, explainer=3)
    with pytest.raises(ValueError, match="max_images: expected a positive"):
        MetricsView(y_true, probs, x, max_images=0)
    view = MetricsView(y_true, probs, x)
    with pytest.raises(KeyError, match="unknown class"):
        view.select("cat", 1)


def test_grids_sit_beside_the_matrix_in_reserved_space_with_cell_tooltips(data):
    x, y_true, y_pred, probs = data
    view = MetricsView(y_true, probs, x, scale_explainer, class_names=list("abcd") + [XSS])
    top = view.children[1]
    assert list(top.children) == [top.children[0], view.selection]
    assert view.confusion in top.children[0].children
    assert list(view.grid_row.children) == list(view.grids.values())
    # the box of the grids holds a full selection's height before any click: nothing moves
    height = int(view.selection.layout.min_height.removesuffix("px"))
    assert height >= 6 * 76  # max_images rows of 76 px cells (6x6 images: square)
    # hovering a confusion cell names the true and predicted class and the count, as text
    tip = view.heatmap.tooltip
    assert tip.fields == ["row", "column", "color"]
    assert tip.labels == ["true", "predicted", "images"] and tip.formats == ["", "", "d"]
    assert view.heatmap.interactions["hover"] == "tooltip"
    view.normalized = True
    assert tip.labels[2] == "row share" and tip.formats[2] == ".2f"
    # the highlighted report row follows a cell click and a click on a report row
    view.select(3, 4)
    assert view.table.highlight == 3
    view.table.selected_row = 1
    assert view.table.highlight == 1 and view.curves.dropdown.value == 1
    view.select(2, 2)
    assert view.table.highlight == 2
    view.table.highlight = 1  # the browser's click on row 1 again (selected_row stays 1)
    assert view.curves.dropdown.value == 1
    view.close()
