"""Renamed keywords and values: the old spelling keeps working one release, with a
``DeprecationWarning`` that names the new one (the vocabulary is in docs/architecture.md)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def warn_renamed(where: str, old: str, new: str, stacklevel: int = 3) -> None:
    """Warn that ``old`` (a keyword ``old=`` or a value) of ``where`` is now ``new``."""
    warnings.warn(
        f"{where}: {old} is deprecated, use {new} (the old spelling is removed in the next "
        "release)",
        DeprecationWarning,
        stacklevel=stacklevel,
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


def renamed_value(where: str, value: Any, renames: dict[str, str], stacklevel: int = 4) -> Any:
    """``value``, or its new spelling (with a warning) when it is an old one."""
    if isinstance(value, str) and value in renames:
        warn_renamed(where, repr(value), repr(renames[value]), stacklevel=stacklevel)
        return renames[value]
    return value
