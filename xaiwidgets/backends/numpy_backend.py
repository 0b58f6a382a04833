"""`NumpyBackend`: any callable ``f(images) -> (n, k)`` on NumPy arrays."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import as_image_batch, batches, to_numpy
from ._checks import check_output_range
from ._layout import check_cotangent
from .base import BaseBackend, check_finite, checked_vjp, output_matrix


class NumpyBackend(BaseBackend):
    """Wrap a plain function of NumPy images.

    Parameters
    ----------
    fn : callable
        ``fn(x: float32 (n, h, w, c)) -> (n, k)`` class scores (logits or probabilities).
        Anything array-like that it returns is converted (so a jax function works too).
    grad_fn : callable, optional
        ``grad_fn(x, cotangent (n, k)) -> (n, h, w, c)``: the gradient of
        ``sum(fn(x) * cotangent)`` with respect to ``x``. Without it the backend has no
        gradients and only model-agnostic explainers (partition, permutation, influence) work.
    batch_size : int or None
        Images per call of ``fn``. Default ``None``: from ``memory_budget`` (1 GiB) with
        :data:`~xaiwidgets._budget.ACTIVATION_RATIO` bytes of work per input byte, at most 256.
    memory_budget : int or None
        Working memory in bytes; see :class:`~.base.BaseBackend`.
    """

    framework = "numpy"

    def __init__(
        self,
        fn: Callable[[np.ndarray], Any],
        grad_fn: Callable | None = None,
        batch_size: int | None = None,
        memory_budget: int | None = None,
    ):
        if not callable(fn):
            raise TypeError(f"expected a callable f(images) -> (n, k), got {type(fn).__name__}")
        super().__init__(batch_size=batch_size, memory_budget=memory_budget)
        self.fn = fn
        self.grad_fn = grad_fn

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        return to_numpy(self.fn(x))

    def vjp(self, x: Any, cotangent: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs (n, k), d sum(outputs * cotangent) / dx (n, h, w, c))``, batched, by
        ``grad_fn``; ``cotangent`` ``(n, k)`` or a callable of each batch's outputs."""
        if self.grad_fn is None:
            raise NotImplementedError(
                "this NumPy model has no gradients: pass grad_fn=... to wrap(), or use a "
                "torch / Keras / JAX model"
            )
        x = as_image_batch(x)
        cot_fn = cotangent if callable(cotangent) else None
        cot = None if cot_fn is not None else check_cotangent(cotangent, len(x))
        outs, grads = [], []
        for s in batches(len(x), self.rows_for(x.shape[1:])):
            out = np.asarray(to_numpy(self.fn(x[s])), np.float32)
            m = s.stop - s.start
            if out.ndim != 2 or len(out) != m:
                raise ValueError(
                    f"the model returned shape {out.shape} for {m} images; expected (n, k): "
                    "one row of class scores per image"
                )
            c = cot_fn(out.copy()) if cot_fn is not None else cot[s]
            c = check_cotangent(c, m, out.shape[-1])
            outs.append(out)
            grads.append(np.asarray(to_numpy(self.grad_fn(x[s], c)), np.float32))
        return checked_vjp(np.concatenate(outs), np.concatenate(grads).reshape(x.shape))

    def flat_outputs(self) -> NumpyBackend:
        """``fn`` with its outputs flattened to ``(n, d)`` (an autoencoder's images, NHWC), and
        ``grad_fn`` given the cotangent back in the outputs' shape."""
        fn, grad_fn = self.fn, self.grad_fn
        last = threading.local()  # the output shape of this thread's last batch

        def flat_fn(x: np.ndarray) -> np.ndarray:
            out = np.asarray(to_numpy(fn(x)))
            last.shape = out.shape[1:]  # the vjp calls fn on a batch before grad_fn
            return out.reshape(len(out), -1)

        def flat_grad(x: np.ndarray, cot: np.ndarray) -> Any:
            return grad_fn(x, np.reshape(cot, (len(cot),) + last.shape))

        return NumpyBackend(
            flat_fn,
            None if grad_fn is None else flat_grad,
            batch_size=self._batch_size,
            memory_budget=self._memory_budget,
        )

    def grad(self, x: Any, outputs: Any) -> np.ndarray:
        x = as_image_batch(x)
        idx = output_matrix(outputs, len(x))
        k = self.predict(x[:1]).shape[1]
        check_output_range(idx, k)
        out = np.empty(x.shape + (idx.shape[1],), np.float32)
        for j in range(idx.shape[1]):
            cot = np.zeros((len(x), k), np.float32)
            cot[np.arange(len(x)), idx[:, j]] = 1.0
            out[..., j] = self.vjp(x, cot)[1]
        return check_finite(out, "gradients")
