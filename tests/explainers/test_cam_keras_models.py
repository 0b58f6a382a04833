"""Every CAM and Occlusion on Keras 3 models: nested and flat Sequential CNNs and a ViT
(``MultiHeadAttention``; square and non-square token grids), on the TensorFlow backend here and
on the JAX backend in a subprocess (``KERAS_BACKEND=jax``), each against the formulas on
activations and gradients the test took itself (see ``keras_cam_models``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tests.keras_jobs import keras_jax_job  # noqa: E402


@pytest.fixture(scope="module")
def models():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("this process runs Keras on another backend")
    from tests.explainers import keras_cam_models

    return keras_cam_models


def test_nested_sequential_cnn(models):
    x = np.random.default_rng(0).random((2, 16, 16, 3), dtype=np.float32)
    models.check_every_cam(models.cnn_nested, x, np.array([[1, 3], [0, 4]]))


def test_flat_sequential_cnn(models):
    x = np.random.default_rng(1).random((2, 16, 16, 3), dtype=np.float32)
    models.check_every_cam(models.cnn_flat, x, np.array([[2], [0]]))


def test_vit_square_and_non_square(models):
    rng = np.random.default_rng(2)
    outputs = np.array([[1, 3], [0, 4]])
    models.check_every_cam(
        models.vit, rng.random((2, 16, 16, 3), dtype=np.float32), outputs, grid=(4, 4)
    )
    models.check_every_cam(
        lambda: models.vit(image=(16, 32)),
        rng.random((2, 16, 32, 3), dtype=np.float32),
        outputs,
        grid=(4, 8),
        reshape=(4, 8),
    )


def test_vit_inner_layer_by_path(models):
    """A layer inside the nested ViT, ``features/block1_norm1``: its tokens and gradients
    from a sub-model of ``features`` and a tape through the rest of the model."""
    import tensorflow as tf

    import xaiwidgets.explainers.cam as cam
    from tests.explainers import cam_reference as ref

    model, features, head, _ = models.vit()
    x = np.random.default_rng(3).random((2, 16, 16, 3), dtype=np.float32)
    sub = keras.Model(
        features.inputs[0], [features.get_layer("block1_norm1").output, features.output]
    )
    with tf.GradientTape() as tape:
        t, f = sub(x, training=False)
        y = tf.reduce_sum(head(f)[:, 2])
    g = tape.gradient(y, t).numpy()
    acts = models.as_grid(t.numpy(), (4, 4))
    grads = models.as_grid(g, (4, 4))[..., None]
    got = cam.HiResCAM(model, "features/block1_norm1")(x, outputs=[2])
    assert got.params["layer"] == "features/block1_norm1"
    expected = ref.upsample(ref.gradient_maps("hirescam", acts, grads), (16, 16))
    np.testing.assert_allclose(got.values[..., 0, :], expected, rtol=1e-3, atol=1e-6)


@keras_jax_job(
    "every_cam_and_occlusion",
    """
        import keras
        assert keras.backend.backend() == "jax", keras.backend.backend()
        from xaiwidgets.backends import wrap
        from xaiwidgets.backends.jax_backend import JaxBackend
        from tests.explainers import keras_cam_models as m

        assert isinstance(wrap(m.cnn_nested()[0]), JaxBackend)
        m.run_all()
        print("every CAM ok")
    """,
)
def test_keras_on_jax_every_cam_and_occlusion(keras_jax):
    assert "every CAM ok" in keras_jax.stdout
