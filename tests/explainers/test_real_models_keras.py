"""DeepExplainer on real keras.applications architectures (ResNet50, MobileNetV3Small,
EfficientNetB0, ConvNeXtTiny), random-initialised at 32x32 with 10 classes: relative
completeness within 1e-3 (DeepLIFT through every traced op: squeeze-excite gates, hard-swish,
swish's custom gradient, LayerNorm, GELU, grouped convolutions compiled with XLA).

The kernels are redrawn variance-preserving (He normal) and the classifier's kernel scaled so
that the outputs differ by O(1) between images (``tests.keras_apps.application``: Keras'
default initialisers would make completeness trivially true).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tests.explainers.keras_jax_apps import app_job  # noqa: E402
from tests.keras_apps import application  # noqa: E402
from xaiwidgets.explainers import DeepExplainer  # noqa: E402
from xaiwidgets.explainers._completeness import completeness_gap, relative_error  # noqa: E402

if keras.backend.backend() != "tensorflow":  # pragma: no cover - KERAS_BACKEND set elsewhere
    pytest.skip("these tests run Keras on TensorFlow", allow_module_level=True)

SIZE = 32
TOLERANCE = 1e-3
ARCHITECTURES = ["ResNet50", "MobileNetV3Small", "EfficientNetB0", "ConvNeXtTiny"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_deep_explainer_complete(name):
    model, x, bg = application(name, SIZE, images=1, references=2)
    fx, fb = model.predict(x, verbose=0), model.predict(bg, verbose=0)
    output = int(np.abs(fx[0] - fb.mean(0)).argmax())  # the class with most to attribute
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no op crossed without a rule
        ex = DeepExplainer(model, bg)(x, outputs=[output])
    fx = np.take_along_axis(ex.predictions, ex.output_indices, axis=1)
    assert np.abs(fx - ex.base_values).max() > 0.1  # a signal to attribute
    gap = completeness_gap(ex.values, fx, ex.base_values)
    assert relative_error(gap, fx, ex.base_values) < TOLERANCE


@pytest.mark.slow
@app_job("ConvNeXtTiny")
def test_convnext_on_jax_keras_backend_is_complete(keras_jax):
    """Keras ConvNeXtTiny on the JAX backend returned all-NaN DeepLIFT values: the rescale
    fallback's central difference stepped below zero inside LayerNorm's rsqrt. Read from the
    ConvNeXtTiny job of ``test_real_models_keras_jax.py`` (run once for both tests): its
    DeepExplainer call asserts finite values (``strict=True`` only raises on a completeness
    error, the attributions are the default call's) and reports the relative error."""
    import json

    assert json.loads(keras_jax.stdout.strip().splitlines()[-1])["deeplift_relative"] < TOLERANCE
