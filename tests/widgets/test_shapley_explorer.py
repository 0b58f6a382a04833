"""ShapleyExplorer on the Python side: background re-runs, cancellation, cache, errors, state.

A softmax regression fitted to scikit-learn's 8x8 digits is the model (a NumPy callable that
counts its calls); every run is a few hundred model evaluations.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from xaiwidgets.datasets import load_sklearn_digits
from xaiwidgets.faithfulness import deletion_curve
from xaiwidgets.widgets._ndarray_trait import array_to_json
from xaiwidgets.widgets.shapley_explorer import ShapleyExplorer

EVALS = 60


class DigitsModel:
    """Linear classifier of 8x8 digits (nearest centred class mean, logits scaled by 12;
    right on most images, wrong on a few); counts calls, can sleep or fail."""

    def __init__(self, x, y):
        flat = x.reshape(len(x), -1)
        mu = flat.mean(axis=0)
        means = np.stack([flat[y == c].mean(axis=0) for c in range(10)]) - mu
        bias = -12.0 * means @ mu - 6.0 * (means**2).sum(axis=1)  # nearest centred class mean
        self.w = np.r_[12.0 * means.T, bias[None]].astype(np.float32)
        self.calls = 0
        self.delay = 0.0
        self.fail_on_value: float | None = None
        self.lock = threading.Lock()

    def __call__(self, imgs):
        with self.lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.fail_on_value is not None and np.any(imgs == self.fail_on_value):
            raise ValueError(f"the model refuses images holding {self.fail_on_value}")
        return imgs.reshape(len(imgs), -1) @ self.w[:-1] + self.w[-1]


@pytest.fixture(scope="module")
def digits():
    x, y = load_sklearn_digits()
    return x[:200], y[:200]


@pytest.fixture
def model(digits):
    return DigitsModel(*digits)


@pytest.fixture
def explorer(model, digits):
    x, y = digits
    ex = ShapleyExplorer(model, x, labels=y, max_evals=EVALS, top_k=3)
    yield ex.wait(10)
    ex.close()


def _drawn_maskers(ex):
    return [p["masker"] for p in ex.panels]


def test_first_result_drawn_with_ranked_label_rows(explorer, digits):
    x, y = digits
    ex = explorer
    assert ex.error == "" and not ex.stale and ex.progress == -1.0
    assert ex.masker == "blur(8,8)" and ex.algorithm == "partition"
    e = ex.explanation
    assert e is not None and e.params["masker"] == "blur(8,8)" and e.params["max_evals"] == EVALS
    assert ex.values.shape == (1, 4, 8, 8, 3)
    np.testing.assert_allclose(ex.values[0], e.values.sum(axis=3), rtol=1e-6)
    # default picks: 2 correct and 2 wrong predictions, and the wrong ones are marked
    info = {d["index"]: d for d in ex.candidate_info}
    rows = ex.row_info
    assert [r["correct"] for r in rows] == [True, True, False, False]
    assert all(info[r["index"]]["correct"] == r["correct"] for r in rows)
    assert all((r["label"] == r["predicted"]) == r["correct"] for r in rows)
    # label rows: top-3 names ranked by probability, first = the predicted class
    probs = ex.output_probabilities[0]
    assert np.all(np.diff(probs, axis=1) <= 0)
    assert [r[0] for r in ex.output_labels[0]] == [r["predicted"] for r in rows]
    assert ex.candidates.shape[1:] == (8, 8, 1) and len(ex.candidates) == len(ex.candidate_info)


def test_toggling_the_masker_reruns_with_different_values(explorer, model):
    ex = explorer
    before, calls = ex.values.copy(), model.calls
    ex.masker = "inpaint_telea"
    ex.wait(10)
    assert model.calls > calls
    assert ex.explanation.params["masker"] == "inpaint_telea"
    assert _drawn_maskers(ex) == ["inpaint_telea"]
    assert ex.values.shape == before.shape and not np.allclose(ex.values, before)
    ex.algorithm = "permutation"
    ex.wait(10)
    assert ex.explanation.method == "permutation" and ex.panels[0]["algorithm"] == "permutation"
    ex.top_k = 2
    ex.wait(10)
    assert ex.values.shape[-1] == 2 and ex.explanation.values.shape[-1] == 2


def test_change_does_not_block_and_shows_progress(explorer, model):
    ex = explorer
    model.delay = 0.02
    seen = []
    ex.observe(lambda ch: seen.append(ch["new"]), "progress")
    t0 = time.perf_counter()
    ex.masker = "inpaint_ns"
    assert time.perf_counter() - t0 < 0.2  # the kernel is free at once
    assert ex.stale and ex.progress >= 0.0 and "inpaint_ns" in ex.message
    ex.wait(20)
    assert not ex.stale and ex.progress == -1.0 and ex.message.startswith("computed in")
    assert any(0.0 < p < 1.0 for p in seen), seen  # intermediate progress reached the widget


def test_rapid_toggles_end_on_the_last_choice(explorer, model):
    ex = explorer
    model.delay = 0.02  # a run takes several tenths of a second: every toggle supersedes one
    drawn = []
    ex.observe(lambda ch: drawn.append([p["masker"] for p in ch["new"]]), "panels")
    sequence = ["inpaint_telea", "inpaint_ns", "constant(0)", "blur(3,3)", "inpaint_ns"]
    for spec in sequence:
        ex.masker = spec
    ex.wait(20)
    assert ex.masker == "inpaint_ns"
    assert ex.explanation.params["masker"] == "inpaint_ns"
    assert drawn == [["inpaint_ns"]]  # nothing superseded was ever drawn
    # superseded runs were cancelled before finishing: only the first and last are cached
    assert {s["masker"] for s in ex.scores} == {"blur(8,8)", "inpaint_ns"}


def test_cache_hit_is_instant_without_model_calls(explorer, model):
    ex = explorer
    first = ex.values.copy()
    ex.masker = "constant(0)"
    ex.wait(10)
    model.delay = 0.5  # a model call now would be plain to see
    calls = model.calls
    t0 = time.perf_counter()
    ex.masker = "blur(8,8)"
    elapsed = time.perf_counter() - t0
    assert model.calls == calls and elapsed < 0.2
    assert not ex.stale and ex.message == "from cache, no model call"
    np.testing.assert_array_equal(ex.values, first)
    assert ex.explanation.params["masker"] == "blur(8,8)"


def test_bad_settings_show_in_error_and_the_widget_stays_usable(explorer, model):
    ex = explorer
    drawn = ex.values.copy()
    for name, bad, word in [
        ("masker", "blur(0,0)", "masker"),
        ("masker", "gaussian", "inpaint_telea"),
        ("max_evals", 2, "max_evals"),
        ("top_k", 11, "top_k"),
        ("indices", [5000], "indices"),
        ("compare", "blurry", "masker"),
    ]:
        good = getattr(ex, name)
        setattr(ex, name, bad)
        assert word in ex.error and ex.error.startswith("ValueError"), (name, ex.error)
        assert ex.stale and ex.progress == -1.0
        np.testing.assert_array_equal(ex.values, drawn)  # the last result stays
        setattr(ex, name, good)
        ex.wait(10)
        assert ex.error == "" and not ex.stale, (name, ex.error)
    # an error raised inside the run (by the model) shows too, and the next setting works
    model.fail_on_value = 0.25
    ex.masker = "constant(0.25)"
    ex.wait(10)
    assert "refuses" in ex.error and ex.progress == -1.0
    model.fail_on_value = None
    ex.masker = "inpaint_telea"
    ex.wait(10)
    assert ex.error == "" and ex.explanation.params["masker"] == "inpaint_telea"


def test_side_by_side_shows_two_maskers_with_deletion_areas(explorer, model):
    ex = explorer
    ex.compare = "inpaint_telea"
    ex.wait(10)
    assert ex.values.shape[0] == 2 and _drawn_maskers(ex) == ["blur(8,8)", "inpaint_telea"]
    assert [e.params["masker"] for e in ex.explanations] == ["blur(8,8)", "inpaint_telea"]
    for e, panel in zip(ex.explanations, ex.panels):
        # the area is the deletion area of the predicted class with the panel's own masker
        ref = deletion_curve(e[:, :1], model, steps=20)
        assert panel["area"] == pytest.approx(ref.mean_area, rel=1e-6)
        assert panel["area_masker"] == e.params["masker"]
        assert len(panel["curve"]) == 21 and panel["curve"][0] > panel["curve"][-1]
    assert set(ex.areas) == {"blur(8,8)", "inpaint_telea"}
    # one deletion masker for all: a comparison on one measuring stick
    ex.deletion_masker = "constant(0)"
    ex.wait(10)
    assert [p["area_masker"] for p in ex.panels] == ["constant(0)", "constant(0)"]
    ref = deletion_curve(ex.explanations[1][:, :1], model, "constant(0)", steps=20)
    assert ex.panels[1]["area"] == pytest.approx(ref.mean_area, rel=1e-6)
    ex.compare = ""
    ex.wait(10)
    assert ex.values.shape[0] == 1


def test_front_end_style_updates_run_once_for_the_final_state(explorer, model):
    ex = explorer
    runs = []
    ex.observe(lambda ch: runs.append(ch["new"]), "message")
    # the widget sends several traits in one message (a click on a row of the score table)
    ex.set_state({"masker": "inpaint_ns", "algorithm": "permutation", "max_evals": 80})
    ex.wait(10)
    assert (ex.masker, ex.algorithm, ex.max_evals) == ("inpaint_ns", "permutation", 80)
    assert sum(m.startswith("computing") for m in runs) == 1
    assert ex.explanation.params["max_evals"] == 80
    # picking images in the widget
    ex.set_state({"indices": [3, 1]})
    ex.wait(10)
    assert [r["index"] for r in ex.row_info] == [3, 1]
    np.testing.assert_array_equal(ex.shown_images, ex.pool[[3, 1]])


def test_constructor_options_and_errors(model, digits):
    x, y = digits
    with pytest.raises(TypeError, match="cell_sise.*cell_size"):
        ShapleyExplorer(model, x, cell_sise=10)
    with pytest.raises(ValueError, match="class_names"):
        ShapleyExplorer(model, x, class_names=["a", "b"])
    names = [f"digit {i}" for i in range(10)]
    ex = ShapleyExplorer(
        model, x, class_names=names, indices=[7, 150], masker="constant(0)",
        compare="blur(2,2)", algorithm="permutation", top_k=2, candidates=3,
    )  # fmt: skip
    try:
        assert ex.max_evals == 1600  # the permutation default
        ex.max_evals = EVALS
        ex.wait(10)
        assert ex.error == ""
        assert [r["index"] for r in ex.row_info] == [7, 150]
        assert all(r["correct"] is None and r["label"] is None for r in ex.row_info)
        assert ex.output_labels[0][0][0].startswith("digit ")
        offered = [d["index"] for d in ex.candidate_info]
        assert {7, 150} <= set(offered) and len(offered) == 2 * 3 + 2
        assert "permutation" in repr(ex) and "compare='blur(2,2)'" in repr(ex)
    finally:
        ex.close()


def test_state_is_binary_and_embeddable(explorer):
    from ipywidgets.embed import embed_data

    ex = explorer
    state = ex.get_state()
    assert isinstance(state["values"]["view"], memoryview)
    assert state["values"]["shape"] == list(ex.values.shape)
    assert array_to_json(ex.shown_images)["dtype"] == "float32"
    data = embed_data(views=[ex])
    models = data["manager_state"]["state"]
    mine = models[ex.model_id]  # other tests' widgets may be alive in the same process
    assert mine["state"]["masker"] == "blur(8,8)" and mine["state"]["panels"]
    assert mine["buffers"], "arrays travel as binary buffers"


def test_a_smaller_top_k_is_cut_from_the_cached_result_without_model_calls(explorer, model):
    ex = explorer  # computed at top_k=3
    full = ex.explanation
    calls = model.calls
    ex.top_k = 2
    assert not ex.stale and model.calls == calls  # drawn at once, no run
    assert ex.message == "top-2 cut from the computed top-3, no model call"
    e = ex.explanation
    assert e.n_outputs == 2 and e.params["top_k"] == 2 and e.params["computed_top_k"] == 3
    np.testing.assert_array_equal(e.values, full.values[..., :2])
    np.testing.assert_array_equal(e.output_indices, full.output_indices[:, :2])
    assert ex.values.shape[-1] == 2 and len(ex.output_labels[0][0]) == 2
    assert ex.panels[0]["area"] == pytest.approx(ex.deletion_curves[0].mean_area)
    ex.top_k = 1
    assert model.calls == calls and ex.explanation.params["computed_top_k"] == 3
    # a larger top-k than any computed one runs
    ex.top_k = 4
    ex.wait(10)
    assert model.calls > calls and ex.explanation.n_outputs == 4
    assert "computed_top_k" not in ex.explanation.params


def test_the_same_masker_twice_is_computed_once_and_said(explorer, model):
    ex = explorer
    calls = model.calls
    ex.compare = "blur(8,8)"  # masker A is blur(8,8) too
    ex.wait(10)
    assert model.calls == calls  # the drawn panel is masker A's: nothing new to compute
    assert ex.values.shape[0] == 1 and _drawn_maskers(ex) == ["blur(8,8)"]
    assert "masker B is the same as masker A (blur(8,8)): shown once" in ex.message
    ex.compare = "constant(0)"
    ex.wait(10)
    assert _drawn_maskers(ex) == ["blur(8,8)", "constant(0)"] and "same" not in ex.message


def test_the_picker_pages_through_the_pool(model, digits):
    x, y = digits
    ex = ShapleyExplorer(model, x, labels=y, max_evals=EVALS, top_k=1, candidates=4)
    try:
        ex.wait(10)
        assert ex.pool_size == 200 and ex.page == 0 and ex.has_next_page
        pred = model(x).argmax(1)
        right, wrong = np.flatnonzero(pred == y), np.flatnonzero(pred != y)
        first = [d["index"] for d in ex.candidate_info]
        assert set(first) == set(right[:4]) | set(wrong[:4])
        calls = model.calls
        ex.page = 1  # the next 4 correct and 4 wrong; the explained images stay offered
        offered = {d["index"] for d in ex.candidate_info}
        assert offered == set(right[4:8]) | set(wrong[4:8]) | set(ex.indices)
        assert all(d["correct"] == (d["index"] in set(right)) for d in ex.candidate_info)
        assert not ex.stale and model.calls == calls  # paging explains nothing
        last = (len(right) - 1) // 4
        ex.page = last
        assert not ex.has_next_page
        ex.page = last + 5  # past the end: the last page
        assert ex.page == last
        # an image far down the pool, by its index (the widget's "image #" field)
        ex.indices = [*ex.indices, 187]
        ex.wait(10)
        assert 187 in {d["index"] for d in ex.candidate_info}
        assert [r["index"] for r in ex.row_info][-1] == 187
    finally:
        ex.close()
