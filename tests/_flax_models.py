"""A Flax ResNet and a Flax ViT, in linen and in NNX, for the real-architecture tests and
benchmarks (not public API; no download, random weights).

- :class:`ResNet` (linen) / :class:`NnxResNet`: the ResNet of He et al. 2016 as the Flax
  ImageNet example writes it (``flax/examples/imagenet/models.py``): a 7x7 stride-2 stem with
  batch norm, 3x3 stride-2 max-pool, stages of basic blocks (two 3x3 convolutions with batch
  norm, projection shortcut where the shape changes), global average pool, a dense head.
  ``stage_sizes=(2, 2, 2, 2)`` is ResNet-18; ``width`` is the stem's filters (64 in the paper,
  16 here so that CI stays fast). The smallest input whose last stage is still a grid
  (``2 x 2``, for the CAM family) is 64 x 64.
- :class:`ViT` (linen) / :class:`NnxViT`: the Vision Transformer of Dosovitskiy et al. 2021 as
  ``google-research/vision_transformer`` writes it: a strided convolution as patch embedding,
  a class token, learned position embeddings, pre-norm encoder blocks (LayerNorm,
  multi-head dot-product attention, residual, LayerNorm, GELU MLP, residual), a final
  LayerNorm and a dense head on the class token. At 32 x 32 with patch 8: 16 patch tokens.

:func:`calibrated_resnet` / :func:`calibrated_nnx_resnet` set the batch-norm running
statistics to those of random images (as a trained network's would be), so that activations
stay O(1) through the depth of a random network and completeness is not vacuous.
:func:`nnx_resnet_from_linen` / :func:`nnx_vit_from_linen` build the NNX twin with the same
weights (tests check both give the same outputs).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen, nnx

RESNET18 = (2, 2, 2, 2)


# -- linen ResNet ----------------------------------------------------------------------------
class ResNetBlock(linen.Module):
    """Basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the (projected) input, ReLU."""

    filters: int
    strides: tuple[int, int] = (1, 1)
    bn_momentum: float = 0.9

    @linen.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        conv = functools.partial(linen.Conv, use_bias=False)
        norm = functools.partial(
            linen.BatchNorm, use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5
        )
        residual = x
        y = conv(self.filters, (3, 3), self.strides)(x)
        y = linen.relu(norm()(y))
        y = norm()(conv(self.filters, (3, 3))(y))
        if residual.shape != y.shape:
            residual = conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            residual = norm(name="norm_proj")(residual)
        return linen.relu(residual + y)


class ResNetStem(linen.Module):
    """7x7 stride-2 convolution, BN, ReLU, 3x3 stride-2 max-pool."""

    width: int
    bn_momentum: float = 0.9

    @linen.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        x = linen.Conv(self.width, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False)(x)
        x = linen.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5)(
            x
        )
        return linen.max_pool(linen.relu(x), (3, 3), strides=(2, 2), padding="SAME")


class ResNet(linen.Module):
    """ResNet (``stage_sizes``, ``width``, ``classes``); ``x (n, h, w, 3) -> logits``.
    Submodules: ``stem``, ``block{i}`` (in order), ``head``."""

    stage_sizes: Sequence[int] = RESNET18
    width: int = 16
    classes: int = 10
    bn_momentum: float = 0.9

    def block_specs(self) -> list[tuple[int, tuple[int, int]]]:
        """``(filters, strides)`` of every block, in order."""
        return [
            (self.width * 2**i, (2, 2) if i > 0 and j == 0 else (1, 1))
            for i, size in enumerate(self.stage_sizes)
            for j in range(size)
        ]

    @linen.compact
    def __call__(self, x: Any, train: bool = False) -> Any:
        x = ResNetStem(self.width, self.bn_momentum, name="stem")(x, train)
        for i, (filters, strides) in enumerate(self.block_specs()):
            x = ResNetBlock(filters, strides, self.bn_momentum, name=f"block{i}")(x, train)
        return linen.Dense(self.classes, name="head")(x.mean(axis=(1, 2)))


def random_variables(model: linen.Module, size: int, seed: int = 0) -> dict[str, Any]:
    """Variables shaped as ``model.init`` makes them (abstract evaluation, nothing compiled),
    drawn with NumPy (the first ``jax.random`` calls cost tens of seconds of compilation on a
    busy CPU): kernels He normal ``N(0, 2 / fan_in)``, class token and position embeddings
    ``N(0, 0.02)``, norm scales 1, biases 0 (batch-norm statistics mean 0, variance 1)."""
    rng = np.random.default_rng(seed)
    spec = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.ShapeDtypeStruct((2,), jnp.uint32), spec)

    def draw(path: Any, leaf: Any) -> Any:
        name, shape = str(getattr(path[-1], "key", path[-1])), tuple(leaf.shape)
        if name == "kernel":
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 2 else shape[0]
            value = rng.normal(scale=np.sqrt(2.0 / fan_in), size=shape)
        elif name in ("cls", "pos_embedding"):
            value = rng.normal(scale=0.02, size=shape)
        elif name in ("scale", "var"):
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        return jnp.asarray(value, jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def calibrated_resnet(model: ResNet, size: int, seed: int = 0) -> tuple[ResNet, dict[str, Any]]:
    """``(model, variables)``: random weights (:func:`random_variables`), batch-norm running
    statistics equal to those of 8 random images (one pass in training mode, momentum 0)."""
    x = jnp.asarray(np.random.default_rng(seed + 1).random((8, size, size, 3), np.float32))
    variables = random_variables(model, size, seed)
    calibrate = jax.jit(
        functools.partial(model.clone(bn_momentum=0.0).apply, train=True, mutable=["batch_stats"])
    )
    _, stats = calibrate(variables, x)
    return model, {"params": variables["params"], "batch_stats": stats["batch_stats"]}


# -- NNX ResNet ------------------------------------------------------------------------------
class NnxResNetBlock(nnx.Module):
    def __init__(self, cin: int, filters: int, strides: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(cin, filters, (3, 3), strides=strides, use_bias=False, rngs=rngs)
        self.norm1 = nnx.BatchNorm(filters, epsilon=1e-5, rngs=rngs)
        self.conv2 = nnx.Conv(filters, filters, (3, 3), use_bias=False, rngs=rngs)
        self.norm2 = nnx.BatchNorm(filters, epsilon=1e-5, rngs=rngs)
        self.projected = strides != 1 or cin != filters
        if self.projected:
            self.proj = nnx.Conv(cin, filters, (1, 1), strides=strides, use_bias=False, rngs=rngs)
            self.proj_norm = nnx.BatchNorm(filters, epsilon=1e-5, rngs=rngs)

    def __call__(self, x: Any) -> Any:
        y = nnx.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        residual = self.proj_norm(self.proj(x)) if self.projected else x
        return nnx.relu(residual + y)


class NnxResNet(nnx.Module):
    """The NNX twin of :class:`ResNet`: ``stem_conv``, ``stem_norm``, ``blocks[i]``, ``head``;
    :meth:`features` is everything before the head."""

    def __init__(
        self,
        stage_sizes: Sequence[int] = RESNET18,
        width: int = 16,
        classes: int = 10,
        *,
        rngs: nnx.Rngs,
    ):
        self.stem_conv = nnx.Conv(
            3, width, (7, 7), strides=2, padding=[(3, 3), (3, 3)], use_bias=False, rngs=rngs
        )
        self.stem_norm = nnx.BatchNorm(width, epsilon=1e-5, rngs=rngs)
        specs = ResNet(tuple(stage_sizes), width, classes).block_specs()
        cins = [width] + [f for f, _ in specs[:-1]]
        self.blocks = nnx.List(
            [NnxResNetBlock(c, f, s[0], rngs=rngs) for c, (f, s) in zip(cins, specs)]
        )
        self.head = nnx.Linear(specs[-1][0], classes, rngs=rngs)

    def features(self, x: Any) -> Any:
        x = nnx.relu(self.stem_norm(self.stem_conv(x)))
        x = linen.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for block in self.blocks:
            x = block(x)
        return x

    def __call__(self, x: Any) -> Any:
        return self.head(self.features(x).mean(axis=(1, 2)))


def nnx_resnet_from_linen(model: ResNet, variables: dict[str, Any]) -> NnxResNet:
    """An :class:`NnxResNet` holding the weights and statistics of a linen :class:`ResNet`."""
    net = nnx.eval_shape(
        lambda: NnxResNet(model.stage_sizes, model.width, model.classes, rngs=nnx.Rngs(0))
    )  # abstract: every value is set below
    p, s = variables["params"], variables["batch_stats"]

    def conv(dst: Any, src: dict) -> None:
        dst.kernel.set_value(src["kernel"])

    def norm(dst: Any, src_p: dict, src_s: dict) -> None:
        for name, value in (*src_p.items(), *src_s.items()):
            getattr(dst, name).set_value(value)

    conv(net.stem_conv, p["stem"]["Conv_0"])
    norm(net.stem_norm, p["stem"]["BatchNorm_0"], s["stem"]["BatchNorm_0"])
    for i, block in enumerate(net.blocks):
        bp, bs = p[f"block{i}"], s[f"block{i}"]
        conv(block.conv1, bp["Conv_0"])
        norm(block.norm1, bp["BatchNorm_0"], bs["BatchNorm_0"])
        conv(block.conv2, bp["Conv_1"])
        norm(block.norm2, bp["BatchNorm_1"], bs["BatchNorm_1"])
        if block.projected:
            conv(block.proj, bp["conv_proj"])
            norm(block.proj_norm, bp["norm_proj"], bs["norm_proj"])
    net.head.kernel.set_value(p["head"]["kernel"])
    net.head.bias.set_value(p["head"]["bias"])
    net.eval()
    return net


# -- linen ViT -------------------------------------------------------------------------------
class MlpBlock(linen.Module):
    hidden: int

    @linen.compact
    def __call__(self, x: Any) -> Any:
        y = linen.gelu(linen.Dense(self.hidden)(x))
        return linen.Dense(x.shape[-1])(y)


class EncoderBlock(linen.Module):
    """Pre-norm transformer block: ``x + MHA(LN(x))``, then ``+ MLP(LN(.))``."""

    heads: int
    mlp: int

    @linen.compact
    def __call__(self, x: Any) -> Any:
        y = linen.LayerNorm(name="norm1")(x)
        y = linen.MultiHeadDotProductAttention(num_heads=self.heads, name="attn")(y, y)
        x = x + y
        y = MlpBlock(self.mlp, name="mlp")(linen.LayerNorm(name="norm2")(x))
        return x + y


class PatchEmbed(linen.Module):
    """Patches by a strided convolution, a class token in front, position embeddings added."""

    patch: int
    dim: int

    @linen.compact
    def __call__(self, x: Any) -> Any:
        p = self.patch
        x = linen.Conv(self.dim, (p, p), strides=(p, p), padding="VALID", name="conv")(x)
        n, h, w, d = x.shape
        x = x.reshape(n, h * w, d)
        cls = self.param("cls", linen.initializers.normal(0.02), (1, 1, d))
        x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, d)), x], axis=1)
        pos = self.param("pos_embedding", linen.initializers.normal(0.02), (1, h * w + 1, d))
        return x + pos


class ViT(linen.Module):
    """ViT (``patch``, ``dim``, ``depth``, ``heads``, ``mlp``, ``classes``); submodules
    ``embed``, ``block{i}``, ``norm``, ``head`` (on the class token)."""

    patch: int = 8
    dim: int = 32
    depth: int = 3
    heads: int = 2
    mlp: int = 64
    classes: int = 10

    @linen.compact
    def __call__(self, x: Any) -> Any:
        x = PatchEmbed(self.patch, self.dim, name="embed")(x)
        for i in range(self.depth):
            x = EncoderBlock(self.heads, self.mlp, name=f"block{i}")(x)
        x = linen.LayerNorm(name="norm")(x)
        return linen.Dense(self.classes, name="head")(x[:, 0])


def random_vit(model: ViT, size: int, seed: int = 0) -> tuple[ViT, dict[str, Any]]:
    """``(model, variables)`` with seeded random weights (:func:`random_variables`)."""
    return model, random_variables(model, size, seed)


# -- NNX ViT ---------------------------------------------------------------------------------
class NnxEncoderBlock(nnx.Module):
    def __init__(self, dim: int, heads: int, mlp: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(heads, dim, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(dim, rngs=rngs)
        self.fc1 = nnx.Linear(dim, mlp, rngs=rngs)
        self.fc2 = nnx.Linear(mlp, dim, rngs=rngs)

    def __call__(self, x: Any) -> Any:
        y = self.norm1(x)
        x = x + self.attn(y, y)
        return x + self.fc2(nnx.gelu(self.fc1(self.norm2(x))))


class NnxViT(nnx.Module):
    """The NNX twin of :class:`ViT`: ``patch``, ``cls``, ``pos``, ``blocks[i]``, ``norm``,
    ``head``; :meth:`tokens` is the embedding."""

    def __init__(
        self,
        size: int,
        patch: int = 8,
        dim: int = 32,
        depth: int = 3,
        heads: int = 2,
        mlp: int = 64,
        classes: int = 10,
        *,
        rngs: nnx.Rngs,
    ):
        t = (size // patch) ** 2
        self.patch = nnx.Conv(3, dim, (patch, patch), strides=patch, padding="VALID", rngs=rngs)
        self.cls = nnx.Param(jnp.zeros((1, 1, dim)))
        self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (1, t + 1, dim)))
        self.blocks = nnx.List([NnxEncoderBlock(dim, heads, mlp, rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.head = nnx.Linear(dim, classes, rngs=rngs)

    def tokens(self, x: Any) -> Any:
        x = self.patch(x)
        n, h, w, d = x.shape
        x = x.reshape(n, h * w, d)
        cls = jnp.broadcast_to(self.cls[...], (n, 1, d))
        return jnp.concatenate([cls, x], axis=1) + self.pos[...]

    def __call__(self, x: Any) -> Any:
        x = self.tokens(x)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def nnx_vit_from_linen(model: ViT, variables: dict[str, Any], size: int) -> NnxViT:
    """An :class:`NnxViT` holding the weights of a linen :class:`ViT`."""
    net = nnx.eval_shape(
        lambda: NnxViT(
            size,
            model.patch,
            model.dim,
            model.depth,
            model.heads,
            model.mlp,
            model.classes,
            rngs=nnx.Rngs(0),
        )
    )  # abstract: every value is set below
    p = variables["params"]

    def copy(dst: Any, src: dict) -> None:
        for name, value in src.items():
            getattr(dst, name).set_value(value)

    copy(net.patch, p["embed"]["conv"])
    net.cls.set_value(p["embed"]["cls"])
    net.pos.set_value(p["embed"]["pos_embedding"])
    for i, block in enumerate(net.blocks):
        bp = p[f"block{i}"]
        copy(block.norm1, bp["norm1"])
        copy(block.norm2, bp["norm2"])
        for name in ("query", "key", "value", "out"):
            copy(getattr(block.attn, name), bp["attn"][name])
        copy(block.fc1, bp["mlp"]["Dense_0"])
        copy(block.fc2, bp["mlp"]["Dense_1"])
    copy(net.norm, p["norm"])
    copy(net.head, p["head"])
    net.eval()
    return net
