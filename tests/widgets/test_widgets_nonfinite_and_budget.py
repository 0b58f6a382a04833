"""ShapleyExplorer and CEMWidget show NaN/inf model outputs in place and stay usable; a huge
budget in ShapleyExplorer never wedges its worker: a newer setting supersedes it and lands."""

from __future__ import annotations

import threading
import time

import numpy as np

import xaiwidgets
from xaiwidgets.datasets import load_sklearn_digits
from xaiwidgets.widgets.cem_widget import CEMWidget
from xaiwidgets.widgets.shapley_explorer import ShapleyExplorer


class NanDigits:
    """Linear 8x8-digit classifier that gives NaN on images holding ``nan_on_value`` (a
    masker's fill) and can sleep per call."""

    def __init__(self, x, y):
        flat = x.reshape(len(x), -1)
        means = np.stack([flat[y == c].mean(axis=0) for c in range(10)])
        self.w = (12.0 * (means - flat.mean(axis=0)).T).astype(np.float32)
        self.nan_on_value: float | None = None
        self.delay = 0.0
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, imgs):
        with self.lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        out = imgs.reshape(len(imgs), -1) @ self.w
        if self.nan_on_value is not None:
            out[np.any(imgs == self.nan_on_value, axis=(1, 2, 3))] = np.nan
        return out

    def grad(self, imgs, cot):
        return (cot @ self.w.T).reshape(imgs.shape)


def _digits():
    x, y = load_sklearn_digits()
    return x[:120], y[:120]


def test_shapley_explorer_shows_nan_outputs_in_place_and_stays_usable():
    x, y = _digits()
    model = NanDigits(x, y)
    ex = ShapleyExplorer(model, x, labels=y, max_evals=60, top_k=3).wait(10)
    assert ex.error == ""
    drawn = ex.values.copy()
    model.nan_on_value = 0.3  # not in the images (sixteenths)
    ex.masker = "constant(0.3)"
    ex.wait(10)
    assert "NaN or infinite" in ex.error and "masked versions of image(s)" in ex.error, ex.error
    assert ex.progress == -1.0
    np.testing.assert_array_equal(ex.values, drawn)  # nothing NaN was drawn
    model.nan_on_value = None
    ex.masker = "inpaint_telea"
    ex.wait(10)
    assert ex.error == "" and ex.explanation.params["masker"] == "inpaint_telea"
    assert np.isfinite(ex.values).all()
    ex.close()


def test_shapley_explorer_huge_budget_is_superseded_and_the_newer_setting_lands():
    x, y = _digits()
    model = NanDigits(x, y)
    ex = ShapleyExplorer(model, x, labels=y, max_evals=60, top_k=3).wait(10)
    model.delay = 0.05  # each model call: 0.05 s; 10**8 evaluations would never end
    t0 = time.perf_counter()
    for algorithm in ("permutation", "partition"):
        ex.algorithm = algorithm
        ex.max_evals = 10**8
        time.sleep(0.3)  # the huge run is under way
        ex.max_evals = 60  # the newer setting cancels it and lands
        ex.wait(30)
        assert ex.error == "" and ex.explanation.params["max_evals"] == 60, ex.error
        assert ex.explanation.method == algorithm
    assert time.perf_counter() - t0 < 20
    # the huge budget itself returns: capped where the values are exact, and says so
    model.delay = 0.0
    ex.max_evals = 10**8
    ex.wait(60)
    assert ex.error == "" and ex.explanation.params["max_evals_requested"] == 10**8
    assert ex.explanation.params["max_evals"] == 2732  # the full expansion of an 8 x 8 image
    ex.close()


def test_cem_widget_shows_nan_outputs_in_place_and_stays_usable():
    x, y = _digits()
    model = NanDigits(x, y)
    backend = xaiwidgets.wrap(model, grad_fn=model.grad)
    w = CEMWidget(backend, x[0], max_iterations=20, c_steps=1, feature_range=(0.0, 1.0))
    w.wait(10)
    assert w.error == ""
    model.nan_on_value = float(x[0].reshape(-1)[0])  # NaN on the image itself
    w.kappa = 0.2
    w.wait(10)
    assert w.error.startswith("NonFiniteOutputError: the model's outputs are NaN"), w.error
    assert "image(s) [0]" in w.error and not w.running and w.progress == -1
    model.nan_on_value = None
    w.kappa = 0.3
    w.wait(10)
    assert w.error == "" and w.result["PN"].params["kappa"] == 0.3
    w.close()
