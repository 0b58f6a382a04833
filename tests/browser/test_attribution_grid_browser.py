"""AttributionGrid in a real JupyterLab and in a static HTML export, checked in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror="window.__xss=1">'
CELL = 84  # automatic cell size of 12 x 12 images (7 x 12)
PX = CELL // 12  # CSS pixels per image pixel

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

# mean colour and non-white fraction of a region (fractions of the cell) of one cell; each row
# is one canvas, the cell's place in it is the box of its frame element .xw-ag-cell
REGION_STATS = """([row, col, x0, y0, x1, y1]) => {
  const c = document.querySelector(`canvas.xw-ag-row-canvas[data-row="${row}"]`);
  const cell = document.querySelector(`.xw-ag-cell[data-row="${row}"][data-col="${col}"]`);
  if (!c || !cell) return null;
  const cb = c.getBoundingClientRect(), fb = cell.getBoundingClientRect();
  const sx = c.width / cb.width, sy = c.height / cb.height;
  const left = (fb.left - cb.left) * sx, top = (fb.top - cb.top) * sy;
  const w = fb.width * sx, h = fb.height * sy;
  const ctx = c.getContext('2d');
  const X0 = Math.floor(left + x0 * w), Y0 = Math.floor(top + y0 * h);
  const X1 = Math.ceil(left + x1 * w), Y1 = Math.ceil(top + y1 * h);
  const d = ctx.getImageData(X0, Y0, X1 - X0, Y1 - Y0).data;
  let r = 0, g = 0, b = 0, a = 0, ink = 0, lo = 255, hi = 0;
  const n = d.length / 4;
  for (let i = 0; i < d.length; i += 4) {
    r += d[i]; g += d[i + 1]; b += d[i + 2]; a += d[i + 3];
    if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) ink++;
    lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]);
  }
  return {r: r / n, g: g / n, b: b / n, a: a / n, ink: ink / n, lo, hi, w: X1 - X0, h: Y1 - Y0};
}"""


def _cell(row: int, col: int | str) -> str:
    return f'.xw-ag-cell[data-row="{row}"][data-col="{col}"]'


def _stats(page, row, col, box=(0, 0, 1, 1)):
    return page.evaluate(REGION_STATS, [row, str(col), *box])


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
    assert page.locator("canvas.xw-ag-row-canvas").count() == 2  # one canvas per row
    assert page.locator(".xw-ag-cell").count() == 2 * 4
    assert page.locator(_cell(0, "image")).bounding_box()["width"] == pytest.approx(CELL, abs=1)
    _assert_grid_drawn(page)

    text = " ".join(output.inner_text().split())  # narrow cells: probabilities below names
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
    assert page.locator("canvas.xw-ag-row-canvas").count() == 2
    assert page.locator(".xw-ag-cell").count() == 2 * 3
    assert grid.locator(".xw-cbar").count() == 1
    # ranked labels: row 1 is Bag (0.60) then the XSS name (0.30)
    labels = [" ".join(t.split()) for t in grid.locator(".xw-label").all_inner_texts()]
    assert labels[3:6] == ["label: Bag", "Bag 0.60", f"{XSS} 0.30"], labels

    grid.locator('.xw-seg-button[data-value="row"]').click()
    page.wait_for_function(
        "() => document.querySelectorAll('.xw-attribution-grid .xw-cbar').length === 2"
    )
    slider = grid.locator("input.xw-slider")
    slider.fill("120")  # range input: fill sets the value and fires input
    first = page.locator(_cell(0, "image"))
    page.wait_for_function(
        f"() => document.querySelector('{_cell(0, 'image')}').style.width === '120px'"
    )
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
        f"() => document.querySelector('{_cell(0, 'image')}').style.width === '48px'"
    )
    page.wait_for_function(
        "() => document.querySelectorAll('.xw-attribution-grid .xw-cbar').length === 1"
    )


def test_static_html_export_draws(exported_notebook, offline_page, artifacts, built_bundle):
    nb, path = exported_notebook([SETUP, "e.widget()"])
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata.get("widgets", {})
    assert "application/vnd.jupyter.widget-view+json" in path.read_text(encoding="utf-8")

    url = "http://export.localhost/export.html"
    page = offline_page({url: path})
    page.goto(url)
    page.locator("canvas.xw-ag-row-canvas").first.wait_for(timeout=30_000)
    assert page.locator("canvas.xw-ag-row-canvas").count() == 2
    assert page.locator(".xw-ag-cell").count() == 2 * 4
    _assert_grid_drawn(page)
    assert "Sandal 0.93" in " ".join(page.locator(".xw-attribution-grid").inner_text().split())
    assert page.evaluate("window.__xss") is None
    assert any("embed-amd.js" in u for u in page.served), page.served
    grid = page.locator(".xw-attribution-grid")
    grid.screenshot(path=str(artifacts / "attribution_grid_static.png"))


# 10 classes with long names, one wrong prediction; then one 224 x 224 RGB image
TEN_CLASSES = """
import numpy as np
import xaiwidgets
rng = np.random.default_rng(0)
n, h, w, k = 4, 28, 28, 10
names = ["expected gradients", "integrated gradients", "T-shirt/top", "Trouser", "Pullover",
         "Dress", "Coat", "Sandal", "Shirt", "Ankle boot"]
probs = rng.dirichlet(np.ones(k) * 0.3, size=n).astype(np.float32)
labels = probs.argmax(1)
labels[1] = (labels[1] + 1) % k  # row 1 is predicted wrong
e = xaiwidgets.Explanation(values=rng.normal(size=(n, h, w, 1, k)).astype(np.float32),
                           data=rng.random((n, h, w, 1)).astype(np.float32),
                           class_names=names, probabilities=probs, labels=labels)
print("TRUE", labels.tolist())
e.widget()
"""
BIG_IMAGE = """
big = xaiwidgets.Explanation(values=rng.normal(size=(1, 224, 224, 3, 2)).astype(np.float32),
                             data=rng.random((1, 224, 224, 3)).astype(np.float32),
                             class_names=["cat", "dog"], probabilities=np.array([[0.7, 0.3]]),
                             labels=[0])
big.widget()
"""

# the boxes of a grid's output area, colour bar, cells and labels (client coordinates)
BOXES = """(grid) => {
  const box = (el) => { const b = el.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom, w: b.width}; };
  const out = grid.closest('.jp-OutputArea-output');
  return {
    output: box(out), viewport: innerWidth,
    bars: [...grid.querySelectorAll('.xw-cbar')].map(box),
    cells: [...grid.querySelectorAll('.xw-ag-cell')].map(box),
    labels: [...grid.querySelectorAll('.xw-ag-row .xw-label')].map((l) => {
      const name = l.querySelector('.xw-label-name'), prob = l.querySelector('.xw-label-prob');
      return {box: box(l), title: l.title, text: l.textContent, name: name ? name.textContent : '',
              cut: name ? name.scrollWidth > name.clientWidth + 1 : false,
              prob: prob ? box(prob) : null, cls: l.className};
    }),
  };
}"""

# mean colour of the 2 px band just left of a cell (where its frame is drawn)
FRAME_BAND = """([row, col]) => {
  const c = document.querySelector(`canvas.xw-ag-row-canvas[data-row="${row}"]`);
  const cell = document.querySelector(`.xw-ag-cell[data-row="${row}"][data-col="${col}"]`);
  const cb = c.getBoundingClientRect(), fb = cell.getBoundingClientRect();
  const s = c.width / cb.width;
  const x = Math.round((fb.left - cb.left - 3) * s), y = Math.round((fb.top - cb.top) * s);
  const d = c.getContext('2d').getImageData(x, y, Math.max(1, Math.round(2 * s)), Math.round(fb.height * s)).data;
  let r = 0, g = 0, b = 0, a = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; b += d[i + 2]; a += d[i + 3]; }
  const n = d.length / 4;
  return {r: r / n, g: g / n, b: b / n, a: a / n};
}"""


def test_ten_class_grid_fits_the_output_and_marks_true_labels(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([TEN_CLASSES, BIG_IMAGE])
    grids = page.locator(".jp-OutputArea-output .xw-attribution-grid")
    grids.nth(1).scroll_into_view_if_needed()  # rows are drawn as they come into view
    grids.nth(1).locator("canvas.xw-ag-row-canvas").first.wait_for()
    big = grids.nth(1).evaluate(BOXES)
    grid = grids.nth(0)
    grid.scroll_into_view_if_needed()
    grid.locator("canvas.xw-ag-row-canvas").first.wait_for()
    grid.screenshot(path=str(artifacts / "attribution_grid_ten_classes.png"))
    boxes = grid.evaluate(BOXES)
    right = min(boxes["output"]["r"], boxes["viewport"])
    # item 14: the colour bar and every cell are inside the output area's width
    assert len(boxes["bars"]) == 1 and boxes["bars"][0]["r"] <= right + 0.5, boxes
    assert len(boxes["cells"]) == 4 * 11
    assert all(c["r"] <= right + 0.5 for c in boxes["cells"]), (right, boxes["cells"])
    # labels: the probability is never cut; a cut name has its full text in the title
    outputs = [lb for lb in boxes["labels"] if lb["prob"] is not None]
    assert len(outputs) == 4 * 10
    for lb in outputs:
        assert lb["prob"]["r"] <= lb["box"]["r"] + 0.5 and lb["prob"]["w"] > 10, lb
        assert lb["title"].startswith(lb["name"]), lb
    cut = [lb for lb in outputs if lb["cut"]]
    assert cut, "expected long names such as 'integrated gradients' to be abbreviated"
    assert any(lb["title"].startswith("integrated gradients ") for lb in cut), cut

    # item 15: the true label's column is framed in green; the wrong row's image in red
    true = [int(v) for v in re.search(r"TRUE \[([^\]]*)\]", page.content()).group(1).split(",")]
    for row in (0, 2):
        band = page.evaluate(FRAME_BAND, [row, str(true[row])])
        assert band["a"] > 200 and band["g"] - band["r"] > 40 and band["g"] - band["b"] > 20, band
        other = page.evaluate(FRAME_BAND, [row, str((true[row] + 2) % 10)])
        assert other["a"] < 50, other  # no frame elsewhere
    wrong = page.evaluate(FRAME_BAND, [1, "image"])
    assert wrong["a"] > 200 and wrong["r"] - wrong["g"] > 80, wrong
    marks = grid.locator(".xw-ag-true")
    assert marks.count() == 4  # all outputs explained: each row's true class is a column
    assert marks.first.get_attribute("title").endswith(" · true label")
    wrong_label = grid.locator(".xw-ag-wrong")
    assert wrong_label.count() == 1
    assert wrong_label.inner_text().startswith("✗ label: ")
    assert "prediction wrong: predicted " in wrong_label.get_attribute("title")

    # item 14: a 224 x 224 image is not drawn at 84 px
    widths = [c["w"] for c in big["cells"]]
    assert len(widths) == 3 and min(widths) >= 150, widths
    assert all(c["r"] <= min(big["output"]["r"], big["viewport"]) + 0.5 for c in big["cells"])


HUNDRED = """
import numpy as np
import xaiwidgets
rng = np.random.default_rng(1)
n, h, w, k = 100, 28, 28, 10
e = xaiwidgets.Explanation(values=rng.normal(size=(n, h, w, 1, k)).astype(np.float32),
                           data=rng.random((n, h, w, 1)).astype(np.float32),
                           class_names=[f"class {j}" for j in range(k)],
                           probabilities=rng.dirichlet(np.ones(k), size=n).astype(np.float32),
                           labels=rng.integers(0, k, n))
e.widget()
"""

# wheel-scroll the notebook: time from each wheel event until two frames have been drawn
WHEEL = """async ([x, y, steps]) => {
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const times = [];
  for (let k = 0; k < steps; k++) {
    const t = performance.now();
    const target = document.elementFromPoint(x, y);
    target.dispatchEvent(new WheelEvent('wheel', {deltaY: 400, clientX: x, clientY: y, bubbles: true}));
    document.querySelector('.jp-WindowedPanel-outer').scrollBy(0, 400);
    await frames();
    times.push(performance.now() - t);
  }
  return times;
}"""


def test_hundred_images_in_lab_few_canvases_and_smooth_scrolling(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([HUNDRED])
    grid = page.locator(".jp-OutputArea-output .xw-attribution-grid")
    grid.locator("canvas.xw-ag-row-canvas").first.wait_for()
    assert grid.locator(".xw-ag-row").count() == 100
    drawn = grid.locator("canvas.xw-ag-row-canvas").count()
    assert 0 < drawn <= 25, drawn  # not 1,101 canvases: the rows near the viewport
    box = grid.bounding_box()
    times = page.evaluate(WHEEL, [box["x"] + 50, 400, 12])
    print("wheel steps (ms)", [round(t) for t in times])
    assert sum(times) / len(times) < 250, times
    # the rows now on screen are drawn; the ones far above were released
    page.wait_for_function(
        """() => [...document.querySelectorAll('.xw-ag-row')].filter((r) => {
             const b = r.getBoundingClientRect();
             return b.bottom > 120 && b.top < innerHeight - 40;
           }).every((r) => r.querySelector('canvas'))"""
    )
    assert grid.locator("canvas.xw-ag-row-canvas").count() <= 30
    toggle_ms = page.evaluate(
        """async () => {
          const t = performance.now();
          document.querySelector('.xw-attribution-grid .xw-seg-button[data-value="row"]').click();
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          return performance.now() - t;
        }"""
    )
    print("per-row toggle in the lab (ms)", round(toggle_ms))
    assert toggle_ms < 400, toggle_ms
    page.screenshot(path=str(artifacts / "attribution_grid_hundred_scrolled.png"))
