"""The script that explains a ``keras.applications`` network on the JAX Keras backend (run as
a job of the shared Keras-on-JAX interpreter: ``tests.keras_jobs.keras_jax_job``), for
``test_real_models_keras_jax.py`` and ``test_real_models_keras.py``: the model from
``tests.keras_apps.application`` at 32 x 32, 10 classes, two images, two references.

It asserts (and fails its job otherwise): ``wrap`` picks the JaxBackend; DeepExplainer with
``strict=True`` is finite, has no op without a rule, raises no warning and has a signal to
attribute; IG's reported completeness error is the one measured; Grad-CAM on the default layer
is finite, non-negative, not all zero, on the expected layer and (where ``analytic``) equal to
its formula; Occlusion equals ``f(x) - f(x with the window hidden)`` by ``model.predict``. It
prints a JSON report: DeepLIFT's and IG's relative completeness errors, whether IG warned, the
Grad-CAM layer and the seconds of each part.
"""

from __future__ import annotations

from tests.keras_jobs import keras_jax_job

SIZE = 32

#: the layer ``layer=None`` picks, and whether it feeds GAP + Dense directly (at 32 x 32 the
#: last stages are 1 x 1, not a grid: ResNet50's default is then conv4_block6_out, 2 x 2)
DEFAULT_LAYER = {
    "ResNet50": ("conv4_block6_out", False),
    "MobileNetV3Small": (None, False),
    "EfficientNetB0": (None, False),
    "ConvNeXtTiny": (None, False),
}

_SCRIPT = """
import json, sys, time, warnings
import numpy as np, keras
from tests.keras_apps import application
from xaiwidgets.backends import wrap
from xaiwidgets.explainers import DeepExplainer, IntegratedGradients, Occlusion
from xaiwidgets.explainers.cam import GradCAM, upsample
from xaiwidgets.explainers._completeness import completeness_gap, relative_error

assert keras.backend.backend() == "jax"
name, size, expected_layer, analytic = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
model, x, bg = application(name, size, images=2, references=2)
backend = wrap(model)
assert type(backend).__name__ == "JaxBackend", backend
fx, fb = model.predict(x, verbose=0), model.predict(bg, verbose=0)
outputs = [int(np.abs(fx[0] - fb.mean(0)).argmax()), int(np.abs(fx[1] - fb.mean(0)).argmin())]
report = {}

t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("error")
    ex = DeepExplainer(backend, bg, strict=True)(x, outputs=outputs)
assert np.isfinite(ex.values).all()
assert ex.params["ops_without_rule"] == []
f_o = np.take_along_axis(ex.predictions, ex.output_indices, axis=1)
assert np.abs(f_o - ex.base_values).max() > 0.1
report["deeplift_relative"] = relative_error(
    completeness_gap(ex.values, f_o, ex.base_values), f_o, ex.base_values
)
report["deeplift_s"] = time.perf_counter() - t

t = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ig = IntegratedGradients(backend, 0.0, steps=64)(x[:1], outputs=outputs[:1])
f1 = np.take_along_axis(ig.predictions, ig.output_indices, axis=1)
report["ig_relative"] = relative_error(
    completeness_gap(ig.values, f1, ig.base_values), f1, ig.base_values
)
assert abs(ig.params["relative_completeness_error"] - report["ig_relative"]) < 1e-6
report["ig_warned"] = any("steps=" in str(w.message) for w in caught)
report["ig_s"] = time.perf_counter() - t

t = time.perf_counter()
gc = GradCAM(backend)(x, outputs=outputs)
layer = gc.params["layer"]
report["layer"] = layer
assert np.isfinite(gc.values).all() and gc.values.min() >= 0 and gc.values.max() > 0
if expected_layer != "-":
    assert layer == expected_layer, layer
if analytic == "1":
    acts = keras.Model(model.inputs, model.get_layer(layer).output).predict(x, verbose=0)
    w = keras.ops.convert_to_numpy(model.get_layer("predictions").kernel)[:, outputs]
    hw = acts.shape[1] * acts.shape[2]
    want = np.maximum(np.einsum("nhwd,do->nhwo", acts, w / hw), 0)
    want = upsample(want.astype(np.float32), (size, size))
    np.testing.assert_allclose(gc.values[..., 0, :], want, rtol=1e-3, atol=1e-4 * want.max())
report["gradcam_s"] = time.perf_counter() - t

t = time.perf_counter()
win = size // 4
occ = Occlusion(backend, window=win, strides=win)(x, outputs=outputs)
want = np.empty_like(occ.values)
for i in range(0, size, win):
    for j in range(0, size, win):
        hidden = x.copy()
        hidden[:, i : i + win, j : j + win] = 0.0
        drop = fx[:, outputs] - model.predict(hidden, verbose=0)[:, outputs]
        want[:, i : i + win, j : j + win, 0, :] = drop[:, None, None]
np.testing.assert_allclose(occ.values, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())
report["occlusion_s"] = time.perf_counter() - t
print(json.dumps(report))
"""


def app_job(name: str):
    """The ``keras_jax`` mark of the job that runs the script on ``keras.applications.<name>``
    (job ``app:<name>``; declared once however many tests read it)."""
    layer, analytic = DEFAULT_LAYER[name]
    args = [name, str(SIZE), layer or "-", "1" if analytic else "0"]
    return keras_jax_job(f"app:{name}", _SCRIPT, *args)
