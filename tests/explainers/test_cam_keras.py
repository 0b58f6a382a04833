"""Grad-CAM family on Keras 3 models (TensorFlow): against an independent sub-model
computation, on keras.applications ResNet50 and on nested and Sequential models; the model
is left unchanged."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

import xaiwidgets.explainers.cam as cam  # noqa: E402


def _independent_gradcam(model, layer_name, x, cls):
    """Grad-CAM from a functional sub-model returning (activations, outputs)."""
    sub = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
    with tf.GradientTape() as tape:
        a, out = sub(x, training=False)
        y = tf.reduce_sum(out[:, cls])
    g = tape.gradient(y, a).numpy()
    a = a.numpy()
    return np.maximum((g.mean(axis=(1, 2), keepdims=True) * a).sum(-1), 0)  # (n, h', w')


@pytest.fixture(scope="module")
def resnet50():
    keras.utils.set_random_seed(0)
    return keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)


def test_gradcam_on_keras_resnet50_equals_the_sub_model_computation(resnet50):
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    ex = cam.GradCAM(resnet50)
    got = ex(x, outputs=[1, 4])
    assert got.params["layer"] == "conv5_block3_out"
    assert got.values.shape == (2, 64, 64, 1, 2)
    for j, cls in enumerate((1, 4)):
        small = _independent_gradcam(resnet50, "conv5_block3_out", x, cls)
        expected = cam.upsample(small[..., None].astype(np.float32), (64, 64))[..., 0]
        np.testing.assert_allclose(got.values[..., 0, j], expected, rtol=1e-3, atol=1e-6)
    assert "call" not in vars(resnet50.get_layer("conv5_block3_out"))


def test_layer_by_object_and_nested_path_and_errors():
    keras.utils.set_random_seed(1)
    inner = keras.Sequential(
        [keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")], name="feat"
    )
    inp = keras.Input((12, 12, 3))
    h = inner(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(3, name="head")(h))
    x = np.random.default_rng(2).random((3, 12, 12, 3), dtype=np.float32)
    by_path = cam.HiResCAM(model, "feat/conv")(x, outputs=[0])
    by_object = cam.HiResCAM(model, inner.layers[0])(x, outputs=[0])
    np.testing.assert_array_equal(by_path.values, by_object.values)
    # HiResCAM of a conv + global average pool + dense: relu(sum_k W_kc / (h w) A_ijk)
    conv_out = inner(x).numpy()
    w = model.get_layer("head").kernel.numpy()[:, 0]
    expected = np.maximum((conv_out * w).sum(-1) / (12 * 12), 0)
    np.testing.assert_allclose(by_path.values[..., 0, 0], expected, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        cam.GradCAM(model, "nope")(x)
    with pytest.raises(ValueError, match="spatial map"):
        cam.GradCAM(model, "head")(x)
    assert "call" not in vars(inner.layers[0])
