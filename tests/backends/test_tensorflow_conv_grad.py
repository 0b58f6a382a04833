"""The thin-convolution input gradient for TensorFlow (``_tensorflow_conv_grad``) equals
TensorFlow's own, for the convolutions it takes and the ones it hands back."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from xaiwidgets.backends._tensorflow_conv_grad import GRADIENT_NAME  # noqa: E402


def _grads(x, w, cot, override: bool, **kw):
    @tf.function
    def run(x, w, cot):
        graph = tf.compat.v1.get_default_graph()
        if override:
            with graph.gradient_override_map({"Conv2D": GRADIENT_NAME}):
                y = tf.nn.conv2d(x, w, **kw)
        else:
            y = tf.nn.conv2d(x, w, **kw)
        return y, tf.gradients(y, x, grad_ys=cot)[0]

    ops = {op.type for op in run.get_concrete_function(x, w, cot).graph.get_operations()}
    return (*run(x, w, cot), ops)


@pytest.mark.parametrize(
    "c_in, k, kw, thin",
    [
        (1, 3, {"strides": 1, "padding": "VALID"}, True),
        (3, 3, {"strides": 1, "padding": "SAME"}, True),
        (1, 2, {"strides": 1, "padding": "SAME"}, True),  # even kernel: odd pad goes after
        (2, 1, {"strides": 1, "padding": "VALID"}, True),
        (1, 5, {"strides": 1, "padding": "SAME"}, False),
        (1, 3, {"strides": 2, "padding": "SAME"}, False),
        (1, 3, {"strides": 1, "padding": "VALID", "dilations": 2}, False),
        (4, 3, {"strides": 1, "padding": "SAME"}, False),
        (1, 3, {"strides": 1, "padding": [[0, 0], [1, 2], [0, 1], [0, 0]]}, False),
    ],
)
def test_input_gradient_equals_tensorflows(c_in, k, kw, thin):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, 11, 9, c_in)), tf.float32)
    w = tf.constant(rng.standard_normal((k, k, c_in, 5)), tf.float32)
    shape = tf.nn.conv2d(x, w, **kw).shape
    cot = tf.constant(rng.standard_normal(shape), tf.float32)
    y0, g0, _ = _grads(x, w, cot, False, **kw)
    y1, g1, ops = _grads(x, w, cot, True, **kw)
    assert ("Einsum" in ops) == thin and ("Conv2DBackpropInput" in ops) == (not thin)
    np.testing.assert_array_equal(y1.numpy(), y0.numpy())
    np.testing.assert_allclose(g1.numpy(), g0.numpy(), rtol=1e-5, atol=1e-5)
