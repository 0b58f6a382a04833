"""`LiveWidget`: the one mechanism by which a view re-computes when its settings change.

A live view (ShapleyExplorer, CEMWidget, MetricsView, ...) names the traits whose change
re-computes (``live_settings``) and supplies four small pieces; everything else is here:

- ``_live_key()``: validate the settings and return a hashable key of them (a
  ``ValueError``/``TypeError`` is shown in place, in ``error``; nothing runs, the last
  picture stays and the view stays usable);
- ``_live_job(lane, key)``: the work, ``fn(progress=..., cancel=...) -> result``, run on a
  worker thread by a :class:`~xaiwidgets.widgets._runner.LatestRunner` (the kernel stays free);
- ``_live_draw(lane, key, result, cached)``: write a result into the traits;
- optionally the hooks below (what else a view shows when a request starts, fails, ...).

What the base owns:

- **settings keys and supersede**: a change of a setting (from Python or the browser) starts a
  request for the new key; a newer request cancels the one it supersedes (its cancel event is
  set) and a superseded result is never drawn (the runner delivers only its newest request's
  result, and the key is checked again under the view's lock before drawing). The same key as
  the current one (drawn or on its way) starts nothing: a browser message that sets several
  traits at once runs once, for the final state. Changes inside :meth:`holding` start nothing.
- **one cache** of finished results by ``(lane, key)`` (least recently used dropped first):
  going back to an earlier setting is drawn at once, without a model call. A view may answer
  from it more cleverly by overriding ``_live_lookup``/``_live_store`` (the explorer cuts a
  smaller ``top_k`` out of a larger one).
- **progress**: ``progress`` goes 0 → 1 while a request runs (throttled to steps of
  ``_live_progress_step``) and back to ``-1`` when it is drawn or fails.
- **errors in place**: a failure of the current request shows in ``error`` as
  ``"TypeName: message"``; the next request clears it.
- :meth:`wait` (blocks until the newest request is drawn; returns the view), :meth:`update`
  (several settings, one request), :meth:`clear_cache`, :meth:`close` (cancels the run and
  stops the worker threads).

A *lane* is one independent stream of requests with its own worker thread and its own status
widget (``_live_status(lane)``: whose ``error``/``progress`` show it; by default the view
itself). Most views have one lane, ``""``; :class:`~xaiwidgets.widgets.MetricsView` has one per
explainer, each drawn into its own grid, so the explainers run side by side and one failing
does not hide the others.

``LiveWidget`` is a mixin over an ipywidgets widget that has ``error`` and ``progress``
traits (or whose ``_live_status`` returns one that does)::

    class MyView(LiveWidget, XaiWidget):
        live_settings = ("kappa",)
        ...
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, ClassVar

from ._runner import LatestRunner

#: what ``_live_lookup`` returns when a key is not cached
MISS: Any = object()


class LiveCache:
    """At most ``size`` results by key, least recently used dropped first (not thread-safe:
    the view holds its lock around every call)."""

    def __init__(self, size: int = 32):
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = int(size)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def items(self) -> Iterator[tuple[Hashable, Any]]:
        return iter(list(self._items.items()))

    def clear(self) -> None:
        self._items.clear()

    def put(self, key: Hashable, result: Any) -> None:
        self._items[key] = result
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def get(self, key: Hashable) -> Any:
        """The result of ``key``, or ``None``."""
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit


class _Lane:
    """One stream of requests: its runner, its current key, whether it runs."""

    def __init__(self, runner: LatestRunner):
        self.runner = runner
        self.current: Hashable | None = None
        self.running = False
        self.last_progress = -1.0


class LiveWidget:
    """Mixin: settings keys, one result cache, progress, errors in place, supersede, wait/close.

    See the module docstring for what a subclass supplies. Construct with
    ``super().__init__(lanes=..., cache_size=..., **traits)`` (``lanes`` default ``("",)``).
    """

    #: traits whose change starts a new request
    live_settings: ClassVar[tuple[str, ...]] = ()
    #: smallest progress step sent to the browser (1.0 is always sent)
    _live_progress_step: ClassVar[float] = 0.02
    #: largest progress shown while a request runs (1.0 would look finished before the draw)
    _live_progress_cap: ClassVar[float] = 1.0

    def __init__(
        self,
        *args: Any,
        lanes: Iterable[str] = ("",),
        cache: LiveCache | None = None,
        **kwargs: Any,
    ) -> None:
        if not hasattr(self, "_lock"):
            self._lock = threading.RLock()
        self._hold = 0
        self._cache = cache if cache is not None else LiveCache(32)
        self._lanes: dict[str, _Lane] = {name: self._make_lane(name) for name in lanes}
        with self.holding():
            super().__init__(*args, **kwargs)
        if self.live_settings:
            self.observe(self._live_on_setting, names=list(self.live_settings))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ public API
    def wait(self, timeout: float | None = None) -> Any:
        """Block until the newest request of every lane is computed and drawn (for scripts,
        tests and notebooks that must show the result when saved). Returns the view; a
        failure shows in ``error``."""
        for lane in list(getattr(self, "_lanes", {}).values()):
            lane.runner.wait(timeout)
        return self

    def update(self, **settings: Any) -> Any:
        """Set several settings (``kappa=0.2, beta=0.3``) and start one request for all.
        Returns the view."""
        unknown = set(settings) - set(self.live_settings)
        if unknown:
            raise TypeError(
                f"update: unknown setting(s) {sorted(unknown)}; expected {self.live_settings}"
            )
        with self.holding():
            for k, v in settings.items():
                setattr(self, k, v)
        self._request()
        return self

    def clear_cache(self) -> None:
        """Forget the cached results (the next change computes again)."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        """Cancel the runs in progress, stop the worker threads and close the widget."""
        for lane in getattr(self, "_lanes", {}).values():  # absent when __init__ failed early
            lane.runner.close()
        super().close()  # type: ignore[misc]

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Setting changes inside this block start no request (call ``_request`` after)."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1

    # ------------------------------------------------------------------ requests
    def _live_on_setting(self, change: dict[str, Any]) -> None:
        if not self._hold:
            self._request()

    def _request(self) -> None:
        """Validate the settings and make them the current request of every lane."""
        try:
            key = self._live_key()
        except (ValueError, TypeError) as exc:
            with self._lock:
                self._live_supersede()
                status = self._live_status("")
                with status.hold_sync():
                    status.error = f"{type(exc).__name__}: {exc}"
                    status.progress = -1.0
                    self._live_invalid(exc)
            return
        self._live_start(key)

    def _live_supersede(self) -> None:
        """No request is current any more: cancel every lane's run (nothing more is drawn)."""
        with self._lock:
            for lane in self._lanes.values():
                lane.current = None
                lane.running = False
                lane.runner.cancel()

    def _live_start(self, key: Hashable) -> None:
        """Make ``key`` the current request of every lane: drawn from the cache at once, or
        computed in the background (the run it supersedes is cancelled)."""
        for name, lane in self._lanes.items():
            with self._lock:
                if key == lane.current:  # drawn already, or on its way
                    self._live_same(name, key)
                    continue
                lane.current = key
                self._live_begin(name, key)
                hit = self._live_lookup(name, key)
                if hit is not MISS:
                    lane.runner.cancel()
                    lane.running = False
                    self._live_draw(name, key, hit, True)
                    self._live_done(name)
                    continue
                job = self._live_job(name, key)
                lane.running = True
                lane.last_progress = -1.0
                status = self._live_status(name)
                with status.hold_sync():
                    status.error = ""
                    status.progress = 0.0
                    self._live_started(name, key)
            lane.runner.submit(key, self._stored(name, key, job))

    def _stored(self, name: str, key: Hashable, job: Callable[..., Any]) -> Callable[..., Any]:
        def run(progress: Callable[[float], None], cancel: threading.Event) -> Any:
            result = job(progress=progress, cancel=cancel)
            with self._lock:  # kept even when superseded meanwhile: going back is instant
                self._live_store(name, key, result)
            return result

        return run

    def _make_lane(self, name: str) -> _Lane:
        def on_result(key: Hashable, result: Any) -> None:
            with self._lock:
                if key != lane.current:
                    return  # superseded between the runner's check and now: never drawn
                lane.running = False
                self._live_draw(name, key, result, False)
                self._live_done(name)

        def on_error(key: Hashable, exc: BaseException) -> None:
            with self._lock:
                if key != lane.current:
                    return
                lane.current = None  # the same setting may be tried again
                lane.running = False
                # on the worker thread: no hold_sync (it would also hold, and echo back, a
                # setting the kernel thread receives from the browser meanwhile)
                status = self._live_status(name)
                status.error = self._live_error_text(name, exc)
                status.progress = -1.0
                self._live_failed(name, key, exc)

        def on_progress(fraction: float) -> None:
            with self._lock:
                step = fraction - lane.last_progress
                if not lane.running or (fraction < 1.0 and step < self._live_progress_step):
                    return  # nothing runs for the view now, or too small a step to send
                lane.last_progress = fraction
                self._live_status(name).progress = min(float(fraction), self._live_progress_cap)

        # the view caches results itself (one cache, by lane and key): none in the runner
        lane = _Lane(LatestRunner(on_result, on_error, on_progress, cache_size=0))
        return lane

    def _live_done(self, name: str) -> None:
        status = self._live_status(name)  # maybe on the worker thread: no hold_sync
        status.error = ""
        status.progress = -1.0

    # ------------------------------------------------------------------ what a view supplies
    def _live_key(self) -> Hashable:
        """The validated key of the current settings (raise ValueError/TypeError if bad)."""
        raise NotImplementedError

    def _live_job(self, lane: str, key: Hashable) -> Callable[..., Any]:
        """The work of ``key`` in ``lane``: ``fn(progress=..., cancel=...) -> result``."""
        raise NotImplementedError

    def _live_draw(self, lane: str, key: Hashable, result: Any, cached: bool) -> None:
        """Write ``result`` into the traits (called under the lock; ``cached``: it came from
        the cache, no model call)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ optional hooks
    def _live_status(self, lane: str) -> Any:
        """The widget whose ``error``/``progress`` show ``lane`` (default: the view)."""
        return self

    def _live_lookup(self, lane: str, key: Hashable) -> Any:
        """A finished result of ``key``, or :data:`MISS`."""
        hit = self._cache.get((lane, key))
        return MISS if hit is None else hit

    def _live_store(self, lane: str, key: Hashable, result: Any) -> None:
        """Keep a finished result (on the worker thread, under the lock)."""
        self._cache.put((lane, key), result)

    def _live_begin(self, lane: str, key: Hashable) -> None:
        """``key`` became the current request of ``lane`` (before it is drawn or run)."""

    def _live_started(self, lane: str, key: Hashable) -> None:
        """A run of ``key`` starts (``progress`` is 0 now)."""

    def _live_same(self, lane: str, key: Hashable) -> None:
        """The settings were set again to the current request's key: nothing starts."""

    def _live_invalid(self, exc: BaseException) -> None:
        """The settings are invalid: ``exc`` shows in ``error``, nothing runs."""

    def _live_failed(self, lane: str, key: Hashable, exc: BaseException) -> None:
        """The current request of ``lane`` failed: ``exc`` shows in the status widget."""

    def _live_error_text(self, lane: str, exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"
