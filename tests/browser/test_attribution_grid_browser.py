"""AttributionGrid in a real JupyterLab and in a static HTML export, checked in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'
CELL = 84  # default cell_size
PX = CELL // 12  # CSS pixels per image pixel (12 x 12 images)

# 2 grey 12x12 images (a vertical bar, a horizontal bar) and 3 explained outputs with known
# attributions: output 0 positive on the left half, output 1 negative on the bottom half,
# output 2 a single positive pixel at (0, 0) of value 0.5.
SETUP = f"""
import numpy as np
import xaiwidgets
n, h, w, k = 2, 12, 12, 3
data = np.zeros((n, h, w, 1), np.float32)
data[0, :, 5:7] = 1.0
data[1, 5:7, :] = 1.0
values = np.zeros((n, h, w, 1, k), np.float32)
values[:, :, :6, 0, 0] = 1.0
values[:, 6:, :, 0, 1] = -1.0
values[:, 0, 0, 0, 2] = 0.5
probs = np.array([[0.93, 0.05, 0.02], [0.1, 0.3, 0.6]], np.float32)
e = xaiwidgets.Explanation(values=values, data=data, class_names=["Sandal", {XSS!r}, "Bag"],
                           probabilities=probs, labels=[0, 2])
"""

# mean colour and non-white fraction of a region (fractions of the canvas) of a cell canvas
REGION_STATS = """([sel, x0, y0, x1, y1]) => {
  const c = document.querySelector(sel);
  if (!c) return null;
  const ctx = c.getContext('2d');
  const X0 = Math.floor(x0 * c.width), Y0 = Math.floor(y0 * c.height);
  const X1 = Math.ceil(x1 * c.width), Y1 = Math.ceil(y1 * c.height);
  const d = ctx.getImageData(X0, Y0, X1 - X0, Y1 - Y0).data;
  let r = 0, g = 0, b = 0, a = 0, ink = 0, lo = 255, hi = 0;
  const n = d.length / 4;
  for (let i = 0; i < d.length; i += 4) {
    r += d[i]; g += d[i + 1]; b += d[i + 2]; a += d[i + 3];
    if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) ink++;
    lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]);
  }
  return {r: r / n, g: g / n, b: b / n, a: a / n, ink: ink / n, lo, hi, w: c.width, h: c.height};
}"""


def _cell(row: int, col: int | str) -> str:
    return f'canvas.xw-ag-canvas[data-row="{row}"][data-col="{col}"]'


def _stats(page, row, col, box=(0, 0, 1, 1)):
    return page.evaluate(REGION_STATS, [_cell(row, col), *box])


def _load_ext_line() -> str:
    root = Path(__file__).resolve().parents[2]
    return "%load_ext xaiwidgets" if (root / "xaiwidgets" / "extension.py").exists() else ""


def _assert_grid_drawn(page) -> None:
    """Non-blank pixels where the attributions are, and only there."""
    for row in (0, 1):
        img = _stats(page, row, "image")
        assert img["a"] == 255 and img["lo"] < 20 and img["hi"] > 235, img  # black + white bar
    # row 0, image: the vertical bar (columns 5-6) is white, the left part black
    bar = _stats(page, 0, "image", (5 / 12, 0, 7 / 12, 1))
    left = _stats(page, 0, "image", (0, 0, 5 / 12, 1))
    assert bar["r"] > 240 and left["r"] < 15, (bar, left)
    # output 0: left half red, right half the faint grey image only
    lh = _stats(page, 0, 0, (0, 0, 0.5, 1))
    rh = _stats(page, 0, 0, (0.5, 0, 1, 1))
    assert lh["r"] - lh["b"] > 100, lh
    assert abs(rh["r"] - rh["b"]) < 5 and rh["r"] > 180, rh
    # output 1: bottom half blue, top half grey
    bottom = _stats(page, 1, 1, (0, 0.5, 1, 1))
    top = _stats(page, 1, 1, (0, 0, 1, 0.5))
    assert bottom["b"] - bottom["r"] > 100, bottom
    assert abs(top["r"] - top["b"]) < 5, top
    # output 2: only pixel (0, 0) is coloured
    corner = _stats(page, 0, 2, (0, 0, 1 / 12, 1 / 12))
    rest = _stats(page, 0, 2, (2 / 12, 2 / 12, 1, 1))
    assert corner["r"] - corner["b"] > 40 and abs(rest["r"] - rest["b"]) < 5, (corner, rest)


def test_grid_in_jupyterlab(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([_load_ext_line(), SETUP, "e"])
    output = page.locator(".jp-OutputArea-output .xw-attribution-grid")
    output.wait_for()
    assert page.locator("canvas.xw-ag-canvas").count() == 2 * 4
    _assert_grid_drawn(page)

    text = output.inner_text()
    assert "Sandal 0.93" in text and "Bag 0.60" in text
    assert "label: Sandal" in text and "label: Bag" in text
    assert XSS in text  # the HTML class name shows literally...
    assert page.evaluate("window.__xss") is None  # ...and runs nothing
    assert output.locator("img").count() == 0

    ticks = output.locator(".xw-cbar-tick").all_inner_texts()
    assert {"-1", "0", "1"} <= set(ticks), ticks

    output.screenshot(path=str(artifacts / "attribution_grid.png"))

    # hover pixel (2, 3) of the "Sandal" cell of row 0
    box = page.locator(_cell(0, 0)).bounding_box()
    page.mouse.move(box["x"] + 2 * PX + PX / 2, box["y"] + 3 * PX + PX / 2)
    tip = output.locator(".xw-tooltip")
    tip.wait_for(state="visible")
    tip_text = tip.inner_text()
    assert re.search(r"pixel \(x, y\)\s+\(2, 3\)", tip_text), tip_text
    assert re.search(r"attribution\s+\+1\b", tip_text), tip_text
    assert re.search(r"pixel value\s+0\b", tip_text), tip_text
    assert "Sandal 0.93" in tip_text

    output.screenshot(path=str(artifacts / "attribution_grid_hover.png"))
    page.mouse.move(0, 0)
    tip.wait_for(state="hidden")


def test_controls_redraw_and_sync_with_python(run_notebook_in_lab):
    page = run_notebook_in_lab([SETUP, "g = e.widget(top_k=2)\ng"])
    grid = page.locator(".jp-OutputArea-output .xw-attribution-grid")
    grid.wait_for()
    assert page.locator("canvas.xw-ag-canvas").count() == 2 * 3
    assert grid.locator(".xw-cbar").count() == 1
    # ranked labels: row 1 is Bag (0.60) then the XSS name (0.30)
    labels = grid.locator(".xw-label").all_inner_texts()
    assert labels[3:6] == ["label: Bag", "Bag 0.60", f"{XSS} 0.30"], labels

    grid.locator('.xw-seg-button[data-value="row"]').click()
    assert grid.locator(".xw-cbar").count() == 2  # one colour bar per row
    slider = grid.locator("input.xw-slider")
    slider.fill("120")  # range input: fill sets the value and fires input
    first = page.locator(_cell(0, "image"))
    assert first.evaluate("c => c.style.width") == "120px"
    assert first.bounding_box()["width"] == pytest.approx(120, abs=1)

    # JS -> Python: the kernel sees the toggles; Python -> JS: a trait set redraws
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    last.click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type("print(g.scale_mode, g.cell_size)\ng.cell_size = 48\ng.scale_mode = 'grid'")
    page.keyboard.press("Shift+Enter")
    page.get_by_text("row 120").wait_for()
    page.wait_for_function(
        "() => document.querySelector('canvas.xw-ag-canvas').style.width === '48px'"
    )
    assert grid.locator(".xw-cbar").count() == 1


def test_static_html_export_draws(tmp_path, offline_page, notebook_node, artifacts, built_bundle):
    nbclient = pytest.importorskip("nbclient")
    nbconvert = pytest.importorskip("nbconvert")
    nb = notebook_node([SETUP, "e.widget()"])
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", store_widget_state=True
    ).execute()
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
    html, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(nb)
    assert "application/vnd.jupyter.widget-view+json" in html
    path = tmp_path / "export.html"
    path.write_text(html, encoding="utf-8")

    url = "http://export.localhost/export.html"
    page = offline_page({url: path})
    page.goto(url)
    page.locator("canvas.xw-ag-canvas").first.wait_for(timeout=30_000)
    assert page.locator("canvas.xw-ag-canvas").count() == 2 * 4
    _assert_grid_drawn(page)
    assert "Sandal 0.93" in page.locator(".xw-attribution-grid").inner_text()
    assert page.evaluate("window.__xss") is None
    assert any("embed-amd.js" in u for u in page.served), page.served
    grid = page.locator(".xw-attribution-grid")
    grid.screenshot(path=str(artifacts / "attribution_grid_static.png"))
