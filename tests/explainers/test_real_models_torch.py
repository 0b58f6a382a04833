"""DeepExplainer on real torch architectures nobody here wrote: torchvision resnet18,
mobilenet_v3_small, efficientnet_b0 and timm ViT-Tiny / DeiT-Tiny.

Random weights (``weights=None``), batch-norm statistics calibrated on random images (as a
trained network's would be; torchvision's init alone makes mobilenet/efficientnet outputs
constant to 1e-10, which would make completeness vacuous), 32x32 RGB inputs, 3 background
images, 2 images, 2 outputs. Each must be complete to 1e-3 relative with ``strict=True``
(no op without a rule, nothing to warn about).

shap's PyTorch DeepExplainer does not run on torchvision's resnet18 (its hooks reject the
in-place ``relu_`` and ``out += identity``), and with those made out of place it is itself
incomplete (relative error ~0.6: the block's ReLU module is called twice), so it is no
oracle there; agreement with shap stays on the seed CNN (``test_deep.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from xaiwidgets.explainers import DeepExplainer  # noqa: E402

SIZE = 32
N_BG, N_X = 3, 2


def _calibrated(model):
    """Batch-norm running statistics set to those of random images (cumulative average), so
    activations stay O(1) through the depth of a randomly initialised network."""
    g = torch.Generator().manual_seed(7)
    batch = torch.rand((16, 3, SIZE, SIZE), generator=g)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(batch)
    return model.eval()


def _timm(name):
    timm = pytest.importorskip("timm")
    return timm.create_model(name, pretrained=False, img_size=SIZE, num_classes=10)


MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=10),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(
        weights=None, num_classes=10
    ),
    "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(weights=None, num_classes=10),
    "vit_tiny": lambda: _timm("vit_tiny_patch16_224"),
    "deit_tiny": lambda: _timm("deit_tiny_patch16_224"),
}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return (
        rng.uniform(size=(N_BG, SIZE, SIZE, 3)).astype(np.float32),
        rng.uniform(size=(N_X, SIZE, SIZE, 3)).astype(np.float32),
    )


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "mobilenet_v3_small",
        pytest.param("efficientnet_b0", marks=pytest.mark.slow),
        "vit_tiny",
        pytest.param("deit_tiny", marks=pytest.mark.slow),
    ],
)
def test_deep_explainer_is_complete(name, images):
    torch.manual_seed(0)
    model = _calibrated(MODELS[name]())
    bg, x = images
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no op without a rule, no incompleteness
        ex = DeepExplainer(model, bg, strict=True)(x, outputs=[0, 3])
    assert ex.values.shape == x.shape + (2,)
    delta = ex.predictions[:, [0, 3]] - ex.base_values
    assert np.abs(delta).max() > 1e-2  # the outputs move: a real test of completeness
    assert ex.params["relative_completeness_error"] <= 1e-3
    assert ex.params["ops_without_rule"] == []
    total = ex.values.reshape(N_X, -1, 2).sum(1)
    np.testing.assert_allclose(total, delta, atol=1e-3 * np.abs(delta).max(), rtol=0)
