"""Paced forward-only calls (:mod:`xaiwidgets.explainers._paced`): a probe call of a few
images, then calls of about CALL_SECONDS within the backend's forward rows; the explainers'
first prediction and the background mean check cancel between such calls, so a cancel during
them returns within about one call; non-finite outputs still name the images of the whole
batch."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from xaiwidgets._progress import Cancelled, RunControl
from xaiwidgets.backends import NonFiniteOutputError, wrap
from xaiwidgets.explainers import DeepExplainer, PartitionExplainer
from xaiwidgets.explainers._paced import CALL_SECONDS, PROBE_ROWS, Pacer, predict_paced


class Slow:
    """A NumPy model: three outputs, ``per_image`` seconds an image, rows of every call
    recorded; ``on_call(count)`` runs after each call."""

    def __init__(self, per_image, on_call=None):
        self.per_image, self.on_call = per_image, on_call
        self.calls: list[int] = []

    def __call__(self, x):
        self.calls.append(len(x))
        time.sleep(self.per_image * len(x))
        if self.on_call is not None:
            self.on_call(len(self.calls))
        flat = x.reshape(len(x), -1)
        return np.stack([flat.mean(1), flat.max(1), -flat.mean(1)], axis=1)


def test_pacer_sizes_by_the_last_calls_rate():
    pacer = Pacer(cap=100, first=2, seconds=0.5)
    assert pacer.size == 2
    pacer.took(2, 0.1)  # 20 rows a second: 10 in half a second
    assert pacer.size == 10
    pacer.took(10, 0.01)  # fast: the cap
    assert pacer.size == 100
    pacer.took(100, 100.0)  # very slow: never below one row
    assert pacer.size == 1
    assert Pacer(cap=1).size == 1


def test_predict_paced_equals_predict_and_paces_a_slow_model():
    x = np.random.default_rng(0).random((12, 4, 4, 1), dtype=np.float32)
    model = Slow(0.05)  # 10 images in half a second
    backend = wrap(model)
    got = predict_paced(backend, x, RunControl())
    np.testing.assert_allclose(got, model(x), rtol=1e-6)
    calls = model.calls[:-1]
    assert calls[0] == PROBE_ROWS and sum(calls) == len(x), calls
    assert all(c * 0.05 <= CALL_SECONDS for c in calls), calls
    fast = Slow(0.0)
    predict_paced(wrap(fast), x, RunControl())
    assert fast.calls == [PROBE_ROWS, 10]  # fast: up to the backend's forward rows
    given = Slow(0.05)
    predict_paced(wrap(given, batch_size=5), x, RunControl())
    assert given.calls == [5, 5, 2]  # a batch_size given is kept, even for a slow model


def test_a_given_batch_size_is_kept_by_the_gradient_and_coalition_calls():
    """Time-pacing is off when the user gave batch_size: small calls cost more per image."""
    from xaiwidgets.explainers import PermutationExplainer

    x = np.random.default_rng(0).random((1, 6, 6, 1), dtype=np.float32)
    calls = {}
    for per_image in (0.0, 0.02):  # a call of 40 images: 0.8 s, over CALL_SECONDS
        model = Slow(per_image)
        PermutationExplainer(model, "constant(0)", max_evals=200, batch_size=40)(x, outputs=[0])
        calls[per_image] = model.calls
    # the same calls for a slow model (without batch_size they would shrink by time:
    # test_region_budget.test_slow_model_calls_shrink_to_about_half_a_second)
    assert calls[0.02] == calls[0.0] and max(calls[0.0]) == 40, calls


def marked(z):
    """NaN outputs for images whose first pixel is -1, infinite ones where it is 2."""
    v = z.reshape(len(z), -1)
    out = v[:, :2].copy()
    out[v[:, 0] == -1, 0] = np.nan
    out[v[:, 0] == 2, 1] = np.inf
    return out


def test_non_finite_outputs_name_the_images_of_every_call():
    x = np.zeros((9, 2, 2, 1), np.float32)
    x[[1, 6], 0, 0, 0] = -1
    x[7, 0, 0, 0] = 2
    backend = wrap(marked, batch_size=3)  # calls of 2, 3, 3, 1 images
    with pytest.raises(NonFiniteOutputError, match=r"NaN and infinite for image\(s\) \[1, 6, 7\]"):
        predict_paced(backend, x, RunControl())
    x[7] = 0
    with pytest.raises(NonFiniteOutputError, match=r"are NaN for image\(s\) \[1, 6\]: ") as info:
        predict_paced(backend, x, RunControl())
    np.testing.assert_array_equal(info.value.rows, [1, 6])


def cancel_after_first_call(model_per_image, make_explainer, x):
    """Run the explainer with a cancel set after the model's first call; returns the seconds
    from the cancel to the return and the model's calls."""
    cancel = threading.Event()
    set_at: list = []

    def on_call(count):
        if count == 1:
            cancel.set()
            set_at.append(time.perf_counter())

    model = Slow(model_per_image, on_call)
    with pytest.raises(Cancelled):
        make_explainer(model)(x, top_k=1, cancel=cancel)
    return time.perf_counter() - set_at[0], model.calls


def test_cancel_during_the_first_prediction_returns_before_the_next_call():
    x = np.random.default_rng(0).random((40, 8, 8, 1), dtype=np.float32)
    latency, calls = cancel_after_first_call(
        0.05, lambda m: PartitionExplainer(m, "blur(4,4)", max_evals=40), x
    )
    # the whole prediction would be one call of 40 images (2 s); the probe is 2 images
    assert calls == [PROBE_ROWS], calls
    assert latency < 0.5, latency


def test_cancel_during_the_background_mean():
    rng = np.random.default_rng(0)
    bg = rng.random((40, 8, 8, 1), dtype=np.float32)
    cancel = threading.Event()
    model = Slow(0.02, lambda count: cancel.set() if count == 2 else None)
    backend = wrap(model, framework="numpy")
    ex = DeepExplainer(backend, bg, background_size=None)  # the mean only: no DeepLIFT here
    with pytest.raises(Cancelled), RunControl(cancel=cancel) as ctl:
        ex._background_mean(ctl)
    assert model.calls == [PROBE_ROWS, model.calls[1]] and model.calls[1] < len(bg)
    assert "expected_value" not in vars(ex)
    done = ex._background_mean(RunControl())
    np.testing.assert_allclose(done, model(bg).mean(0), rtol=1e-6)
    assert ex.expected_value is done  # computed once
