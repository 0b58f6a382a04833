"""The result protocol: every result has params, save/load (npz + JSON), widget(),
_repr_mimebundle_, and is exported from ``xaiwidgets``; each round-trips bit-exact."""

from __future__ import annotations

import zipfile

import ipywidgets
import numpy as np
import pytest

import xaiwidgets
from xaiwidgets import (
    CEMResult,
    Explanation,
    InfluenceResult,
    MetricsReport,
    MuFidelity,
    PerturbationCurve,
    RandomisationCheck,
    deletion_curve,
    influence_maps,
    metrics_report,
    mufidelity,
)
from xaiwidgets._result import Result

RNG = np.random.default_rng(0)
X = RNG.random((6, 5, 4, 1), dtype=np.float32)
W = RNG.normal(size=(20, 3)).astype(np.float32)


def model(images):
    return np.asarray(images, np.float32).reshape(len(images), -1) @ W


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def make_explanation() -> Explanation:
    values = RNG.normal(size=(6, 5, 4, 1, 2)).astype(np.float32)
    return Explanation(
        values=values, data=X, output_indices=np.tile([2, 0], (6, 1)), class_names=list("abc"),
        probabilities=_softmax(model(X)), labels=[0, 1, 2, 0, 1, 2], method="test",
        params={"alpha": 0.5}, standard_errors=np.abs(values) / 10,
    )  # fmt: skip


def make_cem() -> CEMResult:
    n = 3
    found = np.array([True, False, True])
    probs = _softmax(model(X[:n])).astype(np.float32)
    image_proba = np.where(found[:, None], probs[::-1], np.nan).astype(np.float32)
    delta = np.where(found[:, None, None, None], X[:n] * 0.1, 0).astype(np.float32)
    return CEMResult(
        mode="PN", original=X[:n], image=X[:n] + delta, delta=delta, found=found,
        original_class=probs.argmax(1), original_proba=probs,
        image_class=np.where(found, image_proba.argmax(1), -1), image_proba=image_proba,
        c=np.array([1.0, np.nan, 10.0]), distance=np.array([0.2, np.nan, 0.4]),
        loss=RNG.random((n, 7)).astype(np.float32), iterations=7, complete=True,
        class_names=list("abc"), params={"kappa": 0.1, "beta": 0.1},
    )  # fmt: skip


def make_influence() -> InfluenceResult:
    return influence_maps(X, _softmax(model(X)), class_names=list("abc"))


def make_report() -> MetricsReport:
    return metrics_report([0, 1, 2, 0, 1, 2], _softmax(model(X)), class_names=list("abc"))


def make_curve() -> PerturbationCurve:
    e = make_explanation()
    return deletion_curve(e, model, "constant(0)", steps=4)


def make_mufidelity() -> MuFidelity:
    return mufidelity(make_explanation(), model, runs=8, subset_size=5)


def make_randomisation() -> RandomisationCheck:
    # what randomisation_check returns for a 3-layer model (its run needs torch or Keras)
    return RandomisationCheck(
        layers=["conv", "fc1", "fc2"], randomised=np.array([1, 2, 3]),
        similarity=RNG.uniform(-1, 1, (3, 6, 2)), threshold=0.5, passed=True,
    )  # fmt: skip


MAKERS = {
    Explanation: make_explanation,
    CEMResult: make_cem,
    InfluenceResult: make_influence,
    MetricsReport: make_report,
    PerturbationCurve: make_curve,
    MuFidelity: make_mufidelity,
    RandomisationCheck: make_randomisation,
}


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def test_every_result_is_enumerated_here():
    """A new result class must keep the protocol: add it to MAKERS to be checked."""
    import xaiwidgets.explainers  # noqa: F401  (imports every result module)
    import xaiwidgets.faithfulness  # noqa: F401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    assert set(subclasses(Result)) == set(MAKERS)


@pytest.mark.parametrize("cls", list(MAKERS), ids=lambda c: c.__name__)
def test_the_result_keeps_the_protocol(cls):
    assert getattr(xaiwidgets, cls.__name__) is cls and cls.__name__ in xaiwidgets.__all__
    result = MAKERS[cls]()
    assert isinstance(result, cls) and isinstance(result.params, dict)
    for name in ("save", "load", "widget", "_repr_mimebundle_"):
        assert callable(getattr(cls, name)), name
    view = result.widget()
    assert isinstance(view, ipywidgets.Widget)
    bundle = result._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == repr(result)
    view.close()


@pytest.mark.parametrize("cls", list(MAKERS), ids=lambda c: c.__name__)
def test_save_load_round_trip_is_exact(cls, tmp_path):
    result = MAKERS[cls]()
    path = result.save(tmp_path / "result")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as f:  # numbers and one JSON string, no pickle
        assert all(f[k].dtype != object for k in f.files)
    loaded = cls.load(path)
    assert type(loaded) is cls
    assert _same(loaded.params, result.params)
    for name in (*cls._arrays, *cls._meta):
        assert _same(getattr(loaded, name), getattr(result, name)), name


def test_metrics_report_reloads_every_number(tmp_path):
    report = make_report()
    loaded = MetricsReport.load(report.save(tmp_path / "r.npz"))
    assert loaded.to_dict() == report.to_dict() or _same(loaded.to_dict(), report.to_dict())
    labels_only = metrics_report([0, 1, 2, 2], [0, 2, 2, 1], class_names=list("abc"))
    again = MetricsReport.load(labels_only.save(tmp_path / "l.npz"))
    assert again.pr_curves is None and np.array_equal(again.confusion, labels_only.confusion)


def test_a_file_of_another_result_is_refused(tmp_path):
    path = make_cem().save(tmp_path / "cem.npz")
    with pytest.raises(ValueError, match="holds a 'CEMResult' result, expected 'InfluenceResult'"):
        InfluenceResult.load(path)
    with pytest.raises(ValueError, match="not a valid Explanation file"):
        Explanation.load(path)


def _rewrite(path, name, arr):
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members[name] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)


@pytest.mark.parametrize(
    "cls, member, arr, match",
    [
        (CEMResult, "delta.npy", np.zeros((2, 5, 4, 1), np.float32), "delta: expected shape"),
        (InfluenceResult, "base.npy", np.zeros(7), "base: expected shape"),
        (PerturbationCurve, "scores.npy", np.zeros((6, 2, 3)), "scores: expected shape"),
        (MetricsReport, "y_pred.npy", np.array([1, 1, 1, 1, 1, 1]), "argmax of the scores"),
        (CEMResult, "loss.npy", np.array(["a"]), "expected numbers"),
        (MuFidelity, "output_drops.npy", np.zeros((6, 2, 9)), "output_drops: expected shape"),
        (RandomisationCheck, "similarity.npy", np.zeros((2, 6, 2)), "similarity: expected shape"),
    ],
)
def test_inconsistent_files_are_refused_with_what_was_wrong(tmp_path, cls, member, arr, match):
    path = MAKERS[cls]().save(tmp_path / "r.npz")
    _rewrite(path, member, arr)
    with pytest.raises(ValueError, match=match):
        cls.load(path)


def test_a_forged_header_claiming_terabytes_is_refused_before_allocating(tmp_path):
    path = make_curve().save(tmp_path / "c.npz")
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**19, 2**20)}
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    members["scores.npy"] = buf.getvalue() + b"\0" * 8
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    with pytest.raises(ValueError, match="header says shape"):
        PerturbationCurve.load(path)
