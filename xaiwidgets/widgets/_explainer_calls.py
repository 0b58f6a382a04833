"""How a :class:`~xaiwidgets.widgets.MetricsView` calls the explainers it is handed.

Any callable ``explainer(images, **kw) -> Explanation`` is accepted (a
:class:`~xaiwidgets.explainers.base.Explainer`, a function); the keywords ``outputs``,
``labels``, ``progress`` and ``cancel`` are passed only when it takes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..explainers.base import Explainer
from ..explanation import Explanation

_PASSED = ("outputs", "labels", "progress", "cancel")


def accepted_keywords(fn: Callable) -> set[str]:
    """Which of outputs/labels/progress/cancel ``fn`` takes (all of them with ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return set(_PASSED)
    return {p.name for p in params if p.name in _PASSED}


def as_explainers(explainer: Any) -> dict[str, Callable]:
    """None, a callable, a list of callables or a dict ``{name: callable}`` -> dict."""
    if explainer is None:
        return {}
    if callable(explainer):
        items = [explainer]
    elif isinstance(explainer, dict):
        out = {}
        for name, fn in explainer.items():
            if not callable(fn):
                raise TypeError(
                    f"explainer[{name!r}]: expected a callable explainer(images, **kw) -> "
                    f"Explanation, got {type(fn).__name__}"
                )
            out[str(name)] = fn
        return out
    elif isinstance(explainer, (list, tuple)):
        items = list(explainer)
    else:
        raise TypeError(
            "explainer: expected a callable explainer(images, **kw) -> Explanation, a list "
            f"of them or a dict {{name: explainer}}, got {type(explainer).__name__}"
        )
    out: dict[str, Callable] = {}
    for fn in items:
        if not callable(fn):
            raise TypeError(f"explainer: expected callables, got {type(fn).__name__}")
        name = getattr(fn, "method", None) or type(fn).__name__
        if name == "function":
            name = getattr(fn, "__name__", "explainer")
        base, i = str(name), 2
        while str(name) in out:
            name, i = f"{base} ({i})", i + 1
        out[str(name)] = fn
    return out


def explain_job(
    fn: Callable,
    accepts: set[str],
    images: np.ndarray,
    labels: np.ndarray,
    cell: tuple[int, int],
    outputs: Any,
    explain_kwargs: dict[str, Any],
) -> Callable[..., Explanation]:
    """The job explaining ``images`` (NHWC) of the confusion cell ``(true, predicted)``.

    ``outputs="cell"``: the true and the predicted class (once on the diagonal); ``None``: the
    explainer's default; else passed on. Returns ``job(progress, cancel) -> Explanation``; a
    result that is not an Explanation raises ``TypeError``.
    """
    kwargs = dict(explain_kwargs)
    if "labels" in accepts:
        kwargs.setdefault("labels", labels)
    if isinstance(fn, Explainer):  # the view's images are NHWC already: no layout guess
        kwargs.setdefault("layout", "nhwc")
    if outputs == "cell":
        if "outputs" in accepts:
            t, p = cell
            kwargs.setdefault("outputs", [t] if t == p else [t, p])
    elif outputs is not None:
        kwargs.setdefault("outputs", outputs)

    def job(progress: Callable[[float], None], cancel: Any) -> Explanation:
        kw = dict(kwargs)
        if "progress" in accepts:
            kw["progress"] = progress
        if "cancel" in accepts:
            kw["cancel"] = cancel
        result = fn(images, **kw)
        if not isinstance(result, Explanation):
            raise TypeError(
                f"the explainer returned {type(result).__name__}; expected an "
                "xaiwidgets.Explanation"
            )
        return result

    return job
