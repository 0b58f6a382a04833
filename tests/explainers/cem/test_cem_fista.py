"""CEM's optimiser (``explainers/_fista.py``): the loss gradient against finite differences,
the shrink / projection / learning-rate schedule, two FISTA steps written out by hand, and the
image model's check of the autoencoder, on small NumPy models with analytic gradients."""

from __future__ import annotations

import numpy as np
import pytest

import xaiwidgets
from tests.explainers.cem.seed_models import HI, LO
from xaiwidgets.explainers import CEMExplainer
from xaiwidgets.explainers._fista import (
    CEMProblem,
    ImageModel,
    polynomial_decay,
    project_sign,
    shrink,
)


def _softmax_regression(seed=0, shape=(4, 3, 1), k=5):
    """Logit model x -> W x + b with its analytic VJP (a NumpyBackend with grad_fn)."""
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    W, b = rng.normal(size=(d, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    f = lambda x: x.reshape(len(x), -1) @ W + b  # noqa: E731
    g = lambda x, cot: (cot @ W.T).reshape(x.shape)  # noqa: E731
    return xaiwidgets.wrap(f, grad_fn=g), W, b


def _linear_ae(shape=(4, 3, 1), seed=1):
    rng = np.random.default_rng(seed)
    d = int(np.prod(shape))
    A = (np.eye(d) + 0.3 * rng.normal(size=(d, d))).astype(np.float32)
    f = lambda z: (z.reshape(len(z), -1) @ A).reshape(z.shape)  # noqa: E731
    g = lambda z, cot: (cot.reshape(len(z), -1) @ A.T).reshape(z.shape)  # noqa: E731
    return xaiwidgets.wrap(f, grad_fn=g)


@pytest.mark.parametrize("mode", ["PN", "PP"])
@pytest.mark.parametrize("scores", ["probabilities", "outputs"])
def test_gradient_matches_finite_differences(mode, scores):
    model, _, _ = _softmax_regression()
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-0.5, 0.5, (3, 4, 3, 1)).astype(np.float32)
    target = model.predict(x0).argmax(1)
    rows = len(x0)
    prob = CEMProblem(
        model,
        ImageModel(_linear_ae()),
        x0,
        target,
        np.array([0.5, 2.0, 7.0]),
        np.full(rows, 0.05),
        np.full(rows, 0.1),
        np.array([0.0, 0.3, 1.0]),
        np.full(rows, mode == "PP"),
        scores=scores,
    )
    y = (x0 + rng.normal(0, 0.05, x0.shape)).astype(np.float32)
    loss, grad = prob.loss_and_grad(y)

    def smooth(yy):
        l1 = np.abs(yy - x0).reshape(rows, -1).sum(1)
        return prob.loss_and_grad(yy)[0] - prob.beta.ravel() * l1

    num = np.zeros_like(y, dtype=np.float64)
    eps = 1e-3
    for idx in np.ndindex(*y.shape[1:]):
        e = np.zeros_like(y)
        e[(slice(None),) + idx] = eps
        num[(slice(None),) + idx] = (
            smooth(y + e).astype(np.float64) - smooth(y - e).astype(np.float64)
        ) / (2 * eps)
    np.testing.assert_allclose(grad, num, atol=2e-2, rtol=2e-2)
    assert np.all(np.isfinite(loss))


def test_shrink_project_and_schedule():
    x0 = np.array([0.0, 0.0, 0.0, 0.2, 0.2], np.float32)
    y = np.array([0.5, -0.5, 0.05, 0.9, -0.4], np.float32)
    np.testing.assert_allclose(shrink(y, x0, 0.1, -0.3, 0.7), [0.4, -0.3, 0.0, 0.7, -0.3])
    # no-information value -1: a PN may only brighten, a PP only darken
    a = np.array([[0.3, -0.1]], np.float32)
    x = np.array([[0.0, 0.0]], np.float32)
    np.testing.assert_allclose(project_sign(a, x, -1.0, np.array([[False]])), [[0.3, 0.0]])
    np.testing.assert_allclose(project_sign(a, x, -1.0, np.array([[True]])), [[0.0, -0.1]])
    assert polynomial_decay(0.01, 0, 100) == pytest.approx(0.01)
    assert polynomial_decay(0.01, 75, 100) == pytest.approx(0.005)
    assert polynomial_decay(0.01, 100, 100) == 0.0


def test_first_steps_follow_fista_by_hand():
    """Two steps of the explainer's optimiser equal FISTA written out for one row."""
    from xaiwidgets.explainers._fista import fista

    model, W, b = _softmax_regression(seed=3)
    x0 = np.random.default_rng(4).uniform(-0.5, 0.5, (1, 4, 3, 1)).astype(np.float32)
    t = model.predict(x0).argmax(1)
    c, beta, lr = 5.0, 0.05, 0.1
    prob = CEMProblem(
        model,
        None,
        x0,
        t,
        np.array([c]),
        np.zeros(1),
        np.array([beta]),
        np.zeros(1),
        np.array([False]),
        scores="outputs",
    )
    steps = fista(
        prob, lo=LO, hi=HI, no_info=LO, max_iterations=4, learning_rate_init=lr, clip=(-100, 100)
    )
    a_prev, y = x0[0].ravel().astype(np.float64), x0[0].ravel().astype(np.float64)
    for k in range(2):
        s = y @ W + b
        j = np.argmax(np.where(np.arange(len(s)) == t[0], -np.inf, s))
        g = 2 * (y - x0[0].ravel())
        if s[t[0]] - s[j] > 0:
            g = g + c * (W[:, t[0]] - W[:, j])
        z = y - polynomial_decay(lr, k, 4) * g
        d = z - x0[0].ravel()
        a = np.where(
            d > beta,
            np.minimum(z - beta, HI),
            np.where(d < -beta, np.maximum(z + beta, LO), x0[0].ravel()),
        )
        a = np.where(np.abs(a - LO) > np.abs(x0[0].ravel() - LO), a, x0[0].ravel())
        y = a + (k + 1) / (k + 4) * (a - a_prev)
        y = np.where(np.abs(y - LO) > np.abs(x0[0].ravel() - LO), y, x0[0].ravel())
        a_prev = a
        _, ours, _, _ = next(steps)
        np.testing.assert_allclose(ours.ravel(), a, atol=1e-5)


def test_an_autoencoder_without_gradients_is_named():
    """A NumPy autoencoder without ``grad_fn`` is a ValueError about ``ae_model`` (not the
    backend's NotImplementedError), and the image model keeps NHWC images."""
    model, _, _ = _softmax_regression()
    ae = ImageModel(xaiwidgets.wrap(lambda z: 0.5 * z))
    z = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 4, 3, 1)).astype(np.float32)
    np.testing.assert_allclose(ae.forward(z), 0.5 * z)
    with pytest.raises(ValueError, match="ae_model: .*grad_fn"):
        ae.vjp(z, lambda out: out)
    x0 = z[:1]
    cem = CEMExplainer(model, ae_model=lambda z: 0.5 * z, gamma=1.0, max_iterations=3)
    with pytest.raises(ValueError, match="ae_model"):
        cem(x0)
