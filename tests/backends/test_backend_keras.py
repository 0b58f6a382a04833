"""KerasBackend / TensorFlowBackend beyond the contract: one trace serves every batch size,
functional and subclassed Keras models, tf.Module / tf.function callables, layouts, and Keras 3
models on the JAX and torch Keras backends (in subprocesses: the Keras backend is fixed per
process)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backends import models
from tests.keras_apps import run_on_keras_backend
from tests.keras_jobs import keras_jax_job

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from xaiwidgets.backends import wrap  # noqa: E402
from xaiwidgets.backends.keras_backend import KerasBackend  # noqa: E402
from xaiwidgets.backends.tensorflow_backend import TensorFlowBackend  # noqa: E402


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return models.random_images(4, seed=8)


def _tape_grad(fn, x: np.ndarray, cls: int) -> np.ndarray:
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = fn(xt)[:, cls]
    return tape.gradient(out, xt).numpy()


def test_one_trace_serves_every_batch_size(keras_case):
    b = KerasBackend(keras_case.backend.model, batch_size=16)
    assert b.trace_count == 0
    for n in (1, 5, 16, 40):  # 40 = 16 + 16 + 8
        b.predict(models.random_images(n))
    assert b.trace_count == 1
    for n in (3, 20):
        b.vjp(models.random_images(n), np.ones((n, 10), np.float32))
    assert b.trace_count == 2
    for n, outputs in ((2, [0]), (20, [1, 2, 3]), (7, [4, 5])):
        b.grad(models.random_images(n), outputs)
    assert b.trace_count == 3
    fns = b._compiled[(28, 28, 1)]
    assert all(f.experimental_get_tracing_count() == 1 for f in fns.values())


def test_dropout_is_off(keras_case, x):
    model = keras_case.backend.model
    assert not np.allclose(model(x, training=True).numpy(), model(x, training=False).numpy())
    np.testing.assert_array_equal(keras_case.backend.predict(x), keras_case.backend.predict(x))


def test_functional_and_subclassed_models(x):
    layers = keras.layers
    inp = keras.Input((28, 28, 1))
    h = layers.Conv2D(4, 3, activation="relu")(inp)
    out = layers.Dense(10)(layers.Flatten()(h))
    functional = keras.Model(inp, out)

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(4, 3, activation="tanh")
            self.flat = layers.Flatten()
            self.dense = layers.Dense(10)

        def call(self, x, training=False):
            return self.dense(self.flat(self.conv(x)))

    sub = Sub()  # not built: the backend builds it on the first image shape
    for model in (functional, sub):
        b = wrap(model)
        assert isinstance(b, KerasBackend) and b.layers
        np.testing.assert_allclose(b.predict(x), model(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            b.grad(x, [3])[..., 0], _tape_grad(model, x, 3), rtol=1e-5, atol=1e-7
        )


def test_tf_module_function_and_layouts(x):
    w = tf.constant(np.random.default_rng(0).normal(size=(784, 10)).astype(np.float32))

    class Linear(tf.Module):
        @tf.function
        def __call__(self, x):
            return tf.reshape(x, (-1, 784)) @ w

    @tf.function
    def as_dict(x):
        return {"logits": tf.reshape(x, (-1, 784)) @ w}

    def nchw(x):  # a channels-first model
        return tf.reshape(tf.transpose(x, (0, 2, 3, 1)), (-1, 784)) @ w

    expected = x.reshape(4, -1) @ w.numpy()
    plain = {"framework": "tensorflow", "channels_first": True}
    for model, kwargs in ((Linear(), {}), (as_dict, {}), (nchw, plain)):
        b = wrap(model, **kwargs)
        assert type(b) is TensorFlowBackend
        np.testing.assert_allclose(b.predict(x), expected, rtol=1e-5, atol=1e-5)
        g = b.grad(x, [1, 6])
        np.testing.assert_allclose(g[0, ..., 1].reshape(-1), w.numpy()[:, 6], rtol=1e-6)
        xt = b.to_framework(x)
        out, gt = b.native_vjp(xt, tf.ones((4, 10)))
        np.testing.assert_allclose(
            b.from_framework_grad(gt)[0].reshape(-1), w.numpy().sum(1), rtol=1e-5, atol=1e-5
        )


def test_more_outputs_than_one_group(x):
    w = tf.constant(np.random.default_rng(2).normal(size=(784, 40)).astype(np.float32))
    b = wrap(lambda z: tf.reshape(z, (-1, 784)) @ w, framework="tensorflow")
    outputs = np.arange(39, 19, -1)
    g = b.grad(x, outputs)
    np.testing.assert_allclose(g[3].reshape(784, 20), w.numpy()[:, outputs], rtol=1e-6)


@keras_jax_job(
    "routes_to_jax_backend",
    """
        import jax, jax.numpy as jnp, numpy as np
        from tests.backends import models
        from xaiwidgets.backends import wrap
        from xaiwidgets.backends.jax_backend import JaxBackend
        from xaiwidgets.backends.keras_backend import KerasBackend

        m = models.keras_cnn()
        b = wrap(m)
        assert isinstance(b, JaxBackend) and b.module is m, b
        x = models.random_images(3)
        np.testing.assert_allclose(b.predict(x), np.asarray(m(x)), rtol=1e-5, atol=1e-7)
        cot = np.zeros((3, 10), np.float32)
        cot[:, 7] = 1
        _, g = b.vjp(x, cot)
        ref = jax.jit(jax.grad(lambda z: m(z, training=False)[:, 7].sum()))(jnp.asarray(x))
        np.testing.assert_allclose(g, np.asarray(ref), rtol=1e-4, atol=1e-8)
        try:
            KerasBackend(m)
        except ValueError as e:
            assert "'jax' Keras backend" in str(e)
        else:
            raise AssertionError("KerasBackend accepted a JAX-backend model")
        print("ok")
    """,
)
def test_keras_on_jax_routes_to_jax_backend(keras_jax):
    assert keras_jax.stdout.strip().endswith("ok")


@pytest.mark.slow
def test_keras_on_torch_routes_to_torch_backend():
    out = run_on_keras_backend(
        """
        import numpy as np, torch
        from tests.backends import models
        from xaiwidgets.backends import wrap
        from xaiwidgets.backends.torch_backend import TorchBackend

        m = models.keras_cnn()
        b = wrap(m)
        assert isinstance(b, TorchBackend) and b.channels_first is False, b
        x = models.random_images(3)
        ref = m(torch.from_numpy(x), training=False).detach().numpy()
        np.testing.assert_allclose(b.predict(x), ref, rtol=1e-5, atol=1e-7)
        xt = torch.from_numpy(x).requires_grad_(True)
        m(xt, training=False)[:, 4].sum().backward()
        np.testing.assert_allclose(b.grad(x, [4])[..., 0], xt.grad.numpy(), rtol=1e-4, atol=1e-8)
        print("ok")
        """,
        "torch",
        timeout=240,
    )
    assert out.strip().endswith("ok")
