"""ExplainerComparison in a real JupyterLab (Chromium): the columns are drawn where the kernel
says the attribution is (red at its largest value, blue at its most negative), a click on a
score header sorts the table as the kernel's numbers say, a click on a deletion score draws its
curves and one on a MuFidelity score its scatter (computed in the kernel), and the masked
overlay redraws. One notebook for all of it."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser

# four real MNIST digits, a small seeded torch CNN, three explainers; the kernel prints where
# the occlusion map of the first digit is largest / smallest and the deletion order
SETUP = """
import json
import numpy as np
import torch
from xaiwidgets.datasets import load_mnist_digits
from xaiwidgets.explainers import GradCAM, Occlusion, Saliency
from xaiwidgets.widgets import ExplainerComparison

x, y = load_mnist_digits()
x, y = x[:4], y[:4]
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(6, 8, 3, padding=1), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 10),
).eval()
cmp = ExplainerComparison(
    {"Grad-CAM": GradCAM(net, "3"), "occlusion": Occlusion(net, window=4, strides=2),
     "saliency": Saliency(net)},
    x, labels=y, runs=20, steps=10, sanity_stages=2, cell_size=84,
).wait(300)
k = cmp.shown.index("occlusion")
m = cmp.values[k, 0]
hi, lo = np.unravel_index(np.argmax(m), m.shape), np.unravel_index(np.argmin(m), m.shape)
order = [r["name"] for r in sorted(cmp.scores, key=lambda r: r["deletion"])]
print("INFO" + json.dumps({"col": k, "hi": [int(v) for v in hi], "lo": [int(v) for v in lo],
      "lo_strong": bool(m[lo] < -0.5 * cmp.scales[k, 0]), "order": order, "error": cmp.error}))
"""

SHOW = "cmp"

# the colour of pixel (x, y) of a 28 x 28 image drawn on canvas `sel`
PIXEL = """([sel, x, y]) => {
  const c = document.querySelector(sel);
  const px = Math.floor((x + 0.5) / 28 * c.width), py = Math.floor((y + 0.5) / 28 * c.height);
  return Array.from(c.getContext('2d').getImageData(px, py, 1, 1).data.slice(0, 3));
}"""

FINGERPRINT = """(sel) => [...document.querySelectorAll(sel)].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0;
  for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
  return s;
})"""


def _info(page) -> dict:
    for text in page.locator(".jp-OutputArea-output").all_inner_texts():
        if text.startswith("INFO"):
            return json.loads(text[4:].strip())
    raise AssertionError("the setup cell printed no INFO line")


def test_columns_sorting_and_curves(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([SETUP, SHOW])
    page.set_viewport_size({"width": 1200, "height": 1100})
    info = _info(page)
    assert info["error"] == "", info
    view = page.locator(".jp-OutputArea-output .xw-explainer-comparison")
    view.wait_for()
    cells = view.locator('canvas.xw-cmp-canvas:not([data-col="image"])')
    assert cells.count() == 3 * 4
    assert view.locator(".xw-cmp-head").all_inner_texts() == [
        "image",
        "Grad-CAM",
        "occlusion",
        "saliency",
    ]

    # the occlusion column: red where the kernel's map is largest, blue where most negative
    sel = f'.xw-explainer-comparison canvas[data-col="{info["col"]}"][data-row="0"]'
    r, g, b = page.evaluate(PIXEL, [sel, info["hi"][1], info["hi"][0]])
    assert r - b > 60, (r, g, b)
    if info["lo_strong"]:
        r, g, b = page.evaluate(PIXEL, [sel, info["lo"][1], info["lo"][0]])
        assert b - r > 60, (r, g, b)
    view.screenshot(path=str(artifacts / "explainer_comparison.png"))

    # a click on the deletion header sorts the rows as the kernel's areas say (lower first)
    rows = view.locator(".xw-cmp-scores tbody tr")
    assert rows.count() == 3
    view.locator('.xw-cmp-scores th[data-key="deletion"]').click()
    page.wait_for_function(
        "() => document.querySelector('.xw-cmp-scores th[data-key=\"deletion\"]')"
        ".getAttribute('aria-sort') === 'ascending'"
    )
    order = [rows.nth(i).get_attribute("data-explainer") for i in range(3)]
    assert order == info["order"], (order, info["order"])
    view.locator('.xw-cmp-scores th[data-key="deletion"]').click()
    page.wait_for_function(
        "() => document.querySelector('.xw-cmp-scores th[data-key=\"deletion\"]')"
        ".getAttribute('aria-sort') === 'descending'"
    )
    order = [rows.nth(i).get_attribute("data-explainer") for i in range(3)]
    assert order == info["order"][::-1]

    # a click on a deletion score: the kernel sends the curves, the mean and one per image
    first = order[0]
    view.locator(f'tr[data-explainer="{first}"] button[data-metric="deletion"]').click()
    curve = view.locator(f'.xw-cmp-curve[data-explainer="{first}"][data-metric="deletion"]')
    curve.wait_for(timeout=30_000)
    assert curve.locator("polyline").count() == 1 + 4
    assert first in curve.locator(".xw-cmp-curve-title").inner_text()
    view.screenshot(path=str(artifacts / "explainer_comparison_curve.png"))

    # a click on a MuFidelity score: its scatter, one dot per random subset of each image
    view.locator(f'tr[data-explainer="{first}"] button[data-metric="mufidelity"]').click()
    scatter = view.locator(f'.xw-cmp-curve[data-explainer="{first}"][data-metric="mufidelity"]')
    scatter.wait_for(timeout=30_000)
    assert scatter.locator("circle.xw-curve-dot").count() == 4 * 20  # images x runs

    # the masked overlay redraws every column
    cells_sel = '.xw-explainer-comparison canvas.xw-cmp-canvas:not([data-col="image"])'
    before = page.evaluate(FINGERPRINT, cells_sel)
    view.locator('.xw-seg-button[data-value="mask"]').click()
    page.wait_for_function(
        "() => !!document.querySelector('.xw-cmp-grid[data-overlay=\"mask\"]')", timeout=30_000
    )
    after = page.evaluate(FINGERPRINT, cells_sel)
    assert len(after) == len(before) == 12
    assert all(a != b for a, b in zip(after, before, strict=True))
