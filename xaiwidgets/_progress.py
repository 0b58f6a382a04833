"""Progress reporting and cancellation shared by explainers and widgets.

An explainer's ``__call__`` takes ``progress`` (a callable ``progress(fraction: float)``, or
``True`` for a tqdm bar, or ``None``) and ``cancel`` (a :class:`threading.Event`-like object
with ``is_set()``). :class:`RunControl` wraps both so that algorithm code just calls
``ctl.step(fraction)``, which raises :class:`Cancelled` as soon as the run is superseded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Cancelled(Exception):
    """Raised inside a run whose cancel event was set (a newer request superseded it)."""


class RunControl:
    """Progress + cancellation for one run.

    Parameters
    ----------
    progress : callable(float) | bool | None
        Called with the finished fraction in [0, 1]. ``True`` shows a tqdm bar.
    cancel : object with ``is_set() -> bool`` | None
        Checked at every :meth:`step`; when set the run raises :class:`Cancelled`.
    desc : str
        Label of the tqdm bar.
    """

    def __init__(
        self,
        progress: Callable[[float], Any] | bool | None = None,
        cancel: Any = None,
        desc: str = "explaining",
    ):
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise TypeError(
                "cancel: expected None or an event with is_set() (threading.Event()), got "
                f"{type(cancel).__name__} {cancel!r}"
            )
        if not (progress is None or isinstance(progress, bool) or callable(progress)):
            raise TypeError(
                "progress: expected None, True (a tqdm bar) or a callable progress(fraction), "
                f"got {type(progress).__name__} {progress!r}"
            )
        self._cancel = cancel
        self._bar = None
        self._callback = None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=100, desc=desc, leave=False)
        elif callable(progress):
            self._callback = progress
        self._last = 0.0

    @property
    def cancelled(self) -> bool:
        return bool(self._cancel is not None and self._cancel.is_set())

    def check(self) -> None:
        """Raise :class:`Cancelled` when the run was superseded."""
        if self.cancelled:
            raise Cancelled()

    def step(self, fraction: float) -> None:
        """Report progress (fraction done, clipped to [0, 1] and never below what was reported
        before) and check for cancellation."""
        self.check()
        fraction = min(max(float(fraction), self._last, 0.0), 1.0)
        if self._bar is not None:
            self._bar.update(round(100 * (fraction - self._last)))
        if self._callback is not None:
            self._callback(fraction)
        self._last = fraction

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> RunControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
