"""The explainer base class: output selection and the Explanation it returns."""

import numpy as np
import pytest

from xaiwidgets.explainers import Explainer, select_outputs


def test_select_outputs_forms():
    p = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    np.testing.assert_array_equal(select_outputs(None, p), [[0, 1, 2], [0, 1, 2]])
    np.testing.assert_array_equal(select_outputs("top2", p), [[1, 2], [0, 2]])
    np.testing.assert_array_equal(select_outputs(None, p, top_k=1), [[1], [0]])
    np.testing.assert_array_equal(select_outputs([2, 0], p), [[2, 0], [2, 0]])
    np.testing.assert_array_equal(select_outputs([[1], [2]], p), [[1], [2]])
    with pytest.raises(ValueError, match="top-k must be between 1 and 3"):
        select_outputs("top7", p)
    with pytest.raises(ValueError, match="expected None, 'topK'"):
        select_outputs("best", p)
    with pytest.raises(ValueError, match=r"in 0\.\.2"):
        select_outputs([3], p)
    with pytest.raises(ValueError, match="either outputs"):
        select_outputs([0], p, top_k=1)


class _Occlusion(Explainer):
    """Minimal explainer for the test: f(x) - f(x with one pixel zeroed)."""

    method = "occlusion-test"

    def _explain(self, x, outputs, model_outputs, ctl):
        n, h, w, c = x.shape
        values = np.zeros((n, h, w, c, outputs.shape[1]), np.float32)
        for p in range(h * w):
            xm = x.copy()
            xm[:, p // w, p % w] = 0
            d = model_outputs - self.backend.predict(xm)
            values[:, p // w, p % w, 0] = np.take_along_axis(d, outputs, 1)
            ctl.step(p / (h * w))
        return values, np.zeros(outputs.shape, np.float32)


def test_explainer_returns_explanation_with_probabilities_and_names():
    w = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    expl = _Occlusion(lambda x: x.reshape(len(x), -1) @ w, class_names=["a", "b", "c"])
    seen = []
    e = expl(
        np.random.default_rng(1).random((2, 4, 4)), top_k=2, labels=[0, 2], progress=seen.append
    )
    assert e.shape == (2, 4, 4, 1, 2) and e.method == "occlusion-test"
    np.testing.assert_allclose(e.probabilities.sum(1), 1, rtol=1e-5)
    assert e.output_names[0][0] in ("a", "b", "c") and e.labels.tolist() == [0, 2]
    assert seen[-1] == 1.0 and seen == sorted(seen)


def test_cancel_stops_the_run():
    import threading

    from xaiwidgets._progress import Cancelled

    ev = threading.Event()
    ev.set()
    expl = _Occlusion(lambda x: x.reshape(len(x), -1)[:, :3])
    with pytest.raises(Cancelled):
        expl(np.zeros((1, 4, 4)), cancel=ev)


def test_add_true_outputs_extra_column_only_where_missing():
    from xaiwidgets.explainers.base import add_true_outputs

    p = np.array([[0.1, 0.6, 0.3, 0.0], [0.5, 0.2, 0.25, 0.05], [0.1, 0.2, 0.3, 0.4]])
    idx = select_outputs("top2", p)  # [[1, 2], [0, 2], [3, 2]]
    out = add_true_outputs(idx, p, np.array([2, 3, 3]))
    # row 0 and 2 hold their true class: the extra column is their 3rd most probable class;
    # row 1 misses class 3: it is explained in the extra column
    np.testing.assert_array_equal(out, [[1, 2, 0], [0, 2, 3], [3, 2, 1]])
    # every row keeps decreasing probabilities
    probs = np.take_along_axis(p, out, axis=1)
    assert np.all(np.diff(probs, axis=1) <= 0)
    # nothing missing (or every class explained): unchanged
    np.testing.assert_array_equal(add_true_outputs(idx, p, np.array([1, 0, 3])), idx)
    everything = select_outputs(None, p)
    assert add_true_outputs(everything, p, np.array([0, 1, 2])) is everything
    with pytest.raises(ValueError, match=r"class indices in 0\.\.3, got 0\.\.7"):
        add_true_outputs(idx, p, np.array([0, 7, 1]))


def test_include_true_explains_the_missing_true_class():
    w = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    expl = _Occlusion(lambda x: x.reshape(len(x), -1) @ w, class_names=["a", "b", "c", "d"])
    x = np.random.default_rng(1).random((3, 4, 4))
    probs = expl(x, top_k=1).probabilities
    ranked = np.argsort(-probs, axis=1)
    labels = np.array([ranked[0, 0], ranked[1, 3], ranked[2, 1]])  # right, worst, second
    e = expl(x, top_k=1, labels=labels, include_true=True)
    assert e.n_outputs == 2
    np.testing.assert_array_equal(e.output_indices[:, 0], ranked[:, 0])
    np.testing.assert_array_equal(e.output_indices[1:, 1], labels[1:])  # the true classes
    assert e.output_indices[0, 1] == ranked[0, 1]  # right: its next class fills the column
    # the extra column holds real attributions of that class, not a copy of column 0
    plain = expl(x, outputs=e.output_indices)
    np.testing.assert_allclose(e.values, plain.values, rtol=1e-6)
    # all true classes already explained: no extra column
    assert expl(x, top_k=1, labels=ranked[:, 0], include_true=True).n_outputs == 1
    with pytest.raises(ValueError, match="include_true=True needs labels"):
        expl(x, top_k=1, include_true=True)
