"""A DatasetExplanation's grid in a real JupyterLab: the pager shows which rows are drawn,
and its "next ›" button makes Python read and send the next page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

SETUP = """
import tempfile
import numpy as np
import xaiwidgets as xw
rng = np.random.default_rng(0)
W = rng.normal(size=(64, 4)).astype(np.float32)
x = rng.random((10, 8, 8, 1), dtype=np.float32)
backend = xw.wrap(lambda v: v.reshape(len(v), -1) @ W,
                  grad_fn=lambda v, c: (c @ W.T).reshape(v.shape))
result = xw.explain_dataset(xw.Saliency(backend), x, labels=np.arange(10) % 4,
                            store=tempfile.mkdtemp() + "/s.zarr", batch_size=4)
g = result.widget(page_size=3)
g
"""


def test_pager_moves_through_the_rows_on_disk(run_notebook_in_lab):
    page = run_notebook_in_lab([SETUP])
    grid = page.locator(".jp-OutputArea-output .xw-attribution-grid")
    grid.wait_for()
    label = grid.locator(".xw-ag-page-label")
    assert label.inner_text() == "rows 1–3 of 10 · page 1 of 4"
    assert page.locator("canvas.xw-ag-row-canvas").count() == 3
    assert grid.get_by_text("#0 · label: 0").count() == 1
    grid.get_by_role("button", name="next ›").click()
    page.get_by_text("#3 · label: 3").wait_for()  # Python read rows 3..5 and sent them
    assert label.inner_text() == "rows 4–6 of 10 · page 2 of 4"
    for _ in range(2):
        grid.get_by_role("button", name="next ›").click()
    page.get_by_text("#9 · label: 1").wait_for()
    assert label.inner_text() == "rows 10–10 of 10 · page 4 of 4"
    assert page.locator("canvas.xw-ag-row-canvas").count() == 1
    assert grid.get_by_role("button", name="next ›").is_disabled()


METRICS = """
import tempfile
import numpy as np
import xaiwidgets as xw
from xaiwidgets.widgets import MetricsView
rng = np.random.default_rng(1)
W = rng.normal(size=(64, 3)).astype(np.float32)
x = rng.random((30, 8, 8, 1), dtype=np.float32)
backend = xw.wrap(lambda v: v.reshape(len(v), -1) @ W,
                  grad_fn=lambda v, c: (c @ W.T).reshape(v.shape))
pred = backend.predict(x).argmax(1)
result = xw.explain_dataset(xw.Saliency(backend), x, labels=pred,
                            store=tempfile.mkdtemp() + "/s.zarr", batch_size=8)
view = MetricsView.from_dataset(result, max_images=3)
c = int(np.bincount(pred).argmax())
want = np.flatnonzero(pred == c)
view.select(c, c)
print("second page", ",".join(f"#{i}" for i in want[3:6]))
view
"""


def test_metrics_view_pages_through_a_cell_on_disk(run_notebook_in_lab):
    page = run_notebook_in_lab([METRICS])
    page.set_viewport_size({"width": 1500, "height": 1900})
    out = page.locator(".jp-OutputArea-output").filter(has=page.locator(".xw-report-table"))
    out.wait_for()
    text = page.locator(".jp-OutputArea-output", has_text="second page").inner_text()
    second = text.split("second page", 1)[1].split()[0].split(",")
    grid = out.locator(".xw-attribution-grid")
    grid.locator(".xw-ag-page-label").wait_for()
    assert grid.locator(".xw-ag-page-label").inner_text().startswith("rows 1–3 of ")
    grid.get_by_role("button", name="next ›").click()
    page.wait_for_function(
        "want => [...document.querySelectorAll('.xw-ag-image-label')]"
        ".map(e => e.textContent.split(' ')[0]).join(',') === want",
        arg=",".join(second),
    )
    assert grid.locator(".xw-ag-page-label").inner_text().startswith("rows 4–6 of ")
