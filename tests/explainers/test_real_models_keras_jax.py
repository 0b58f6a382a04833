"""keras.applications ResNet50, MobileNetV3Small, EfficientNetB0 and ConvNeXtTiny on the JAX
Keras backend (``KERAS_BACKEND=jax``, in a subprocess: the Keras backend is fixed per
process), random-initialised as in ``test_real_models_keras.py`` (He-normal kernels, the
classifier scaled so that outputs differ by O(1): ``tests.keras_apps.application``), 32 x 32,
10 classes.

Through :class:`~xaiwidgets.backends.jax_backend.JaxBackend` (jaxpr DeepLIFT, compiled
gradients, layer taps on the Keras layers' ``call``):

- DeepExplainer complete to 1e-3 relative with ``strict=True`` and no op without a rule
  (ConvNeXtTiny once returned all-NaN values here: LayerNorm's rsqrt stepped out of its domain);
- IntegratedGradients at 64 steps: its completeness gap reported, and within its tolerance
  (1e-2) or warned about with the steps that would meet it (MobileNetV3Small: 0.21, ~1400);
- Grad-CAM on the default layer (the last one that is still a grid at 32 x 32) finite,
  non-negative and not all zero; where that layer feeds global average pooling and the dense
  classifier directly, equal to its formula on the layer's activations (a functional
  sub-model, no taps) and the analytic gradient ``W[:, c] / (h' w')``;
- Occlusion equal to ``f(x) - f(x with the window hidden)`` by ``model.predict``.

The script (``tests/explainers/keras_jax_apps.py``) and the other Keras-on-JAX tests' code run
as jobs of one shared interpreter (the ``keras_jax`` fixture): Keras, JAX and XLA start once.
"""

from __future__ import annotations

import pytest

pytest.importorskip("jax")
pytest.importorskip("keras")

from tests.explainers.keras_jax_apps import DEFAULT_LAYER, app_job  # noqa: E402
from tests.keras_jobs import keras_jax_job  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=app_job(n)) for n in DEFAULT_LAYER])
def test_keras_application_on_jax_backend(name, keras_jax):
    import json

    report = json.loads(keras_jax.stdout.strip().splitlines()[-1])
    print(name, report)
    assert report["deeplift_relative"] < 1e-3
    # IG's Riemann error: within its tolerance, or said with the steps that would meet it
    assert report["ig_relative"] < 1e-2 or report["ig_warned"]


@keras_jax_job(
    "wrapped_model_survives_keras_predict",
    """
        import numpy as np, keras
        from xaiwidgets.backends import wrap
        from xaiwidgets.explainers.cam import GradCAM
        model = keras.Sequential([
            keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.Flatten(), keras.layers.Dense(3),
        ])
        backend = wrap(model)
        x = np.random.default_rng(0).random((2, 8, 8, 3), np.float32)
        before = backend.predict(x)
        model.predict(x, verbose=0)  # donates the variables' buffers
        np.testing.assert_allclose(backend.predict(x), before, rtol=1e-6)
        cam = GradCAM(backend, "conv")(x, outputs=[0])  # layer taps on the current values
        assert cam.values.shape == (2, 8, 8, 1, 1) and cam.values.max() > 0
        model.layers[-1].kernel.assign(np.zeros((144, 3), np.float32))  # values read per call
        assert np.abs(backend.predict(x) - model.layers[-1].bias.numpy()).max() == 0
        print(type(backend).__name__)
    """,
)
def test_wrapped_model_survives_keras_predict(keras_jax):
    """Keras' ``predict`` on JAX donates the buffers of the variable values it replaces: a
    backend holding the values read at wrap time then failed ("Array has been deleted")."""
    assert keras_jax.stdout.strip().splitlines()[-1] == "JaxBackend"
