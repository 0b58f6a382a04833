"""Saliency, SmoothGrad, IntegratedGradients and GradientExplainer (expected gradients) on the
seed-003 torch CNN; shap's GradientExplainer as the oracle of expected gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from xaiwidgets.explainers import GradientExplainer, IntegratedGradients, Saliency, SmoothGrad

models = pytest.importorskip("tests.backends.models")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def digits():
    x, _ = models.mnist_images(24)
    return x[:20], x[20:]


@pytest.fixture(scope="module")
def net():
    return models.torch_cnn()


def _sum(values):
    return values.reshape(len(values), -1, values.shape[-1]).sum(1)


def test_saliency_is_the_gradient(net, digits):
    _, x = digits
    ex = Saliency(net)(x, outputs=[1, 7])
    grad = Saliency(net).backend.grad(x, [1, 7])
    np.testing.assert_allclose(ex.values, grad, atol=1e-7)
    assert np.abs(grad).max() > 0
    np.testing.assert_allclose(
        Saliency(net, absolute=True)(x, outputs=[1, 7]).values, np.abs(grad), atol=1e-7
    )
    gxi = Saliency(net, times_input=True)(x, outputs=[1, 7]).values
    np.testing.assert_allclose(gxi, grad * x[..., None], atol=1e-7)
    assert np.all(ex.base_values == 0) and ex.method == "saliency"


def test_smoothgrad(net, digits):
    _, x = digits
    x = x[:2]
    plain = Saliency(net)(x, outputs=[3]).values
    np.testing.assert_allclose(
        SmoothGrad(net, noise=0.0, nsamples=3)(x, outputs=[3]).values, plain, atol=1e-6
    )
    a = SmoothGrad(net, nsamples=8, seed=1)(x, outputs=[3])
    b = SmoothGrad(net, nsamples=8, seed=1)(x, outputs=[3])
    c = SmoothGrad(net, nsamples=8, seed=2)(x, outputs=[3])
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    assert not np.allclose(a.values, plain)
    assert np.all(SmoothGrad(net, nsamples=4, squared=True)(x, outputs=[3]).values >= 0)
    assert a.params["nsamples"] == 8 and a.method == "smoothgrad"
    with pytest.raises(ValueError, match="noise"):
        SmoothGrad(net, noise=-1)


def test_integrated_gradients_converge_to_completeness(net, digits):
    _, x = digits
    x = x[:2]
    errors = []
    for steps in (2, 8, 32, 128):
        ig = IntegratedGradients(net, steps=steps)
        ex = ig(x, outputs="top3")
        gap = ex.predictions[np.arange(2)[:, None], ex.output_indices] - ex.base_values
        err = np.abs(gap - _sum(ex.values)).max()
        np.testing.assert_allclose(ex.params["max_completeness_error"], err, rtol=1e-3, atol=1e-6)
        errors.append(ex.params["max_completeness_error"])
    assert errors[-1] < 0.1 * errors[0]
    assert errors[-1] <= min(errors)
    out_range = float(np.ptp(ex.predictions))
    assert errors[-1] < 1e-3 * out_range
    base = Saliency(net).backend.predict(np.zeros_like(x))
    np.testing.assert_allclose(
        ex.base_values, np.take_along_axis(base, ex.output_indices, 1), atol=1e-7
    )


def test_integrated_gradients_rules_and_baselines(net, digits):
    bg, x = digits
    x = x[:2]
    ref = IntegratedGradients(net, steps=64)(x, outputs=[4]).values
    for rule in ("left", "right", "middle"):
        ex = IntegratedGradients(net, steps=64, rule=rule)(x, outputs=[4])
        assert np.abs(ex.values - ref).max() < 0.2 * np.abs(ref).max()
    # the image itself as baseline: nothing to attribute
    same = IntegratedGradients(net, baseline=x, steps=4)(x, outputs=[4])
    assert np.abs(same.values).max() == 0
    one = IntegratedGradients(net, baseline=bg[0], steps=4)(x, outputs=[4])
    np.testing.assert_allclose(one.base_values[0], one.base_values[1])
    with pytest.raises(ValueError, match="rule"):
        IntegratedGradients(net, rule="simpson")
    with pytest.raises(ValueError, match="steps"):
        IntegratedGradients(net, steps=0)
    with pytest.raises(ValueError, match="baseline"):
        IntegratedGradients(net, baseline=np.zeros((5, 5)))(x)


@pytest.mark.slow
def test_expected_gradients_match_shap(net, digits):
    """Same expectation as shap's GradientExplainer: per-pixel z-scores of the difference of
    the two Monte-Carlo estimates stay within sampling error."""
    shap = pytest.importorskip("shap")
    bg, x = digits
    x = x[:2]
    ns = 200
    explainer = GradientExplainer(net, bg, nsamples=ns, seed=0)

    def to_t(a):
        return torch.from_numpy(a.transpose(0, 3, 1, 2).copy()).clone(
            memory_format=torch.contiguous_format
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sv, var, ranks = shap.GradientExplainer(net, to_t(bg)).shap_values(
            to_t(x), nsamples=ns, rseed=0, ranked_outputs=2, return_variances=True
        )
    ranks = np.asarray(ranks)
    ours = explainer(x, outputs=ranks)
    se_ours = ours.standard_errors
    theirs = np.asarray(sv).transpose(0, 2, 3, 1, 4)
    # shap reports var / sqrt(n) per pixel (one array per output); the mean's variance is var / n
    var = np.moveaxis(np.asarray(var), 0, -1).transpose(0, 2, 3, 1, 4)
    se = np.sqrt(se_ours**2 + var / np.sqrt(ns))
    live = se > 1e-6 * np.abs(theirs).max()
    assert live.sum() > 500
    z = (ours.values - theirs)[live] / se[live]
    assert np.mean(np.abs(z) > 4) < 0.01
    assert abs(np.mean(z)) < 0.2
    # pixel noise is large: also compare the maps as a whole (scale and shape)
    assert 0.9 < np.linalg.norm(theirs) / np.linalg.norm(ours.values) < 1.1
    assert np.corrcoef(theirs.ravel(), ours.values.ravel())[0, 1] > 0.9
    # totals agree within their sampling error, and approach f(x) - E f(background)
    tot_se = np.sqrt((se**2).reshape(2, -1, 2).sum(1))
    assert np.all(np.abs(_sum(ours.values) - _sum(theirs)) < 6 * tot_se + 1e-7)
    np.testing.assert_allclose(ours.base_values, explainer.expected_value[ranks])


def test_expected_gradients_seed_and_smoothing(net, digits):
    bg, x = digits
    x = x[:1]
    a = GradientExplainer(net, bg, nsamples=16, seed=3)(x, outputs=[0])
    b = GradientExplainer(net, bg, nsamples=16, seed=3)(x, outputs=[0])
    c = GradientExplainer(net, bg, nsamples=16, seed=4)(x, outputs=[0])
    d = GradientExplainer(net, bg, nsamples=16, seed=3, local_smoothing=0.1)(x, outputs=[0])
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)
    assert not np.allclose(a.values, d.values)
    assert a.method == "expected_gradients" and d.params["local_smoothing"] == 0.1
    e = GradientExplainer(net, bg, background_size=5)
    assert len(e.background) == 5
    assert Saliency(net)(x, outputs=[0]).standard_errors is None  # not a sampled estimate
    with pytest.raises(ValueError, match="nsamples"):
        GradientExplainer(net, bg, nsamples=0)
    with pytest.raises(ValueError, match="local_smoothing"):
        GradientExplainer(net, bg, local_smoothing=-0.5)


def test_expected_gradients_standard_errors_are_the_explanations(tmp_path):
    """On a linear model every sample's term is ``(x - r_s) * w``: the Explanation's
    ``standard_errors`` are ``sqrt(var_s / nsamples)`` of those terms, sliced with it and
    saved with it; the explainer keeps none of them."""
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 3, 3))
    rng = np.random.default_rng(5)
    bg = rng.random((7, 4, 4, 3), dtype=np.float32)
    x = rng.random((2, 4, 4, 3), dtype=np.float32)
    ns = 12
    ex = GradientExplainer(lin, bg, nsamples=ns, seed=9, tolerance=10.0)
    e = ex(x, outputs=[2, 0])
    grad = Saliency(lin).backend.grad(x, [2, 0])  # (n, h, w, c, o), the same at every point
    pick = np.random.default_rng(9).integers(len(bg), size=(len(x), ns))
    terms = (x[:, None] - bg[pick])[..., None] * grad[:, None]  # (n, s, h, w, c, o)
    np.testing.assert_allclose(e.values, terms.mean(1), rtol=1e-4, atol=1e-6)
    want = terms.std(axis=1) / np.sqrt(ns)
    assert e.standard_errors.shape == e.values.shape and e.standard_errors.dtype == np.float32
    np.testing.assert_allclose(e.standard_errors, want, rtol=1e-3, atol=1e-6)
    assert want.max() > 1e-3  # the test can fail: the errors are not all ~0
    assert e.params["max_standard_error"] == pytest.approx(float(want.max()), rel=1e-3)
    # selected, ranked and reloaded with the values
    np.testing.assert_array_equal(e[1, ..., [1]].standard_errors, e.standard_errors[1:, ..., 1:])
    top = e.top_k(1)
    first = np.take_along_axis(
        e.standard_errors, np.argsort(-e.output_probabilities, axis=1)[:, None, None, None, :1], -1
    )
    np.testing.assert_array_equal(top.standard_errors, first)
    back = type(e).load(e.save(tmp_path / "eg"))
    np.testing.assert_array_equal(back.standard_errors, e.standard_errors)
    with pytest.raises(AttributeError, match=r"removed.*\.standard_errors"):
        ex.standard_errors_  # noqa: B018
    assert not hasattr(ex, "standard_errors_")
    with pytest.raises(ValueError, match="standard_errors: expected shape"):
        type(e)(values=e.values, data=e.data, standard_errors=e.standard_errors[..., :1])
    with pytest.raises(ValueError, match="standard_errors: expected values >= 0"):
        type(e)(values=e.values, data=e.data, standard_errors=-e.standard_errors)
