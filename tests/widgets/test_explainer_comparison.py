"""ExplainerComparison on the Python side: the scores are xaiwidgets.faithfulness's own numbers, bad
input is named, a failing explainer shows its error in its column while the others are drawn,
and a newer request supersedes an older one (cancelled, never drawn).

A small seeded torch CNN on scikit-learn's 8x8 digits is the model (untrained: the scores are
compared with the functions called directly, not judged)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from xaiwidgets.datasets import load_sklearn_digits
from xaiwidgets.explainers import GradCAM, Occlusion, Saliency
from xaiwidgets.faithfulness import (
    deletion_curve,
    insertion_curve,
    mufidelity,
    randomisation_check,
    sparseness,
)
from xaiwidgets.widgets import ExplainerComparison

torch = pytest.importorskip("torch")

RUNS, STAGES, STEPS = 12, 2, 8


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 6, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 8 * 8, 10),
    ).eval()


@pytest.fixture(scope="module")
def digits():
    x, y = load_sklearn_digits()
    return x[:3], y[:3]


class Failing(Saliency):
    """An explainer that raises (its column shows the error)."""

    method = "failing"

    def _explain(self, x, outputs, model_outputs, ctl):
        raise ValueError("this explainer always fails")


class Slow(Saliency):
    """Saliency that takes a while, checking for cancellation every 20 ms."""

    method = "slow"
    started = 0

    def _explain(self, x, outputs, model_outputs, ctl):
        type(self).started += 1
        for _ in range(100):
            time.sleep(0.02)
            ctl.check()
        return super()._explain(x, outputs, model_outputs, ctl)


def _widget(net, digits, explainers=None, **kw):
    x, y = digits
    if explainers is None:
        explainers = {
            "Grad-CAM": GradCAM(net, "2"),
            "occlusion": Occlusion(net, window=2, strides=2),
            "saliency": Saliency(net),
        }
    kw = {"runs": RUNS, "sanity_stages": STAGES, "steps": STEPS, **kw}
    return ExplainerComparison(explainers, x, labels=y, **kw)


@pytest.fixture(scope="module")
def compared(net, digits):
    w = _widget(net, digits)
    assert w.wait(120) is w  # wait() returns the widget
    yield w
    w.close()


def test_scores_are_faithfulness_functions_called_directly(compared, net, digits):
    w = compared
    x, y = digits
    assert w.error == "" and w.progress == -1.0
    assert [c["status"] for c in w.columns] == ["done"] * 3
    assert w.values.shape == (3, 3, 8, 8) and w.images.shape == (3, 8, 8, 1)
    predicted = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
    outputs = predicted[:, None]
    rows = {r["name"]: r for r in w.scores}
    assert list(rows) == ["Grad-CAM", "occlusion", "saliency"]
    for e_idx, (name, explainer) in enumerate(w._explainers.items()):
        e = explainer(x, outputs, labels=y)
        np.testing.assert_array_equal(e.output_indices, outputs)
        np.testing.assert_allclose(w.values[e_idx], e.values[..., 0].sum(axis=3), rtol=1e-6)
        row = rows[name]
        d = deletion_curve(e, net, "blur(8,8)", steps=STEPS).mean_area
        i = insertion_curve(e, net, "blur(8,8)", steps=STEPS).mean_area
        mu = mufidelity(e, net, runs=RUNS, seed=0).mean
        check = randomisation_check(explainer, x, outputs, stages=STAGES, seed=0)
        assert row["deletion"] == pytest.approx(d, rel=1e-6)
        assert row["insertion"] == pytest.approx(i, rel=1e-6)
        assert row["mufidelity"] == pytest.approx(mu, rel=1e-6)
        assert row["sparseness"] == pytest.approx(float(sparseness(e).mean()), rel=1e-6)
        assert row["sanity"] is check.passed
        assert row["sanity_similarity"] == pytest.approx(
            float(np.nanmean(check.similarity[-1])), rel=1e-6, abs=1e-9
        )
    # the masked overlay keeps the top-attributed pixels, in deletion order
    w.keep_fraction = 0.25
    assert w.keep.shape == (3, 3, 8, 8) and (w.keep.sum(axis=(2, 3)) == 16).all()
    flat = w.values[0, 0].reshape(-1)
    top = np.argsort(-flat, kind="stable")[:16]
    assert set(np.flatnonzero(w.keep[0, 0].reshape(-1))) == set(top.tolist())
    # colour scales: one per column, or one per cell
    np.testing.assert_allclose(w.scales[:, 0], np.abs(w.values).max(axis=(1, 2, 3)), rtol=1e-6)
    w.scale_mode = "cell"
    np.testing.assert_allclose(w.scales, np.abs(w.values).max(axis=(2, 3)), rtol=1e-6)
    w.scale_mode = "column"


def test_a_clicked_score_sends_its_curves(compared):
    w = compared
    w.curve = {"explainer": "occlusion", "metric": "deletion"}
    curve = w.results["occlusion"].deletion
    np.testing.assert_allclose(w.curve_x, curve.fractions, rtol=1e-6)
    np.testing.assert_allclose(w.curve_y[1:], curve.scores[:, 0], rtol=1e-6)
    np.testing.assert_allclose(w.curve_y[0], curve.scores[:, 0].mean(axis=0), rtol=1e-6)
    assert w.curve_info["area"] == pytest.approx(curve.mean_area)
    w.curve = {"explainer": "Grad-CAM", "metric": "sanity"}
    check = w.results["Grad-CAM"].sanity
    np.testing.assert_array_equal(w.curve_x, check.randomised)
    np.testing.assert_allclose(w.curve_y[1:], check.similarity[:, :, 0].T, rtol=1e-6)
    w.curve = {"explainer": "saliency", "metric": "mufidelity"}
    mu = w.results["saliency"].mufidelity
    np.testing.assert_allclose(w.curve_x, mu.attribution_sums[:, 0].reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(w.curve_y[0], mu.output_drops[:, 0].reshape(-1), rtol=1e-5)
    assert w.curve_info["kind"] == "scatter" and w.curve_info["area"] == pytest.approx(mu.mean)
    w.curve = {"explainer": "Grad-CAM", "metric": "speed"}
    assert "metric" in w.error and "deletion" in w.error and w.curve_y is None
    w.curve = {}
    assert w.error == ""


def test_bad_input_names_what_was_expected(net, digits):
    x, y = digits
    with pytest.raises(TypeError, match="dict name -> explainer or a list"):
        ExplainerComparison(42, x)
    with pytest.raises(ValueError, match="at least one explainer"):
        ExplainerComparison({}, x)
    with pytest.raises(TypeError, match=r"explainers\['a'\]: expected an xaiwidgets explainer"):
        ExplainerComparison({"a": 3}, x)
    with pytest.raises(ValueError, match=r"outputs: expected \(3,\) class indices"):
        ExplainerComparison([Saliency(net)], x, outputs=[1, 2])
    with pytest.raises(ValueError, match=r"outputs: class indices must be in 0..9"):
        ExplainerComparison([Saliency(net)], x, outputs=[1, 2, 10])
    with pytest.raises(ValueError, match=r"subset_size: expected 1..64, got 65"):
        ExplainerComparison([Saliency(net)], x, subset_size=65)
    with pytest.raises(ValueError, match=r"class_names: expected 10 names"):
        ExplainerComparison([Saliency(net)], x, class_names=["a", "b"])
    with pytest.raises(TypeError, match="Did you mean 'overlay'"):
        ExplainerComparison([Saliency(net)], x, overlays="mask")


def test_list_of_explainers_is_named_by_class(net, digits):
    w = ExplainerComparison([Saliency(net), Saliency(net)], digits[0], sanity_stages=0, runs=4)
    try:
        assert w.names == ["Saliency", "Saliency 2"] and w.shown == w.names
        w.wait(60)
        assert [r["sanity"] for r in w.scores] == [None, None]
        assert "not run" in w.scores[0]["sanity_note"]
    finally:
        w.close()


def test_errors_show_in_place_and_the_widget_stays_usable(net, digits):
    explainers = {"failing": Failing(net), "saliency": Saliency(net)}
    w = _widget(net, digits, explainers, sanity_stages=0).wait(60)
    try:
        status = {c["name"]: c for c in w.columns}
        assert status["failing"]["status"] == "error"
        assert "always fails" in status["failing"]["message"]
        assert status["saliency"]["status"] == "done"
        assert "failing: ValueError: this explainer always fails" in w.error
        assert [r["name"] for r in w.scores] == ["saliency"]
        assert np.isnan(w.values[0]).all() and np.isfinite(w.values[1]).all()
        # a bad setting from the widget: named, nothing runs, the drawing stays
        w.shown = ["saliency", "nope"]
        assert "unknown explainer 'nope'" in w.error and "'saliency'" in w.error
        w.shown = ["saliency", "saliency"]
        assert "shown: expected each explainer once" in w.error
        w.overlay = "sepia"
        assert "overlay: expected one of" in w.error
        w.overlay = "blend"
        w.shown = ["saliency"]
        w.wait(60)
        assert w.error == "" and [c["status"] for c in w.columns] == ["done"]
        w.masker = "gaussian(3)"
        assert "masker" in w.error.lower()
        w.masker = "constant(0)"
        w.wait(60)
        assert w.error == "" and w.results["saliency"].deletion.masker == "constant(0)"
    finally:
        w.close()


def test_a_newer_request_supersedes_the_older(net, digits):
    Slow.started = 0
    explainers = {"slow": Slow(net), "saliency": Saliency(net)}
    w = _widget(net, digits, explainers, shown=["slow"], sanity_stages=0)
    try:
        deadline = time.time() + 10
        while Slow.started == 0 and time.time() < deadline:
            time.sleep(0.01)
        assert w.columns[0]["status"] == "running" and w.progress >= 0
        w.overlay = "mask"  # a new look while it runs: drawn again, still marked as running
        assert w.columns[0]["status"] == "running" and w.error == ""
        t0 = time.perf_counter()
        w.shown = ["saliency"]  # supersedes the slow run
        w.wait(60)
        assert time.perf_counter() - t0 < 1.5  # the slow one stopped within a check, not 2 s
        assert [c["name"] for c in w.columns] == ["saliency"] and w.error == ""
        assert list(w.results) == ["saliency"]
        assert not any(k[0] == "slow" for k, _ in w._cache.items())  # cancelled: never kept
        # back to the slow one: it runs again (nothing stale was kept), then both are cached
        w.shown = ["slow", "saliency"]
        assert [c["status"] for c in w.columns] == ["running", "done"]
        w.wait(60)
        assert [c["status"] for c in w.columns] == ["done", "done"]
        w.shown = ["saliency", "slow"]  # both cached: drawn at once, no run
        assert [c["status"] for c in w.columns] == ["done", "done"] and w.progress == -1.0
        w.shown = []  # nothing shown: the images alone
        assert w.columns == [] and w.values is None and w.scores == [] and w.error == ""
    finally:
        w.close()
