"""Grad-CAM family on JAX models: a Flax linen CNN against an independent computation
(the same network split at the layer by hand), the default layer, a Flax ViT-style token
layer, and NNX modules by path or submodule."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
linen = pytest.importorskip("flax.linen")
import jax.numpy as jnp  # noqa: E402

import xaiwidgets.explainers.cam as cam  # noqa: E402


class Features(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = linen.relu(linen.Conv(6, (3, 3), name="conv1")(x))
        return linen.relu(linen.Conv(8, (3, 3), strides=2, name="conv2")(x))


class Head(linen.Module):
    @linen.compact
    def __call__(self, a):
        return linen.Dense(4, name="dense")(a.mean(axis=(1, 2)) + 0.1 * (a**2).mean(axis=(1, 2)))


class CNN(linen.Module):
    @linen.compact
    def __call__(self, x):
        return Head(name="head")(Features(name="features")(x))


@pytest.fixture(scope="module")
def cnn():
    model = CNN()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))
    return model, variables


def test_gradcam_equals_the_split_network(cnn):
    model, variables = cnn
    x = np.random.default_rng(0).random((3, 16, 16, 3), dtype=np.float32)
    got = cam.GradCAM((model, variables), "features")(x, outputs=[0, 3])
    p = variables["params"]
    a = Features().apply({"params": p["features"]}, x)  # (3, 8, 8, 8)
    for j, cls in enumerate((0, 3)):
        g = jax.grad(lambda a, c=cls: Head().apply({"params": p["head"]}, a)[:, c].sum())(a)
        small = np.maximum((np.asarray(g).mean(axis=(1, 2), keepdims=True) * a).sum(-1), 0)
        expected = cam.upsample(np.asarray(small, np.float32)[..., None], (16, 16))[..., 0]
        np.testing.assert_allclose(got.values[..., 0, j], expected, rtol=1e-4, atol=1e-6)
    assert got.params["layer"] == "features"
    # a nested path, "." or "/" separated: conv2's own output (before the ReLU)
    inner = cam.HiResCAM((model, variables), "features.conv2")(x, outputs=[0])
    assert inner.params["layer"] == "features/conv2"
    pre = linen.Conv(8, (3, 3), strides=2).apply(
        {"params": p["features"]["conv2"]},
        jax.nn.relu(linen.Conv(6, (3, 3)).apply({"params": p["features"]["conv1"]}, x)),
    )
    g = jax.grad(lambda z: Head().apply({"params": p["head"]}, jax.nn.relu(z))[:, 0].sum())(pre)
    small = np.maximum(np.asarray((g * pre).sum(-1)), 0).astype(np.float32)
    expected = cam.upsample(small[..., None], (16, 16))[..., 0]
    np.testing.assert_allclose(inner.values[..., 0, 0], expected, rtol=1e-4, atol=1e-6)


def test_default_layer_is_the_last_spatial_module(cnn):
    model, variables = cnn
    x = np.random.default_rng(1).random((2, 16, 16, 3), dtype=np.float32)
    ex = cam.LayerCAM((model, variables))
    got = ex(x, outputs=[1])
    assert got.params["layer"] == "features"  # the block whose output the head reads
    with pytest.raises(ValueError, match="did not run"):
        cam.GradCAM((model, variables), "nope")(x)


def test_tokens_become_a_grid():
    class Tokens(linen.Module):
        @linen.compact
        def __call__(self, x):
            t = linen.Conv(5, (4, 4), strides=4, name="patch")(x).reshape(x.shape[0], -1, 5)
            cls = jnp.zeros((x.shape[0], 1, 5))
            t = linen.LayerNorm(name="norm")(jnp.concatenate([cls, t], axis=1))
            return linen.Dense(3, name="head")(t.mean(axis=1))

    model = Tokens()
    variables = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 16, 16, 3)))
    x = np.random.default_rng(2).random((2, 16, 16, 3), dtype=np.float32)
    res = cam.HiResCAM((model, variables), "norm").backend.layer(x, "norm", [0])
    assert res.activations.shape == (2, 4, 4, 5)  # 1 + 16 tokens: the first dropped
    assert res.gradients.shape == (2, 4, 4, 5, 1)


def test_nnx_layer_by_path_or_submodule_equals_the_split_network():
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(3, 4, (3, 3), rngs=rngs)
            self.blocks = nnx.List([nnx.Conv(4, 5, (3, 3), strides=2, rngs=rngs)])
            self.dense = nnx.Linear(5, 2, rngs=rngs)

        def head(self, a):
            return self.dense((a**2).mean(axis=(1, 2)))

        def __call__(self, x):
            return self.head(self.blocks[0](nnx.relu(self.conv(x))))

    net = Net(nnx.Rngs(0))
    before = nnx.state(net)
    x = np.random.default_rng(3).random((3, 8, 8, 3), dtype=np.float32)
    got = cam.GradCAM(net, "blocks.0")(x, outputs=[0, 1])
    assert got.params["layer"] == "blocks/0"
    a = net.blocks[0](nnx.relu(net.conv(x)))  # the split network, no taps
    for j in range(2):
        g = jax.grad(lambda a, j=j: net.head(a)[:, j].sum())(a)
        small = np.maximum((np.asarray(g).mean(axis=(1, 2), keepdims=True) * a).sum(-1), 0)
        expected = cam.upsample(np.asarray(small, np.float32)[..., None], (8, 8))[..., 0]
        np.testing.assert_allclose(got.values[..., 0, j], expected, rtol=1e-4, atol=1e-6)
    # the submodule object names the same layer; the default is that layer too
    by_object = cam.GradCAM(net, net.blocks[0])(x, outputs=[0, 1])
    np.testing.assert_array_equal(by_object.values, got.values)
    assert cam.GradCAM(net)(x, outputs=[0, 1]).params["layer"] == "blocks/0"
    # the user's module is unchanged: same classes, same state
    assert type(net.blocks[0]) is nnx.Conv and type(net.conv) is nnx.Conv
    jax.tree_util.tree_map(np.testing.assert_array_equal, nnx.state(net), before)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        cam.GradCAM(net, "nope")(x)
    with pytest.raises(TypeError, match="NNX"):
        cam.GradCAM(net, 3)(x)
