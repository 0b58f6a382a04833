"""How one DeepLIFT call is cut into passes: within the memory budget, and each pass about
:data:`PASS_SECONDS` long, so that progress moves and a cancel is seen within about that on any
model and machine (a ResNet at 224 x 224 on a loaded CPU included).

A pass evaluates ``rows`` pair rows (each image of a chunk with each reference of a chunk): a
forward pass over the pair rows and over the references, then one backward pass per explained
output. Its cost is counted in *units*, the seconds of one image's plain forward pass:

    seconds(pass) ~= unit * rows * (PASS_FORWARDS + BACKWARD_FORWARDS * o)

Before the first pass on a backend and image shape, ``unit`` is measured by plain forward
passes (``backend.predict``, each size timed twice, the faster counts: the first call may warm
up or compile) on 1, 2, 4, ... references until a call takes :data:`PROBE_SECONDS`, at most
the rows a pass would hold: ``unit`` is that call's seconds per image. A call that short on a
busy machine is mostly waiting for a core, not work per image, so when even the largest call
is faster the model is cheap for this machine and the passes are bounded by memory alone
(``unit`` 0). The estimate is kept per backend and image shape. The rows a pass may hold are
the fewest of the caller's row cap, what the memory budget allows
(:func:`~._deeplift_rules.plan_passes`) and what takes about :data:`PASS_SECONDS`. A pass that
still takes longer than :data:`SLOW` x :data:`PASS_SECONDS` (the estimate was off, or the
machine got busier) re-plans the rest of the call to about :data:`PASS_SECONDS`, once (each new
pass shape is traced or compiled once). A pass whose time includes tracing or compiling does
not re-plan.

Framework-free: used by the torch, TensorFlow/Keras and JAX DeepLIFT drivers.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._deeplift_rules import plan_passes, reference_chunks

#: Target duration of one DeepLIFT pass (seconds).
PASS_SECONDS = 0.5
#: A timed pass slower than this many :data:`PASS_SECONDS` re-plans the rest of the call.
SLOW = 2.0
#: Single-image forward passes a pair row costs in a pass besides its backward passes (the pair
#: side and the reference side of the forward pass).
PASS_FORWARDS = 2
#: Single-image forward passes one backward pass (with DeepLIFT rules) costs, per output.
BACKWARD_FORWARDS = 2
#: A timed forward call this long (seconds) measures the model's cost per image; shorter ones
#: on a busy CPU measure mostly the wait for a core.
PROBE_SECONDS = 0.15

#: backend -> {image shape: seconds of one unit (0: bounded by memory alone)}
_UNITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def unit_seconds(backend: Any, refs: np.ndarray, most: int, first: int = 1) -> float | None:
    """Seconds of one image's forward pass on ``backend``: measured once per backend and image
    shape on ``first``, ``2 first``, ... (at most ``most``) images drawn from ``refs``, until
    a call takes :data:`PROBE_SECONDS`; 0 when even ``most`` images take less; ``None`` when
    the model's outputs on ``refs`` are not finite (the passes then fail with the backend's own
    error)."""
    shape = tuple(refs.shape[1:])
    with _LOCK:
        known = _units(backend).get(shape)
    if known is not None:
        return known
    most, k = max(1, int(most)), max(1, int(first))
    unit = 0.0
    try:
        while True:
            k = min(k, most)
            sample = refs[np.arange(k) % len(refs)]
            took = min(_timed(backend, sample), _timed(backend, sample))
            if took >= PROBE_SECONDS:
                unit = took / k
                break
            if k >= most:
                break
            k *= 2
    except ValueError:  # NonFiniteOutputError: no estimate, the passes say what is wrong
        return None
    with _LOCK:
        _units(backend)[shape] = unit
    return unit


def _timed(backend: Any, x: np.ndarray) -> float:
    began = time.perf_counter()
    backend.predict(x)
    return time.perf_counter() - began


def _units(backend: Any) -> dict:
    try:
        return _UNITS.setdefault(backend, {})
    except TypeError:  # not weak-referenceable: measured every call
        return {}


def pass_units(o: int) -> int:
    """Units (single-image forward passes) one pair row costs in a pass with ``o`` outputs."""
    return PASS_FORWARDS + BACKWARD_FORWARDS * max(1, int(o))


class Passes:
    """The passes of one DeepLIFT call of ``n`` images against ``refs`` with ``o`` outputs.

    ``rows``: most pair rows per pass (the backend's default, or the caller's ``max_rows``);
    ``row_bytes``: the model's activation bytes per image, or ``None`` (no memory bound);
    ``paced``: also bound each pass to about :data:`PASS_SECONDS` and re-plan once when a pass
    is slow (``False`` when the caller gave ``max_rows``: exactly that plan; off too when the
    backend's ``batch_size`` was given, ``backend.batch_size_given``).

    Use::

        for s in plan.image_chunks():          # images x[s], padded to plan.images if needed
            for r in plan.reference_chunks():  # references refs[r]
                progress(plan.fraction)
                ...one pass...
                plan.took(seconds, compiled=...)

    ``images`` (images per pass) and ``refs_per`` (references per pass) may shrink after a
    slow pass; a chunk of images keeps its size until its references are done.
    """

    def __init__(
        self,
        backend: Any,
        n: int,
        refs: np.ndarray,
        o: int,
        rows: int,
        row_bytes: int | None,
        *,
        paced: bool = True,
        probe_first: int = 1,
    ):
        self.backend, self.shape = backend, tuple(refs.shape[1:])
        self.n, self.n_ref, self.o = int(n), len(refs), max(1, int(o))
        # a batch_size the user gave is kept: small passes cost more per row
        self.paced = bool(paced) and not getattr(backend, "batch_size_given", False)
        rows = max(1, int(rows))
        images, self.refs_per = plan_passes(self.n_ref, rows, row_bytes, backend.memory_budget)
        if self.paced:  # the probe goes up to the rows of the largest planned pass
            most = min(self.n, images) * self.refs_per
            unit = unit_seconds(backend, refs, most, probe_first)
            if unit:
                rows = min(rows, self._rows_in(PASS_SECONDS, unit))
                images, self.refs_per = plan_passes(
                    self.n_ref, rows, row_bytes, backend.memory_budget
                )
        self.images = max(1, min(self.n, images))
        self.done = 0
        self._chunk = slice(0, 0)
        self._ref: slice | None = None
        self._queue: list[slice] = []

    def _rows_in(self, seconds: float, unit: float) -> int:
        return max(1, int(min(2**31, seconds / (unit * pass_units(self.o)))))

    @property
    def fraction(self) -> float:
        """Pair rows done, as a fraction of all ``n * n_ref``."""
        return self.done / max(1, self.n * self.n_ref)

    def within(self, part: float) -> float:
        """:attr:`fraction` with ``part`` (0..1) of the current pass done too."""
        current = self._rows() if self._ref is not None else 0
        return (self.done + float(part) * current) / max(1, self.n * self.n_ref)

    def first(self) -> tuple[slice, slice]:
        """The images and references of the first pass."""
        return slice(0, self.images), reference_chunks(self.n_ref, self.refs_per)[0]

    def image_chunks(self) -> Iterator[slice]:
        """Consecutive chunks of at most :attr:`images` images."""
        start = 0
        while start < self.n:
            self._chunk = slice(start, min(start + self.images, self.n))
            yield self._chunk
            start = self._chunk.stop

    def reference_chunks(self) -> Iterator[slice]:
        """The references of the current chunk of images, in equal chunks of at most
        :attr:`refs_per` (the rest re-chunked after a slow pass)."""
        self._queue = reference_chunks(self.n_ref, self.refs_per)
        while self._queue:
            self._ref = self._queue.pop(0)
            yield self._ref
            if self._ref is not None:  # took() was not called: count the rows anyway
                self.done += self._rows()
            self._ref = None

    def _rows(self) -> int:
        r = self._ref
        return (self._chunk.stop - self._chunk.start) * (r.stop - r.start)

    def took(self, seconds: float, *, compiled: bool = False) -> None:
        """The current pass took ``seconds`` (``compiled``: they include tracing or compiling
        its shape, so they do not re-plan)."""
        rows = self._rows()
        self.done += rows
        r, self._ref = self._ref, None
        if compiled or not self.paced:
            return
        if seconds > SLOW * PASS_SECONDS and rows > 1:
            self.paced = False  # once: every new shape is traced or compiled
            fit = max(1, int(rows * PASS_SECONDS / seconds))
            m = self._chunk.stop - self._chunk.start
            self.images = max(1, min(self.images, fit // self.n_ref))
            if self._queue:  # the rest of this chunk's references
                step = max(1, min(self.n_ref, fit // m))
                self._queue = [
                    slice(q.start + r.stop, q.stop + r.stop)
                    for q in reference_chunks(self.n_ref - r.stop, step)
                ]
            self.refs_per = max(1, min(self.n_ref, fit // self.images))
