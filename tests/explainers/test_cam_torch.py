"""Grad-CAM family on torch models: against pytorch-grad-cam (the oracle, tests only) on a real
torchvision ResNet, against an independent computation from hooked activations, layer
resolution, ViT token layers, and the user's model left unchanged."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")

from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

import xaiwidgets.explainers.cam as cam  # noqa: E402


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    # random BatchNorm statistics, so the maps are not flat
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((3, 96, 96, 3), dtype=np.float32)


def _minmax(a):
    a = a - a.min(axis=(1, 2), keepdims=True)
    return a / (1e-7 + a.max(axis=(1, 2), keepdims=True))


PAIRS = [
    (cam.GradCAM, pytorch_grad_cam.GradCAM),
    (cam.GradCAMPlusPlus, pytorch_grad_cam.GradCAMPlusPlus),
    (cam.HiResCAM, pytorch_grad_cam.HiResCAM),
    (cam.LayerCAM, pytorch_grad_cam.LayerCAM),
]


@pytest.mark.parametrize("ours_cls,theirs_cls", PAIRS, ids=lambda c: getattr(c, "__name__", ""))
def test_matches_pytorch_grad_cam_on_resnet18(resnet, images, ours_cls, theirs_cls):
    ours = ours_cls(resnet, "layer4")(images, top_k=2)
    xt = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    with theirs_cls(model=resnet, target_layers=[resnet.layer4]) as oracle:
        for j in range(2):
            targets = [ClassifierOutputTarget(int(c)) for c in ours.output_indices[:, j]]
            expected = oracle(input_tensor=xt, targets=targets)  # (n, h, w), min-max scaled
            got = _minmax(ours.values[..., 0, j])
            for i in range(len(images)):
                if expected[i].max() == 0:  # all-zero map: nothing to compare
                    continue
                corr = np.corrcoef(got[i].ravel(), expected[i].ravel())[0, 1]
                assert corr > 0.99, (i, j, corr)
                np.testing.assert_allclose(got[i], expected[i], atol=0.05)


def test_eigencam_is_pytorch_grad_cams_projection_with_a_sign(resnet, images):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    ex = cam.EigenCAM(resnet, "layer4")
    ours = ex(images, outputs=[0, 1]).values[..., 0, :]
    np.testing.assert_array_equal(ours[..., 0], ours[..., 1])  # one map for every output
    acts = ex.backend.layer(images, "layer4", [0]).activations  # (n, h', w', d)
    projection = get_2d_projection(acts.transpose(0, 3, 1, 2).copy())  # (n, h', w'), any sign
    for i in range(len(images)):
        total = acts[i].sum(-1)
        sign = 1 if np.sum(projection[i] * (total - total.mean())) >= 0 else -1
        expected = cam.upsample(np.maximum(sign * projection[i], 0)[None, ..., None], (96, 96))
        np.testing.assert_allclose(ours[i, ..., 0], expected[0, ..., 0], rtol=1e-3, atol=1e-4)


def test_gradcam_equals_the_formula_on_hooked_activations(resnet, images):
    """An independent computation: autograd on activations captured by our own hook."""
    got = cam.GradCAM(resnet, "layer4")(images[:1], outputs=[3])
    store = {}
    h = resnet.layer4.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    try:
        out = resnet(torch.from_numpy(images[:1].transpose(0, 3, 1, 2).copy()))
        (g,) = torch.autograd.grad(out[0, 3], store["a"])
    finally:
        h.remove()
    a, g = store["a"][0].detach().numpy(), g[0].numpy()  # (d, h', w')
    expected = np.maximum((g.mean(axis=(1, 2))[:, None, None] * a).sum(0), 0)
    up = cam.upsample(expected[None, ..., None].astype(np.float32), (96, 96))[0, ..., 0]
    np.testing.assert_allclose(got.values[0, ..., 0, 0], up, rtol=1e-4, atol=1e-5)


def test_scorecam_equals_its_formula(resnet, images):
    x = images[:1]
    ex = cam.ScoreCAM(resnet, "layer4", max_channels=16, batch_size=8)
    got = ex(x, outputs=[2]).values[0, ..., 0, 0]
    res = ex.backend.layer(x, "layer4", [[2]])
    acts = res.activations[0]
    order = np.argsort(-acts.mean(axis=(0, 1)), kind="stable")[:16]
    weights = []
    for k in order:
        m = cam.upsample(acts[None, ..., k, None], (96, 96))[0, ..., 0]
        m = (m - m.min()) / (m.max() - m.min())
        with torch.no_grad():
            logits = resnet(
                torch.from_numpy((x[0] * m[..., None])[None].transpose(0, 3, 1, 2).copy())
            )
        weights.append(torch.softmax(logits, 1)[0, 2].item())
    expected = np.maximum((acts[..., order] * np.array(weights)).sum(-1), 0)
    up = cam.upsample(expected[None, ..., None].astype(np.float32), (96, 96))[0, ..., 0]
    np.testing.assert_allclose(got, up, rtol=1e-3, atol=1e-5)


def test_default_layer_and_module_object_and_model_unchanged(resnet, images):
    hooks_before = sum(len(m._forward_hooks) for m in resnet.modules())
    training_before = resnet.training
    by_default = cam.GradCAM(resnet)(images[:2], outputs=[1])
    assert by_default.params["layer"] == "layer4"
    by_object = cam.GradCAM(resnet, resnet.layer4)(images[:2], outputs=[1])
    np.testing.assert_array_equal(by_default.values, by_object.values)
    assert by_default.values.shape == (2, 96, 96, 1, 1)
    assert sum(len(m._forward_hooks) for m in resnet.modules()) == hooks_before
    assert resnet.training == training_before
    assert all(p.requires_grad for p in resnet.parameters())


def test_bad_layers_are_named(resnet, images):
    with pytest.raises(ValueError, match="no module 'layer9'"):
        cam.GradCAM(resnet, "layer9")(images[:1])
    with pytest.raises(ValueError, match="not part of the model"):
        cam.GradCAM(resnet, torch.nn.Conv2d(3, 3, 3))(images[:1])
    with pytest.raises(TypeError, match="module path"):
        cam.GradCAM(resnet, 3.5)(images[:1])
    with pytest.raises(ValueError, match="spatial map"):
        cam.GradCAM(resnet, "fc")(images[:1])


def test_vit_tokens_become_a_grid_and_the_default_layer_moves_the_output():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    vit = timm.create_model(
        "deit_tiny_patch16_224", pretrained=False, num_classes=5, img_size=64
    ).eval()
    x = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    ex = cam.GradCAM(vit)
    got = ex(x, outputs=[0, 1])
    assert got.params["layer"] == "blocks.11.norm1"  # 16 patch tokens + the class token
    assert got.values.shape == (2, 64, 64, 1, 2)
    assert np.abs(got.values).max() > 0
    res = ex.backend.layer(x, "blocks.11.norm1", [0])
    assert res.activations.shape == (2, 4, 4, 192)
    with pytest.raises(ValueError, match="does not fit"):
        ex.backend.layer(x, "blocks.11.norm1", [0], reshape=(5, 5))
