"""One small CNN written in torch, Keras 3 and Flax with the same weights: DeepLIFT/DeepSHAP
(both softmax rules) and integrated gradients give the same attributions in every framework
(to float32 accuracy), and the same as the torch model in float64.

Conv(6, 3x3) + ReLU -> MaxPool(2) -> Conv(8, 2x2) + ReLU -> Flatten (NHWC order) ->
Dense(16) + tanh -> Dense(10) + softmax, on 8x8 sklearn digits.
"""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.explainers import DeepExplainer, IntegratedGradients

pytest.importorskip("torch")
pytest.importorskip("tensorflow")
pytest.importorskip("keras")
pytest.importorskip("flax")


@pytest.fixture(scope="module")
def weights():
    """HWIO conv kernels and (in, out) dense kernels, NHWC flatten order."""
    rng = np.random.default_rng(7)

    def w(*shape, scale=1.0):
        fan_in = int(np.prod(shape[:-1]))
        return (rng.normal(size=shape) * scale / np.sqrt(fan_in)).astype(np.float32)

    def b(n):
        return (rng.normal(size=n) * 0.1).astype(np.float32)

    return {
        "c1": (w(3, 3, 1, 6, scale=2), b(6)),
        "c2": (w(2, 2, 6, 8, scale=2), b(8)),
        "d1": (w(32, 16, scale=2), b(16)),
        "d2": (w(16, 10, scale=4), b(10)),
    }


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x = load_digits().images[:14] / 16.0
    # break the digits' exact ties (repeated patches): a max pool whose window holds equal
    # values may pick either, and float rounding differs between frameworks
    x = (x + np.random.default_rng(0).uniform(0, 0.02, x.shape)).astype(np.float32)[..., None]
    return x[:10], x[10:]  # background, images


def torch_model(wts):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 6, 3), nn.Conv2d(6, 8, 2)
            self.d1, self.d2 = nn.Linear(32, 16), nn.Linear(16, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
            x = torch.relu(self.c2(x))
            x = x.permute(0, 2, 3, 1).reshape(len(x), -1)
            return torch.softmax(self.d2(torch.tanh(self.d1(x))), dim=1)

    net = Net().eval()
    with torch.no_grad():
        for name in ("c1", "c2"):
            k, bias = wts[name]
            getattr(net, name).weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1).copy()))
            getattr(net, name).bias.copy_(torch.from_numpy(bias))
        for name in ("d1", "d2"):
            k, bias = wts[name]
            getattr(net, name).weight.copy_(torch.from_numpy(k.T.copy()))
            getattr(net, name).bias.copy_(torch.from_numpy(bias))
    return net


def keras_model(wts):
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(6, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(8, 2, activation="relu"),
            layers.Flatten(),
            layers.Dense(16, activation="tanh"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.set_weights([a for name in ("c1", "c2", "d1", "d2") for a in wts[name]])
    return model


def flax_model(wts):
    import jax.numpy as jnp
    from flax import linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(6, (3, 3), padding="VALID", name="c1")(x))
            x = nn.max_pool(x, (2, 2), (2, 2))
            x = nn.relu(nn.Conv(8, (2, 2), padding="VALID", name="c2")(x))
            x = x.reshape((x.shape[0], -1))
            x = nn.tanh(nn.Dense(16, name="d1")(x))
            return nn.softmax(nn.Dense(10, name="d2")(x))

    params = {
        name: {"kernel": jnp.asarray(wts[name][0]), "bias": jnp.asarray(wts[name][1])}
        for name in wts
    }
    return Net(), {"params": params}


@pytest.fixture(scope="module")
def three(weights):
    return {
        "torch": torch_model(weights),
        "keras": keras_model(weights),
        "flax": flax_model(weights),
    }


def _agree(results, scale, tol):
    ref = results["torch"]
    for name, arr in results.items():
        assert np.abs(arr - ref).max() <= tol * scale, name


def test_same_predictions(three, digits):
    from xaiwidgets.backends import wrap

    _, x = digits
    preds = {k: wrap(m).predict(x) for k, m in three.items()}
    assert np.ptp(preds["torch"]) > 0.3  # a model with an opinion, not uniform
    _agree(preds, 1.0, 1e-5)


@pytest.mark.parametrize("softmax", ["shapley", "diagonal"])
def test_same_deeplift(three, digits, softmax):
    bg, x = digits
    out = {k: DeepExplainer(m, bg, softmax=softmax)(x) for k, m in three.items()}
    values = {k: e.values for k, e in out.items()}
    scale = np.abs(values["torch"]).max()
    assert scale > 1e-3
    # float32 rescale ratios Δy/Δu amplify 1e-7 rounding differences between the
    # frameworks' convolutions: each float32 result is within ~1e-4 of the float64 one
    _agree(values, scale, 5e-4)
    for e in out.values():
        assert e.params["max_completeness_error"] < 1e-5


def test_float32_close_to_float64(three, weights, digits):
    """The float32 attributions of every framework are within 5e-4 (relative to the largest)
    of the torch model's in float64."""
    bg, x = digits
    exact = DeepExplainer(torch_model(weights).double(), bg)(x).values
    scale = np.abs(exact).max()
    for name, model in three.items():
        got = DeepExplainer(model, bg)(x).values
        assert np.abs(got - exact).max() <= 5e-4 * scale, name


def test_same_integrated_gradients(three, digits):
    _, x = digits
    values = {
        k: IntegratedGradients(m, steps=16)(x, outputs=[0, 5]).values for k, m in three.items()
    }
    _agree(values, np.abs(values["torch"]).max(), 1e-4)
