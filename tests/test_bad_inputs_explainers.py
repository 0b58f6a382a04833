"""Bad input to the explainers (calls, constructors, influence maps, metrics_report) ends in a
ValueError / TypeError that says what was expected, checked before the work starts (issue 12,
items 3-8). Saved files: ``test_bad_inputs_files.py``; results and views:
``test_bad_inputs_results.py``."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from xaiwidgets.explainers import (
    CEMExplainer,
    GradientExplainer,
    InfluenceExplainer,
    IntegratedGradients,
    PartitionExplainer,
    influence_maps,
    metrics_report,
)
from xaiwidgets.maskers import Masker

K = 3
W = np.random.default_rng(0).normal(size=(6 * 5, K)).astype(np.float32)


class CountingModel:
    """A linear NumPy model (6x5 grey images, 3 logits) that counts the images it sees."""

    def __init__(self):
        self.seen = 0

    def __call__(self, x):
        x = np.asarray(x, np.float32)
        self.seen += len(x)
        return x.reshape(len(x), -1) @ W


def _grad(x, cot):
    x = np.asarray(x, np.float32)
    return x.reshape(len(x), -1) @ W, (np.asarray(cot, np.float32) @ W.T).reshape(x.shape)


@pytest.fixture
def images():
    return np.random.default_rng(1).random((2, 6, 5, 1)).astype(np.float32)


def _partition(model=None, **kw):
    return PartitionExplainer(model or CountingModel(), "constant(0)", max_evals=20, **kw)


# -- explainer calls: every argument is checked before the explainer's own work ----------
@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"top_k": -3}, ValueError, r"top_k: expected an integer >= 1, got -3"),
        ({"top_k": 2.7}, TypeError, r"top_k: expected an integer >= 1, got float 2\.7"),
        ({"top_k": True}, TypeError, r"top_k: expected an integer >= 1, got bool"),
        ({"top_k": "top3"}, TypeError, r"top_k=3 or outputs='top3'"),
        ({"top_k": 0}, ValueError, "top_k"),
        ({"cancel": True}, TypeError, r"cancel: expected None or an event with is_set\(\)"),
        ({"progress": "yes"}, TypeError, "progress: expected None, True"),
        ({"labels": [0, 7]}, ValueError, r"labels: expected class indices in 0\.\.2.*\[7\]"),
        ({"labels": [0, -1]}, ValueError, r"labels: expected class indices in 0\.\.2"),
        ({"layout": "whc"}, ValueError, "layout: expected one of"),
    ],
)
def test_explainer_call_arguments(images, kwargs, err, match):
    model = CountingModel()
    with pytest.raises(err, match=match):
        _partition(model)(images, **kwargs)
    assert model.seen <= len(images)  # at most the one pass that gives the number of classes


@pytest.mark.parametrize(
    "class_names, err, match",
    [
        ("abc", TypeError, r"class_names: expected a sequence of names.*single string 'abc'"),
        (5, TypeError, r"class_names: expected a sequence of names.*int 5"),
        ({"a", "b", "c"}, TypeError, "class_names: expected a sequence"),
        ([], ValueError, "at least one name"),
    ],
)
def test_class_names_type_at_construction(class_names, err, match):
    with pytest.raises(err, match=match):
        _partition(class_names=class_names)


def test_class_names_length_checked_before_the_work(images):
    model = CountingModel()
    with pytest.raises(ValueError, match=r"class_names: expected 3 names .*got 2"):
        _partition(model, class_names=["a", "b"])(images)
    assert model.seen == len(images)  # the one prediction pass, no masked evaluations


def test_cancel_event_and_callable_progress_still_accepted(images):
    seen = []
    e = _partition()(images, cancel=threading.Event(), progress=seen.append, top_k=np.int64(2))
    assert e.values.shape == (2, 6, 5, 1, 2) and seen[-1] == 1.0


def test_explanation_top_k_checks_its_argument(images):
    e = _partition(class_names=["a", "b", "c"])(images)
    for bad, err in ((2.7, TypeError), (True, TypeError), ("2", TypeError), (-1, ValueError)):
        with pytest.raises(err, match="k: expected"):
            e.top_k(bad)
    assert e.top_k(np.int32(2)).n_outputs == 2


# -- constructors ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, err, match",
    [
        (
            lambda: IntegratedGradients(_grad, baseline="black"),
            TypeError,
            "baseline: expected a number",
        ),
        (
            lambda: IntegratedGradients(_grad, baseline=np.nan),
            ValueError,
            "baseline: expected a finite",
        ),
        (
            lambda: IntegratedGradients(_grad, baseline=np.full((6, 5, 1), np.inf)),
            ValueError,
            "baseline: expected finite numbers",
        ),
        (
            lambda: GradientExplainer(_grad, np.zeros((4, 6, 5, 1)), background_size=2.5),
            TypeError,
            r"background_size: expected an integer >= 1, got float 2\.5",
        ),
        (
            lambda: CEMExplainer(_grad, feature_range=(np.nan, 1.0)),
            ValueError,
            "feature_range: expected finite numbers",
        ),
        (
            lambda: CEMExplainer(_grad, no_info_val=np.nan),
            ValueError,
            "no_info_val: expected finite numbers",
        ),
        (lambda: CEMExplainer(_grad, feature_range=("a", 1)), TypeError, "feature_range"),
        (lambda: CEMExplainer(_grad, class_names="abc"), TypeError, "class_names"),
        (
            lambda: InfluenceExplainer(max_iterations=-5),
            ValueError,
            "max_iterations: expected an integer >= 1",
        ),
        (lambda: InfluenceExplainer(tol=np.nan), ValueError, "tol: expected a finite number"),
        (lambda: InfluenceExplainer(tol=0.0), ValueError, r"tol: expected a number in \(0"),
        (lambda: InfluenceExplainer(chunk_size=2.5), TypeError, "chunk_size"),
        (lambda: InfluenceExplainer(class_names=7), TypeError, "class_names"),
        (
            lambda: Masker.parse("blur(3000000000,3)"),
            ValueError,
            r"blur kernel size: expected 1\.\.10000",
        ),
        (lambda: Masker.parse("blur(3,0)"), ValueError, "blur sizes at least 1"),
        (
            lambda: Masker.parse("inpaint_telea").__class__(radius=float("nan")),
            ValueError,
            "radius",
        ),
    ],
)
def test_constructor_checks(build, err, match):
    with pytest.raises(err, match=match):
        build()


def test_influence_functions_check_before_the_work():
    x = np.random.default_rng(2).random((20, 4, 4)).astype(np.float32)
    p = np.full((20, 2), 0.5)
    for kwargs, match in (
        ({"max_iterations": -5}, "max_iterations"),
        ({"tol": np.nan}, "tol"),
        ({"cancel": True}, "cancel"),
        ({"class_names": "ab"}, "class_names"),
        ({"class_names": ["a", "b", "c"]}, r"class_names: expected 2 names"),
    ):
        with pytest.raises((TypeError, ValueError), match=match):
            influence_maps(x, p, **kwargs)


# -- metrics_report ----------------------------------------------------------------------
def _report_rows(y_true, y_pred, k):
    from sklearn.metrics import precision_recall_fscore_support

    return precision_recall_fscore_support(
        y_true, y_pred, labels=np.arange(k), average=None, zero_division=0
    )


@pytest.mark.parametrize(
    "names",
    [["a", "a", "b"], ["macro avg", "accuracy", "weighted avg"], ["x", "y", "macro avg"]],
)
def test_metrics_report_rows_by_position(names):
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, 3, 60))
    rep = metrics_report(y_true, y_pred, class_names=names)
    p, r, f, s = _report_rows(y_true, y_pred, 3)
    for c, row in enumerate(rep.report):
        assert row["class"] == names[c]
        assert (row["precision"], row["recall"], row["f1-score"], row["support"]) == pytest.approx(
            (p[c], r[c], f[c], s[c])
        )
    assert rep.summary["accuracy"] == pytest.approx((y_true == y_pred).mean())
    assert rep.summary["macro avg"]["precision"] == pytest.approx(p.mean())
    assert rep.summary["weighted avg"]["recall"] == pytest.approx(np.average(r, weights=s))
    assert rep.summary["macro avg"]["support"] == 60


@pytest.mark.parametrize(
    "y_true, y_pred, kw, err, match",
    [
        ([], [], {}, ValueError, "at least one prediction"),
        (np.zeros(0), np.zeros((0, 3)), {}, ValueError, "at least one prediction"),
        ([0, 1], np.zeros((2, 0)), {}, ValueError, "at least one class"),
        ([0, 1], [0, 1], {"class_names": "ab"}, TypeError, "class_names"),
        ([0, 1], [0, 1], {"class_names": 5}, TypeError, "class_names"),
    ],
)
def test_metrics_report_rejects(y_true, y_pred, kw, err, match):
    with pytest.raises(err, match=match):
        metrics_report(y_true, y_pred, **kw)
