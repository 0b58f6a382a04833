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
