"""Small Keras 3 models that isolate one modern layer each, on whichever Keras backend the
process runs (``KERAS_BACKEND``), and the DeepLIFT completeness of a backend on them.

Used by :mod:`tests.backends.test_deeplift_keras_layers` in process (TensorFlow) and in a
subprocess (JAX): the Keras backend is fixed per process.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHAPE = (8, 8, 3)


def _head(x):
    from keras import layers

    return layers.Dense(4)(layers.Flatten()(x))


def _model(body: Callable) -> Callable:
    def build():
        import keras

        keras.utils.set_random_seed(0)
        inp = keras.Input(SHAPE)
        return keras.Model(inp, _head(body(keras, inp)))

    return build


def _layer_norm(keras, x):
    return keras.layers.LayerNormalization()(keras.layers.Conv2D(4, 3)(x))


def _attention(keras, x):
    from keras import layers

    t = layers.Dense(8)(layers.Reshape((SHAPE[0] * SHAPE[1], SHAPE[2]))(x))
    return layers.MultiHeadAttention(num_heads=2, key_dim=4)(t, t)


def _gelu(keras, x):
    x = keras.layers.Conv2D(4, 3)(x)
    return keras.layers.Activation("gelu")(x)


def _gelu_tanh(keras, x):
    x = keras.layers.Conv2D(4, 3)(x)
    return keras.layers.Lambda(lambda t: keras.activations.gelu(t, approximate=True))(x)


def _depthwise(keras, x):
    return keras.layers.DepthwiseConv2D(3, activation="relu")(x)


def _grouped(keras, x):
    x = keras.layers.Conv2D(6, 3, groups=3, activation="relu")(x)
    return keras.layers.Conv2D(6, 3, groups=6)(x)


def _squeeze_excite(keras, x):
    from keras import layers

    x = layers.Conv2D(4, 3, activation="relu")(x)
    g = layers.GlobalAveragePooling2D(keepdims=True)(x)
    g = layers.Dense(4, activation="sigmoid")(layers.Dense(2, activation="relu")(g))
    return layers.Multiply()([x, g])


def _batch_norm(keras, x):
    from keras import layers

    bn = layers.BatchNormalization()
    x = bn(layers.Conv2D(4, 3)(x))
    rng = np.random.default_rng(1)  # moving statistics away from (0, 1)
    bn.moving_mean.assign(rng.normal(size=4).astype(np.float32))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=4).astype(np.float32))
    return layers.ReLU()(x)


def _residual(keras, x):
    from keras import layers

    y = layers.Conv2D(3, 3, padding="same", activation="relu")(x)
    return layers.Activation("swish")(layers.Add()([x, y]))


def _hard_swish(keras, x):
    from keras import layers

    x = layers.Activation("hard_swish")(layers.Conv2D(4, 3)(x))
    return layers.ReLU(max_value=6.0)(x)


MODELS: dict[str, Callable] = {
    "layer_norm": _model(_layer_norm),
    "multi_head_attention": _model(_attention),
    "gelu": _model(_gelu),
    "gelu_tanh": _model(_gelu_tanh),
    "depthwise_conv": _model(_depthwise),
    "grouped_conv": _model(_grouped),
    "squeeze_excite": _model(_squeeze_excite),
    "batch_norm": _model(_batch_norm),
    "residual_add": _model(_residual),
    "hard_swish": _model(_hard_swish),
}


def relative_completeness(model, n: int = 2, b: int = 3, outputs=(0, 3)) -> float:
    """DeepLIFT's relative completeness error on ``model`` through ``wrap(model).deeplift``
    (random normal images and references)."""
    from xaiwidgets.backends import wrap
    from xaiwidgets.explainers._completeness import completeness_gap, relative_error

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, *SHAPE)).astype(np.float32)
    refs = rng.normal(size=(b, *SHAPE)).astype(np.float32)
    backend = wrap(model)
    out = list(outputs)
    phi = backend.deeplift(x, refs, out)
    fx = backend.predict(x)[:, out]
    base = np.broadcast_to(backend.predict(refs)[:, out].mean(0), fx.shape)
    return relative_error(completeness_gap(phi, fx, base), fx, base)
