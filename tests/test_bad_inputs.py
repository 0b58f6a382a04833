"""Bad input to public entry points ends in a ValueError / TypeError that says what was
expected, checked before the work starts (issue 12, items 3-8)."""

from __future__ import annotations

import json
import threading
import zipfile

import numpy as np
import pytest

import xaiwidgets
from xaiwidgets import Explanation
from xaiwidgets.datasets import read_idx, write_idx
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


# -- read_idx ---------------------------------------------------------------------------
def _idx(tmp_path, header: bytes, data: bytes = b"", name: str = "f.idx"):
    path = tmp_path / name
    path.write_bytes(header + data)
    return path


@pytest.mark.parametrize(
    "header, data, match",
    [
        # four sizes of 2**16: np.prod wrapped the product to 0 and reshape failed inside numpy
        (bytes([0, 0, 8, 4]) + b"\x00\x01\x00\x00" * 4, b"", r"\(18446744073709551616 bytes"),
        # 2**31 * 2**31 * 2: wrapped to a negative byte count
        (
            bytes([0, 0, 8, 3]) + b"\x80\x00\x00\x00" * 2 + b"\x00\x00\x00\x02",
            b"\0" * 8,
            r"\(9223372036854775808 bytes of uint8\) but the file holds 8 bytes",
        ),
        (bytes([0, 0, 8, 1]) + b"\x00\x00\x00\x0a", b"\0" * 4, "holds 4 bytes"),  # truncated
        (bytes([0, 0, 8, 2]) + b"\x00\x00", b"", "truncated IDX header"),
        (bytes([0, 0, 8, 0]), b"", "0 dimensions"),
        (bytes([0, 0, 0x42, 1]), b"", "unknown IDX type code 0x42"),
    ],
)
def test_read_idx_rejects(tmp_path, header, data, match):
    with pytest.raises(ValueError, match=match):
        read_idx(_idx(tmp_path, header, data))


def test_read_idx_damaged_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    write_idx(path, np.arange(100, dtype=np.uint8).reshape(10, 10))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cannot read the IDX file|holds"):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read the IDX file"):
        read_idx(path)


# -- Explanation.load ---------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, images):
    e = Explanation(values=np.ones((2, 6, 5, 1, 3)), data=images, class_names=["a", "b", "c"])
    return e.save(tmp_path / "e.npz")


def _rewrite(path, drop=(), replace=None):
    """Copy the archive with members dropped or replaced (name -> bytes)."""
    replace = replace or {}
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    for name in drop:
        members.pop(name)
    members.update(replace)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npy_header_claiming(shape, dtype="<f8") -> bytes:
    """A .npy member whose header claims ``shape`` but which holds 8 bytes."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = __import__("io").BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 8


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: _rewrite(p, drop=["meta.npy"]), "missing meta"),
        (lambda p: _rewrite(p, drop=["values.npy"]), "missing values"),
        (
            lambda p: _rewrite(p, replace={"meta.npy": _npy(np.array("{not json"))}),
            "not valid JSON",
        ),
        (lambda p: _rewrite(p, replace={"meta.npy": _npy(np.array("[1]"))}), "expected an object"),
        (
            lambda p: _rewrite(p, replace={"meta.npy": _npy(np.array(json.dumps({"format": 1})))}),
            "lacks class_names, method, params",
        ),
        (lambda p: _rewrite(p, replace={"meta.npy": _npy(np.arange(3))}), "not a JSON string"),
        (lambda p: _rewrite(p, replace={"extra.npy": _npy(np.arange(3))}), "unexpected member"),
        (lambda p: _rewrite(p, replace={"values.npy": b"garbage"}), "not a .npy array"),
        (
            lambda p: _rewrite(p, replace={"values.npy": _npy(np.array(["a", "b"]))}),
            "expected numbers",
        ),
        # 4 TB claimed by the header, 8 bytes in the archive: refused before allocating
        (
            lambda p: _rewrite(p, replace={"values.npy": _npy_header_claiming((2**19, 2**20))}),
            "header says shape",
        ),
        (
            lambda p: _rewrite(p, replace={"values.npy": _npy(np.ones((3, 6, 5, 1, 3)))}),
            "data: expected shape",
        ),
        (lambda p: p.write_bytes(b"plain text, not a zip") and p, "not an .npz"),
    ],
)
def test_explanation_load_rejects_malformed_files(saved, change, match):
    change(saved)
    with pytest.raises(ValueError, match=match):
        Explanation.load(saved)


def test_explanation_load_forged_zip_sizes(saved):
    """A zip directory that claims ~4 GB for a member of a small file (and a .npy header
    that claims 4 TB) is refused before anything of that size is read or allocated."""
    import struct

    _rewrite(saved, replace={"values.npy": _npy_header_claiming((2**19, 2**20))})
    raw = bytearray(saved.read_bytes())
    at = raw.find(b"PK\x01\x02", 0)
    while raw[at + 46 : at + 46 + len(b"values.npy")] != b"values.npy":
        at = raw.find(b"PK\x01\x02", at + 4)
    raw[at + 20 : at + 28] = struct.pack("<II", 0xF0000000, 0xF0000000)
    saved.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="claims 4026531840 bytes in a"):
        Explanation.load(saved)


def test_explanation_load_round_trip_still_works(saved):
    e = Explanation.load(saved)
    assert e.class_names == ["a", "b", "c"] and e.values.shape == (2, 6, 5, 1, 3)


# -- Explanation / show: non-finite and ill-typed content ----------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": np.full((2, 6, 5, 1, 3), np.nan)}, "values: image 0 holds NaN"),
        ({"data": np.full((2, 6, 5, 1), np.inf)}, "data: image 0 holds NaN or infinite"),
        ({"base_values": np.full((2, 3), np.nan)}, "base_values"),
        ({"class_names": "abc"}, "class_names"),
        ({"predictions": np.zeros((2, 3)), "labels": [0, 5]}, r"labels: expected class indices"),
    ],
)
def test_explanation_rejects(images, kwargs, match):
    base = {"values": np.ones((2, 6, 5, 1, 3)), "data": images}
    with pytest.raises((ValueError, TypeError), match=match):
        Explanation(**{**base, **kwargs})


def test_show_rejects_nan_images_and_maps(images):
    values = [np.ones((2, 6, 5, 1)) for _ in range(3)]
    nan_images = images.copy()
    nan_images[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="images: contains NaN"):
        xaiwidgets.show(values, nan_images)
    values[1][1, 2, 2, 0] = np.inf
    with pytest.raises(ValueError, match="values: contains NaN or infinite"):
        xaiwidgets.show(values, images)
    with pytest.raises(ValueError, match="base_values: expected one value"):
        xaiwidgets.show(np.ones((2, 6, 5, 1, 3)), images, base_values=np.zeros(5))
    with pytest.raises(TypeError, match="true_labels"):
        xaiwidgets.show(np.ones((2, 6, 5, 1, 3)), images, true_labels=["cat", "dog"])


@pytest.mark.parametrize("which", ["images", "values"])
def test_attribution_grid_rejects_non_finite_arrays(images, which):
    import traitlets

    data = {"images": images, "values": np.ones((2, 6, 5, 3), np.float32)}
    data[which] = data[which].copy()
    data[which][0, 1, 1, 0] = np.nan
    with pytest.raises(traitlets.TraitError, match=f"{which}: contains NaN or infinite"):
        xaiwidgets.AttributionGrid(**data)


def test_widgets_take_layout_for_ambiguous_images():
    from xaiwidgets.widgets._image_pool import ImagePool

    w = np.random.default_rng(4).normal(size=(27, 3)).astype(np.float32)
    backend = xaiwidgets.wrap(lambda x: np.asarray(x, np.float32).reshape(len(x), -1) @ w)
    nchw = np.random.default_rng(5).random((4, 3, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="layout="):
        ImagePool(backend, nchw)
    pool = ImagePool(backend, nchw, labels=[0, 1, 2, 0], layout="nchw")
    np.testing.assert_array_equal(pool.images, nchw.transpose(0, 2, 3, 1))
    with pytest.raises(ValueError, match=r"labels: expected class indices in 0\.\.2"):
        ImagePool(backend, nchw, labels=[0, 1, 2, 3], layout="nchw")
    with pytest.raises(TypeError, match="candidates: expected an integer"):
        pool.offer("x")


def test_show_true_labels_index_the_models_classes_not_the_names_shown(images):
    e = xaiwidgets._show.to_explanation(
        np.ones((2, 6, 5, 1, 2)), images, output_names=["cat", "dog"], true_labels=[500, 3]
    )
    assert e.labels.tolist() == [500, 3]
