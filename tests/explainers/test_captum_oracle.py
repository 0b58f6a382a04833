"""captum as the oracle of the gradient explainers and DeepLIFT on a torch CNN.

The gradient explainers run on the seed-003 CNN (convolutions, max pooling, ReLU, linear
layers) without its final softmax. DeepLIFT runs on two small CNNs where captum's rules (rescale
for ReLU, routed differences for max pooling, linear layers as they are) are the ones
``backend.deeplift`` applies and captum's attributions are complete, so the two must agree to
float32 rounding. Saliency and integrated gradients are deterministic and compared
directly (captum's ``riemann_*`` rules with ``n_steps`` nodes are ours with ``steps``
intervals; captum's trapezoid weights sum to ``1 - 1/n_steps``, which the test undoes). SmoothGrad draws noise: captum's ``NoiseTunnel`` is given *our* noise (its
``torch.normal`` replaced by a function returning the draws of our documented order, image
after image, from ``numpy.random.default_rng(seed)``), so both average the same gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.explainers import DeepExplainer, IntegratedGradients, Saliency, SmoothGrad

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
models = pytest.importorskip("tests.backends.models")

OUTPUTS = [1, 7]

pytestmark = pytest.mark.filterwarnings(
    "ignore:Input Tensor 0 did not already require gradients",  # captum, on its own inputs
    "ignore::xaiwidgets.IncompleteAttributionWarning",  # 16 IG steps: the oracle, not the sum
    "ignore:Setting forward, backward hooks",  # captum's DeepLift
)


@pytest.fixture(scope="module")
def net():
    """The seed CNN ending in its logits (``(n, 10)``), eval mode, float32, NCHW."""
    from torch import nn

    full = models.torch_cnn()
    return nn.Sequential(full.conv_layers, nn.Flatten(), *list(full.fc_layers)[:-1]).eval()


@pytest.fixture(scope="module")
def digits():
    x, _ = models.mnist_images(10)
    flat = x.reshape(len(x), -1)
    lo, hi = flat.min(1), flat.max(1)
    # every image spans 0..1: SmoothGrad's per-image sigma = noise * range is one number
    x = (x - lo[:, None, None, None]) / (hi - lo)[:, None, None, None]
    return x.astype(np.float32)


def _nchw(x: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _captum(attribute, x: np.ndarray, **kwargs) -> np.ndarray:
    """captum's attributions for every output of OUTPUTS, NHWC ``(n, h, w, c, o)``."""
    per_output = []
    for j in OUTPUTS:
        a = attribute(_nchw(x), target=j, **kwargs)
        per_output.append(a.detach().numpy().transpose(0, 2, 3, 1))
    return np.stack(per_output, axis=-1)


def _close(ours: np.ndarray, oracle: np.ndarray, rtol: float = 1e-4) -> None:
    assert ours.shape == oracle.shape, (ours.shape, oracle.shape)
    scale = np.abs(oracle).max()
    assert scale > 0  # an all-zero oracle would pass vacuously
    np.testing.assert_allclose(ours, oracle, rtol=rtol, atol=1e-5 * scale)


@pytest.mark.parametrize("absolute", [False, True])
def test_saliency_is_captums(net, digits, absolute):
    ours = Saliency(net, absolute=absolute)(digits, outputs=OUTPUTS).values
    _close(ours, _captum(captum_attr.Saliency(net).attribute, digits, abs=absolute))


def test_gradient_times_input_is_captums(net, digits):
    ours = Saliency(net, times_input=True)(digits, outputs=OUTPUTS).values
    _close(ours, _captum(captum_attr.InputXGradient(net).attribute, digits))


@pytest.mark.parametrize(
    ("rule", "captum_method", "nodes"),
    [
        ("trapezoid", "riemann_trapezoid", 17),  # 16 intervals, 17 nodes
        ("left", "riemann_left", 16),
        ("right", "riemann_right", 16),
        ("middle", "riemann_middle", 16),
    ],
)
def test_integrated_gradients_is_captums(net, digits, rule, captum_method, nodes):
    baseline = np.full(digits.shape[1:], 0.25, np.float32)
    ours = IntegratedGradients(net, steps=16, rule=rule, baseline=baseline)(
        digits, outputs=OUTPUTS
    ).values
    oracle = _captum(
        captum_attr.IntegratedGradients(net).attribute,
        digits,
        baselines=_nchw(np.broadcast_to(baseline, digits.shape)),
        n_steps=nodes,
        method=captum_method,
    )
    if rule == "trapezoid":
        # captum's trapezoid weights are 1/n on n nodes, ends halved: they sum to (n-1)/n, not
        # 1 (a true trapezoid on n - 1 intervals has 1/(n-1)); ours do sum to 1
        oracle = oracle * np.float32(nodes / (nodes - 1))
    _close(ours, oracle)


@pytest.mark.parametrize("squared", [False, True])
def test_smoothgrad_is_captums_noise_tunnel_on_the_same_noise(net, digits, squared, monkeypatch):
    noise, nsamples, seed = 0.2, 12, 5
    ours = SmoothGrad(net, noise=noise, nsamples=nsamples, squared=squared, seed=seed)(
        digits, outputs=OUTPUTS
    ).values
    draws = np.random.default_rng(seed).standard_normal(
        (len(digits) * nsamples,) + digits.shape[1:], np.float32
    )  # image after image, as SmoothGrad draws them
    unit = _nchw(draws)
    calls = []

    def our_normal(mean, std, *args, **kwargs):
        calls.append(tuple(std.shape))
        assert tuple(std.shape) == tuple(unit.shape)
        return mean + unit * std

    monkeypatch.setattr(torch, "normal", our_normal)
    tunnel = captum_attr.NoiseTunnel(captum_attr.Saliency(net))
    oracle = _captum(
        tunnel.attribute,
        digits,
        nt_type="smoothgrad_sq" if squared else "smoothgrad",
        nt_samples=nsamples,
        stdevs=noise,  # sigma = noise * (max - min) = noise: every image spans 0..1
        abs=False,
    )
    assert len(calls) == len(OUTPUTS)  # our noise went in, once per output
    _close(ours, oracle, rtol=1e-3)


def test_smoothgrad_is_not_saliency(net, digits):
    """The SmoothGrad oracle above would also pass if the noise were ignored on both sides;
    it is not: the average differs from the gradient at the image."""
    smooth = SmoothGrad(net, noise=0.2, nsamples=12, seed=5)(digits, outputs=OUTPUTS).values
    plain = Saliency(net)(digits, outputs=OUTPUTS).values
    assert np.abs(smooth - plain).max() > 0.1 * np.abs(plain).max()


def _deeplift_nets():
    """Two small CNNs on which captum's DeepLIFT rules are the ones ``backend.deeplift``
    applies and captum's attributions are complete: ReLU and linear layers, and max pooling
    feeding a linear layer. (captum's attributions miss completeness where a max pool feeds a
    ReLU, as in the seed CNN: there captum is no oracle.)"""
    from torch import nn

    torch.manual_seed(3)
    relu_linear = nn.Sequential(
        nn.Conv2d(1, 4, 5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 24 * 24, 16),
        nn.ReLU(),
        nn.Linear(16, 10),
    )
    max_pool = nn.Sequential(
        nn.Conv2d(1, 4, 5),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 12 * 12, 10),
    )
    return {"relu-linear": relu_linear.eval(), "maxpool": max_pool.eval()}


def _complete(net, attributions, x, reference):
    """Whether ``attributions`` ``(n, h, w, c, o)`` sum to ``f(x) - mean f(reference)``."""
    with torch.no_grad():
        delta = net(_nchw(x))[:, OUTPUTS] - net(_nchw(reference))[:, OUTPUTS].mean(0)
    sums = attributions.reshape(len(x), -1, len(OUTPUTS)).sum(1)
    return np.allclose(sums, delta.numpy(), rtol=1e-4, atol=1e-5 * np.abs(sums).max())


@pytest.mark.parametrize("name", ["relu-linear", "maxpool"])
def test_deeplift_is_captums_against_one_baseline(digits, name):
    net = _deeplift_nets()[name]
    x, reference = digits[:4], digits[9:10]
    ours = DeepExplainer(net, reference, background_size=None)(x, outputs=OUTPUTS).values
    oracle = _captum(captum_attr.DeepLift(net).attribute, x, baselines=_nchw(reference))
    assert _complete(net, oracle, x, reference)  # the oracle is one on this model
    _close(ours, oracle)


@pytest.mark.parametrize("name", ["relu-linear", "maxpool"])
def test_deepshap_is_captums_deeplift_shap(digits, name):
    net = _deeplift_nets()[name]
    x, background = digits[:3], digits[5:10]
    ours = DeepExplainer(net, background, background_size=None)(x, outputs=OUTPUTS).values
    oracle = _captum(captum_attr.DeepLiftShap(net).attribute, x, baselines=_nchw(background))
    assert _complete(net, oracle, x, background)
    _close(ours, oracle)
