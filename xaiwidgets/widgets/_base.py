"""`XaiWidget`: the base class of every xaiwidgets view.

A subclass names its front-end bundle with ``_bundle = "attribution_grid"``; the ESM module is
``xaiwidgets/static/<name>.js``, built from ``js/src/<name>.ts`` by ``npm run build``. With
``ANYWIDGET_HMR=1`` (and ``npm run dev``) anywidget reloads it live.

Every view has two status traits that the shared JS status element shows in place:

- ``error`` (str): a message shown in a banner inside the widget ("" hides it); the rest of
  the widget stays usable.
- ``progress`` (float): fraction 0..1 of a running job, ``-1`` when idle.

Unknown keyword arguments raise a ``TypeError`` naming the closest trait. A view whose data
traits must agree (the grids) says what disagrees in ``_inconsistency()``: a ``ValueError`` at
construction, the ``error`` banner afterwards (:meth:`XaiWidget._show_inconsistency`).
:func:`image_array` checks an image trait.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import numpy as np
import traitlets

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def image_array(
    arr: np.ndarray | None, name: str, ndim: int, *, finite: bool = False
) -> np.ndarray | None:
    """Image trait ``name`` checked: ``ndim`` axes ending in 1, 3 or 4 channels (``(n, h, w,
    c)`` for ``ndim=4``, ``(h, w, c)`` for 3), one axis fewer taken as one channel; with
    ``finite``, no NaN or infinite value. C-contiguous; ``None`` stays ``None``; else a
    :class:`traitlets.TraitError` that says what was expected."""
    if arr is None:
        return None
    if arr.ndim == ndim - 1:
        arr = arr[..., None]
    if arr.ndim != ndim or arr.shape[-1] not in (1, 3, 4) or 0 in arr.shape:
        axes = ("n", "h", "w", "c")[4 - ndim :]
        raise traitlets.TraitError(
            f"{name}: expected ({', '.join(axes)}) with c in 1, 3, 4 "
            f"(or ({', '.join(axes[:-1])})), got shape {arr.shape}"
        )
    if finite and not np.isfinite(arr).all():
        raise traitlets.TraitError(f"{name}: contains NaN or infinite values")
    return np.ascontiguousarray(arr)


class MissingBundleError(RuntimeError):
    """The front-end bundle of a widget was not built (``npm run build`` makes it)."""


def bundle_path(name: str) -> Path:
    """Path of the ESM bundle of widget ``name`` (``xaiwidgets/static/<name>.js``)."""
    return STATIC_DIR / f"{name}.js"


class XaiWidget(anywidget.AnyWidget):
    """Base of all xaiwidgets views: bundle loading, ``error``/``progress``, strict kwargs."""

    #: name of the JS bundle in ``xaiwidgets/static/`` (set by each subclass)
    _bundle: ClassVar[str | None] = None

    error = traitlets.Unicode(
        "", help="Message shown in a banner inside the widget; '' hides it."
    ).tag(sync=True)
    progress = traitlets.Float(
        -1.0, help="Fraction 0..1 of a running job shown as a bar; -1 when idle."
    ).tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        name = cls.__dict__.get("_bundle")
        if name and "_esm" not in cls.__dict__ and bundle_path(name).is_file():
            cls._esm = bundle_path(name)  # anywidget wraps it (and watches it under HMR)
        super().__init_subclass__(**kwargs)

    def __init__(self, **kwargs: Any) -> None:
        self._ensure_bundle()
        self._check_kwargs(kwargs)
        super().__init__(**kwargs)

    @classmethod
    def _ensure_bundle(cls) -> None:
        if cls._bundle is None or hasattr(cls, "_esm"):
            return
        path = bundle_path(cls._bundle)
        if not path.is_file():
            raise MissingBundleError(
                f"the front-end of {cls.__name__} is not built: {path} is missing. "
                "Run `npm install && npm run build` in the xaiwidgets source folder "
                "(or install a released wheel, which carries the bundle)."
            )
        cls._esm = path.read_text(encoding="utf-8")  # built after this class was defined

    @classmethod
    def _check_kwargs(cls, kwargs: dict[str, Any]) -> None:
        public = sorted(n for n in cls.class_trait_names() if not n.startswith("_"))
        for key in kwargs:
            if key not in public:
                close = difflib.get_close_matches(key, public, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise TypeError(
                    f"{cls.__name__}() got an unexpected keyword argument {key!r}.{hint} "
                    f"Accepted: {', '.join(n for n in public if n not in _IPYWIDGETS_TRAITS)}."
                )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget-view bundle as a plain dict (anywidget returns ``(data, metadata)``;
        a dict is what ipywidgets returns and what ``Explanation`` merges its PNG into)."""
        rep = super()._repr_mimebundle_(**kwargs)
        return rep[0] if isinstance(rep, tuple) else rep

    def _inconsistency(self) -> str:
        """'' when the data traits agree, else what disagrees (views whose data traits must
        agree override it)."""
        return ""

    def _check_consistent(self) -> None:
        """At construction: data traits that disagree raise a ``ValueError`` saying how."""
        problem = self._inconsistency()
        if problem:
            raise ValueError(problem)

    def _show_inconsistency(self, shape_errors: tuple[str, ...]) -> None:
        """After construction: data traits that disagree (e.g. while replacing images, then
        values) show in the ``error`` banner instead of raising half-way through an update;
        once they agree, a banner of an earlier mismatch (starting with one of
        ``shape_errors``) is cleared."""
        problem = self._inconsistency()
        if problem:
            self.error = problem
        elif self.error.startswith(shape_errors):
            self.error = ""

    @contextlib.contextmanager
    def report_errors(self) -> Iterator[None]:
        """Run a block; a ``ValueError``/``TypeError`` in it is shown in the widget's banner
        (``error``) instead of propagating. A clean run clears the banner."""
        try:
            yield
        except (ValueError, TypeError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self.error = ""


#: traits every ipywidgets DOMWidget has; accepted, not advertised in the error message
_IPYWIDGETS_TRAITS = frozenset({"comm", "keys", "layout", "log", "tabbable", "tooltip", "style"})
