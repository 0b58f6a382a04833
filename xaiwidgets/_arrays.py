"""Turning what users hand us into the arrays the library computes on.

Everything public takes images "as users have them": NumPy arrays, torch tensors (NCHW or
NHWC), TensorFlow tensors, JAX arrays, lists; uint8 or float; ``(n, h, w)``, ``(n, h, w, c)``,
``(n, c, h, w)`` or a single image ``(h, w, c)`` / ``(h, w)``. :func:`as_images` turns all of
them into ``float32`` ``(n, h, w, c)`` without importing any framework (duck typing on the
object's module name), and says what it expected when it cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CHANNEL_SIZES = (1, 3, 4)


def framework_of(obj: Any) -> str | None:
    """Name of the framework an array-like comes from (``"torch"``, ``"tensorflow"``,
    ``"jax"``) judged by its type's module, or ``None`` for NumPy and plain Python."""
    module = type(obj).__module__ or ""
    root = module.split(".")[0]
    if root == "torch":
        return "torch"
    if root in ("tensorflow", "tf_keras") or module.startswith("keras"):
        return "tensorflow"
    if root in ("jax", "jaxlib"):
        return "jax"
    return None


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy view or copy of ``x`` (NumPy, torch tensor on any device, tf tensor, jax array,
    nested lists). Gradients are detached; nothing is cast."""
    if isinstance(x, np.ndarray):
        return x
    fw = framework_of(x)
    if fw == "torch":
        return x.detach().cpu().numpy()
    if fw == "tensorflow" and hasattr(x, "numpy"):
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(
            f"expected an array (NumPy, torch, TensorFlow or JAX), got {type(x).__name__}"
        ) from exc


def as_images(x: Any, *, name: str = "images", layout: str = "auto") -> np.ndarray:
    """Normalise images to ``float32`` NHWC.

    Parameters
    ----------
    x : array-like
        ``(n, h, w)``, ``(n, h, w, c)``, ``(n, c, h, w)``, ``(h, w, c)`` or ``(h, w)``.
    layout : {"auto", "nhwc", "nchw"}
        ``"auto"`` treats a 4-D array as channels-first when its axis 1 has 1, 3 or 4 entries
        and its last axis does not (the torch convention, e.g. ``(n, 1, 28, 28)``).
        A 3-D array is a batch of grey images ``(n, h, w)`` unless its last axis has 1, 3 or 4
        entries and its middle axis more than 4, when it is a single ``(h, w, c)`` image.

    Returns
    -------
    numpy.ndarray, float32, shape ``(n, h, w, c)``. Values keep their range: uint8 images stay
    0..255 (cast, not rescaled), so they mean what the model was trained on.
    """
    arr = to_numpy(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if layout not in ("auto", "nhwc", "nchw"):
        raise ValueError(f"layout: expected 'auto', 'nhwc' or 'nchw', got {layout!r}")
    shape = arr.shape
    if arr.ndim == 2:
        arr = arr[None, :, :, None]
    elif arr.ndim == 3:
        if shape[-1] in _CHANNEL_SIZES and shape[1] > max(_CHANNEL_SIZES) and layout != "nchw":
            arr = arr[None]
        else:
            arr = arr[..., None]
    elif arr.ndim == 4:
        channels_first = layout == "nchw" or (
            layout == "auto" and shape[1] in _CHANNEL_SIZES and shape[-1] not in _CHANNEL_SIZES
        )
        if channels_first:
            arr = np.transpose(arr, (0, 2, 3, 1))
    else:
        raise ValueError(
            f"{name}: expected (n, h, w), (n, h, w, c), (n, c, h, w), (h, w, c) or (h, w), "
            f"got an array of shape {shape}"
        )
    if 0 in arr.shape:
        raise ValueError(f"{name}: got an empty array of shape {shape}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return out


def as_labels(y: Any, *, n: int | None = None, name: str = "y") -> np.ndarray:
    """Class labels ``(n,)`` int64 from labels ``(n,)`` or one-hot / probability rows ``(n, k)``
    (argmax)."""
    arr = to_numpy(y)
    if arr.ndim == 2:
        arr = arr.argmax(axis=1)
    elif arr.ndim != 1:
        raise ValueError(
            f"{name}: expected labels (n,) or one-hot rows (n, k), got shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries, got {arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name}: labels must be whole numbers")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def looks_like_probabilities(outputs: np.ndarray, atol: float = 1e-3) -> bool:
    """True when every row is non-negative and sums to 1 (a softmax output)."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2 or outputs.size == 0:
        return False
    return bool(np.all(outputs >= -atol) and np.allclose(outputs.sum(axis=1), 1.0, atol=atol))


def batches(n: int, batch_size: int):
    """Yield ``slice`` objects covering ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
