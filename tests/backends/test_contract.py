"""The backend contract, run on every backend (NumPy, torch, Keras/TF, JAX/Flax).

Gradients are checked against central finite differences of a float64 copy of the same model
(directional derivatives along a random direction per image, step 1e-6): the backend computes
in float32, so the tolerance is rtol 1e-3 plus an absolute 1e-5 of the summed magnitudes
``sum |g * v|`` (float32 rounding of the terms of the dot product).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.backends import models
from xaiwidgets._arrays import softmax

N, K = 6, 10
EPS = 1e-6


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return models.random_images(N, seed=1)


def _directional_fd(case, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``(f(x + eps v) - f(x - eps v)) / 2 eps`` in float64, ``(n, k)``."""
    x64, v64 = x.astype(np.float64), v.astype(np.float64)
    return (case.reference64(x64 + EPS * v64) - case.reference64(x64 - EPS * v64)) / (2 * EPS)


def _check_directional(g: np.ndarray, v: np.ndarray, fd: np.ndarray) -> None:
    """``<g_i, v_i>`` against the finite difference, per image (and output)."""
    axes = (1, 2, 3)
    an = np.einsum("nhwc...,nhwc->n...", g.astype(np.float64), v.astype(np.float64))
    scale = np.abs(np.einsum("nhwc...,nhwc->n...", np.abs(g), np.abs(v)))
    assert an.shape == fd.shape, (an.shape, fd.shape)
    assert np.all(np.abs(an - fd) <= 1e-3 * np.abs(fd) + 1e-5 * scale), (an, fd)
    assert np.abs(g).sum(axis=axes).min() > 0  # a zero gradient would pass vacuously


def test_predict_equals_the_framework(case, x):
    out = case.backend.predict(x)
    assert out.dtype == np.float32 and out.shape == (N, K)
    np.testing.assert_allclose(out, case.reference(x), rtol=1e-5, atol=1e-6)


def test_output_space_is_detected(case, x):
    out = case.backend.predict(x)
    assert case.backend.outputs_are_probabilities(out) is case.probabilities
    probs = case.backend.probabilities(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    expected = out if case.probabilities else softmax(out)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


def test_batching_and_padding_do_not_change_predictions(case):
    x = models.random_images(13, seed=2)  # 5 + 5 + 3: a padded last batch
    np.testing.assert_allclose(case.small.predict(x), case.backend.predict(x), rtol=1e-5, atol=1e-6)


def test_vjp_equals_finite_differences(case, x):
    rng = np.random.default_rng(3)
    cot = rng.normal(size=(N, K)).astype(np.float32)
    v = rng.normal(size=x.shape).astype(np.float32)
    out, g = case.backend.vjp(x, cot)
    assert out.shape == (N, K) and g.shape == x.shape and g.dtype == np.float32
    np.testing.assert_allclose(out, case.backend.predict(x), rtol=1e-5, atol=1e-6)
    fd = (_directional_fd(case, x, v) * cot).sum(axis=1)
    _check_directional(g, v, fd)


def test_grad_equals_finite_differences(case, x):
    rng = np.random.default_rng(4)
    idx = np.stack([rng.permutation(K)[:3] for _ in range(N)])  # (n, 3), per image
    v = rng.normal(size=x.shape).astype(np.float32)
    g = case.backend.grad(x, idx)
    assert g.shape == x.shape + (3,) and g.dtype == np.float32
    fd = np.take_along_axis(_directional_fd(case, x, v), idx, axis=1)
    _check_directional(g, v, fd)


def test_grad_agrees_with_vjp_and_broadcasts_outputs(case, x):
    outputs = [7, 0]
    g = case.backend.grad(x, outputs)
    np.testing.assert_array_equal(g, case.backend.grad(x, np.tile(outputs, (N, 1))))
    for j, cls in enumerate(outputs):
        cot = np.zeros((N, K), np.float32)
        cot[:, cls] = 1
        np.testing.assert_allclose(g[..., j], case.backend.vjp(x, cot)[1], rtol=1e-4, atol=1e-7)


def test_batching_and_padding_do_not_change_gradients(case):
    x = models.random_images(7, seed=5)
    cot = np.random.default_rng(5).normal(size=(7, K)).astype(np.float32)
    _, g_big = case.backend.vjp(x, cot)
    _, g_small = case.small.vjp(x, cot)
    np.testing.assert_allclose(g_small, g_big, rtol=1e-4, atol=1e-7)
    # 2 outputs with batch_size 5: 2 images per backward chunk, the last one padded
    np.testing.assert_allclose(
        case.small.grad(x, [1, 2]), case.backend.grad(x, [1, 2]), rtol=1e-4, atol=1e-7
    )


def test_bad_requests_say_what_was_expected(case, x):
    with pytest.raises(ValueError, match="0..9"):
        case.backend.grad(x, [3, 10])
    with pytest.raises(ValueError, match="cotangent"):
        case.backend.vjp(x, np.ones((N, K + 1), np.float32))
    with pytest.raises(ValueError, match="cotangent"):
        case.backend.vjp(x, np.ones((N + 1, K), np.float32))


def test_every_input_kind_gives_the_same_predictions(case, x):
    b = case.backend
    expected = b.predict(x)
    np.testing.assert_allclose(b.predict(case.native(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.predict(x[..., 0]), expected, rtol=1e-5, atol=1e-6)  # (n,h,w)
    np.testing.assert_allclose(b.predict(x[2]), expected[2:3], rtol=1e-5, atol=1e-6)  # (h,w,c)
    np.testing.assert_allclose(b.predict(x.astype(np.float64)), expected, rtol=1e-5, atol=1e-6)
    u8 = (x * 255).astype(np.uint8)
    np.testing.assert_allclose(
        b.predict(u8), b.predict(u8.astype(np.float32)), rtol=1e-5, atol=1e-6
    )
    # gradients take the same kinds
    np.testing.assert_allclose(
        b.grad(case.native(x[:2]), [0]), b.grad(x[:2], [0]), rtol=1e-5, atol=1e-7
    )


def test_unusable_input_is_a_clear_error(case):
    with pytest.raises(ValueError, match=r"expected \(n, h, w\)"):
        case.backend.predict(np.zeros((2, 3, 28, 28, 1), np.float32))
    with pytest.raises(TypeError, match="numeric"):
        case.backend.predict(np.array([["a"]]))


def test_numpy_backend_without_grad_fn_has_no_gradients(x):
    from xaiwidgets.backends import wrap

    b = wrap(models.numpy_softmax_regression())
    with pytest.raises(NotImplementedError, match="grad_fn"):
        b.grad(x, [0])
    with pytest.raises(NotImplementedError, match="grad_fn"):
        b.vjp(x, np.ones((N, K), np.float32))


def test_callable_cotangents_where_offered(case):
    if not getattr(case.backend, "vjp_accepts_callable", False):
        pytest.skip(f"{type(case.backend).__name__} takes array cotangents only")
    x = models.random_images(7, seed=6)
    seen = []

    def hinge(out):  # a row-wise weight that depends on the outputs, as CEM's attack loss
        seen.append(len(out))
        top = np.argmax(out, axis=1)
        cot = -np.ones_like(out) / out.shape[1]
        cot[np.arange(len(out)), top] = 1.0
        return cot

    out, g = case.small.vjp(x, hinge)
    assert seen == [5, 2]  # once per batch, between forward and backward
    np.testing.assert_allclose(out, case.backend.predict(x), rtol=1e-5, atol=1e-6)
    _, expected = case.backend.vjp(x, hinge(out))
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="cotangent"):
        case.small.vjp(x, lambda o: o[:, :3])


def test_flat_outputs_of_a_classifier_are_its_outputs(case, x):
    """``flat_outputs()`` (for image-to-image models) is the same model: on ``(n, k)`` outputs
    flattening changes nothing, and its gradients are the model's."""
    flat = case.backend.flat_outputs()
    assert flat.framework == case.backend.framework
    np.testing.assert_allclose(flat.predict(x), case.backend.predict(x), rtol=1e-5, atol=1e-6)
    cot = np.random.default_rng(3).normal(size=(N, K)).astype(np.float32)
    np.testing.assert_allclose(
        flat.vjp(x, cot)[1], case.backend.vjp(x, cot)[1], rtol=1e-4, atol=1e-6
    )


def test_compiled_steps_compute_what_the_program_says(case, x):
    """``compile_step``: a program on the array namespace, with the model's scores and its
    gradient, compiled by JAX and TensorFlow (``None`` from the others); it gives what
    ``predict`` and ``vjp`` give."""

    def program(ops, scores, images, constants, y, w):
        def total(y, w):
            s = scores(y)
            return ops.sum(ops.sum_rows(s * w), 0), s

        (_, s), g = ops.value_and_grad(total)(y, w)
        return s * constants["scale"], g

    step = case.backend.compile_step(program, {"scale": np.float32(2.0)})
    if case.backend.framework not in ("jax", "tensorflow"):
        assert step is None
        return
    w = np.random.default_rng(4).normal(size=(N, K)).astype(np.float32)
    s, g = (np.asarray(t) for t in step(x, w))
    out, expected = case.backend.vjp(x, w)
    np.testing.assert_allclose(s, 2.0 * out, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-6)
    assert case.backend.compile_step(program, {"scale": np.float32(1.0)}) is not None
    assert len(case.backend.__dict__["_compiled_steps"]) == 1  # cached per program
