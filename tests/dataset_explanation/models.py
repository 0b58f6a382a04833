"""Small models for the explain_dataset tests, importable by an executor's workers
(``tests.dataset_explanation.models``): a NumPy linear classifier with its gradient, and torch
CNNs with and without constructor arguments."""

from __future__ import annotations

import numpy as np

#: rows seen by LinearModel's forward pass and gradient, in this process (a resume counts them)
CALLS = {"forward": 0, "grad": 0}


class LinearModel:
    """``f(x) = x.reshape(n, -1) @ W + b`` for ``(n, h, w, c)`` images, ``k`` classes."""

    def __init__(self, size: int, k: int = 10, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.W = rng.normal(size=(size, k)).astype(np.float32)
        self.b = rng.normal(size=k).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        CALLS["forward"] += len(x)
        return x.reshape(len(x), -1) @ self.W + self.b

    def grad(self, x: np.ndarray, cotangent: np.ndarray) -> np.ndarray:
        CALLS["grad"] += len(x)
        return (cotangent @ self.W.T).reshape(x.shape)


def linear_backend(size: int = 64, batch_size: int | None = None):
    from xaiwidgets import wrap

    m = LinearModel(size)
    return wrap(m, grad_fn=m.grad, batch_size=batch_size)


try:  # the classes exist only where torch is installed
    from torch import nn as _nn

    class TinyNet(_nn.Module):
        """1 -> 4 channels 3x3 conv, ReLU, global-free flatten, linear to 10 classes, for
        8 x 8 grey images (NCHW). Built without arguments: travels as a state dict."""

        def __init__(self):
            super().__init__()
            self.conv = _nn.Conv2d(1, 4, 3, padding=1)
            self.fc = _nn.Linear(4 * 8 * 8, 10)

        def forward(self, x):
            return self.fc(_nn.functional.relu(self.conv(x)).flatten(1))

    class WideNet(_nn.Module):
        """As TinyNet with ``width`` channels: needs a constructor argument (pickled)."""

        def __init__(self, width: int):
            super().__init__()
            self.conv = _nn.Conv2d(1, width, 3, padding=1)
            self.fc = _nn.Linear(width * 8 * 8, 10)

        def forward(self, x):
            return self.fc(_nn.functional.relu(self.conv(x)).flatten(1))

except ImportError:  # pragma: no cover - torch missing
    TinyNet = WideNet = None


try:  # a Flax linen module at module level: it travels by its class and fields
    from flax import linen as _linen

    class FlaxMLP(_linen.Module):
        """Flatten, ``hidden`` ReLU units, 10 logits."""

        hidden: int = 16

        @_linen.compact
        def __call__(self, x):
            x = x.reshape((x.shape[0], -1))
            return _linen.Dense(10)(_linen.relu(_linen.Dense(self.hidden)(x)))

except ImportError:  # pragma: no cover - flax missing
    FlaxMLP = None
