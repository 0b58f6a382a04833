"""JAX DeepLIFT through a softmax whose row holds a logit that does not move (a ViT's class
token: constant query and key): the row maximum's change must reach the argmaxes (the exact
shift), else relative completeness was 0.2-0.5 on a Flax ViT-style class token; and Flax
NNX attention, whose softmax transposes its logits between ``max`` and ``exp`` (the pattern
was not recognised: 0.0175)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from xaiwidgets.backends.jax_backend import JaxBackend  # noqa: E402

rng = np.random.default_rng(0)
W = jnp.asarray(rng.normal(size=(48, 40)).astype(np.float32))
V = jnp.asarray(rng.normal(size=(40, 10)).astype(np.float32))
CLS = jnp.asarray(rng.normal(size=(1, 1, 40)).astype(np.float32))


def _tokens(z):
    t = z.reshape(z.shape[0], 4, 48) @ W  # 4 patch tokens
    return jnp.concatenate([jnp.broadcast_to(CLS, (t.shape[0], 1, 40)), t], axis=1)


@pytest.mark.parametrize("row", [0, 1])
def test_softmax_with_a_constant_logit_is_complete(row):
    model = JaxBackend(lambda z: jax.nn.softmax(3 * _tokens(z), axis=1)[:, row] @ V)
    bg = rng.random((3, 8, 8, 3), np.float32)
    x = rng.random((2, 8, 8, 3), np.float32)
    values = model.deeplift(x, bg, np.array([0, 3]))
    delta = model.predict(x)[:, [0, 3]] - model.predict(bg)[:, [0, 3]].mean(0)
    assert np.abs(delta).max() > 0.1
    gap = delta - values.reshape(2, -1, 2).sum(1)
    assert np.abs(gap).max() <= 1e-4 * np.abs(delta).max()


def test_nnx_attention_softmax_through_transposes_is_complete():
    nnx = pytest.importorskip("flax.nnx")

    class Attend(nnx.Module):
        def __init__(self, rngs):
            self.emb = nnx.Linear(48, 16, rngs=rngs)
            self.cls = nnx.Param(jnp.ones((1, 1, 16)))
            self.attn = nnx.MultiHeadAttention(2, 16, decode=False, rngs=rngs)
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x):
            t = self.emb(x.reshape(x.shape[0], 4, 48))
            t = jnp.concatenate([jnp.broadcast_to(self.cls[...], (t.shape[0], 1, 16)), t], 1)
            return self.head((t + self.attn(t, t))[:, 0])

    model = JaxBackend(Attend(nnx.Rngs(0)))
    bg = rng.random((3, 8, 8, 3), np.float32)
    x = rng.random((2, 8, 8, 3), np.float32)
    values = model.deeplift(x, bg, np.array([0, 3]))
    delta = model.predict(x)[:, [0, 3]] - model.predict(bg)[:, [0, 3]].mean(0)
    assert np.abs(delta).max() > 0.05
    gap = delta - values.reshape(2, -1, 2).sum(1)
    assert np.abs(gap).max() <= 1e-4 * np.abs(delta).max()
