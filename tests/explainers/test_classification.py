"""The metrics report equals sklearn's numbers; cells select the right images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn import metrics as skm

from xaiwidgets.explainers import MetricsReport, metrics_from_model, metrics_report
from xaiwidgets.explainers.classification import check_metric, metric_name, per_sample_scores


@pytest.fixture(scope="module")
def predictions():
    """Digits-like labels with scores that confuse 4 and 9 on purpose."""
    rng = np.random.default_rng(0)
    n, k = 600, 10
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 2.5 * np.eye(k)[y]
    fours = np.flatnonzero(y == 4)[:15]
    logits[fours, 9] += 6.0
    return y, softmax(logits, axis=1)


def test_everything_equals_sklearn(predictions):
    y, probs = predictions
    rep = metrics_report(y, probs, class_names=[f"d{i}" for i in range(10)])
    pred = probs.argmax(axis=1)
    np.testing.assert_array_equal(rep.y_pred, pred)
    cm = skm.confusion_matrix(y, pred)
    np.testing.assert_array_equal(rep.confusion, cm)
    np.testing.assert_allclose(
        rep.confusion_normalized, skm.confusion_matrix(y, pred, normalize="true")
    )
    sk = skm.classification_report(y, pred, output_dict=True, zero_division=0)
    for c, row in enumerate(rep.report):
        assert row["class"] == f"d{c}"
        for key in ("precision", "recall", "f1-score", "support"):
            assert row[key] == pytest.approx(sk[str(c)][key])
    assert rep.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    for avg in ("macro avg", "weighted avg"):
        assert rep.summary[avg]["f1-score"] == pytest.approx(sk[avg]["f1-score"])
    for c in range(10):
        pos = y == c
        for ours, theirs in zip(rep.pr_curves[c], skm.precision_recall_curve(pos, probs[:, c])):
            np.testing.assert_array_equal(ours, theirs)
        for ours, theirs in zip(rep.roc_curves[c], skm.roc_curve(pos, probs[:, c])):
            np.testing.assert_array_equal(ours, theirs)
        assert rep.average_precision[c] == pytest.approx(
            skm.average_precision_score(pos, probs[:, c])
        )
        assert rep.roc_auc[c] == pytest.approx(skm.roc_auc_score(pos, probs[:, c]))
        fpr, tpr, _ = rep.roc_curves[c]
        assert rep.roc_auc[c] == pytest.approx(skm.auc(fpr, tpr))
    assert "d4" in rep.report_text() and rep.report_text() == skm.classification_report(
        y, pred, target_names=[f"d{i}" for i in range(10)], zero_division=0
    )


def test_indices_select_a_confusion_cell(predictions):
    y, probs = predictions
    rep = metrics_report(np.eye(10)[y], probs)  # one-hot y_true as in the seeds
    pred = probs.argmax(axis=1)
    idx = rep.indices(true=4, pred=9)
    np.testing.assert_array_equal(idx, np.flatnonzero((y == 4) & (pred == 9)))
    assert len(idx) == rep.confusion[4, 9] >= 15
    np.testing.assert_array_equal(rep.indices(true="4", pred="9"), idx)
    np.testing.assert_array_equal(rep.indices(pred=9), np.flatnonzero(pred == 9))
    assert len(rep.indices()) == len(y)
    true, pred_c, count = rep.top_confusions(1)[0]
    assert (true, pred_c, count) == (4, 9, rep.confusion[4, 9])
    with pytest.raises(KeyError):
        rep.indices(true="four")
    with pytest.raises(IndexError):
        rep.indices(pred=10)


def test_labels_only_float_labels_and_absent_class():
    y_true = np.array([0.0, 1.0, 1.0, 2.0, 0.0, 1.0])  # torch-style float labels
    y_pred = np.array([0, 1, 2, 2, 0, 0])
    rep = metrics_report(y_true, y_pred, class_names=["a", "b", "c", "d"])
    assert rep.confusion.shape == (4, 4) and rep.probabilities is None
    assert rep.pr_curves is None and rep.roc_auc is None
    np.testing.assert_array_equal(rep.confusion_normalized[3], 0.0)  # class d never occurs
    assert rep.report[3]["support"] == 0
    scores = softmax(np.random.default_rng(1).normal(size=(6, 4)), axis=1)
    rep2 = metrics_report(y_true, scores)
    assert (
        rep2.pr_curves[3] is None
        and np.isnan(rep2.roc_auc[3])
        and np.isnan(rep2.average_precision[3])
    )
    d = rep2.to_dict()
    assert d["confusion"] == rep2.confusion.tolist() and d["pr_curves"][3] is None
    assert isinstance(rep2, MetricsReport) and "accuracy" in repr(rep2)


def test_validation_errors(predictions):
    y, probs = predictions
    with pytest.raises(ValueError, match="600"):
        metrics_report(y[:-1], probs)
    bad = probs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics_report(y, bad)
    with pytest.raises(ValueError, match="0..9"):
        metrics_report(y + 1, probs)
    with pytest.raises(ValueError, match="class_names"):
        metrics_report(y, probs, class_names=["a", "b"])
    with pytest.raises(ValueError, match="y_pred"):
        metrics_report(y, probs[:, :, None])


def test_from_model(predictions):
    rng = np.random.default_rng(2)
    images = rng.random((50, 4, 4)).astype(np.float32)
    weights = rng.normal(size=(16, 3))

    def model(x):
        return x.reshape(len(x), -1) @ weights

    y = rng.integers(0, 3, 50)
    rep = metrics_from_model(model, images, y)
    probs = softmax(images.reshape(50, -1).astype(np.float64) @ weights, axis=1)
    np.testing.assert_array_equal(rep.y_pred, probs.argmax(axis=1))
    np.testing.assert_allclose(rep.roc_auc[0], skm.roc_auc_score(y == 0, probs[:, 0]), rtol=1e-5)


def test_metric_helpers(predictions):
    y, probs = predictions
    assert check_metric(skm.accuracy_score) is skm.accuracy_score
    assert metric_name(skm.log_loss) == "log_loss"
    with pytest.raises(TypeError, match="sample_weight"):
        check_metric(lambda a, b: 0.0)
    s = per_sample_scores(skm.log_loss, np.eye(10)[y], probs)
    w = np.random.default_rng(3).random(len(y))
    assert w @ s / w.sum() == pytest.approx(skm.log_loss(y, probs, sample_weight=w), rel=1e-12)
    s = per_sample_scores(skm.accuracy_score, y, probs.argmax(1))
    assert w @ s / w.sum() == pytest.approx(skm.accuracy_score(y, probs.argmax(1), sample_weight=w))
    assert per_sample_scores(skm.f1_score, y, probs.argmax(1)) is None
