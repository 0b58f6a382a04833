"""Background re-runs for widgets: a newer request supersedes an older one.

A widget that re-computes when the user moves a control (masker toggle, CEM sliders, a click
on a confusion cell) hands the work to a :class:`LatestRunner`. Each request gets a fresh
cancel event; submitting a new request sets the previous one's event (the explainer raises
:class:`~xaiwidgets._progress.Cancelled` at its next progress step) and only the result of the
latest request is ever delivered, so a stale result is never drawn. Results are cached by a
key, so toggling back to an earlier setting is instant. The kernel stays free: work runs on a
single worker thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .._progress import Cancelled


class LatestRunner:
    """Run at most one computation at a time; deliver only the newest request's result.

    Parameters
    ----------
    on_result : callable(key, result)
        Called (on the worker thread) with the result of the newest request.
    on_error : callable(key, exception)
        Called with a failure of the newest request (cancellations are not errors).
    on_progress : callable(fraction)
        Progress of the newest request, in [0, 1].
    cache_size : int
        How many finished results to keep by key (default 32).
    """

    def __init__(
        self,
        on_result: Callable[[Hashable, Any], None],
        on_error: Callable[[Hashable, BaseException], None],
        on_progress: Callable[[float], None] | None = None,
        cache_size: int = 32,
    ):
        self._on_result = on_result
        self._on_error = on_error
        self._on_progress = on_progress
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._generation = 0
        self._cancel: threading.Event | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="xaiwidgets")
        self.last_future: Future | None = None

    def cached(self, key: Hashable) -> bool:
        return key in self._cache

    def submit(self, key: Hashable, fn: Callable[..., Any]) -> Future | None:
        """Compute ``fn(progress=..., cancel=...)`` for ``key`` in the background.

        A cached key is delivered at once (no thread). Returns the future, or ``None`` when
        the result came from the cache.
        """
        with self._lock:
            self._generation += 1
            generation = self._generation
            if self._cancel is not None:
                self._cancel.set()
            cancel = self._cancel = threading.Event()
            hit = key in self._cache
            if hit:
                self._cache.move_to_end(key)
                result = self._cache[key]
        if hit:
            self._deliver(generation, key, result)
            return None

        def progress(fraction: float) -> None:
            if self._is_current(generation) and self._on_progress is not None:
                self._on_progress(fraction)

        def job() -> None:
            if cancel.is_set():
                return
            try:
                result = fn(progress=progress, cancel=cancel)
            except Cancelled:
                return
            except Exception as exc:  # shown in the widget, which stays usable
                if self._is_current(generation):
                    self._on_error(key, exc)
                return
            with self._lock:
                self._cache[key] = result
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            self._deliver(generation, key, result)

        self.last_future = self._pool.submit(job)
        return self.last_future

    def _is_current(self, generation: int) -> bool:
        with self._lock:
            return generation == self._generation

    def _deliver(self, generation: int, key: Hashable, result: Any) -> None:
        if self._is_current(generation):
            self._on_result(key, result)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the latest submitted job finished (for tests and scripts)."""
        fut = self.last_future
        if fut is not None:
            fut.result(timeout=timeout)

    def cancel(self) -> None:
        """Cancel whatever runs now; nothing more is delivered until the next submit."""
        with self._lock:
            self._generation += 1
            if self._cancel is not None:
                self._cancel.set()

    def close(self) -> None:
        self.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
