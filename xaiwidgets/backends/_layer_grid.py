"""A layer's activations as a spatial grid ``(n, h', w', channels)``, whatever the layer.

Convolutional layers already are grids (a backend moves channels last); transformer layers
give tokens ``(n, t, d)``: the leading non-spatial tokens (a class token, a distillation
token) are dropped and the rest laid out row by row on an ``h' x w'`` grid.

``reshape``:

- ``None`` (default): the smallest number of leading tokens ``p`` in ``0..8`` for which
  ``t - p`` is a perfect square; the grid is square.
- ``(h', w')``: the last ``h' * w'`` tokens, on an ``h' x w'`` grid (non-square layouts).
- ``(h', w', p)``: ``p`` leading tokens dropped, then ``h' * w'`` tokens on the grid.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np


class ChosenOutputs:
    """The model outputs ``(n, k)`` and the outputs chosen from them ``(n, o)``, filled batch
    by batch when a layer pass chooses its outputs itself (a callable ``choose(rows,
    outputs)``, e.g. top-k): one forward pass per batch serves both."""

    def __init__(self, n: int, choose: Callable[[slice, np.ndarray], Any]):
        self.n, self.choose = int(n), choose
        self.outputs: np.ndarray | None = None
        self.indices: np.ndarray | None = None

    def take(self, rows: slice, out: np.ndarray) -> np.ndarray:
        """Keep the batch ``rows``'s outputs ``out`` ``(r, k)``; return its chosen ``(r, o)``."""
        idx = np.asarray(self.choose(rows, out), np.int64)
        if self.outputs is None:
            self.outputs = np.empty((self.n, out.shape[1]), np.float32)
            self.indices = np.empty((self.n, idx.shape[1]), np.int64)
        self.outputs[rows], self.indices[rows] = out, idx
        return idx


class LayerOutput(NamedTuple):
    """What ``backend.layer`` returns: ``activations`` ``(n, h', w', d)`` and ``gradients``
    ``(n, h', w', d, o)`` (float32, channels last, tokens as a grid) of the layer ``name``;
    when the outputs were chosen from the layer pass itself (a callable ``outputs``), also the
    model's ``outputs`` ``(n, k)`` and the chosen ``indices`` ``(n, o)`` (else ``None``)."""

    activations: np.ndarray
    gradients: np.ndarray
    name: str
    outputs: np.ndarray | None = None
    indices: np.ndarray | None = None


def token_grid(t: int, reshape: Any = None) -> tuple[int, int, int]:
    """``(h', w', p)`` for ``t`` tokens: grid rows, columns and leading tokens dropped."""
    if reshape is None:
        for p in range(0, min(t, 9)):
            side = math.isqrt(t - p)
            if side > 0 and side * side == t - p:
                return side, side, p
        raise ValueError(
            f"layer: its {t} tokens do not form a square grid after dropping 0..8 leading "
            "tokens; give reshape=(rows, cols) or (rows, cols, leading_tokens)"
        )
    if not isinstance(reshape, (tuple, list)) or len(reshape) not in (2, 3):
        raise TypeError(f"reshape: expected (rows, cols) or (rows, cols, leading), got {reshape!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in reshape):
        raise TypeError(f"reshape: expected integers, got {reshape!r}")
    gh, gw = int(reshape[0]), int(reshape[1])
    p = int(reshape[2]) if len(reshape) == 3 else t - gh * gw
    if gh < 1 or gw < 1 or p < 0 or p + gh * gw > t:
        raise ValueError(f"reshape={tuple(reshape)} does not fit a layer of {t} tokens")
    return gh, gw, p


def to_grid(a: np.ndarray, reshape: Any = None, tokens: bool = False) -> np.ndarray:
    """Activations (or their gradients, with trailing axes) ``(n, h', w', d, ...)`` from a
    channels-last grid ``(n, h', w', d, ...)`` or tokens ``(n, t, d, ...)`` (``tokens=True``)."""
    if not tokens:
        return a
    gh, gw, p = token_grid(a.shape[1], reshape)
    a = a[:, p : p + gh * gw]
    return a.reshape((a.shape[0], gh, gw) + a.shape[2:])


def is_spatial(shape: tuple[int, ...], channels_first: bool) -> bool:
    """Whether a layer output of ``shape`` (batch first) can be drawn as a grid: a 4-D
    convolutional map of more than one position, or 3-D tokens that form a square after
    dropping a few leading ones."""
    if len(shape) == 4:
        h, w = shape[2:] if channels_first else shape[1:3]
        return h * w > 1 and min(shape[1:]) > 0
    if len(shape) == 3 and shape[1] > 1:
        try:
            token_grid(shape[1])
        except ValueError:
            return False
        return True
    return False


@contextmanager
def wrapped_calls(layers: dict[Any, Any], on_output: Callable[[Any, Any], Any]) -> Iterator[None]:
    """Within the block, each Keras layer ``layers[key]`` returns
    ``on_output(key, its output)`` when called from this thread (its ``call`` wrapped on the
    instance: nested models call their layers through it too); every layer is restored on
    exit, also on error. Blocks overlapping on one layer (several threads, or nested) share
    one wrapper, which dispatches to the innermost block of the calling thread; the last to
    leave restores the layer."""
    thread = threading.get_ident()
    taken = []
    with _WRAP_LOCK:
        for key, layer in layers.items():
            wrap = _WRAPPED.get(id(layer))
            if wrap is None:
                wrap = _WRAPPED[id(layer)] = _Wrapper(layer)
            wrap.hooks.setdefault(thread, []).append(functools.partial(on_output, key))
            taken.append(wrap)
    try:
        yield
    finally:
        with _WRAP_LOCK:
            for wrap in taken:
                stack = wrap.hooks[thread]
                stack.pop()
                if not stack:
                    del wrap.hooks[thread]
                if not wrap.hooks:
                    wrap.restore()
                    del _WRAPPED[id(wrap.layer)]


class _Wrapper:
    """A Keras layer's ``call`` replaced on the instance by one that hands its output to the
    calling thread's hook (if any)."""

    def __init__(self, layer: Any):
        self.layer = layer
        self.own = "call" in vars(layer)
        self.original = original = layer.call
        self.hooks: dict[int, list[Callable[[Any], Any]]] = {}
        hooks = self.hooks

        def call(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            stack = hooks.get(threading.get_ident())
            return stack[-1](out) if stack else out

        object.__setattr__(layer, "call", call)

    def restore(self) -> None:
        if self.own:
            object.__setattr__(self.layer, "call", self.original)
        else:
            object.__delattr__(self.layer, "call")


_WRAP_LOCK = threading.Lock()
_WRAPPED: dict[int, _Wrapper] = {}
