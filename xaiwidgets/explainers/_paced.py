"""Forward-only model calls paced by their duration, with a cancel check before each.

The first call holds :data:`PROBE_ROWS` images (its time measures the model on this machine
now); each next call holds as many as the previous call's rate fits in :data:`CALL_SECONDS`,
at most ``cap`` (the backend's rows per forward-only call, which keep the call within the
memory budget). A cancel is then seen within about one call, whatever the model's size and
the machine's load: a 224 x 224 ResNet on a loaded CPU makes calls of a few images, a small
network one call of ``cap`` images after the probe. Results do not depend on the calls' sizes
(the images are independent). When the user gave ``batch_size``, every call holds that many
images instead (:func:`paced`).

Used by the explainers' first prediction (:meth:`Explainer._run`), the background mean
(:class:`~.deep.BackgroundMean`) and Score-CAM's masked images.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._progress import RunControl
from ..backends.base import NonFiniteOutputError, rows_text
from ._coalitions import forward_rows

#: Target duration of one paced model call (seconds).
CALL_SECONDS = 0.5
#: Images in the first paced call.
PROBE_ROWS = 2


def paced(backend: Any) -> bool:
    """Whether calls to ``backend`` are paced by time: not when the user gave ``batch_size``
    (every call then holds that many rows, and a cancel is seen within one such call). Small
    calls cost more per image, much more on a busy CPU (resnet18 at 224² under a load of 8 on
    2 cores: 1.47 s an image alone, 0.35 s in a batch of 8), so a given batch size is kept."""
    return not getattr(backend, "batch_size_given", False)


class Pacer:
    """Sizes of consecutive calls, kept across :meth:`slices` (one pacer per explainer call).

    ``cap``: most rows per call (at least 1); ``first``: rows of the first call; ``fixed``:
    every call holds ``cap`` rows (no probe, no pacing)."""

    def __init__(
        self,
        cap: int,
        first: int = PROBE_ROWS,
        seconds: float = CALL_SECONDS,
        *,
        fixed: bool = False,
    ):
        self.cap = max(1, int(cap))
        self.fixed = bool(fixed)
        self.size = self.cap if self.fixed else min(self.cap, max(1, int(first)))
        self.seconds = float(seconds)

    def slices(self, total: int) -> Iterator[slice]:
        """Consecutive slices over ``range(total)``; the time from yielding a slice to being
        asked for the next (the caller's model call) sizes the next one."""
        start = 0
        while start < total:
            stop = min(total, start + self.size)
            began = time.perf_counter()
            yield slice(start, stop)
            self.took(stop - start, time.perf_counter() - began)
            start = stop

    def took(self, rows: int, seconds: float) -> None:
        """A call of ``rows`` rows took ``seconds``: the next holds about :attr:`seconds`'s
        worth at that rate, between 1 and :attr:`cap`."""
        if self.fixed:
            return
        if seconds <= 0:
            self.size = self.cap
        else:
            self.size = max(1, min(self.cap, int(rows * self.seconds / seconds)))


def predict_paced(
    backend: Any, x: np.ndarray, ctl: RunControl, pacer: Pacer | None = None
) -> np.ndarray:
    """``backend.predict(x)`` ``(n, k)`` in paced calls (:class:`Pacer`, capped by the
    backend's forward rows), ``ctl.check()`` before each. Non-finite outputs raise
    :class:`~xaiwidgets.backends.base.NonFiniteOutputError` naming every such image of ``x``
    (all calls are made first)."""
    pacer = pacer or Pacer(forward_rows(backend, x.shape[1:]), fixed=not paced(backend))
    outs: list[np.ndarray] = []
    bad: list[np.ndarray] = []
    errors: list[str] = []
    for s in pacer.slices(len(x)):
        ctl.check()
        try:
            outs.append(np.asarray(backend.predict(x[s]), np.float32))
        except NonFiniteOutputError as exc:
            bad.append(exc.rows + s.start)
            errors.append(str(exc))
    if bad:
        raise _merged(np.concatenate(bad), errors)
    return np.concatenate(outs, axis=0)


def _merged(rows: np.ndarray, messages: list[str]) -> NonFiniteOutputError:
    """One error for the non-finite rows of several calls: the first message with every row
    (``"... are NaN for image(s) [1, 3]: ..."``), the kinds combined."""
    head, _, rest = messages[0].partition(" for image(s) ")
    tail = rest.partition(": ")[2]
    kinds = {m.partition(" for image(s) ")[0].rpartition(" are ")[2] for m in messages}
    if len(kinds) > 1:
        head = head.rpartition(" are ")[0] + " are NaN and infinite"
    return NonFiniteOutputError(f"{head} for image(s) {rows_text(rows)}: {tail}", rows)
