"""The working-memory budget: how many rows go into one model call or one NumPy chunk.

Backends and the gradient explainers keep their *working set* -- what they allocate beyond the
model's weights, the explained images and the result -- under a budget in bytes
(:data:`DEFAULT_MEMORY_BUDGET`, 1 GiB; ``wrap(model, memory_budget=...)`` or
``Explainer(model, memory_budget=...)`` sets another). Peak memory then does not grow with the
number of images, outputs, samples or integration steps: those only add model calls.

A model call on ``m`` rows keeps about ``m * row_bytes`` of activations for its backward pass
(measured by the backend when it can, else :data:`ACTIVATION_RATIO` times the input bytes, the
ratio of an ImageNet-class ResNet-50 at 224 x 224), and a backward pass vectorised over ``o``
one-hot cotangents (TensorFlow, JAX) holds ``o`` such sets at once. :func:`rows_per_call` turns
that into the number of rows per call; an explicit ``batch_size`` always wins. A forward pass
without gradients keeps far less (each activation is freed once used): its rows come from the
peak bytes alive per image (:func:`forward_rows_per_call`, measured by the backend when it can,
else :data:`FORWARD_ACTIVATION_RATIO` times the input bytes).
"""

from __future__ import annotations

from typing import Any

from ._arrays import check_int

#: Working memory (bytes) beyond the model, the inputs and the result: 1 GiB.
DEFAULT_MEMORY_BUDGET = 1 << 30

#: Activation bytes a model keeps per input byte when the backend cannot measure it (ResNet-50
#: at 224 x 224 keeps ~150 MB per 0.6 MB image for its backward pass).
ACTIVATION_RATIO = 256

#: Most rows per model call when the budget allows more (the historical ``batch_size``).
MAX_ROWS = 256

#: Peak activation bytes a forward pass without gradients keeps alive per input byte (a forward
#: pass frees each activation once used). Measured once by counting the bytes alive at once (a
#: torch dispatch mode) at 224 x 224: torchvision resnet18 6.1 MB per 0.6 MB image (10x),
#: mobilenet_v3_small 0.6 MB (1x); about three times the larger, to be safe. Measuring it per
#: model costs seconds (several forward passes), so the backends do not.
FORWARD_ACTIVATION_RATIO = 32


def check_budget(value: Any) -> int | None:
    """``None`` (use the default) or a positive number of bytes, as an int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
        raise ValueError(f"memory_budget: expected a positive number of bytes, got {value!r}")
    return int(value)


def check_batch_size(value: Any) -> int | None:
    """``None`` (derived from the budget) or a positive integer."""
    if value is None:
        return None
    return check_int(value, "batch_size", 1, hint=" (or None: derived from the memory budget)")


def rows_per_call(
    row_bytes: int,
    input_bytes: int,
    budget: int,
    *,
    activation_copies: int = 1,
    gradient_copies: int = 1,
) -> int:
    """Rows per model call that keep its working set under ``budget``.

    Per row: the activations ``row_bytes`` times ``1 + activation_copies`` (the forward pass's
    saved tensors, and the gradient buffers of the backward passes held at once: 0 for a
    forward pass alone, 1 for sequential backward passes, ``o`` for ``o`` vectorised ones),
    plus the input bytes times ``3 + 4 gradient_copies`` (the input, its framework copy and
    layout conversion; per explained output the framework's input gradient, its NumPy copy,
    its layout conversion and the result slot). Between 1 and :data:`MAX_ROWS`.
    """
    per_row = row_bytes * (1 + activation_copies) + input_bytes * (3 + 4 * gradient_copies)
    return int(max(1, min(MAX_ROWS, budget // max(per_row, 1))))


def forward_rows_per_call(forward_bytes: int, input_bytes: int, budget: int) -> int:
    """Rows per forward-only model call within ``budget``: per row the forward pass's peak
    activations ``forward_bytes`` plus the input bytes three times (the input, its framework
    copy and layout conversion). Between 1 and :data:`MAX_ROWS`: about 50 rows of 224 x 224 x 3
    images in 1 GiB with the default ratio (torchvision mobilenet_v3_small on a CPU: 32-64 rows
    a call fastest, 128 slower)."""
    per_row = int(forward_bytes) + 3 * int(input_bytes)
    return int(max(1, min(MAX_ROWS, budget // max(per_row, 1))))


def chunk_rows(bytes_per_row: int, budget: int, cap: int) -> int:
    """Rows of a NumPy chunk of ``bytes_per_row`` each within ``budget``: between 1 and
    ``cap``."""
    return int(max(1, min(cap, budget // max(int(bytes_per_row), 1))))
