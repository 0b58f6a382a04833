"""Rows per model call: ``batch_size=None`` (default) derives them from the memory budget and
the activations the model keeps per image (measured by the torch, JAX and TensorFlow
backends); an explicit ``batch_size`` wins; an out-of-memory error points to ``batch_size=``."""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets._budget import (
    ACTIVATION_RATIO,
    FORWARD_ACTIVATION_RATIO,
    MAX_ROWS,
    rows_per_call,
)
from xaiwidgets.backends import NumpyBackend, wrap
from xaiwidgets.backends.base import is_out_of_memory


def _linear(x):
    return x.reshape(len(x), -1)[:, :4] * 2.0


def test_default_rows_follow_the_budget_and_the_image_size():
    b = NumpyBackend(_linear)
    assert b.batch_size == MAX_ROWS  # before any image was seen
    small, big = (28, 28, 1), (224, 224, 3)
    assert b.rows_for(small, backward=False) == MAX_ROWS == b.forward_rows(small)
    img = 224 * 224 * 3 * 4
    # a forward pass alone keeps a fraction of what a backward pass needs: ~50 rows at 224²
    rows = b.forward_rows(big)
    assert rows == (1 << 30) // (FORWARD_ACTIVATION_RATIO * img + 3 * img) == 50
    grad_rows = b.rows_for(big)
    assert grad_rows == (1 << 30) // (2 * ACTIVATION_RATIO * img + 7 * img) < 16 < rows
    b.predict(np.zeros((20,) + big, np.float32))
    assert b.batch_size == b.rows_for(big) == grad_rows  # the last shape, with a backward pass
    assert NumpyBackend(_linear, memory_budget=1 << 24).forward_rows(big) == 1
    assert b.rows_for(big, 100) < b.rows_for(big, 1)  # more input gradients per row
    tight = NumpyBackend(_linear, memory_budget=1 << 20)
    assert tight.rows_for(big) == 1
    fixed = wrap(_linear, batch_size=7, memory_budget=1 << 20)
    assert fixed.rows_for(big, 100) == 7 and fixed.batch_size == 7


def test_rows_per_call_counts_vectorised_backward_passes():
    one = rows_per_call(10 << 20, 1 << 20, 1 << 30, activation_copies=1, gradient_copies=16)
    vec = rows_per_call(10 << 20, 1 << 20, 1 << 30, activation_copies=16, gradient_copies=16)
    assert 1 <= vec < one <= MAX_ROWS


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "8"])
def test_bad_batch_size_and_budget(bad):
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        NumpyBackend(_linear, batch_size=bad)
    if bad != 2.5:
        with pytest.raises(ValueError, match="memory_budget"):
            NumpyBackend(_linear, memory_budget=bad)


def test_out_of_memory_points_to_batch_size():
    def hungry(x):
        raise MemoryError("Unable to allocate 9.6 GiB for an array")

    b = NumpyBackend(hungry)
    with pytest.raises(MemoryError, match=r"batch_size=\d+") as info:
        b.predict(np.zeros((3, 224, 224, 3), np.float32))
    assert "224, 224, 3" in str(info.value) and isinstance(info.value.__cause__, MemoryError)
    assert is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating"))
    assert not is_out_of_memory(ValueError("shapes do not match"))

    def broken(x):
        raise ValueError("shapes do not match")

    with pytest.raises(ValueError, match="shapes do not match"):
        NumpyBackend(broken).predict(np.zeros((1, 4, 4, 1), np.float32))


def test_torch_measures_what_autograd_saves_and_reports_oom():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 5),
    )
    b = wrap(net)
    small, big = b.row_bytes((32, 32, 3)), b.row_bytes((64, 64, 3))
    # per image: the first conv's input and output, the ReLU output, the second conv's... at
    # least the 16-channel maps, and 4x as much at twice the side
    assert small >= 2 * 16 * 32 * 32 * 4
    assert 3.5 < big / small < 4.5
    assert b.rows_for((224, 224, 3)) < b.rows_for((32, 32, 3)) == MAX_ROWS
    x = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(
        b.grad(x, [1, 2]), wrap(net, batch_size=1).grad(x, [1, 2]), rtol=1e-5, atol=1e-7
    )

    class Hungry(torch.nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    hb = wrap(Hungry(), batch_size=64)
    for call in (
        lambda: hb.predict(x),
        lambda: hb.grad(x, [0]),
        lambda: hb.vjp(x, np.ones((3, 5))),
    ):
        with pytest.raises(MemoryError, match=r"batch of 64 images.*batch_size=16"):
            call()


def test_jax_measures_the_vjp_residuals():
    pytest.importorskip("flax")
    from tests.backends.models import flax_cnn

    b = wrap(flax_cnn())
    rb = b.row_bytes((28, 28, 1))
    assert rb >= 32 * 28 * 28 * 4  # at least the first Conv(32)'s output
    assert b.grad_rows((28, 28, 1), 16) <= b.grad_rows((28, 28, 1), 1)


def test_keras_measures_the_forward_graph():
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("Keras on another backend")
    model = keras.Sequential(
        [keras.Input((20, 20, 3)), keras.layers.Conv2D(8, 3), keras.layers.ReLU(),
         keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
    )  # fmt: skip
    b = wrap(model, memory_budget=16 << 20)
    assert b.row_bytes((20, 20, 3)) >= 2 * 8 * 18 * 18 * 4  # the conv and ReLU outputs
    assert b.grad_rows((20, 20, 3), 16) < b.grad_rows((20, 20, 3), 1)
