"""Which view draws which result: the registry between the algorithm layer and the views.

Results made in ``xaiwidgets/explainers/`` (which imports no view, ``tests/test_layering.py``)
get their interactive widget here: ``view_of(result)`` calls the factory a view module
registered for the result's class name with :func:`register_view`. The views register
themselves when ``xaiwidgets.widgets`` is imported, which ``view_of`` does on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_FACTORIES: dict[str, Callable[..., Any]] = {}


def register_view(result_type: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(result, **kwargs)`` the widget of results whose class is named
    ``result_type`` (e.g. ``"InfluenceResult"``)."""
    _FACTORIES[result_type] = factory


def view_of(result: Any, **kwargs: Any) -> Any:
    """The widget of ``result`` (the factory registered for its class, with ``kwargs``).

    Raises ``TypeError`` when no view draws results of this class."""
    name = type(result).__name__
    if name not in _FACTORIES:
        import xaiwidgets.widgets  # noqa: F401 - the views register themselves on import
    if name not in _FACTORIES:
        raise TypeError(f"no view draws a {name}; views exist for {sorted(_FACTORIES)}")
    return _FACTORIES[name](result, **kwargs)
