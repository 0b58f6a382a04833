"""The backend protocol: the one interface every explainer is written against.

A backend wraps one model of one framework. NumPy in, NumPy out; the work happens on the
framework's own device, in batches. Images are ``float32`` ``(n, h, w, c)``; a backend converts
to the layout its model needs.

- ``predict(x) -> (n, k)``: the model's own outputs (logits or probabilities), batched.
- ``vjp(x, cotangent) -> (outputs (n, k), x_grad (n, h, w, c))``: outputs and the gradient of
  ``sum(outputs * cotangent)`` with respect to ``x``.
- ``grad(x, outputs) -> (n, h, w, c, o)``: gradient of output ``outputs[i, j]`` of image ``i``
  for every requested output; ``outputs`` is ``(o,)`` (same for all images) or ``(n, o)``.
- ``deeplift(x, baselines, outputs) -> (n, h, w, c, o)``: DeepLIFT (rescale rule)
  attributions of ``x`` against every baseline in ``baselines`` ``(b, h, w, c)``, averaged over
  the baselines (DeepSHAP). For each image and output they sum to
  ``f(x) - mean_b f(baseline_b)``.

Every backend checks what the model gives back: NaN or infinite outputs (of
``predict``, ``vjp``) or gradients (``vjp``, ``grad``, ``deeplift``) raise
:class:`NonFiniteOutputError` (a ``ValueError``) naming the images concerned, instead of
attributions that are silently all NaN.

``probabilities(x)`` gives softmax probabilities (the model's outputs when it already ends in a
softmax, detected from its outputs).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._arrays import as_images, batches, looks_like_probabilities, softmax


class NonFiniteOutputError(ValueError):
    """The model (or its gradient) gave NaN or infinite values; ``rows`` are the indices of the
    images concerned, in the array the backend was called with."""

    def __init__(self, message: str, rows: np.ndarray):
        super().__init__(message)
        self.rows = np.asarray(rows, np.int64)


def _rows_text(rows: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f", ... ({len(rows)} in all)" if len(rows) > limit else ""
    return f"[{shown}{more}]"


def check_finite(values: np.ndarray, what: str = "outputs", offset: int = 0) -> np.ndarray:
    """Raise :class:`NonFiniteOutputError` when ``values`` (rows = images, any trailing shape)
    hold a NaN or an infinity; ``offset`` is added to the row numbers (the batch's first image).
    Returns ``values``. ``what`` says what was checked ("outputs", "gradients", ...)."""
    arr = np.asarray(values)
    if arr.size == 0 or not np.issubdtype(arr.dtype, np.inexact):
        return values
    if np.isfinite(arr).all():
        return values
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    rows = np.flatnonzero(bad) + int(offset)
    kind = "NaN" if np.isnan(arr).any() else "infinite"
    if kind == "NaN" and np.isinf(arr).any():
        kind = "NaN and infinite"
    raise NonFiniteOutputError(
        f"the model's {what} are {kind} for image(s) {_rows_text(rows)}: a NaN or infinity in "
        "the model (a division by zero, a log of 0, an overflow) or in these images would make "
        "every attribution NaN. Check the model on these images",
        rows,
    )


def checked_vjp(outputs: np.ndarray, grads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, grads)`` of a ``vjp``, both checked by :func:`check_finite`."""
    return check_finite(outputs), check_finite(grads, "gradients")


@runtime_checkable
class Backend(Protocol):
    """What explainers rely on. See the module docstring for the contract."""

    framework: str
    batch_size: int

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def vjp(self, x: np.ndarray, cotangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def grad(self, x: np.ndarray, outputs: Any) -> np.ndarray: ...

    def deeplift(self, x: np.ndarray, baselines: np.ndarray, outputs: Any) -> np.ndarray: ...

    def probabilities(self, x: np.ndarray) -> np.ndarray: ...


class BaseBackend:
    """Shared behaviour: input normalisation, batching, output-space detection.

    Subclasses implement :meth:`_predict_batch` (and the gradient methods they support).

    Parameters
    ----------
    batch_size : int
        Largest batch sent to the model at once (default 256).
    """

    framework = "numpy"

    def __init__(self, batch_size: int = 256):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        self.batch_size = int(batch_size)
        self._outputs_are_probabilities: bool | None = None

    # -- to implement ------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- protocol ----------------------------------------------------------------
    def predict(self, x: Any) -> np.ndarray:
        """``(n, k)`` float32 model outputs for images ``x`` (any accepted form), batched.
        Raises :class:`NonFiniteOutputError` naming every image with a NaN or infinite output."""
        x = as_images(x)
        outs = [
            np.asarray(self._predict_batch(x[s]), dtype=np.float32)
            for s in batches(len(x), self.batch_size)
        ]
        out = np.concatenate(outs, axis=0)
        if out.ndim != 2 or out.shape[0] != len(x):
            raise ValueError(
                f"the model returned shape {out.shape} for {len(x)} images; "
                "expected (n, k): one row of class scores per image"
            )
        return check_finite(out)  # every offending image named, whichever batch it was in

    def vjp(self, x: np.ndarray, cotangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no gradients")

    def grad(self, x: np.ndarray, outputs: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no gradients")

    def deeplift(self, x: np.ndarray, baselines: np.ndarray, outputs: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no DeepLIFT")

    def outputs_are_probabilities(self, outputs: np.ndarray | None = None) -> bool:
        """Whether the model ends in a softmax, detected (once) from its outputs: every row
        non-negative and summing to 1."""
        if self._outputs_are_probabilities is None and outputs is not None:
            self._outputs_are_probabilities = looks_like_probabilities(outputs)
        return bool(self._outputs_are_probabilities)

    def to_probabilities(self, outputs: np.ndarray) -> np.ndarray:
        """Probabilities from the model's outputs: as they are after a softmax, else softmax."""
        outputs = np.asarray(outputs, dtype=np.float32)
        return outputs if self.outputs_are_probabilities(outputs) else softmax(outputs)

    def probabilities(self, x: Any) -> np.ndarray:
        """``(n, k)`` class probabilities for images ``x``."""
        return self.to_probabilities(self.predict(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size})"


def output_matrix(outputs: Any, n: int) -> np.ndarray:
    """Requested outputs as an ``(n, o)`` int64 matrix (``(o,)`` is broadcast to every image)."""
    arr = np.asarray(outputs)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (n, arr.shape[0]))
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
        raise ValueError(
            f"outputs: expected (o,) or (n={n}, o) class indices, got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"outputs: expected integer class indices, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)
