"""One array namespace for the formulas written once for every framework.

:class:`ArrayOps` gives one framework's array functions the names that framework-free code
computes with: the DeepLIFT rules (:mod:`._deeplift_rules`) and the CEM step
(:mod:`xaiwidgets.explainers._fista_compiled`, run by a backend's
:meth:`~xaiwidgets.backends.base.BaseBackend.compile_step`). Each framework backend module
builds its instance (``ARRAY_OPS`` in ``_array_ops_torch``, ``_compiled_tensorflow``,
``_compiled_jax``) from its own functions; nothing here imports a framework. :data:`NUMPY_OPS` is
NumPy's.

The names follow the array API (``where``, ``abs``, ``square``, ``exp``, ``log``, ``minimum``,
``maximum``, ``clip``, ``reshape``, ``transpose(t, axes)``, ``sum``/``max`` with ``axis`` and
``keepdims``), plus

- ``softmax(t)`` over the last axis, ``one_hot(idx, k)`` a boolean ``(n, k)`` mask,
- ``value_and_grad(f)``: for ``f(y, *args) -> (total, aux)`` with ``total`` a scalar, a
  function ``(y, *args) -> ((total, aux), d total / d y)`` (``None`` where the framework
  differentiates otherwise, e.g. torch's autograd in the eager backends),
- derived here: ``sum_last``/``max_last`` (last axis, kept), ``flat`` (to 1-D) and
  ``sum_rows`` (sum of each row of a batch, ``(n, ...) -> (n,)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class ArrayOps:
    """A framework's array functions under shared names (see the module docstring)."""

    def __init__(
        self,
        framework: str,
        *,
        where: Callable,
        abs: Callable,  # noqa: A002 - the array API's name
        square: Callable,
        exp: Callable,
        log: Callable,
        minimum: Callable,
        maximum: Callable,
        clip: Callable,
        reshape: Callable,
        transpose: Callable,
        sum: Callable,  # noqa: A002
        max: Callable,  # noqa: A002
        softmax: Callable,
        one_hot: Callable,
        value_and_grad: Callable | None = None,
    ):
        self.framework = framework
        self.where, self.abs, self.square, self.exp, self.log = where, abs, square, exp, log
        self.minimum, self.maximum, self.clip, self.reshape = minimum, maximum, clip, reshape
        self.transpose = transpose
        self._sum, self._max = sum, max
        self.softmax, self.one_hot, self.value_and_grad = softmax, one_hot, value_and_grad

    def sum(self, t: Any, axis: int, keepdims: bool = False) -> Any:
        """Sum over ``axis``."""
        return self._sum(t, axis, keepdims)

    def max(self, t: Any, axis: int, keepdims: bool = False) -> Any:
        """Maximum over ``axis``."""
        return self._max(t, axis, keepdims)

    def sum_last(self, t: Any) -> Any:
        """Sum over the last axis, kept (``(..., k) -> (..., 1)``)."""
        return self._sum(t, -1, True)

    def max_last(self, t: Any) -> Any:
        """Maximum over the last axis, kept."""
        return self._max(t, -1, True)

    def flat(self, t: Any) -> Any:
        """``t`` as a 1-D array."""
        return self.reshape(t, (-1,))

    def sum_rows(self, t: Any) -> Any:
        """Sum of each row: ``(n, ...) -> (n,)``."""
        return self._sum(self.reshape(t, (t.shape[0], -1)), 1, False)

    def __repr__(self) -> str:
        return f"ArrayOps({self.framework!r})"


def _np_softmax(t: np.ndarray) -> np.ndarray:
    e = np.exp(t - t.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


#: NumPy's array functions (no gradients).
NUMPY_OPS = ArrayOps(
    "numpy",
    where=np.where,
    abs=np.abs,
    square=np.square,
    exp=np.exp,
    log=np.log,
    minimum=np.minimum,
    maximum=np.maximum,
    clip=np.clip,
    reshape=np.reshape,
    transpose=np.transpose,
    sum=lambda t, axis, keepdims: np.sum(t, axis=axis, keepdims=keepdims),
    max=lambda t, axis, keepdims: np.max(t, axis=axis, keepdims=keepdims),
    softmax=_np_softmax,
    one_hot=lambda idx, k: np.asarray(idx)[:, None] == np.arange(k)[None],
)


class FlatOutputs:
    """A model whose outputs are flattened to ``(n, d)`` in NHWC order (channels-first image
    outputs ``(n, c, h, w)`` are moved to ``(n, h, w, c)`` first): an image-to-image model
    (CEM's autoencoder) seen as the ``(n, k)`` model the backends' ``predict``/``vjp`` accept.
    Attribute access goes to the model (``parameters()``, ``modules()``, ``built``, ... for
    the torch and Keras backends). Built by each backend's ``flat_outputs``."""

    def __init__(self, model: Any, ops: ArrayOps, channels_first: bool = False):
        self._model, self._ops, self._channels_first = model, ops, bool(channels_first)

    def __call__(self, x: Any, **kwargs: Any) -> Any:
        out = self._model(x, **kwargs)
        if self._channels_first and len(out.shape) == 4:
            out = self._ops.transpose(out, (0, 2, 3, 1))
        return self._ops.reshape(out, (-1, int(np.prod([int(v) for v in out.shape[1:]]))))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_model", "_ops", "_channels_first"):
            raise AttributeError(name)
        return getattr(self._model, name)
