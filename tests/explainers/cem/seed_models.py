"""The models of the CEM tests: a seed-like CNN (softmax) and conv autoencoder in torch, the
settings the tests run them with, and Keras 3 / Flax linen copies of both (same weights).

The fixtures that train them (``digits``, ``seedlike``) are in this folder's ``conftest.py``.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest

LO, HI = -0.5, 0.5  # the seed centres MNIST to -0.5..0.5
FAST = dict(feature_range=(LO, HI), max_iterations=60, c_init=10.0, c_steps=3, clip=(-100, 100))


@contextmanager
def torch_threads(n: int = 1):
    torch = pytest.importorskip("torch")
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield torch
    finally:
        torch.set_num_threads(old)


def tiny_cnn(torch):
    """Two conv + pool blocks and a softmax over 10 classes, for 28x28x1 NCHW digits."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(392, 10),
        nn.Softmax(-1),
    )


def tiny_ae(torch):
    """A conv autoencoder 28x28x1 -> 14x14x1 -> 28x28x1 (NCHW)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 1, 3, padding=1),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        nn.Conv2d(8, 1, 3, padding=1),
    )


def fit(torch, model, x, target, loss, epochs):
    """``model`` trained with Adam on NHWC ``x`` (batches of 64), in eval mode."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=4e-3)
    xt, tt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(target)
    for _ in range(epochs):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            loss(model(xt[i : i + 64]), tt[i : i + 64]).backward()
            opt.step()
    return model.eval()


def framework_copies(cnn, ae):
    """Keras 3 and Flax linen copies of the torch test CNN and autoencoder (NHWC models)."""
    keras = pytest.importorskip("keras")
    linen = pytest.importorskip("flax.linen")
    jnp = pytest.importorskip("jax.numpy")
    pytest.importorskip("tensorflow")

    def convs(m):
        return [
            (p.weight.detach().numpy().transpose(2, 3, 1, 0), p.bias.detach().numpy())
            for p in m
            if type(p).__name__ == "Conv2d"
        ]

    c_conv, a_conv = convs(cnn), convs(ae)
    lin = cnn[7]
    dense_k = (
        lin.weight.detach().numpy().reshape(10, 8, 7, 7).transpose(2, 3, 1, 0).reshape(392, 10)
    )
    dense = (dense_k, lin.bias.detach().numpy())
    L = keras.layers
    kc = keras.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(10, activation="softmax"),
        ]
    )
    kc.set_weights([w for pair in c_conv + [dense] for w in pair])
    ka = keras.Sequential(
        [
            L.Input((28, 28, 1)),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(1, 3, padding="same"),
            L.Conv2D(8, 3, padding="same", activation="relu"),
            L.UpSampling2D(2),
            L.Conv2D(1, 3, padding="same"),
        ]
    )
    ka.set_weights([w for pair in a_conv for w in pair])

    class FCNN(linen.Module):
        @linen.compact
        def __call__(self, x):
            for i in range(2):
                x = linen.max_pool(
                    linen.relu(linen.Conv(8, (3, 3), name=f"c{i}")(x)), (2, 2), (2, 2)
                )
            return linen.softmax(linen.Dense(10, name="d")(x.reshape(len(x), -1)))

    class FAE(linen.Module):
        @linen.compact
        def __call__(self, x):
            x = linen.max_pool(linen.relu(linen.Conv(8, (3, 3), name="c0")(x)), (2, 2), (2, 2))
            x = linen.relu(linen.Conv(8, (3, 3), name="c2")(linen.Conv(1, (3, 3), name="c1")(x)))
            return linen.Conv(1, (3, 3), name="c3")(jnp.repeat(jnp.repeat(x, 2, 1), 2, 2))

    def params(names, pairs):
        return {
            "params": {
                n: {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
                for n, (k, b) in zip(names, pairs)
            }
        }

    fc = (FCNN(), params(["c0", "c1", "d"], c_conv + [dense]))
    fa = (FAE(), params(["c0", "c1", "c2", "c3"], a_conv))
    return {"keras": (kc, ka), "flax": (fc, fa)}
