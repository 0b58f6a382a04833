"""Small Keras 3 models for the CAM tests, written with ``keras.ops`` only so that they run on
the TensorFlow and the JAX Keras backends alike, and every CAM + Occlusion check on them.

Each model is ``features`` then ``head`` (nested models, or a flat Sequential cut at a layer),
so a test computes the layer's activations ``A = features(x)`` and the gradients
``dy_c / dA`` of ``head`` itself (``tf.GradientTape`` or ``jax.grad``), independently of
xaiwidgets' layer access; the maps then follow from :mod:`tests.explainers.cam_reference`.

- ``cnn_nested``: ``Sequential([features (Sequential of 2 convs), head (pool + dense)])``
- ``cnn_flat``: one Sequential, cut after its second convolution (layer ``"c2"``)
- ``vit``: a ViT (patch convolution, class token, position embedding, 2 pre-norm blocks with
  ``MultiHeadAttention``, mean pooling head); ``features`` returns the tokens
  ``(n, 1 + gh * gw, d)``; a non-square image gives a non-square grid (``reshape=``)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from tests.explainers import cam_reference as ref


class ClassToken(layers.Layer):
    """Prepends a learnt token to the patch tokens."""

    def build(self, shape):
        self.token = self.add_weight(shape=(1, 1, shape[-1]), initializer="random_normal")

    def call(self, t):
        token = ops.broadcast_to(self.token, (ops.shape(t)[0], 1, t.shape[-1]))
        return ops.concatenate([token, t], axis=1)


class PositionEmbedding(layers.Layer):
    def build(self, shape):
        self.pos = self.add_weight(shape=(1,) + tuple(shape[1:]), initializer="random_normal")

    def call(self, t):
        return t + self.pos


def cnn_nested(size=16, classes=5):
    keras.utils.set_random_seed(0)
    features = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(6, 3, padding="same", activation="relu", name="c1"),
            layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c2"),
        ],
        name="features",
    )
    head = keras.Sequential(
        [
            keras.Input(features.output_shape[1:]),
            layers.Conv2D(8, 1, activation="tanh", name="mix"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(classes, name="dense"),
        ],
        name="head",
    )
    model = keras.Sequential([keras.Input((size, size, 3)), features, head], name="nested")
    return model, features, head, "features"


def cnn_flat(size=16, classes=5):
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            layers.Conv2D(6, 3, padding="same", activation="relu", name="c1"),
            layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="c2"),
            layers.Conv2D(8, 1, activation="tanh", name="mix"),
            layers.GlobalAveragePooling2D(name="pool"),
            layers.Dense(classes, name="dense"),
        ],
        name="flat",
    )
    cut = [lyr.name for lyr in model.layers].index("c2") + 1

    def features(x):
        for lyr in model.layers[:cut]:
            x = lyr(x)
        return x

    def head(a):
        for lyr in model.layers[cut:]:
            a = lyr(a)
        return a

    return model, features, head, "c2"


def vit(image=(16, 16), patch=4, dim=16, heads=2, depth=2, classes=5):
    keras.utils.set_random_seed(2)
    gh, gw = image[0] // patch, image[1] // patch
    inp = keras.Input(tuple(image) + (3,))
    t = layers.Conv2D(dim, patch, strides=patch, name="patch")(inp)
    t = layers.Reshape((gh * gw, dim))(t)
    t = ClassToken(name="cls")(t)
    t = PositionEmbedding(name="pos")(t)
    for i in range(depth):
        h = layers.LayerNormalization(name=f"block{i}_norm1")(t)
        h = layers.MultiHeadAttention(heads, dim // heads, name=f"block{i}_attn")(h, h)
        t = layers.Add()([t, h])
        h = layers.LayerNormalization(name=f"block{i}_norm2")(t)
        h = layers.Dense(2 * dim, activation="gelu")(h)
        t = layers.Add(name=f"block{i}_out")([t, layers.Dense(dim)(h)])
    features = keras.Model(inp, t, name="features")
    tokens = keras.Input((1 + gh * gw, dim))
    z = layers.LayerNormalization(name="norm")(tokens)
    z = layers.GlobalAveragePooling1D()(z)
    head = keras.Model(tokens, layers.Dense(classes, name="dense")(z), name="head")
    model = keras.Sequential([keras.Input(tuple(image) + (3,)), features, head], name="vit")
    return model, features, head, "features"


def head_gradients(head, a: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """``d sum_i head(a)[i, outputs[i, j]] / da`` for every column ``j``: ``(*a.shape, o)``."""
    backend = keras.backend.backend()
    gs = []
    for j in range(outputs.shape[1]):
        onehot = np.eye(int(head(a[:1]).shape[-1]), dtype=np.float32)[outputs[:, j]]
        if backend == "tensorflow":
            import tensorflow as tf

            at = tf.convert_to_tensor(a)
            with tf.GradientTape() as tape:
                tape.watch(at)
                y = tf.reduce_sum(head(at) * onehot)
            gs.append(tape.gradient(y, at).numpy())
        elif backend == "jax":
            import jax

            gs.append(np.asarray(jax.grad(lambda z, m=onehot: (head(z) * m).sum())(a)))
        else:  # pragma: no cover
            raise RuntimeError(backend)
    return np.stack(gs, axis=-1)


def as_grid(t: np.ndarray, grid: tuple[int, int] | None, leading: int = 1) -> np.ndarray:
    """Tokens ``(n, leading + gh * gw, ...)`` -> ``(n, gh, gw, ...)``; a 4-D map unchanged."""
    if grid is None:
        return t
    gh, gw = grid
    return t[:, leading : leading + gh * gw].reshape((len(t), gh, gw) + t.shape[2:])


def check_every_cam(build, x: np.ndarray, outputs: np.ndarray, grid=None, reshape=None) -> None:
    """Every CAM and Occlusion on ``build()``'s model equals the formulas on activations and
    gradients the test took itself; the model's layers are left unwrapped."""
    import xaiwidgets.explainers.cam as cam
    from xaiwidgets.explainers import Occlusion

    model, features, head, layer = build()
    a = np.asarray(features(x), np.float32)
    grads = head_gradients(head, a, outputs)
    acts, grads = as_grid(a, grid), as_grid(grads, grid)
    assert np.abs(grads).max() > 0
    h, w = x.shape[1:3]
    methods = {
        "gradcam": cam.GradCAM,
        "gradcam++": cam.GradCAMPlusPlus,
        "hirescam": cam.HiResCAM,
        "layercam": cam.LayerCAM,
    }
    for method, cls in methods.items():
        got = cls(model, layer, reshape=reshape)(x, outputs=outputs)
        assert got.params["layer"] == layer, got.params
        expected = ref.upsample(ref.gradient_maps(method, acts, grads), (h, w))
        scale = max(float(np.abs(expected).max()), 1e-12)
        np.testing.assert_allclose(
            got.values[..., 0, :] / scale, expected / scale, atol=1e-3, err_msg=method
        )
    eigen = cam.EigenCAM(model, layer, reshape=reshape)(x, outputs=outputs).values[..., 0, 0]
    expected = ref.upsample(ref.eigen_maps(acts)[..., None], (h, w))[..., 0]
    np.testing.assert_allclose(eigen, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())

    def predict(imgs):
        return np.asarray(model(imgs, training=False), np.float64)

    score = cam.ScoreCAM(model, layer, reshape=reshape, max_channels=4, batch_size=8)
    got = score(x, outputs=outputs).values[..., 0, :]
    expected = ref.upsample(
        ref.score_maps(lambda m: ref.softmax(predict(m)), x, acts, outputs, 4), (h, w)
    )
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5 * np.abs(expected).max())
    occ = Occlusion(model, window=4, strides=2, batch_size=16)(x, outputs=outputs)
    expected = ref.occlusion(predict, x, outputs, 4, 2)
    np.testing.assert_allclose(occ.values[..., 0, :], expected, rtol=1e-4, atol=1e-5)
    wrapped = [p for p, lyr in _walk(model) if "call" in vars(lyr)]
    assert not wrapped, wrapped


def _walk(model, prefix=""):
    for lyr in getattr(model, "layers", []):
        yield prefix + lyr.name, lyr
        yield from _walk(lyr, prefix + lyr.name + "/")


def run_all() -> None:
    """Every model of this module (also run with ``KERAS_BACKEND=jax`` in a subprocess)."""
    rng = np.random.default_rng(0)
    outputs = np.array([[1, 3], [0, 4]])
    x = rng.random((2, 16, 16, 3), dtype=np.float32)
    check_every_cam(cnn_nested, x, outputs)
    check_every_cam(cnn_flat, x, outputs)
    check_every_cam(vit, x, outputs, grid=(4, 4))
    wide = rng.random((2, 16, 32, 3), dtype=np.float32)  # 4 x 8 patches + the class token
    check_every_cam(lambda: vit(image=(16, 32)), wide, outputs, grid=(4, 8), reshape=(4, 8))
