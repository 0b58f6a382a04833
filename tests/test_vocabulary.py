"""One vocabulary (docs/architecture.md): no public callable takes an old name, and every old
name keeps working one release with a DeprecationWarning that names the new one."""

from __future__ import annotations

import contextlib
import inspect
import warnings

import numpy as np
import pytest

import xaiwidgets
from xaiwidgets import CEMExplainer, InfluenceExplainer, influence_maps, performance_maps
from xaiwidgets._result import Result
from xaiwidgets._show import to_explanation
from xaiwidgets.widgets import CEMWidget, InfluenceGrid, ShapleyExplorer

#: old spelling -> the name every public callable uses now
OLD_NAMES = {
    "max_iter": "max_iterations",
    "y_test": "y_true",
    "scores": "score",
    "target": "outputs",
    "cell_width": "cell_size",
    "scale": "scale_mode",
    "invert": "invert_image",
}

RNG = np.random.default_rng(0)
X = RNG.random((12, 4, 4, 1), dtype=np.float32)
W = RNG.normal(size=(16, 3)).astype(np.float32)


def _model():
    return xaiwidgets.wrap(
        lambda z: z.reshape(len(z), -1) @ W, grad_fn=lambda z, cot: (cot @ W.T).reshape(z.shape)
    )


def _public_callables():
    import xaiwidgets.widgets

    names = [n for n in xaiwidgets.__all__ if not n.startswith("_")]
    objs = [getattr(xaiwidgets, n) for n in names]
    objs += [getattr(xaiwidgets.widgets, n) for n in xaiwidgets.widgets.__all__]
    for obj in objs:
        if inspect.isclass(obj):
            if not issubclass(obj, Result):  # a result's fields are data (its ``scores``)
                yield f"{obj.__name__}()", obj.__init__
            for attr, member in vars(obj).items():
                fn = member.__func__ if isinstance(member, classmethod) else member
                if not attr.startswith("_") and inspect.isfunction(fn):
                    yield f"{obj.__name__}.{attr}", fn
        elif callable(obj):
            yield obj.__name__, obj


def test_no_public_callable_takes_an_old_name():
    found = []
    for where, fn in _public_callables():
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        found += [f"{where}: {p}" for p in params if p in OLD_NAMES]
    assert not found, found


@contextlib.contextmanager
def _warns(new):
    """The DeprecationWarning naming ``new``, pointing at the line here that used the old name
    (not at a line inside the package, where pyproject would make it an error)."""
    with pytest.warns(DeprecationWarning, match=rf"use {new}") as record:
        yield record
    hits = [w for w in record if f"use {new}" in str(w.message)]
    assert all(w.filename == __file__ for w in hits), [(w.filename, w.lineno) for w in hits]


def test_influence_max_iter_and_y_test_still_work():
    probs = _model().probabilities(X)
    want = influence_maps(X, probs, max_iterations=3)
    with _warns("max_iterations="):
        got = influence_maps(X, probs, max_iter=3)
    np.testing.assert_array_equal(got.maps, want.maps)
    assert got.params["max_iterations"] == 3

    def accuracy(y_true, y_pred, sample_weight=None):
        return float(np.average(y_true == y_pred, weights=sample_weight))

    y, pred = RNG.integers(0, 3, 12), probs.argmax(1)
    want = performance_maps(X, y, pred, accuracy)
    with _warns("y_true="):
        got = performance_maps(X, y_test=y, y_pred=pred, metric=accuracy)
    np.testing.assert_array_equal(got.maps, want.maps)
    with _warns("max_iterations="):
        explainer = InfluenceExplainer(max_iter=4)
    assert explainer.max_iterations == 4
    with _warns("max_iterations"):
        assert explainer.max_iter == 4
    with pytest.raises(TypeError, match="both max_iter= .deprecated. and max_iterations="):
        influence_maps(X, probs, max_iter=3, max_iterations=3)


def test_influence_probabilities_as_second_positional_still_work():
    """``explainer(images, probabilities)`` (before the common convention made the second
    positional ``outputs``) warns and means ``probabilities=``; class lists are not taken for
    predictions."""
    probs = _model().probabilities(X)
    explainer = InfluenceExplainer(class_names=list("abc"))
    want = explainer(X, probabilities=probs)
    with _warns("probabilities="):
        got = explainer(X, probs)  # (n, k) floats, no model
    np.testing.assert_array_equal(got.maps, want.maps)
    labels = probs.argmax(1)
    with _warns("probabilities="):
        got = explainer(X, labels)  # (n,) predicted labels, no model
    np.testing.assert_array_equal(got.maps, explainer(X, probabilities=labels).maps)
    with_model = InfluenceExplainer(_model())
    with _warns("probabilities="):
        got = with_model(X, probs.astype(np.float32))  # floats are never class indices
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen = with_model(X, [2, 0])  # a class list with a model: the new meaning
        top = with_model(X, top_k=1)
    assert chosen.params["outputs"] == [2, 0] and len(top.maps) == 1


def test_cem_scores_and_target_still_work():
    with _warns("score="):
        cem = CEMExplainer(_model(), scores="output", feature_range=(0, 1))
    assert cem.score == "output" and cem.params()["score"] == "output"
    with _warns("'probability'"):
        assert CEMExplainer(_model(), score="probabilities").score == "probability"
    with pytest.raises(ValueError, match="score: expected 'probability' or 'output'"):
        CEMExplainer(_model(), score="logits")
    with _warns("outputs="), pytest.raises(ValueError, match="outputs: expected classes"):
        cem(X[:1], target=[12])
    with _warns("outputs="), pytest.raises(ValueError, match="outputs: expected a class"):
        CEMWidget(_model(), X[0], target=12, layout="hwc")


def test_show_labels_means_output_names_for_one_more_release():
    values = RNG.normal(size=(2, 4, 4, 1, 2))
    want = to_explanation(values, X[:2], output_names=["cat", "dog"])
    with _warns("output_names="):
        got = to_explanation(values, X[:2], labels=["cat", "dog"])
    assert got.output_names == want.output_names == [["cat", "dog"]] * 2
    with _warns("output_names="):
        grid = xaiwidgets.show(values, X[:2], labels=["cat", "dog"])
    assert grid.output_labels == [["cat", "dog"]] * 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
        to_explanation(values, X[:2], nope=1)


def test_plot_scale_and_invert_still_work():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from xaiwidgets.plotting import plot_grid

    e = to_explanation(RNG.normal(size=(2, 4, 4, 1, 2)), X[:2])
    with _warns("scale_mode="):
        fig = plot_grid(e, scale="row", figure=Figure())
    assert "scale of the last row" in " ".join(
        t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))
    )
    with _warns("invert_image="):
        plot_grid(e, invert=True, figure=Figure())
    with _warns("scale_mode="):  # through Explanation.plot: still points here
        e.plot(scale="grid", figure=Figure())
    with pytest.raises(ValueError, match="scale_mode: expected 'grid' or 'row'"):
        plot_grid(e, scale_mode="shared", figure=Figure())


def test_widget_cell_width_and_shared_scale_still_work():
    result = influence_maps(X, _model().probabilities(X))
    with _warns("cell_size="):
        grid = InfluenceGrid.from_result(result, cell_width=90)
    assert grid.cell_size == 90
    with _warns("cell_size"):
        grid.cell_width = 100
    assert grid.cell_size == 100
    with _warns("cell_size="):
        assert InfluenceGrid(maps=np.zeros((1, 2, 2)), cell_width=50).cell_size == 50
    y = RNG.integers(0, 3, 12)
    ex = ShapleyExplorer(_model(), X, labels=y, max_evals=20, top_k=1).wait(10)
    assert ex.scale_mode == "grid"
    with _warns("'grid'"):
        ex.scale_mode = "shared"
    assert ex.scale_mode == "grid"
    ex.close()
