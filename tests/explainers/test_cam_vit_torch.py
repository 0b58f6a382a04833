"""Every CAM and Occlusion on a torch ViT (timm ``vit_tiny_patch16_224`` with 2 blocks, random
weights, small images): the token layer as a grid (class token dropped), square and non-square (``reshape=``),
each map against the formula on tokens taken by the test's own hook (``cam_reference``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

import xaiwidgets.explainers.cam as cam  # noqa: E402
from tests.explainers import cam_reference as ref  # noqa: E402
from xaiwidgets.explainers import Occlusion  # noqa: E402

LAYER = "blocks.1.norm1"  # the last block's: the class token's later layers see no patch
GRADIENT = {
    "gradcam": cam.GradCAM,
    "gradcam++": cam.GradCAMPlusPlus,
    "hirescam": cam.HiResCAM,
    "layercam": cam.LayerCAM,
}


def _vit(img_size):
    torch.manual_seed(0)
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=6, img_size=img_size, depth=2
    ).eval()


def _tokens_and_grads(vit, x, outputs, grid, leading=1):
    """The block's tokens (grid tokens only, as ``grid``) and their gradients, by a hook."""
    store = {}
    module = vit.get_submodule(LAYER)
    handle = module.register_forward_hook(lambda m, i, o: store.setdefault("t", o))
    try:
        out = vit(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    finally:
        handle.remove()
    t = store["t"]
    gs = []
    for j in range(outputs.shape[1]):
        sel = out[torch.arange(len(x)), torch.from_numpy(outputs[:, j])].sum()
        (g,) = torch.autograd.grad(sel, t, retain_graph=True)
        gs.append(g)
    gh, gw = grid

    def as_grid(a):
        return a[:, leading : leading + gh * gw].reshape(len(x), gh, gw, -1).detach().numpy()

    return as_grid(t), np.stack([as_grid(g) for g in gs], -1), out.detach().numpy()


@pytest.mark.parametrize("size,grid,reshape", [(64, (4, 4), None), ((32, 64), (2, 4), (2, 4))])
def test_every_cam_on_a_vit_equals_the_formula_on_hooked_tokens(size, grid, reshape):
    vit = _vit(size)
    h, w = (size, size) if isinstance(size, int) else size
    x = np.random.default_rng(0).random((2, h, w, 3), dtype=np.float32)
    outputs = np.array([[1, 4], [0, 5]])
    acts, grads, logits = _tokens_and_grads(vit, x, outputs, grid)
    assert np.abs(grads).max() > 0
    for method, cls in GRADIENT.items():
        got = cls(vit, LAYER, reshape=reshape)(x, outputs=outputs)
        assert got.params["layer"] == LAYER
        expected = ref.upsample(ref.gradient_maps(method, acts, grads), (h, w))
        scale = max(np.abs(expected).max(), 1e-12)
        np.testing.assert_allclose(got.values[..., 0, :] / scale, expected / scale, atol=2e-4)
    eigen = cam.EigenCAM(vit, LAYER, reshape=reshape)(x, outputs=outputs).values[..., 0, 0]
    expected = ref.upsample(ref.eigen_maps(acts)[..., None], (h, w))[..., 0]
    np.testing.assert_allclose(eigen, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())

    def proba(imgs):
        with torch.no_grad():
            return ref.softmax(vit(torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy())).numpy())

    score = cam.ScoreCAM(vit, LAYER, reshape=reshape, max_channels=6, batch_size=8)
    got = score(x, outputs=outputs).values[..., 0, :]
    expected = ref.upsample(ref.score_maps(proba, x, acts, outputs, 6), (h, w))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5 * np.abs(expected).max())


def test_a_non_square_grid_needs_reshape():
    """2 x 4 patches + the class token are 9 tokens: without ``reshape`` they would be read as
    a 3 x 3 square; ``reshape=(2, 4)`` and ``(2, 4, 1)`` say what they are."""
    vit = _vit((32, 64))
    x = np.random.default_rng(1).random((1, 32, 64, 3), dtype=np.float32)
    backend = cam.GradCAM(vit, LAYER).backend
    assert backend.layer(x, LAYER, [0]).activations.shape[1:3] == (3, 3)
    a = backend.layer(x, LAYER, [0], reshape=(2, 4))
    b = backend.layer(x, LAYER, [0], reshape=(2, 4, 1))
    assert a.activations.shape == (1, 2, 4, 192)
    np.testing.assert_array_equal(a.activations, b.activations)
    acts, _, _ = _tokens_and_grads(vit, x, np.array([[0]]), (2, 4))
    np.testing.assert_allclose(a.activations, acts, rtol=1e-6, atol=1e-6)


def test_occlusion_on_a_vit_equals_the_definition():
    vit = _vit(32)
    x = np.random.default_rng(2).random((2, 32, 32, 3), dtype=np.float32)

    def predict(imgs):
        with torch.no_grad():
            return vit(torch.from_numpy(imgs.transpose(0, 3, 1, 2).copy())).numpy()

    got = Occlusion(vit, window=16, strides=8, batch_size=5)(x, top_k=2)
    expected = ref.occlusion(predict, x, got.output_indices, 16, 8)
    np.testing.assert_allclose(got.values[..., 0, :], expected, rtol=1e-4, atol=1e-5)
