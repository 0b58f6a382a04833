"""DeepExplainer on real keras.applications architectures (ResNet50, MobileNetV3Small,
EfficientNetB0, ConvNeXtTiny), random-initialised at 32x32 with 10 classes: relative
completeness within 1e-3 (DeepLIFT through every traced op: squeeze-excite gates, hard-swish,
swish's custom gradient, LayerNorm, GELU, grouped convolutions compiled with XLA).

Keras' default initialisers let the signal of these deep random networks vanish (MobileNetV3's
outputs then differ by 1e-11 between images), which would make completeness trivially true;
the kernels are redrawn variance-preserving (He normal) and the classifier's kernel scaled so
that the outputs differ by O(1) between images.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from xaiwidgets.explainers import DeepExplainer  # noqa: E402
from xaiwidgets.explainers._completeness import completeness_gap, relative_error  # noqa: E402

if keras.backend.backend() != "tensorflow":  # pragma: no cover - KERAS_BACKEND set elsewhere
    pytest.skip("these tests run Keras on TensorFlow", allow_module_level=True)

SIZE = 32
TOLERANCE = 1e-3
ARCHITECTURES = ["ResNet50", "MobileNetV3Small", "EfficientNetB0", "ConvNeXtTiny"]


def _reinitialise(model, images: np.ndarray, seed: int = 0) -> None:
    """Redraw every kernel with variance 2 / fan_in (depthwise: the kernel window), then scale
    the last kernel so that the outputs on ``images`` spread over about 1."""
    rng = np.random.default_rng(seed)
    last = None
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(kernel.shape)
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        fan_in = int(np.prod(shape[:2] if depthwise else shape[:-1]))
        kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32))
        last = kernel
    spread = float(np.ptp(model.predict(images, verbose=0), axis=0).max())
    last.assign(last.numpy() / spread)


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_deep_explainer_complete(name):
    keras.utils.set_random_seed(0)
    build = getattr(keras.applications, name)
    model = build(weights=None, classes=10, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(1, SIZE, SIZE, 3)).astype(np.float32)
    bg = rng.uniform(0, 255, size=(2, SIZE, SIZE, 3)).astype(np.float32)
    _reinitialise(model, np.concatenate([x, bg]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no op crossed without a rule
        ex = DeepExplainer(model, bg)(x, outputs=[7])
    fx = np.take_along_axis(ex.predictions, ex.output_indices, axis=1)
    assert np.abs(fx - ex.base_values).max() > 0.1  # a signal to attribute
    gap = completeness_gap(ex.values, fx, ex.base_values)
    assert relative_error(gap, fx, ex.base_values) < TOLERANCE
