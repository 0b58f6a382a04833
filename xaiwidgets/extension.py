"""``%load_ext xaiwidgets``: explanations display as interactive widgets.

After loading, an :class:`~xaiwidgets.Explanation` at the end of a cell renders as the
attribution grid, and so does a ``shap.Explanation`` of images (matched by type name, shap is
never imported). A static PNG is added only on request (``display(e, include=["image/png"])``,
or ``Explanation.png_fallback = True`` for notebooks read where no widget manager runs) or
when the widget cannot be made; it is drawn on its own Agg canvas, never through pyplot, so
the user's matplotlib backend is left as it was.
"""

from __future__ import annotations

from typing import Any

_SHAP_TYPE = ("shap._explanation", "Explanation")


def _shap_mimebundle(obj: Any, include=None, exclude=None) -> dict[str, Any] | None:
    import numpy as np

    values = getattr(obj, "values", None)
    data = getattr(obj, "data", None)
    if values is None or data is None or np.ndim(data) not in (3, 4) or np.ndim(values) < 3:
        return None  # not an image explanation: let shap show itself
    from ._show import to_explanation

    return to_explanation(obj)._repr_mimebundle_(include=include, exclude=exclude)


def _explanation_mimebundle(obj: Any, include=None, exclude=None) -> dict[str, Any]:
    return obj._repr_mimebundle_(include=include, exclude=exclude)


def load_ipython_extension(ipython: Any) -> None:
    """Register the display hooks (called by ``%load_ext xaiwidgets``)."""
    from .explanation import Explanation

    formatter = ipython.display_formatter.mimebundle_formatter
    formatter.for_type(Explanation, _explanation_mimebundle)
    formatter.for_type_by_name(*_SHAP_TYPE, _shap_mimebundle)
    ipython.user_ns.setdefault("xaiwidgets", __import__("xaiwidgets"))


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the display hooks (``%unload_ext xaiwidgets``)."""
    from .explanation import Explanation

    formatter = ipython.display_formatter.mimebundle_formatter
    formatter.type_printers.pop(Explanation, None)
    formatter.deferred_printers.pop(_SHAP_TYPE, None)
    try:
        formatter.pop(".".join(_SHAP_TYPE), None)
    except Exception:  # pragma: no cover - type not seen yet
        pass
