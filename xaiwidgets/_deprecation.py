"""Renamed keywords and values: the old spelling keeps working one release, with a
``DeprecationWarning`` that names the new one (the vocabulary is in docs/architecture.md)."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


#: modules whose frames are skipped: the warning points at the user's line that used the old
#: name, however deep in the package (or traitlets' validation) it was noticed
_INTERNAL = ("xaiwidgets", "traitlets", "ipywidgets", "anywidget", "functools", "contextlib")


def _user_stacklevel() -> int:
    """``stacklevel`` of the first caller outside the package and the widget libraries."""
    frame, level = sys._getframe(2), 2  # the caller of warn_renamed
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] not in _INTERNAL:
            return level
        frame, level = frame.f_back, level + 1
    return 2


def warn_renamed(where: str, old: str, new: str, stacklevel: int | None = None) -> None:
    """Warn that ``old`` (a keyword ``old=`` or a value) of ``where`` is now ``new``; the
    warning points at the user's code (``stacklevel`` overrides)."""
    warnings.warn(
        f"{where}: {old} is deprecated, use {new} (the old spelling is removed in the next "
        "release)",
        DeprecationWarning,
        stacklevel=_user_stacklevel() if stacklevel is None else stacklevel,
    )


def renamed_kwargs(**renames: str) -> Callable[[F], F]:
    """Decorator: ``@renamed_kwargs(max_iter="max_iterations")`` accepts ``max_iter=`` as
    ``max_iterations=`` with a ``DeprecationWarning``; both at once is a ``TypeError``."""

    def decorate(fn: F) -> F:
        where = fn.__qualname__.removesuffix(".__init__") + "()"

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{where}: got both {old}= (deprecated) and {new}=; pass {new}= only"
                        )
                    warn_renamed(where, f"{old}=", f"{new}=")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def renamed_value(where: str, value: Any, renames: dict[str, str]) -> Any:
    """``value``, or its new spelling (with a warning) when it is an old one."""
    if isinstance(value, str) and value in renames:
        warn_renamed(where, repr(value), repr(renames[value]))
        return renames[value]
    return value
