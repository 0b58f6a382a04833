"""Exported HTML draws its widgets with the network refused: ``Explanation.to_html`` and the
nbconvert reports of ``make demo`` (after scripts/inline_widget_manager.py), opened from
``file://`` in Chromium with every other request aborted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
XSS = '<img src=x onerror="window.__xss=1">'
SETUP = f"""
import numpy as np
import xaiwidgets
rng = np.random.default_rng(0)
values = rng.normal(size=(2, 10, 10, 1, 3)).astype(np.float32)
data = rng.random((2, 10, 10, 1)).astype(np.float32)
e = xaiwidgets.Explanation(values=values, data=data, class_names=["$5-$10", {XSS!r}, "$x_$"],
                           probabilities=np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]))
"""

# ink drawn on the canvases of the widgets: pixels with colour, red ones and blue ones
CANVAS_INK = """() => {
  let canvases = 0, ink = 0, red = 0, blue = 0;
  for (const c of document.querySelectorAll('.widget-subarea canvas')) {
    if (!c.width || !c.height) continue;
    canvases++;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i + 3] === 0) continue;
      const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
      if (r < 250 || g < 250 || b < 250) ink++;
      if (r > g + 60 && r > b + 30) red++;
      if (b > r + 60) blue++;
    }
  }
  return {canvases, ink, red, blue};
}"""


PAGE_TEXT = """() => {
  const root = document.querySelector('.widget-subarea');
  const titles = [...root.querySelectorAll('[title], [aria-label]')]
    .map(e => (e.getAttribute('title') || '') + ' ' + (e.getAttribute('aria-label') || ''));
  return root.innerText + ' ' + titles.join(' ');
}"""


def _open_offline(new_page, path: Path):
    """``path`` opened from file:// with every non-file request aborted (and recorded)."""
    page = new_page()
    page.refused = []

    def handle(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        page.refused.append(route.request.url)
        return route.abort()

    page.route("**/*", handle)
    page.goto(path.as_uri())
    return page


def _assert_widgets_drawn(page, n_widgets: int) -> None:
    page.wait_for_function(
        f"() => document.querySelectorAll('.widget-subarea canvas').length > 0 && "
        f"document.querySelectorAll('.widget-subarea').length >= {n_widgets}",
        timeout=30_000,
    )
    page.wait_for_function(f"() => ({CANVAS_INK})().red > 0", timeout=10_000)
    ink = page.evaluate(CANVAS_INK)
    assert ink["canvases"] >= 1 and ink["ink"] > 100 and ink["red"] > 0 and ink["blue"] > 0, ink
    # names reach the page as text, as given (shown, or in a hover title if abbreviated)
    text = page.evaluate(PAGE_TEXT)
    for name in ("$5-$10", "$x_$", XSS):
        assert name in text, (name, text[:500])
    assert page.evaluate("window.__xss") is None


def test_explanation_to_html_draws_offline(tmp_path, new_page, artifacts, built_bundle):
    ns: dict = {}
    exec(SETUP, ns)
    path = ns["e"].to_html(tmp_path / "grid.html")
    page = _open_offline(new_page, path)
    _assert_widgets_drawn(page, 1)
    page.screenshot(path=str(artifacts / "export_to_html_offline.png"))


def test_bqplot_figure_draws_offline(tmp_path, new_page, artifacts):
    """MetricsView's confusion matrix is a bqplot heat map: its library is inlined too."""
    bqplot = pytest.importorskip("bqplot")
    import numpy as np

    from xaiwidgets import export_html

    names = ["$5-$10", "b", "c"]
    heat = bqplot.GridHeatMap(
        color=np.arange(9.0).reshape(3, 3),
        scales={
            "row": bqplot.OrdinalScale(domain=names),
            "column": bqplot.OrdinalScale(domain=names),
            "color": bqplot.ColorScale(),
        },
    )
    fig = bqplot.Figure(marks=[heat], axes=[bqplot.Axis(scale=heat.scales["column"])])
    page = _open_offline(new_page, export_html(fig, tmp_path / "heat.html"))
    page.wait_for_function(
        "() => document.querySelectorAll('.widget-subarea .bqplot rect.heatmapcell').length === 9",
        timeout=30_000,
    )
    fills = page.evaluate(
        "() => [...document.querySelectorAll('.widget-subarea rect.heatmapcell')]"
        ".map(r => getComputedStyle(r).fill)"
    )
    assert len(set(fills)) == 9, fills  # nine values, nine colours
    assert "$5-$10" in page.locator(".widget-subarea").inner_text()
    # theme variables are set: without them the plot area is filled black
    background = page.evaluate(
        "() => getComputedStyle(document.querySelector('.widget-subarea .plotarea_background'))"
        ".fill"
    )
    assert background == "rgb(255, 255, 255)", background
    assert page.refused == [], page.refused
    page.screenshot(path=str(artifacts / "export_bqplot_offline.png"))


def test_nbconvert_report_draws_offline_after_inlining(
    exported_notebook, new_page, artifacts, built_bundle
):
    """What `make demo` does: execute with widget state, nbconvert --to html, inline the
    manager. The same run checks, in a real kernel, that displaying an Explanation leaves
    the inline backend alone (a later plt figure still shows) and sends no PNG."""
    plot = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"
    # the test process sets MPLBACKEND=Agg, which the kernel inherits: ask for Jupyter's own
    nb, path = exported_notebook(["%matplotlib inline\n" + SETUP, "e", plot], "report.html")
    shown = [set(o.get("data", {})) for o in nb.cells[1].outputs]
    assert any("application/vnd.jupyter.widget-view+json" in d for d in shown), shown
    assert not any("image/png" in d for d in shown), shown
    assert any("image/png" in o.get("data", {}) for o in nb.cells[2].outputs), nb.cells[2].outputs

    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "inline_widget_manager.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and "inlined" in res.stdout, res.stderr
    page = _open_offline(new_page, path)
    _assert_widgets_drawn(page, 1)
    assert not any("jupyter-widgets" in u or "anywidget" in u for u in page.refused), page.refused
    page.screenshot(path=str(artifacts / "export_nbconvert_offline.png"), full_page=True)
