"""Every explainer on a Flax ResNet-18 and a Flax ViT (``tests/_flax_models.py``), each in
linen and in NNX (the NNX twin holds the linen weights), random-initialised at the smallest
input the architecture allows: 64 x 64 for the ResNet (its last stage is a 2 x 2 grid), 32 x 32
for the ViT (patch 8: 16 patch tokens and a class token).

Checked against the math, computed independently of the backend (the model's own apply,
``jax.grad``, the network split at the layer by hand):

- DeepExplainer: relative completeness <= 1e-3 with ``strict=True``, no op without a rule;
- IntegratedGradients: equal to ``(x - b) * mean_k grad f(b + (k + 1/2)/m (x - b))``
  (midpoint rule); its completeness gap (a Riemann sum's: about a thousand steps to meet 1e-2
  from a black image on these random networks) measured, reported and warned about with the
  steps that would meet it;
- GradientExplainer (expected gradients): the completeness it reports is the gap of its values;
- Saliency equal to ``jax.grad``; SmoothGrad with no noise equal to Saliency;
- Partition and Permutation: efficiency ``sum phi = f(x) - f(all hidden)``;
- Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM, Eigen-CAM and Score-CAM equal to their formula
  on the activations and gradients of the split network; the default layer's name;
- Occlusion equal to ``f(x) - f(x with the window hidden)`` for non-overlapping windows.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402
from flax import linen, nnx  # noqa: E402

import xaiwidgets.explainers.cam as cam  # noqa: E402
from tests import _flax_models as fm  # noqa: E402
from xaiwidgets.backends import wrap  # noqa: E402
from xaiwidgets.explainers import (  # noqa: E402
    DeepExplainer,
    GradientExplainer,
    IntegratedGradients,
    Occlusion,
    PartitionExplainer,
    PermutationExplainer,
    Saliency,
    SmoothGrad,
)
from xaiwidgets.explainers._completeness import (  # noqa: E402
    IncompleteAttributionWarning,
    completeness_gap,
    relative_error,
)

ARCHS = ["resnet-linen", "resnet-nnx", "vit-linen", "vit-nnx"]
OUTPUTS = [0, 3]
N_X, N_BG = 2, 3


@dataclass
class Net:
    """A wrapped Flax model and what the independent computations need."""

    name: str
    backend: Any
    f: Any  # jax images -> logits, the model's own forward pass (no backend)
    size: int
    layer: str  # the layer the CAM tests explain (also what layer=None picks)
    split: Any  # images -> (the layer's activations, activations -> logits): the split network


def _resnet(nnx_twin: bool) -> Net:
    size = 64
    model, variables = fm.calibrated_resnet(fm.ResNet(), size)
    p, s = variables["params"], variables["batch_stats"]
    last = len(model.block_specs()) - 1
    if nnx_twin:
        net = fm.nnx_resnet_from_linen(model, variables)

        def nnx_split(x: Any) -> Any:
            return net.features(x), lambda a: net.head(a.mean(axis=(1, 2)))

        return Net("resnet-nnx", wrap(net), net, size, f"blocks/{last}", nnx_split)

    def split(x: Any) -> Any:
        a = fm.ResNetStem(model.width).apply({"params": p["stem"], "batch_stats": s["stem"]}, x)
        for i, (filters, strides) in enumerate(model.block_specs()):
            v = {"params": p[f"block{i}"], "batch_stats": s[f"block{i}"]}
            a = fm.ResNetBlock(filters, strides).apply(v, a)
        head = linen.Dense(model.classes)
        return a, lambda a: head.apply({"params": p["head"]}, a.mean(axis=(1, 2)))

    f = functools.partial(model.apply, variables)
    return Net("resnet-linen", wrap((model, variables)), f, size, f"block{last}", split)


def _vit(nnx_twin: bool) -> Net:
    """The layer: the last block's first LayerNorm (the default: after it the patch tokens
    reach the class token only through attention's keys and values; a block's output is a
    poor CAM layer, since the next LayerNorm makes sum_d a_d dy/da_d = 0 per token)."""
    size = 32
    model, variables = fm.random_vit(fm.ViT(), size)
    p = variables["params"]
    d = model.depth
    if nnx_twin:
        net = fm.nnx_vit_from_linen(model, variables, size)
        last = net.blocks[d - 1]

        def nnx_split(x: Any) -> Any:
            t = net.tokens(x)
            for block in net.blocks[: d - 1]:
                t = block(t)

            def tail(a: Any) -> Any:
                h = t + last.attn(a, a)
                h = h + last.fc2(nnx.gelu(last.fc1(last.norm2(h))))
                return net.head(net.norm(h)[:, 0])

            return last.norm1(t), tail

        return Net("vit-nnx", wrap(net), net, size, f"blocks/{d - 1}/norm1", nnx_split)

    bp = p[f"block{d - 1}"]

    def ln(params: Any, t: Any) -> Any:
        return linen.LayerNorm().apply({"params": params}, t)

    def split(x: Any) -> Any:
        t = fm.PatchEmbed(model.patch, model.dim).apply({"params": p["embed"]}, x)
        for i in range(d - 1):
            block = fm.EncoderBlock(model.heads, model.mlp)
            t = block.apply({"params": p[f"block{i}"]}, t)

        def tail(a: Any) -> Any:
            attn = linen.MultiHeadDotProductAttention(num_heads=model.heads)
            h = t + attn.apply({"params": bp["attn"]}, a, a)
            h = h + fm.MlpBlock(model.mlp).apply({"params": bp["mlp"]}, ln(bp["norm2"], h))
            head = linen.Dense(model.classes)
            return head.apply({"params": p["head"]}, ln(p["norm"], h)[:, 0])

        return ln(bp["norm1"], t), tail

    f = functools.partial(model.apply, variables)
    return Net("vit-linen", wrap((model, variables)), f, size, f"block{d - 1}/norm1", split)


_BUILD = {
    "resnet-linen": lambda: _resnet(False),
    "resnet-nnx": lambda: _resnet(True),
    "vit-linen": lambda: _vit(False),
    "vit-nnx": lambda: _vit(True),
}
_NETS: dict[str, Net] = {}


@pytest.fixture(scope="module", params=ARCHS)
def net(request: pytest.FixtureRequest) -> Net:
    """One wrapped model per architecture, shared by the module's tests (compiles reused)."""
    if request.param not in _NETS:
        _NETS[request.param] = _BUILD[request.param]()
    return _NETS[request.param]


def _images(net: Net, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, net.size, net.size, 3), np.float32)


def _logits(net: Net, x: np.ndarray) -> np.ndarray:
    return np.asarray(net.f(jnp.asarray(x)), np.float64)


def _input_grads(net: Net, x: np.ndarray, outputs: list[int]) -> np.ndarray:
    """``(n, h, w, c, o)`` by ``jax.grad`` of the model's own forward pass (one compiled
    call for every image and output)."""

    def grads(z: Any) -> Any:
        return jnp.stack([jax.grad(lambda z, c=c: net.f(z)[:, c].sum())(z) for c in outputs], -1)

    return np.asarray(jax.jit(grads)(jnp.asarray(x)), np.float64)


def test_nnx_twins_equal_linen():
    for arch in ("resnet", "vit"):
        a, b = (_NETS.get(f"{arch}-{k}") or _BUILD[f"{arch}-{k}"]() for k in ("linen", "nnx"))
        x = _images(a, 3, 9)
        np.testing.assert_allclose(a.backend.predict(x), b.backend.predict(x), atol=1e-4)
        np.testing.assert_allclose(a.backend.predict(x), _logits(a, x), rtol=1e-5, atol=1e-5)


def test_deep_explainer_is_complete(net):
    bg, x = _images(net, N_BG, 0), _images(net, N_X, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no op without a rule, no incompleteness
        ex = DeepExplainer(net.backend, bg, strict=True)(x, outputs=OUTPUTS)
    delta = ex.predictions[:, OUTPUTS] - ex.base_values
    assert np.abs(delta).max() > 1e-2  # the outputs move: completeness is not vacuous
    np.testing.assert_allclose(ex.base_values[0], _logits(net, bg)[:, OUTPUTS].mean(0), atol=1e-4)
    assert ex.params["relative_completeness_error"] <= 1e-3
    assert ex.params["ops_without_rule"] == []
    total = ex.values.reshape(N_X, -1, len(OUTPUTS)).sum(1)
    np.testing.assert_allclose(total, delta, atol=1e-3 * np.abs(delta).max(), rtol=0)


def test_integrated_gradients_equal_the_midpoint_sum_and_report_their_gap(net):
    x, steps = _images(net, N_X, 2), 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex = IntegratedGradients(net.backend, 0.0, steps=steps, rule="middle")(x, outputs=OUTPUTS)
    points = np.concatenate([(k + 0.5) / steps * x for k in range(steps)])
    grads = _input_grads(net, points, OUTPUTS).reshape((steps,) + x.shape + (len(OUTPUTS),))
    expected = x[..., None] * grads.mean(axis=0)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ex.values, expected, rtol=1e-3, atol=1e-4 * scale)
    # completeness: a Riemann sum's, measured and reported, with the steps that would meet it
    fx = ex.predictions[:, OUTPUTS]
    rel = relative_error(completeness_gap(ex.values, fx, ex.base_values), fx, ex.base_values)
    assert ex.params["relative_completeness_error"] == pytest.approx(rel, rel=1e-6, abs=1e-9)
    said = [str(w.message) for w in caught if issubclass(w.category, IncompleteAttributionWarning)]
    if rel > ex.params["tolerance"]:
        assert said and f"steps={ex.params['steps_for_tolerance']}" in said[0]
    else:
        assert not said


def test_expected_gradients_report_their_own_gap(net):
    bg, x = _images(net, N_BG, 4), _images(net, N_X, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 32 samples: may be above the tolerance, and says so
        ex = GradientExplainer(net.backend, bg, nsamples=32)(x, outputs=OUTPUTS)
    fx = ex.predictions[:, OUTPUTS]
    assert np.isfinite(ex.values).all() and np.abs(ex.values).max() > 0
    np.testing.assert_allclose(ex.base_values[0], _logits(net, bg)[:, OUTPUTS].mean(0), atol=1e-4)
    rel = relative_error(completeness_gap(ex.values, fx, ex.base_values), fx, ex.base_values)
    assert ex.params["relative_completeness_error"] == pytest.approx(rel, rel=1e-6, abs=1e-9)


def test_saliency_and_smoothgrad_equal_jax_grad(net):
    x = _images(net, N_X, 6)
    expected = _input_grads(net, x, OUTPUTS)
    sal = Saliency(net.backend)(x, outputs=OUTPUTS)
    np.testing.assert_allclose(sal.values, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    smooth = SmoothGrad(net.backend, noise=0.0, nsamples=3)(x, outputs=OUTPUTS)
    np.testing.assert_allclose(smooth.values, sal.values, rtol=1e-5, atol=1e-7)
    noisy = SmoothGrad(net.backend, noise=0.1, nsamples=4)(x, outputs=OUTPUTS)
    assert np.isfinite(noisy.values).all() and not np.allclose(noisy.values, sal.values)


@pytest.mark.parametrize("kind", ["partition", "permutation"])
def test_masking_explainers_are_efficient(net, kind):
    x = _images(net, N_X, 7)
    masker = "blur(9,9)"
    if kind == "partition":
        ex = PartitionExplainer(net.backend, masker, max_evals=64)(x, outputs=OUTPUTS)
    else:
        ex = PermutationExplainer(net.backend, masker, max_evals=64, regions=16)(x, outputs=OUTPUTS)
    fx = _logits(net, x)[:, OUTPUTS]
    total = ex.values.reshape(N_X, -1, len(OUTPUTS)).sum(1)
    np.testing.assert_allclose(total + ex.base_values, fx, rtol=1e-4, atol=1e-4)
    assert np.abs(fx - ex.base_values).max() > 1e-3  # hiding the image changes the outputs


def _split(net: Net, x: np.ndarray, outputs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Activations ``(n, h', w', d)`` and gradients ``(n, h', w', d, o)`` of the split
    network, tokens laid out on their grid (class token dropped)."""

    def split(x: Any) -> Any:
        a, tail = net.split(x)
        g = [jax.grad(lambda a, c=c: tail(a)[:, c].sum())(a) for c in outputs]
        return a, jnp.stack(g, -1)

    a, g = jax.jit(split)(jnp.asarray(x))
    a, g = np.asarray(a, np.float64), np.asarray(g, np.float64)
    if a.ndim == 3:  # (n, 1 + t, d) tokens
        side = int(np.sqrt(a.shape[1] - 1))
        a = a[:, 1:].reshape(len(a), side, side, -1)
        g = g[:, 1:].reshape(len(g), side, side, *g.shape[2:])
    return a, g


def test_cam_family_equals_the_split_network(net):
    x = _images(net, N_X, 8)
    a, g = _split(net, x, OUTPUTS)
    relu = functools.partial(np.maximum, 0)
    expected = {
        cam.GradCAM: relu(np.einsum("nhwd,ndo->nhwo", a, g.mean(axis=(1, 2)))),
        cam.HiResCAM: relu(np.einsum("nhwd,nhwdo->nhwo", a, g)),
        cam.LayerCAM: relu(np.einsum("nhwd,nhwdo->nhwo", a, relu(g))),
        cam.GradCAMPlusPlus: cam.weighted_map(a, cam.gradcam_plus_plus_weights(a, g)),
    }
    for explainer, maps in expected.items():
        got = explainer(net.backend, net.layer)(x, outputs=OUTPUTS)
        assert got.params["layer"] == net.layer
        want = cam.upsample(maps.astype(np.float32), x.shape[1:3])
        scale = max(np.abs(want).max(), 1e-12)
        np.testing.assert_allclose(got.values[..., 0, :], want, rtol=1e-3, atol=1e-4 * scale)
    # Eigen-CAM: relu of the first principal component, whose sign is a convention (on a
    # LayerNorm's output every token sums to about 0, so the sign rule sees only rounding)
    got = cam.EigenCAM(net.backend, net.layer)(x, outputs=OUTPUTS).values[..., 0, :]
    np.testing.assert_array_equal(got[..., 0], got[..., 1])  # one map for every output
    for i in range(N_X):
        centred = a[i].reshape(-1, a.shape[-1]) - a[i].reshape(-1, a.shape[-1]).mean(0)
        proj = (centred @ np.linalg.svd(centred, full_matrices=False)[2][0]).reshape(a.shape[1:3])
        maps = [np.maximum(sign * proj, 0).astype(np.float32) for sign in (1, -1)]
        ups = [cam.upsample(m[None, ..., None], x.shape[1:3])[0, ..., 0] for m in maps]
        errors = [np.abs(got[i, ..., 0] - u).max() / max(np.abs(u).max(), 1e-12) for u in ups]
        assert min(errors) < 1e-3, errors


def test_default_layer_and_score_cam(net):
    x = _images(net, 1, 10)
    assert cam.GradCAM(net.backend)(x, outputs=[0]).params["layer"] == net.layer
    got = cam.ScoreCAM(net.backend, net.layer, max_channels=4)(x, outputs=OUTPUTS)
    a, _ = _split(net, x, OUTPUTS[:1])
    order = np.argsort(-a[0].mean(axis=(0, 1)), kind="stable")[:4]
    up = cam.upsample(a[0][None][..., order].astype(np.float32), x.shape[1:3])[0]
    lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
    masks = (up - lo) / np.where(hi > lo, hi - lo, 1.0)  # (h, w, 4) in [0, 1]
    masked = x[0][None] * np.moveaxis(masks, -1, 0)[..., None]  # (4, h, w, c)
    logits = _logits(net, masked)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    small = a[0][..., order]
    want = np.maximum(np.einsum("hwk,ko->hwo", small, probs[:, OUTPUTS]), 0)
    want = cam.upsample(want[None].astype(np.float32), x.shape[1:3])[0]
    np.testing.assert_allclose(got.values[0, :, :, 0], want, rtol=1e-3, atol=1e-4 * want.max())


def test_occlusion_equals_hiding_each_window(net):
    x = _images(net, N_X, 11)
    win = net.size // 4
    got = Occlusion(net.backend, window=win, strides=win)(x, outputs=OUTPUTS)
    fx = _logits(net, x)[:, OUTPUTS]
    expected = np.empty_like(got.values)
    for i in range(0, net.size, win):
        for j in range(0, net.size, win):
            hidden = x.copy()
            hidden[:, i : i + win, j : j + win] = 0.0
            drop = fx - _logits(net, hidden)[:, OUTPUTS]
            expected[:, i : i + win, j : j + win, 0, :] = drop[:, None, None]
    np.testing.assert_allclose(got.values, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected).max() > 1e-3
