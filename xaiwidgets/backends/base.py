"""The shared base class of the backends: :class:`BaseBackend`.

The contract it serves, :class:`Backend` and the optional capabilities, is documented in
:mod:`.protocol` (re-exported here, as are the boundary checks of :mod:`._checks`:
:class:`NonFiniteOutputError`, ``check_finite``, ``checked_vjp``, ``output_matrix``...).
What :class:`BaseBackend` does once for every backend: rows per model call within the memory
budget (``batch_size``, ``rows_for``, ``forward_rows``, ``grad_rows``), batched ``predict``
with its output checks, a framework's out-of-memory error re-raised naming ``batch_size=``,
the output-space detection (``outputs_are_probabilities``, ``to_probabilities``), and
``deeplift``: the framework's ``_deeplift`` (torch, Keras/TensorFlow, JAX), its values checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .._arrays import as_image_batch, batches, looks_like_probabilities, softmax
from .._budget import (
    ACTIVATION_RATIO,
    DEFAULT_MEMORY_BUDGET,
    FORWARD_ACTIVATION_RATIO,
    MAX_ROWS,
    check_batch_size,
    check_budget,
    forward_rows_per_call,
    rows_per_call,
)
from ._checks import (
    BatchMemoryError,
    NonFiniteOutputError,
    check_finite,
    checked_vjp,
    is_out_of_memory,
    output_matrix,
    rows_text,
)
from .protocol import Backend, InputLayout, LayerAccess, WeightRandomization

__all__ = [  # the protocol, the shared base class, the boundary checks of `_checks`
    "Backend",
    "BaseBackend",
    "InputLayout",
    "LayerAccess",
    "NonFiniteOutputError",
    "WeightRandomization",
    "check_finite",
    "checked_vjp",
    "is_out_of_memory",
    "output_matrix",
    "rows_text",
]


class BaseBackend:
    """Shared behaviour: input normalisation, batching, output-space detection.

    Subclasses implement :meth:`_predict_batch` (and the gradient methods they support).

    Parameters
    ----------
    batch_size : int or None
        Largest batch sent to the model at once. Default ``None``: derived per image shape from
        ``memory_budget`` and the activations the model keeps per image (:meth:`rows_for`; at
        most 256).
    memory_budget : int or None
        Working memory in bytes beyond the model, inputs and result (default
        :data:`~xaiwidgets._budget.DEFAULT_MEMORY_BUDGET`, 1 GiB); the gradient explainers
        chunk their own arrays within it too.

    A framework's out-of-memory error during a model call is raised as :class:`MemoryError`
    naming the batch and pointing to ``batch_size=``.
    """

    framework = "numpy"

    def __init__(self, batch_size: int | None = None, memory_budget: int | None = None):
        self._batch_size = check_batch_size(batch_size)
        self._memory_budget = check_budget(memory_budget)
        self._row_bytes_cache: dict[tuple[int, ...], int] = {}
        self._last_shape: tuple[int, ...] | None = None
        self._outputs_are_probabilities: bool | None = None

    # -- rows per call -------------------------------------------------------------
    @property
    def memory_budget(self) -> int:
        """Working-memory budget in bytes."""
        return self._memory_budget or DEFAULT_MEMORY_BUDGET

    @property
    def batch_size(self) -> int:
        """Rows per model call: the ``batch_size`` given, else :meth:`rows_for` of the last
        image shape seen (256 before any)."""
        if self._batch_size is not None:
            return self._batch_size
        if self._last_shape is None:
            return MAX_ROWS
        return self.rows_for(self._last_shape)

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        self._batch_size = check_batch_size(value)

    @property
    def batch_size_given(self) -> bool:
        """Whether ``batch_size`` was given: then model calls hold that many rows, and the
        explainers do not pace them by time (see :mod:`xaiwidgets.explainers._paced`)."""
        return self._batch_size is not None

    def row_bytes(self, image_shape: tuple[int, ...]) -> int:
        """Activation bytes one image keeps during a model call with gradients (measured once
        per shape by :meth:`_measure_row_bytes`; ``ACTIVATION_RATIO`` x input bytes when the
        backend cannot measure)."""
        shape = tuple(int(d) for d in image_shape)
        if shape not in self._row_bytes_cache:
            try:
                measured = self._measure_row_bytes(shape)
            except Exception:  # noqa: BLE001 - an estimate only; fall back to the ratio
                measured = None
            self._row_bytes_cache[shape] = int(
                measured if measured else ACTIVATION_RATIO * 4 * int(np.prod(shape))
            )
        return self._row_bytes_cache[shape]

    def _measure_row_bytes(self, image_shape: tuple[int, ...]) -> int | None:
        """Backends that can measure their model's activations per image override this."""
        return None

    def forward_row_bytes(self, image_shape: tuple[int, ...]) -> int:
        """Peak bytes one image keeps alive in a forward pass without gradients:
        :data:`~xaiwidgets._budget.FORWARD_ACTIVATION_RATIO` x its input bytes (a forward pass
        frees each activation once used: far below :meth:`row_bytes` on a deep network)."""
        return FORWARD_ACTIVATION_RATIO * 4 * int(np.prod(image_shape))

    def forward_rows(self, image_shape: tuple[int, ...]) -> int:
        """Rows per forward-only model call (``predict``; the maskings of Partition,
        Permutation, Occlusion, Score-CAM): ``batch_size`` when given, else what fits the
        memory budget by :meth:`forward_row_bytes`, at most
        :data:`~xaiwidgets._budget.MAX_ROWS`."""
        return self.rows_for(image_shape, backward=False)

    def rows_for(
        self,
        image_shape: tuple[int, ...],
        outputs: int = 1,
        *,
        backward: bool = True,
        vectorized: bool = False,
    ) -> int:
        """Rows per model call for images of ``image_shape`` ``(h, w, c)``: ``batch_size`` when
        given, else what fits the memory budget (:func:`~xaiwidgets._budget.rows_per_call`)
        for ``outputs`` input gradients per row, their backward passes held at once when
        ``vectorized``, one at a time otherwise; ``backward=False``: a forward pass alone, by
        :meth:`forward_row_bytes`, at most :data:`~xaiwidgets._budget.MAX_ROWS`."""
        shape = tuple(int(d) for d in image_shape)
        self._last_shape = shape
        if self._batch_size is not None:
            return self._batch_size
        o = max(1, int(outputs))
        if not backward:
            return forward_rows_per_call(
                self.forward_row_bytes(shape), 4 * int(np.prod(shape)), self.memory_budget
            )
        row_bytes = self.row_bytes(shape)
        return rows_per_call(
            row_bytes,
            4 * int(np.prod(shape)),
            self.memory_budget,
            activation_copies=o if vectorized else 1,
            gradient_copies=o,
        )

    def grad_rows(self, image_shape: tuple[int, ...], outputs: int = 1) -> int:
        """Rows per model call of :meth:`grad` with ``outputs`` outputs per row (one backward
        pass at a time here; backends that vectorise the backward passes override it)."""
        return self.rows_for(image_shape, outputs)

    @contextmanager
    def memory_hint(self, rows: int, image_shape: tuple[int, ...]) -> Iterator[None]:
        """Re-raise a framework's out-of-memory error as :class:`MemoryError` that names the
        batch and points to ``batch_size=``."""
        try:
            yield
        except Exception as exc:
            if not is_out_of_memory(exc) or isinstance(exc, BatchMemoryError):
                raise
            smaller = max(1, int(rows) // 4)
            raise BatchMemoryError(
                f"the model ran out of memory on a batch of {rows} images of shape "
                f"{tuple(image_shape)}: pass a smaller batch_size= to the explainer or to "
                f"wrap() (e.g. batch_size={smaller}), or a smaller memory_budget= (now "
                f"{self.memory_budget} bytes). {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc

    # -- to implement ------------------------------------------------------------
    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- protocol ----------------------------------------------------------------
    def predict(self, x: Any) -> np.ndarray:
        """``(n, k)`` float32 model outputs for images ``x``, batched: NHWC NumPy (a 4-D NumPy
        array is taken as NHWC, the protocol's layout), or a framework tensor in its framework's
        layout (see :func:`~xaiwidgets._arrays.as_image_batch`). Raises
        :class:`NonFiniteOutputError` naming every image with a NaN or infinite output."""
        x = as_image_batch(x)
        rows = self.rows_for(x.shape[1:], backward=False)
        with self.memory_hint(rows, x.shape[1:]):
            outs = [
                np.asarray(self._predict_batch(x[s]), dtype=np.float32)
                for s in batches(len(x), rows)
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

    def deeplift(
        self,
        x: np.ndarray,
        baselines: np.ndarray,
        outputs: Any,
        *,
        softmax: str = "shapley",
        max_rows: int | None = None,
        fallbacks: list | None = None,
        progress: Callable[[float], Any] | None = None,
    ) -> np.ndarray:
        """DeepLIFT (rescale) / DeepSHAP attributions ``(n, h, w, c, o)`` of ``x`` against
        every baseline, averaged over the baselines (the options: :class:`~.protocol.Backend`),
        by the framework's walk of its model's graph (:meth:`_deeplift`). NaN or infinite
        values raise :class:`NonFiniteOutputError`."""
        values = self._deeplift(
            x,
            baselines,
            outputs,
            softmax=softmax,
            max_rows=max_rows,
            fallbacks=fallbacks,
            progress=progress,
        )
        return check_finite(values, "DeepLIFT attributions")

    def _deeplift(self, x: Any, baselines: Any, outputs: Any, **options: Any) -> np.ndarray:
        """The attributions of :meth:`deeplift` before their check. DeepLIFT needs the model's
        own graph: only the torch, Keras/TensorFlow and JAX backends override this."""
        raise NotImplementedError(
            f"{type(self).__name__} has no DeepLIFT: DeepLIFT / DeepSHAP needs a differentiable "
            "framework model (torch, Keras / TensorFlow or JAX / Flax) whose graph it can walk; "
            "for a NumPy function use PartitionExplainer or PermutationExplainer (model-"
            "agnostic), or wrap the framework model itself"
        )

    #: :meth:`vjp` takes ``cotangent`` as a callable of the outputs (every backend does).
    vjp_accepts_callable = True

    def flat_outputs(self) -> BaseBackend:
        """The same model with its outputs flattened to ``(n, d)`` in NHWC order (for an
        image-to-image model, whose outputs ``predict``/``vjp`` would reject otherwise)."""
        raise NotImplementedError(f"{type(self).__name__} cannot flatten its model's outputs")

    def compile_step(
        self, program: Callable, constants: Any, image_model: Backend | None = None
    ) -> Callable | None:
        """``program`` as one compiled call of the framework, or ``None`` (here: this backend
        does not compile; the JAX and TensorFlow backends do).

        ``program(ops, scores, images, constants, *args)`` is framework-free code on ``ops``
        (an :class:`~._array_ops.ArrayOps`, with ``value_and_grad``): ``scores(z)`` is this
        backend's model on NHWC images ``z`` (``(n, k)``), ``images(z)`` the ``image_model``
        backend's (NHWC images out; ``None`` without one). The returned ``step(*args)`` runs
        it with ``constants`` (a dict of arrays, moved to the framework once) and ``args``
        (NumPy or framework arrays; Python floats as float32); it returns framework arrays
        (``np.asarray`` reads them). Compiled once per ``(program, image_model)`` and input
        shapes, cached on the backend: pass the same ``program`` object to reuse it. ``None``
        also when ``image_model`` is not a backend of the same framework."""
        return None

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
