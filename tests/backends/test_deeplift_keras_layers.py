"""Keras DeepLIFT op by op: isolated modern layers (LayerNormalization, MultiHeadAttention,
GELU, depthwise and grouped convolutions, squeeze-excite gates, BatchNormalization, residual
additions, hard-swish) are complete to 1e-3 relative on TensorFlow and on the JAX Keras backend
(in a subprocess: the Keras backend is fixed per process); ops without a rule are named."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from tests.backends.keras_layer_models import MODELS, SHAPE, relative_completeness  # noqa: E402
from tests.keras_jobs import keras_jax_job  # noqa: E402
from xaiwidgets.backends import wrap  # noqa: E402

TOLERANCE = 1e-3

if keras.backend.backend() != "tensorflow":  # pragma: no cover - KERAS_BACKEND set elsewhere
    pytest.skip("these tests run Keras on TensorFlow", allow_module_level=True)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_layer_complete_on_tensorflow(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no op may be crossed without a rule
        assert relative_completeness(MODELS[name]()) < TOLERANCE


def test_op_without_rule_is_named():
    """A global max pool (TensorFlow ``Max``) has no DeepLIFT rule: the warning names it."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(4),
        ]
    )
    x = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype(np.float32)
    backend = wrap(model)
    with pytest.warns(UserWarning, match=r"no rule for the TensorFlow ops Max \("):
        backend.deeplift(x, x[::-1], [0])
    assert backend.deeplift_unsupported and backend.deeplift_unsupported[0].startswith("Max (")


def test_nested_function_with_nonlinear_ops_is_refused():
    """A nested tf.function is crossed only when its body is linear (Keras' grouped
    convolution); one holding a ReLU is refused, naming the op."""
    w = tf.constant(np.random.default_rng(0).normal(size=(192, 4)).astype(np.float32))
    inner = tf.function(lambda t: tf.nn.relu(t))

    def model(t):
        return tf.reshape(inner(t), (-1, 192)) @ w

    x = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype(np.float32)
    backend = wrap(tf.autograph.experimental.do_not_convert(model), framework="tensorflow")
    with pytest.raises(NotImplementedError, match="Relu"):
        backend.deeplift(x, x[::-1], [0])


@keras_jax_job(
    "layers_complete",
    """
        import json
        from tests.backends.keras_layer_models import MODELS, relative_completeness
        names = ["layer_norm", "multi_head_attention", "gelu", "grouped_conv", "squeeze_excite"]
        errors = {n: relative_completeness(MODELS[n]()) for n in names}
        # references in chunks (the memory budget's path) agree with one pass
        import numpy as np
        from xaiwidgets.backends import wrap
        from xaiwidgets.backends._deeplift_jax import deeplift_jax
        b = wrap(MODELS["squeeze_excite"]())
        rng = np.random.default_rng(3)
        x, refs = rng.normal(size=(3, 8, 8, 3)), rng.normal(size=(5, 8, 8, 3))
        whole = deeplift_jax(b, x, refs, [1, 2])
        chunked = deeplift_jax(b, x, refs, [1, 2], max_rows=2)
        errors["chunks"] = float(np.abs(chunked - whole).max() / np.abs(whole).max())
        print(json.dumps(errors))
    """,
)
def test_layers_complete_on_jax_keras_backend(keras_jax):
    """The same layers through the jaxpr interpreter (Keras on JAX): MultiHeadAttention puts
    a unit axis before the batch axis; LayerNorm's rsqrt must not see a secant step below 0."""
    import json

    errors = json.loads(keras_jax.stdout.strip().splitlines()[-1])
    assert len(errors) == 6
    assert all(e < TOLERANCE for e in errors.values()), errors


def test_plan_passes_bounds_rows_by_memory():
    from xaiwidgets.backends._deeplift_rules import ROW_COPIES, plan_passes

    assert plan_passes(10, 512) == (51, 10)  # no activation size known: rows only
    row = 50 << 20  # 50 MiB of activations per image: 10 rows a pass, references in 2 chunks
    images, refs = plan_passes(20, 512, row, budget=1 << 30)
    assert (images, refs) == (1, 10) and images * refs * ROW_COPIES * row <= 1 << 30
    assert plan_passes(100, 512, 1 << 40) == (1, 1)  # never below one row


def test_reference_chunks_match_one_pass():
    """Splitting the references into chunks (as the memory budget does for large models)
    gives the same attributions as one pass over all of them."""
    from xaiwidgets.backends._deeplift_keras import deeplift_keras

    model = MODELS["squeeze_excite"]()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, *SHAPE)).astype(np.float32)
    refs = rng.normal(size=(5, *SHAPE)).astype(np.float32)
    backend = wrap(model)
    whole = deeplift_keras(backend, x, refs, [1, 2])
    chunked = deeplift_keras(backend, x, refs, [1, 2], max_rows=2)  # 1 image x 2 refs a pass
    np.testing.assert_allclose(chunked, whole, rtol=1e-4, atol=1e-6)
