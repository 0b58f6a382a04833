"""NaN / infinite model outputs (and gradients) raise a ValueError naming the images, in the
backends (per batch) and through every explainer family, instead of all-NaN attributions."""

from __future__ import annotations

import numpy as np
import pytest

import xaiwidgets
from xaiwidgets.backends import NonFiniteOutputError
from xaiwidgets.explainers import (
    CEMExplainer,
    DeepExplainer,
    GradientExplainer,
    IntegratedGradients,
    PartitionExplainer,
    PermutationExplainer,
    Saliency,
)

W = np.random.default_rng(0).normal(size=(4 * 4 * 3, 3)).astype(np.float32)


def images(n=4, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, (n, 4, 4, 3)).astype(np.float32)


def linear(z):
    return z.reshape(len(z), -1) @ W


def nan_on_image(bad_rows, value=np.nan):
    """A linear model whose output is ``value`` on images whose first pixel is negative."""

    def f(z):
        out = linear(z)
        out[z[:, 0, 0, 0] < 0] = value
        return out

    x = images()
    x[list(bad_rows), 0, 0, 0] = -1.0
    return f, x


# ---------------------------------------------------------------- backends
@pytest.mark.parametrize("value,word", [(np.nan, "NaN"), (np.inf, "infinite")])
def test_predict_names_the_images_across_batches(value, word):
    f, x = nan_on_image([1, 3], value)
    backend = xaiwidgets.wrap(f, batch_size=2)
    with pytest.raises(ValueError, match=rf"{word} for image\(s\) \[1, 3\]") as info:
        backend.predict(x)
    assert isinstance(info.value, NonFiniteOutputError)
    np.testing.assert_array_equal(info.value.rows, [1, 3])  # row 3 is in the second batch
    assert backend.predict(images()).shape == (4, 3)  # finite outputs pass


def test_vjp_and_grad_check_outputs_and_gradients():
    x = images()

    def grad_fn(z, cot):
        g = (cot @ W.T).reshape(z.shape)
        g[2] = np.nan  # finite outputs, a NaN gradient for image 2
        return g

    backend = xaiwidgets.wrap(linear, grad_fn=grad_fn)
    with pytest.raises(ValueError, match=r"gradients are NaN for image\(s\) \[2\]"):
        backend.vjp(x, np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"gradients are NaN for image\(s\) \[2\]"):
        backend.grad(x, [0])
    f, xb = nan_on_image([0])
    bad = xaiwidgets.wrap(f, grad_fn=lambda z, cot: (cot @ W.T).reshape(z.shape))
    with pytest.raises(ValueError, match=r"outputs are NaN for image\(s\) \[0\]"):
        bad.vjp(xb, np.ones((4, 3), np.float32))


def test_torch_outputs_and_gradients():
    torch = pytest.importorskip("torch")

    class Norm(torch.nn.Module):  # |x|: finite everywhere, its gradient NaN at x = 0
        def forward(self, t):
            return t.flatten(1).pow(2).sum(1, keepdim=True).sqrt()

    x = images()
    x[1] = 0.0
    backend = xaiwidgets.wrap(Norm())
    assert np.isfinite(backend.predict(x)).all()
    with pytest.raises(ValueError, match=r"gradients are NaN for image\(s\) \[1\]"):
        backend.grad(x, [0])
    with pytest.raises(ValueError, match=r"\[1\]"):
        Saliency(Norm())(x)

    class Log(torch.nn.Module):
        def forward(self, t):
            return t.flatten(1).mean(1, keepdim=True).log()

    x[1] = -1.0
    with pytest.raises(ValueError, match=r"NaN for image\(s\) \[1\]"):
        xaiwidgets.wrap(Log()).predict(x)


# ---------------------------------------------------------------- explainers
@pytest.mark.parametrize("cls", [PartitionExplainer, PermutationExplainer])
def test_region_explainers_name_the_images(cls):
    f, x = nan_on_image([2])
    with pytest.raises(ValueError, match=r"\[2\]"):
        cls(f, "constant(0.5)", max_evals=40)(x)

    def nan_when_masked(z):  # finite on the images, NaN once a pixel is hidden as -1
        out = linear(z)
        out[(z < 0).any(axis=(1, 2, 3))] = np.nan
        return out

    x = images()
    with pytest.raises(ValueError, match=r"masked versions of image\(s\) \[0, 1, 2, 3\]"):
        cls(nan_when_masked, "constant(-1)", max_evals=40)(x)


def test_gradient_explainers_name_the_images():
    f, x = nan_on_image([3])
    model = xaiwidgets.wrap(f, grad_fn=lambda z, cot: (cot @ W.T).reshape(z.shape))
    for make in (
        lambda: Saliency(model),
        lambda: IntegratedGradients(model, steps=4),
        lambda: GradientExplainer(model, images(3, seed=1), nsamples=4),
    ):
        with pytest.raises(ValueError, match=r"NaN for image\(s\) \[3\]"):
            make()(x)


def test_deep_explainer_names_the_images():
    torch = pytest.importorskip("torch")

    class Log(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(48, 3)

        def forward(self, t):
            return self.fc(t.flatten(1)).exp().log() * t.flatten(1).min(1, keepdim=True)[0].log()

    x = images()
    x[0, 0, 0, 0] = -1.0
    with pytest.raises(ValueError, match=r"NaN for image\(s\) \[0\]"):
        DeepExplainer(Log(), images(2, seed=1))(x)


def test_cem_names_the_images():
    f, x = nan_on_image([0])
    model = xaiwidgets.wrap(f, grad_fn=lambda z, cot: (cot @ W.T).reshape(z.shape))
    with pytest.raises(ValueError, match=r"NaN for image\(s\) \[0\]"):
        CEMExplainer(model, max_iterations=5, c_steps=1)(x[:1])


def test_deep_explainer_checks_the_deeplift_values(monkeypatch):
    """Finite model outputs but NaN DeepLIFT values (as Keras ConvNeXt on the JAX backend gave):
    the backend's deeplift, which DeepExplainer calls with its options, raises."""
    pytest.importorskip("torch")
    models = pytest.importorskip("tests.backends.models")
    from xaiwidgets.backends import _deeplift_torch

    real = _deeplift_torch.deeplift_torch

    def nan_for_image_1(backend, x, baselines, outputs, **options):
        values = real(backend, x, baselines, outputs, **options)
        values[1] = np.nan
        return values

    monkeypatch.setattr(_deeplift_torch, "deeplift_torch", nan_for_image_1)
    x = models.random_images(3)
    with pytest.raises(ValueError, match=r"DeepLIFT attributions are NaN for image\(s\) \[1\]"):
        DeepExplainer(models.torch_cnn(), models.random_images(2, seed=1))(x, outputs=[0])
