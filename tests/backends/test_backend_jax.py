"""JaxBackend beyond the contract: the accepted model forms (linen + params, pair, bare
parameter tree, NNX module, plain and jitted functions, f(params, x)), compile counts with
fixed-shape padding, NNX eval mode, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.backends import models

jax = pytest.importorskip("jax")
flax = pytest.importorskip("flax")
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from xaiwidgets.backends import wrap  # noqa: E402
from xaiwidgets.backends.jax_backend import JaxBackend  # noqa: E402


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return models.random_images(5, seed=9)


@pytest.fixture(scope="module")
def linear():
    w = jnp.asarray(np.random.default_rng(1).normal(size=(784, 10)), jnp.float32)
    return w, lambda z: z.reshape(z.shape[0], -1) @ w


def test_every_model_form(jax_case, x, linear):
    module, variables = jax_case.backend.module, jax_case.backend.params
    expected = jax_case.reference(x)
    for b in (
        wrap(module, params=variables),
        wrap((module, variables)),
        wrap(module, params=variables["params"]),  # a bare parameter tree
    ):
        assert isinstance(b, JaxBackend) and b.module is module and not b.is_nnx
        np.testing.assert_allclose(b.predict(x), expected, rtol=1e-5, atol=1e-6)
    w, f = linear
    for b in (
        wrap(f, framework="jax"),
        wrap(jax.jit(f)),  # a jitted function is recognised without framework=
        wrap(lambda p, z: z.reshape(z.shape[0], -1) @ p, params=w, framework="jax"),
    ):
        assert isinstance(b, JaxBackend) and b.module is None
        np.testing.assert_allclose(b.predict(x), x.reshape(5, -1) @ np.asarray(w), atol=1e-4)
        g = b.grad(x, [4])
        np.testing.assert_allclose(g[0, ..., 0].reshape(-1), np.asarray(w)[:, 4], rtol=1e-6)


def test_apply_fn_is_pure_and_jittable(jax_case, x):
    b = jax_case.backend
    np.testing.assert_allclose(
        np.asarray(jax.jit(b.apply_fn)(jnp.asarray(x))), b.predict(x), rtol=1e-5, atol=1e-6
    )
    cot = jnp.ones((5, 10))
    out, g = b.native_vjp(b.to_framework(x), cot)
    np.testing.assert_allclose(b.from_framework_grad(g), b.vjp(x, np.ones((5, 10)))[1], rtol=1e-5)


def test_one_compile_per_function_with_a_fixed_batch_shape(linear):
    b = wrap(linear[1], framework="jax", batch_size=16, buckets=False)
    for n in (1, 5, 16, 40):  # 40 = 16 + 16 + 8 (padded)
        b.predict(models.random_images(n))
    assert b.trace_count == 1
    for n in (3, 20):
        b.vjp(models.random_images(n), np.ones((n, 10), np.float32))
    assert b.trace_count == 2
    for n in (2, 20, 9):
        b.grad(models.random_images(n), [1, 2])
    assert b.trace_count == 3


def test_buckets_bound_the_compiles_and_are_reused(linear):
    b = wrap(linear[1], framework="jax", batch_size=64)  # buckets 8, 16, 32, 64
    sizes = (1, 3, 8, 9, 15, 30, 64, 100, 200)
    for n in sizes:
        b.predict(models.random_images(n))
    assert b.trace_count <= 4
    seen = b.trace_count
    for n in sizes[::-1]:
        b.predict(models.random_images(n))
    assert b.trace_count == seen


class _DropNorm(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.norm = nnx.BatchNorm(4, rngs=rngs)
        self.drop = nnx.Dropout(0.5)  # no rngs: running it in train mode would raise
        self.out = nnx.Linear(4 * 28 * 28, 10, rngs=rngs)

    def __call__(self, x):
        x = self.drop(self.norm(nnx.relu(self.conv(x))))
        return self.out(x.reshape(x.shape[0], -1))


def _drop_norm():
    """Built abstractly and filled with NumPy draws (jax.random would compile for seconds)."""
    graphdef, state = nnx.split(nnx.eval_shape(lambda: _DropNorm(nnx.Rngs(0))))
    model = nnx.merge(graphdef, models.random_like(state))
    model.norm.mean[...] = jnp.full(4, 0.1)
    model.norm.var[...] = jnp.full(4, 2.0)
    return model


def test_nnx_modules_run_in_eval_mode_without_changing_the_users_module(x):
    model = _drop_norm()
    model.train()
    b = wrap(model)
    assert isinstance(b, JaxBackend) and b.is_nnx and b.module is model
    p1, p2 = b.predict(x), b.predict(x)
    np.testing.assert_array_equal(p1, p2)
    assert not model.drop.deterministic and not model.norm.use_running_average
    reference = nnx.clone(model)
    reference.eval()
    np.testing.assert_allclose(p1, np.asarray(reference(jnp.asarray(x))), rtol=1e-5, atol=1e-6)
    assert b.grad(x, [0, 1]).shape == x.shape + (2,)


def test_clear_errors(jax_case):
    with pytest.raises(TypeError, match="needs its variables"):
        wrap(jax_case.backend.module)
    with pytest.raises(TypeError, match="cannot be traced"):
        wrap(lambda z: np.asarray(z)[:, :10, 0, 0], framework="jax").predict(
            models.random_images(2)
        )
    with pytest.raises(TypeError, match="expected"):
        JaxBackend(42)


def test_more_outputs_than_one_group(x):
    w = np.random.default_rng(2).normal(size=(784, 40)).astype(np.float32)
    b = wrap(lambda z: z.reshape(z.shape[0], -1) @ jnp.asarray(w), framework="jax")
    outputs = np.arange(39, 19, -1)  # 20 outputs: a group of 16 and a padded group of 4
    g = b.grad(x, outputs)
    np.testing.assert_allclose(g[3].reshape(784, 20), w[:, outputs], rtol=1e-6)
    assert b.trace_count == 1  # both groups use the same compiled width


def test_nnx_twin_of_the_linen_cnn_has_the_same_deeplift_and_layer(jax_case, x):
    """The NNX module holding the linen CNN's weights: the same DeepLIFT attributions and the
    same layer activations and gradients (by path, by submodule), 20 outputs (two groups of
    the vectorised pullback) in batches of 2 images; the user's module keeps its classes."""
    twin = models.flax_nnx_cnn()
    b = wrap(twin, batch_size=2)
    assert b.is_nnx
    refs = models.random_images(3, seed=4)
    np.testing.assert_allclose(
        b.deeplift(x, refs, [1, 4]), jax_case.backend.deeplift(x, refs, [1, 4]), atol=1e-5
    )
    outputs = np.tile(np.arange(10), 2)
    got = b.layer(x, "conv2", outputs)
    want = jax_case.backend.layer(x, "CONV2", outputs)
    assert got.name == "conv2" and got.activations.shape == (5, 28, 28, 16)
    np.testing.assert_allclose(got.activations, want.activations, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.gradients, want.gradients, rtol=1e-5, atol=1e-7)
    assert np.abs(got.gradients).max() > 0
    by_object = b.layer(x[:2], twin.conv2, [3])
    np.testing.assert_array_equal(by_object.gradients[..., 0], got.gradients[:2, ..., 3])
    assert type(twin.conv2) is nnx.Conv
