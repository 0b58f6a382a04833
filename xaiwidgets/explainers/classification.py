"""Classification metrics of a test set, built on :mod:`sklearn.metrics`.

:func:`metrics_report` gathers what a user reads before choosing what to explain: the
confusion matrix (counts, and row-normalised: the share of each true class predicted as each
class), the classification report (precision, recall, F1, support per class, plus accuracy and
macro/weighted averages), and, when scores are given, the one-vs-rest precision-recall and ROC
curves of every class with their average precision and ROC AUC. Every number is sklearn's.
:meth:`MetricsReport.indices` selects the images of one confusion cell, e.g. the 4s predicted
as 9, to hand to an attribution explainer.

The module also holds the helpers that performance maps use to call a metric with
``sample_weight`` (:func:`check_metric`, :func:`per_sample_scores`). sklearn is imported
lazily, when a report is computed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._arrays import as_images, as_labels, check_class_names, to_numpy
from .._result import Result

Curve = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(eq=False)
class MetricsReport(Result):
    """Metrics of ``n`` predictions over ``k`` classes (rows of matrices: true class).

    Attributes
    ----------
    y_true, y_pred : (n,) int64 — true and predicted labels (``y_pred`` is the argmax of the
        scores when scores were given).
    probabilities : (n, k) float64 scores, or ``None`` when only labels were given.
    class_names : list of k str.
    confusion : (k, k) int64 — ``confusion[i, j]`` images of true class ``i`` predicted ``j``.
    confusion_normalized : (k, k) float64 — rows divided by their sum (0 for an absent class).
    report : list of k dicts ``{"class", "precision", "recall", "f1-score", "support"}``.
    summary : dict — ``"accuracy"`` (float), ``"macro avg"`` and ``"weighted avg"`` (dicts
        like the report rows).
    pr_curves : list of k ``(precision, recall, thresholds)`` (sklearn's
        ``precision_recall_curve``, one-vs-rest) or ``None`` per class without both a positive
        and a negative image; ``None`` altogether without scores. Same for ``roc_curves``
        ``(fpr, tpr, thresholds)``.
    average_precision, roc_auc : (k,) float64 (NaN where undefined), or ``None`` without scores.

    Keeps the result protocol (:class:`~xaiwidgets._result.Result`): ``params``,
    ``save``/``load`` (the labels and scores; the rest is computed again by sklearn on
    loading), ``widget()`` (a :class:`~xaiwidgets.widgets.MetricsView`),
    ``_repr_mimebundle_``.
    """

    _arrays: ClassVar[tuple[str, ...]] = ("y_true", "y_pred", "probabilities")
    _required: ClassVar[tuple[str, ...]] = ("y_true", "y_pred")
    _meta: ClassVar[tuple[str, ...]] = ("class_names",)

    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray | None
    class_names: list[str]
    confusion: np.ndarray
    confusion_normalized: np.ndarray
    report: list[dict[str, Any]]
    summary: dict[str, Any]
    pr_curves: list[Curve | None] | None
    roc_curves: list[Curve | None] | None
    average_precision: np.ndarray | None
    roc_auc: np.ndarray | None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def params(self) -> dict[str, Any]:
        """What the report was computed from: ``n_samples``, ``n_classes`` and whether the
        predictions were scores (``from_scores``: curves and AUCs) or labels."""
        return {
            "n_samples": len(self.y_true),
            "n_classes": self.n_classes,
            "from_scores": self.probabilities is not None,
        }

    @classmethod
    def _from_saved(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MetricsReport:
        scores = arrays.get("probabilities")
        report = metrics_report(
            arrays["y_true"], arrays["y_pred"] if scores is None else scores, meta["class_names"]
        )
        if not np.array_equal(report.y_pred, arrays["y_pred"]):
            raise ValueError("y_pred: the predicted labels are not the argmax of the scores")
        return report

    @property
    def accuracy(self) -> float:
        return float(self.summary["accuracy"])

    def class_index(self, key: int | str) -> int:
        """Index of a class given by index or by name (a name is looked up first)."""
        if isinstance(key, str):
            if key in self.class_names:
                return self.class_names.index(key)
            raise KeyError(f"unknown class {key!r}; classes are {self.class_names}")
        k = int(key)
        if not 0 <= k < self.n_classes:
            raise IndexError(f"class index {k} out of range for {self.n_classes} classes")
        return k

    def indices(self, true: int | str | None = None, pred: int | str | None = None) -> np.ndarray:
        """Indices (sorted, int64) of the images of true class ``true`` predicted as ``pred``
        (either may be ``None`` for any): ``indices(true=4, pred=9)`` are the 4s taken for 9s,
        the confusion cell ``confusion[4, 9]``."""
        mask = np.ones(len(self.y_true), dtype=bool)
        if true is not None:
            mask &= self.y_true == self.class_index(true)
        if pred is not None:
            mask &= self.y_pred == self.class_index(pred)
        return np.flatnonzero(mask).astype(np.int64)

    def top_confusions(self, n: int = 5) -> list[tuple[int, int, int]]:
        """The ``n`` largest off-diagonal cells as ``(true, pred, count)``, largest first
        (ties in row-major order); cells with count 0 are left out."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:n]
        cells = [
            (int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))
        ]
        return [c for c in cells if c[2] > 0]

    def report_text(self, digits: int = 2) -> str:
        """sklearn's ``classification_report`` as text."""
        from sklearn.metrics import classification_report

        return classification_report(
            self.y_true,
            self.y_pred,
            labels=np.arange(self.n_classes),
            target_names=self.class_names,
            digits=digits,
            zero_division=0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-ready Python (lists, floats; NaN stays NaN)."""

        def curves(cs: list[Curve | None] | None) -> list[Any] | None:
            return (
                None if cs is None else [None if c is None else [a.tolist() for a in c] for c in cs]
            )

        return {
            "class_names": list(self.class_names),
            "confusion": self.confusion.tolist(),
            "confusion_normalized": self.confusion_normalized.tolist(),
            "report": self.report,
            "summary": self.summary,
            "pr_curves": curves(self.pr_curves),
            "roc_curves": curves(self.roc_curves),
            "average_precision": None
            if self.average_precision is None
            else self.average_precision.tolist(),
            "roc_auc": None if self.roc_auc is None else self.roc_auc.tolist(),
        }

    def __repr__(self) -> str:
        return (
            f"MetricsReport(n={len(self.y_true)}, classes={self.n_classes}, "
            f"accuracy={self.accuracy:.4f}, scores={self.probabilities is not None})"
        )


def _row(name: str, precision: float, recall: float, f1: float, support: int) -> dict[str, Any]:
    return {
        "class": name,
        "precision": float(precision),
        "recall": float(recall),
        "f1-score": float(f1),
        "support": int(support),
    }


def metrics_report(y_true: Any, y_pred: Any, class_names: Any = None) -> MetricsReport:
    """Confusion matrix, classification report and per-class PR/ROC curves.

    Parameters
    ----------
    y_true : (n,) labels or (n, k) one-hot rows (NumPy, torch, ...; whole-number floats ok).
    y_pred : (n, k) predicted probabilities/scores (curves and AUCs are computed), or (n,)
        predicted labels (then no curves).
    class_names : k names (default ``"0"``, ``"1"``...); also fixes ``k`` when only labels are
        given (else ``k = max label + 1``).

    Returns
    -------
    :class:`MetricsReport`.
    """
    from sklearn import metrics as skm

    pred = to_numpy(y_pred)
    if pred.ndim >= 1 and pred.shape[0] == 0:
        raise ValueError("y_pred: expected at least one prediction, got none")
    if np.iscomplexobj(pred):
        raise TypeError(f"y_pred: expected real scores or labels, got dtype {pred.dtype}")
    scores = None
    if pred.ndim == 2:
        if pred.shape[1] == 0:
            raise ValueError("y_pred: expected (n, k) scores with at least one class, got k = 0")
        scores = np.asarray(pred, dtype=np.float64)
        if not np.isfinite(scores).all():
            raise ValueError("y_pred: contains NaN or infinite values")
    elif pred.ndim != 1:
        raise ValueError(f"y_pred: expected (n, k) scores or (n,) labels, got shape {pred.shape}")
    labels_pred = as_labels(pred, name="y_pred")
    n = len(labels_pred)
    labels_true = as_labels(y_true, n=n, name="y_true")
    names = check_class_names(class_names)
    if scores is not None:
        k = scores.shape[1]
    elif names is not None:
        k = len(names)
    else:
        k = int(max(labels_true.max(), labels_pred.max())) + 1
    if names is None:
        names = [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names: expected {k} names (one per class), got {len(names)}")
    for nm, lab in (("y_true", labels_true), ("y_pred", labels_pred)):
        if lab.min() < 0 or lab.max() >= k:
            raise ValueError(f"{nm}: labels must be in 0..{k - 1}, got {lab.min()}..{lab.max()}")

    classes = np.arange(k)
    cm = skm.confusion_matrix(labels_true, labels_pred, labels=classes)
    rows = cm.sum(axis=1, keepdims=True)
    cm_norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    # by class position, never by name: names may repeat or be "accuracy" / "macro avg"
    # (the numbers are those of sklearn's classification_report)
    prf = skm.precision_recall_fscore_support(
        labels_true, labels_pred, labels=classes, average=None, zero_division=0
    )
    report = [_row(nm, *(col[c] for col in prf)) for c, nm in enumerate(names)]
    summary: dict[str, Any] = {"accuracy": float(skm.accuracy_score(labels_true, labels_pred))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            labels_true, labels_pred, labels=classes, average=avg, zero_division=0
        )
        summary[f"{avg} avg"] = _row(f"{avg} avg", p, r, f, n)

    pr = roc = ap = auc = None
    if scores is not None:
        pr, roc = [], []
        ap, auc = np.full(k, np.nan), np.full(k, np.nan)
        for c in range(k):
            positive = labels_true == c
            if positive.all() or not positive.any():
                pr.append(None)
                roc.append(None)
                continue
            pr.append(skm.precision_recall_curve(positive, scores[:, c]))
            roc.append(skm.roc_curve(positive, scores[:, c]))
            ap[c] = skm.average_precision_score(positive, scores[:, c])
            auc[c] = skm.roc_auc_score(positive, scores[:, c])
    return MetricsReport(
        y_true=labels_true,
        y_pred=labels_pred,
        probabilities=scores,
        class_names=names,
        confusion=cm.astype(np.int64),
        confusion_normalized=cm_norm,
        report=report,
        summary=summary,
        pr_curves=pr,
        roc_curves=roc,
        average_precision=ap,
        roc_auc=auc,
    )


def metrics_from_model(
    model: Any, images: Any, y_true: Any, class_names: Any = None, **backend_kwargs: Any
) -> MetricsReport:
    """:func:`metrics_report` of ``model``'s probabilities on ``images`` (any model
    :func:`~xaiwidgets.backends.wrap` accepts)."""
    from ..backends import wrap

    probs = wrap(model, **backend_kwargs).probabilities(as_images(images))
    return metrics_report(y_true, probs, class_names)


# -- metrics with sample weights (performance maps) ----------------------------------------


def metric_name(metric: Callable) -> str:
    """A readable name for a metric callable (``functools.partial`` unwrapped)."""
    inner = getattr(metric, "func", metric)
    return getattr(inner, "__name__", type(inner).__name__)


def check_metric(metric: Any) -> Callable:
    """Return ``metric`` if it is a callable taking ``sample_weight``, else ``TypeError``."""
    if not callable(metric):
        raise TypeError(
            f"metric: expected a callable metric(y_true, y_pred, sample_weight=...), "
            f"got {type(metric).__name__}"
        )
    try:
        params = inspect.signature(metric).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return metric
    if not any(p.name == "sample_weight" or p.kind is p.VAR_KEYWORD for p in params):
        raise TypeError(
            f"metric: {metric_name(metric)} takes no sample_weight argument; "
            "performance maps reweight the test set, so they need a metric like "
            "sklearn.metrics.accuracy_score or log_loss "
            "(metric(y_true, y_pred, sample_weight=...))"
        )
    return metric


def per_sample_scores(metric: Callable, yt: np.ndarray, yp: np.ndarray) -> np.ndarray | None:
    """Per-sample scores ``s`` with ``metric(yt, yp, sample_weight=w) == w @ s / sum(w)`` for
    sklearn's ``accuracy_score`` and ``log_loss`` (default arguments), else ``None``.

    The identity is checked against the metric itself, unweighted and with random weights;
    any disagreement (another sklearn version, unusual inputs) returns ``None`` and the caller
    falls back to calling the metric for every tilt.
    """
    if getattr(metric, "__module__", "").split(".")[0] != "sklearn":
        return None
    name = getattr(metric, "__name__", "")
    try:
        if name == "accuracy_score":
            if yt.shape != yp.shape:
                return None
            eq = yt == yp
            scores = (eq if eq.ndim == 1 else eq.all(axis=1)).astype(np.float64)
        elif name == "log_loss":
            dtype = yp.dtype if yp.dtype in (np.float32, np.float64) else np.float64
            proba = np.asarray(yp, dtype=dtype)  # sklearn computes in the input's float type
            if proba.ndim != 2:
                return None
            if yt.ndim == 1:
                classes = np.unique(yt)
                if len(classes) != proba.shape[1]:
                    return None
                onehot = (yt[:, None] == classes[None, :]).astype(dtype)
            else:
                onehot = np.asarray(yt, dtype=dtype)
            eps = np.finfo(dtype).eps
            clipped = np.clip(proba, eps, 1 - eps)
            terms = np.where(onehot != 0, onehot * np.log(clipped), np.zeros((), dtype))
            scores = -terms.sum(axis=1).astype(np.float64)
        else:
            return None
        # sklearn's own float32 arithmetic is only float32-accurate: compare at its precision
        rtol = 1e-9 if yp.dtype != np.float32 else 1e-5
        w = np.random.default_rng(0).random(len(scores)) + 0.01
        for weights in (None, w):
            ours = scores.mean() if weights is None else weights @ scores / weights.sum()
            theirs = float(metric(yt, yp, sample_weight=weights))
            if not np.isclose(ours, theirs, rtol=rtol, atol=1e-12):
                return None
    except (TypeError, ValueError):
        return None
    return scores
