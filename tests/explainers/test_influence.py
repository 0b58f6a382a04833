"""Influence and performance maps (entropic variable projection) against direct computations."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import accuracy_score, log_loss

from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import (
    InfluenceExplainer,
    InfluenceResult,
    influence_maps,
    performance_maps,
)
from xaiwidgets.explainers._tilt import solve_tilts, tilt_weights

# -- an independent oracle: lambda by bisection, float64, one pixel at a time --------------


def _tilted_mean(x, lam):
    return float(softmax(lam * x) @ x)


def _lambda_by_bisection(x, tau):
    lo, hi = -1.0, 1.0
    while _tilted_mean(x, lo) > tau:
        lo *= 2
    while _tilted_mean(x, hi) < tau:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _tilted_mean(x, mid) < tau:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _direct_targets(x, alpha):
    mean = x.mean()
    q_lo, q_hi = np.quantile(x, [alpha, 1 - alpha])
    return mean - max(mean - q_lo, 0.0), mean + max(q_hi - mean, 0.0)


def _direct_weights(x, tau):
    if tau <= x.min():
        w = (x == x.min()).astype(float)
    elif tau >= x.max():
        w = (x == x.max()).astype(float)
    else:
        w = softmax(_lambda_by_bisection(x, tau) * x)
    return w / w.sum()


def _softmax_rows(z):
    return softmax(z, axis=1)


@pytest.fixture(scope="module")
def continuous():
    rng = np.random.default_rng(0)
    n = 400
    images = rng.gamma(2.0, 0.5, size=(n, 4, 5)).astype(np.float32)
    flat = images.reshape(n, -1).astype(np.float64)
    probs = _softmax_rows(flat[:, :3] @ rng.normal(size=(3, 4)) + rng.normal(size=(n, 4)))
    return images, probs


def test_influence_matches_bisection_within_1e6(continuous):
    images, probs = continuous
    res = influence_maps(images, probs)
    assert isinstance(res, InfluenceResult)
    assert res.maps.shape == (4, 4, 5) and res.plus.shape == (4, 4, 5)
    flat = images.reshape(len(images), -1).astype(np.float64)
    for j in (0, 3, 7, 19):
        x = flat[:, j]
        t_minus, t_plus = _direct_targets(x, 0.05)
        e_plus = _direct_weights(x, t_plus) @ probs
        e_minus = _direct_weights(x, t_minus) @ probs
        r, c = divmod(j, 5)
        np.testing.assert_allclose(res.plus[:, r, c], e_plus, atol=1e-6, rtol=0)
        np.testing.assert_allclose(res.minus[:, r, c], e_minus, atol=1e-6, rtol=0)
        np.testing.assert_allclose(res.maps[:, r, c], e_plus - e_minus, atol=1e-6, rtol=0)
        np.testing.assert_allclose(res.taus[:, r, c], [t_minus, t_plus], rtol=1e-12)
        lam = _lambda_by_bisection(x, t_plus)
        assert res.lambdas[1, r, c] == pytest.approx(lam, rel=1e-6)
    assert res.converged.all()
    np.testing.assert_allclose(res.base, probs.mean(axis=0))
    np.testing.assert_allclose(res.mean_image, images.mean(axis=0)[..., None], rtol=1e-6)


def test_boundary_target_is_the_conditional_mean():
    """A quantile at the pixel's minimum (a mostly-0 pixel): the min-KL law is the uniform one
    on the samples at the minimum (lambda = -inf)."""
    rng = np.random.default_rng(1)
    n = 300
    x = np.where(rng.random(n) < 0.5, 0.0, rng.random(n))  # half exactly 0
    images = np.stack([x, rng.random(n)], axis=1).reshape(n, 1, 2).astype(np.float32)
    probs = _softmax_rows(rng.normal(size=(n, 3)))
    res = influence_maps(images, probs)
    xs = images[:, 0, 0].astype(np.float64)
    assert res.lambdas[0, 0, 0] == -np.inf
    expect = probs[xs == 0].mean(axis=0)
    np.testing.assert_allclose(res.minus[:, 0, 0], expect, atol=1e-12)
    t_plus = _direct_targets(xs, 0.05)[1]
    np.testing.assert_allclose(res.plus[:, 0, 0], _direct_weights(xs, t_plus) @ probs, atol=1e-6)


def test_constant_pixel_gives_zero(continuous):
    images, probs = continuous
    images = images.copy()
    images[:, 2, 2] = 0.7
    res = influence_maps(images, probs)
    np.testing.assert_array_equal(res.maps[:, 2, 2], 0.0)
    np.testing.assert_array_equal(res.lambdas[:, 2, 2], 0.0)
    assert np.abs(res.maps).max() > 0.01  # the other pixels still move


def test_tilting_to_the_mean_gives_lambda_zero():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 500))
    sol = solve_tilts(x, x.mean(axis=1))
    np.testing.assert_array_equal(sol.lambdas, 0.0)
    np.testing.assert_allclose(tilt_weights(x, sol), 1 / 500)


def test_solver_hits_its_targets_and_agrees_with_bisection():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.gamma(0.5, size=(5, 800)), rng.normal(size=(5, 800))])
    for q in (0.01, 0.3, 0.7, 0.99):
        t = np.quantile(x, q, axis=1)
        sol = solve_tilts(x, t)
        assert sol.converged.all() and sol.iterations <= 15
        w = tilt_weights(x, sol)
        np.testing.assert_allclose((w * x).sum(axis=1), t, atol=1e-8)
        for j in (0, 7):
            assert sol.lambdas[j] == pytest.approx(_lambda_by_bisection(x[j], t[j]), rel=1e-6)


def test_class_depending_on_one_pixel_peaks_there():
    rng = np.random.default_rng(4)
    n, h, w = 2000, 6, 6
    images = rng.random((n, h, w)).astype(np.float32)
    hot = [(1, 1), (2, 4), (4, 3)]
    logits = np.stack([6.0 * images[:, r, c] for r, c in hot], axis=1)
    res = influence_maps(images, _softmax_rows(logits), class_names=["a", "b", "c"])
    for k, (r, c) in enumerate(hot):
        m = res.map(k)
        assert np.unravel_index(np.argmax(m), m.shape) == (r, c)
        assert m[r, c] > 3 * np.delete(m.ravel(), r * w + c).max()
    assert res.class_index("b") == 1 and res.map("c").shape == (h, w)
    assert res.limit == pytest.approx(np.abs(res.maps).max())


def _hand_weighted(images, y_true, y_pred_labels, probs, pixel):
    x = images.reshape(len(images), -1)[:, pixel].astype(np.float64)
    out = []
    for tau in _direct_targets(x, 0.05):
        w = _direct_weights(x, tau)
        acc = w @ (y_true == y_pred_labels) / w.sum()
        ll = -(w @ np.log(probs[np.arange(len(x)), y_true])) / w.sum()
        out.append((acc, ll))
    return out  # [(acc-, ll-), (acc+, ll+)]


@pytest.mark.parametrize("fast", [True, False])
def test_performance_matches_hand_weighted_metrics(fast):
    rng = np.random.default_rng(5)
    n = 250
    images = rng.random((n, 3, 3)).astype(np.float32)
    y = rng.integers(0, 3, n)
    probs = _softmax_rows(rng.normal(size=(n, 3)) + 2.0 * np.eye(3)[y] * images[:, :1, 0])
    labels = probs.argmax(axis=1)
    acc = performance_maps(images, y, labels, accuracy_score, fast=fast)
    ll = performance_maps(images, np.eye(3)[y], probs, log_loss, fast=fast)
    assert acc.kind == "performance" and acc.metric == "accuracy_score"
    assert acc.params["per_sample_scores"] is fast
    assert acc.maps.shape == (1, 3, 3) and acc.class_names == ["accuracy_score"]
    assert acc.base[0] == pytest.approx(accuracy_score(y, labels))
    assert ll.base[0] == pytest.approx(log_loss(y, probs))
    for pixel in (0, 4, 8):
        (a_m, l_m), (a_p, l_p) = _hand_weighted(images, y, labels, probs, pixel)
        r, c = divmod(pixel, 3)
        assert acc.minus[0, r, c] == pytest.approx(a_m, abs=1e-6)
        assert acc.plus[0, r, c] == pytest.approx(a_p, abs=1e-6)
        assert acc.maps[0, r, c] == pytest.approx(a_p - a_m, abs=1e-6)
        assert ll.minus[0, r, c] == pytest.approx(l_m, abs=1e-6)
        assert ll.plus[0, r, c] == pytest.approx(l_p, abs=1e-6)


def test_performance_general_metric_and_label_targets():
    rng = np.random.default_rng(6)
    n = 120
    images = rng.random((n, 2, 2)).astype(np.float32)
    y = rng.integers(0, 2, n)
    probs = _softmax_rows(rng.normal(size=(n, 2)))

    def brier(y_true, y_prob, sample_weight=None):
        err = (y_prob[:, 1] - y_true) ** 2
        return float(np.average(err, weights=sample_weight))

    res = performance_maps(images, y, probs, brier)
    assert res.params["per_sample_scores"] is False
    x = images.reshape(n, -1)[:, 3].astype(np.float64)
    w = _direct_weights(x, _direct_targets(x, 0.05)[1])
    assert res.plus[0, 1, 1] == pytest.approx(brier(y, probs, w), abs=1e-6)
    ll_labels = performance_maps(images, y, probs, log_loss)  # labels y_true, probability y_pred
    ll_onehot = performance_maps(images, np.eye(2)[y], probs, log_loss)
    np.testing.assert_allclose(ll_labels.maps, ll_onehot.maps, atol=1e-12)


def test_metric_without_sample_weight_is_a_type_error(continuous):
    images, probs = continuous

    def no_weights(y_true, y_pred):
        return 0.0

    with pytest.raises(TypeError, match="sample_weight"):
        performance_maps(images, probs.argmax(1), probs.argmax(1), no_weights)
    with pytest.raises(TypeError, match="metric"):
        performance_maps(images, probs.argmax(1), probs.argmax(1), "accuracy")
    with pytest.raises(ValueError, match="accuracy_score"):  # probabilities given to accuracy
        performance_maps(images, probs.argmax(1), probs, accuracy_score)


def test_input_validation(continuous):
    images, probs = continuous
    with pytest.raises(ValueError, match="400 rows"):
        influence_maps(images, probs[:-1])
    bad = probs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        influence_maps(images, bad)
    nan_images = images.copy()
    nan_images[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        influence_maps(nan_images, probs)
    with pytest.raises(ValueError, match="alpha"):
        influence_maps(images, probs, alpha=0.5)
    with pytest.raises(ValueError, match="channels"):
        influence_maps(images, probs, channels="sum")
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        influence_maps(images, probs[:, :, None])
    with pytest.raises(ValueError, match="class_names"):
        influence_maps(images, probs, class_names=["a"])
    with pytest.raises(ValueError, match="y_true"):
        performance_maps(images, probs.argmax(1)[:10], probs.argmax(1), accuracy_score)
    with pytest.raises(ValueError, match="model"):
        InfluenceExplainer()(images)
    with pytest.raises(ValueError, match="model"):
        InfluenceExplainer()(images, top_k=2)


def test_rgb_mean_and_separate_channels():
    rng = np.random.default_rng(7)
    n = 300
    images = rng.random((n, 3, 4, 3)).astype(np.float32)
    probs = _softmax_rows(rng.normal(size=(n, 2)) + 3 * images[:, :2, 0, 0])
    mean = influence_maps(images, probs, layout="nhwc")
    assert mean.maps.shape == (2, 3, 4) and mean.mean_image.shape == (3, 4, 3)
    grey = influence_maps(images.mean(axis=-1), probs)
    np.testing.assert_allclose(mean.maps, grey.maps, atol=1e-6)
    sep = influence_maps(images, probs, channels="separate", layout="nhwc")
    assert sep.maps.shape == (2, 3, 4, 3) and sep.lambdas.shape == (2, 3, 4, 3)
    green = influence_maps(images[..., 1], probs)
    np.testing.assert_allclose(sep.maps[..., 1], green.maps, atol=1e-6)


def test_labels_as_predictions_and_chunking_do_not_change_results(continuous):
    images, probs = continuous
    labels = probs.argmax(axis=1)
    a = influence_maps(images, labels, class_names=list("wxyz"))
    b = influence_maps(images, np.eye(4)[labels], chunk_size=3)
    np.testing.assert_allclose(a.maps, b.maps, atol=1e-12)


def test_model_is_optional_and_any_wrapped_model_works(continuous):
    images, _ = continuous
    weights = np.random.default_rng(8).normal(size=(20, 3))

    def model(x):  # NumPy callable on NHWC float32 -> logits
        return x.reshape(len(x), -1) @ weights

    explainer = InfluenceExplainer(model, class_names=["a", "b", "c"])
    res = explainer(images)
    probs = _softmax_rows(images.reshape(len(images), -1).astype(np.float64) @ weights)
    ref = influence_maps(images, probs)
    np.testing.assert_allclose(res.maps, ref.maps, atol=1e-5)
    assert res.class_names == ["a", "b", "c"]
    y = probs.argmax(axis=1)
    acc = explainer.performance(images, y, metric=accuracy_score)  # labels chosen for accuracy
    assert acc.base[0] == 1.0
    ll = explainer.performance(images, y, metric=log_loss)  # probabilities for log_loss
    assert ll.base[0] == pytest.approx(log_loss(y, probs), rel=1e-5)


def test_outputs_choose_the_classes_of_the_maps(continuous):
    """The common convention: ``outputs``/``top_k`` choose classes for the whole test set (a
    map of a class does not depend on the other classes), ``probabilities=`` the predictions."""
    images, probs = continuous
    names = list("abcd")
    ref = influence_maps(images, probs, class_names=names)
    assert ref.params["outputs"] == [0, 1, 2, 3]
    explainer = InfluenceExplainer(class_names=names)
    two = explainer(images, [2, 0], probabilities=probs)
    assert two.class_names == ["c", "a"] and two.params["outputs"] == [2, 0]
    assert two.maps.shape == (2, 4, 5)
    for name in ("maps", "plus", "minus", "base"):
        np.testing.assert_array_equal(getattr(two, name), getattr(ref, name)[[2, 0]])
    np.testing.assert_array_equal(two.lambdas, ref.lambdas)  # the same tilts
    order = np.argsort(-probs.mean(axis=0), kind="stable")[:3]
    assert sorted(order.tolist()) != order.tolist()  # ranking, not class order, is checked
    for top in (explainer(images, top_k=3, probabilities=probs),
                explainer(images, "top3", probabilities=probs),
                influence_maps(images, probs, top_k=3, class_names=names)):  # fmt: skip
        assert top.params["outputs"] == order.tolist()
        assert top.class_names == [names[j] for j in order]
        np.testing.assert_array_equal(top.maps, ref.maps[order])
    one = explainer(images, 3, probabilities=probs)
    assert one.class_names == ["d"] and (one.maps == ref.maps[3:]).all()


def test_outputs_labels_and_top_k_are_checked_before_the_model_runs(continuous):
    images, _ = continuous
    calls = []
    weights = np.random.default_rng(8).normal(size=(20, 3))

    def model(x):
        calls.append(len(x))
        return x.reshape(len(x), -1) @ weights

    explainer = InfluenceExplainer(model)
    for kwargs, err, match in (
        ({"outputs": np.array([[0, 1]] * len(images))}, ValueError, "one per class.*per-image"),
        ({"outputs": [0, 0]}, ValueError, "distinct class indices"),
        ({"outputs": [-1]}, ValueError, "class indices must be in 0"),
        ({"outputs": [0.5, 1.0]}, TypeError, "integer class indices"),
        ({"outputs": "best3"}, ValueError, "'topK'"),
        ({"outputs": []}, ValueError, "at least one class"),
        ({"outputs": True}, TypeError, "bool"),
        ({"outputs": [0], "top_k": 1}, ValueError, "not both"),
        ({"top_k": 0}, ValueError, "top_k"),
        ({"top_k": 1.5}, TypeError, "top_k"),
        ({"labels": np.zeros(len(images), int)}, ValueError, "labels: .*performance"),
    ):
        with pytest.raises(err, match=match):
            explainer(images, **kwargs)
    assert calls == []
    with pytest.raises(ValueError, match=r"class indices must be in 0\.\.2, got 0\.\.3"):
        explainer(images, [0, 3])  # the class count comes from the model
    with pytest.raises(ValueError, match="top-k must be between 1 and 3 classes, got 4"):
        explainer(images, top_k=4)
    named = InfluenceExplainer(model, class_names=list("xyz"))
    calls.clear()
    with pytest.raises(ValueError, match=r"in 0\.\.2"):
        named(images, [5])  # known from the class names: before the model
    assert calls == []
    res = explainer(images, [1])
    assert res.class_names == ["1"] and res.maps.shape == (1, 4, 5)


def test_progress_cancel_and_convergence_warning(continuous):
    images, probs = continuous
    seen = []
    influence_maps(images, probs, chunk_size=5, progress=seen.append)
    assert seen[-1] == 1.0 and len(seen) == 4 and seen == sorted(seen)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        influence_maps(images, probs, cancel=cancel)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        res = influence_maps(images, probs, max_iterations=1)
    assert not res.converged.all()


def test_memory_is_bounded_by_chunks():
    """n x pixels x classes float64 would be 2000*784*10*8 = 125 MB; inputs are ~6 MB."""
    rng = np.random.default_rng(9)
    n = 2000
    images = rng.random((n, 28, 28), dtype=np.float32)
    probs = _softmax_rows(rng.normal(size=(n, 10)))
    tracemalloc.start()
    influence_maps(images, probs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6, f"peak {peak / 1e6:.1f} MB"
