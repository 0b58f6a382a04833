"""`CEMWidget`: pertinent negatives and positives of one image, re-searched live by sliders.

The widget holds a :class:`~xaiwidgets.explainers.CEMExplainer` and one image. It draws, side
by side, the original, its **pertinent negative** (PN: the smallest addition that changes the
class) and its **pertinent positive** (PP: the smallest part that keeps it), each with its
predicted class and probability (text, never HTML), and below them each delta as a diverging
red/blue map over a faint copy of the original with one shared colour bar. Where a search
found nothing the panel says so ("no PN found at this kappa") instead of showing a blank.

Sliders set ``kappa`` and ``beta`` (and, in the advanced row, ``gamma``, ``c_init`` and
``max_iterations``); the same traits are settable from Python. Every change starts a new search
**in a worker thread** (:class:`~xaiwidgets.widgets._runner.LatestRunner`), PN and PP batched
together (:meth:`CEMExplainer.explain_settings`): the kernel stays free, the best-so-far images
are streamed every ``update_every`` steps (progressive refinement), the superseded search is
cancelled, and results are cached per setting. Every request gets a *generation* number; a
streamed update or final result is shown only while its generation is the current one (and
the browser draws it only while the settings it was computed for are the ones on the
sliders), so a stale picture never lands.

Example::

    w = CEMWidget(model, x_test[4], ae_model=ae, feature_range=(-0.5, 0.5), gamma=100)
    w                    # the widget
    w.kappa = 0.2        # re-runs in the background
    w.wait()
    w.result["PN"]       # the latest CEMResult of each mode
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import traitlets

from .._arrays import as_images
from .._deprecation import renamed_kwargs
from ..explainers.cem import CEMExplainer, CEMResult
from ._base import XaiWidget
from ._live import LiveWidget
from ._ndarray_trait import NDArray, array_to_json

_SETTINGS = ("kappa", "beta", "gamma", "c_init", "max_iterations")
#: explainer options the widget passes on when it builds the explainer from a model
_EXPLAINER_OPTIONS = (
    "ae_model",
    "feature_range",
    "no_info_val",
    "c_steps",
    "clip",
    "learning_rate_init",
    "search",
    "c_grid",
    "score",
    "update_every",
)
#: widget defaults where they differ from the explainer's (slider-sized searches)
_WIDGET_DEFAULTS = {"max_iterations": 300, "c_steps": 4}
_DEFAULT_RANGES = {
    "kappa": [0.0, 1.0, 0.01],
    "beta": [0.0, 1.0, 0.01],
    "gamma": [0.0, 200.0, 1.0],
    "c_init": [0.01, 1000.0, 0.0],  # log scale in the browser
    "max_iterations": [10.0, 1000.0, 10.0],
}
_WHY = {
    "PN": "no PN found at this kappa",
    "PP": "no PP found at this kappa",
}


def _frame_to_json(value: dict[str, Any], widget: Any = None) -> dict[str, Any]:
    """A frame with its arrays as binary buffers (ipywidgets splits nested memoryviews off)."""
    return {k: array_to_json(v) if isinstance(v, np.ndarray) else v for k, v in value.items()}


class CEMWidget(LiveWidget, XaiWidget):
    """Original, pertinent negative and pertinent positive of one image, with live sliders.

    Parameters
    ----------
    explainer_or_model : a :class:`~xaiwidgets.explainers.CEMExplainer`, or any model
        :func:`~xaiwidgets.backends.wrap` accepts (with gradients); then the explainer is built
        with the options below.
    image : one image ``(h, w, c)`` (or ``(1, h, w, c)``, or anything ``as_images`` accepts).
    outputs : the class to explain (default: the predicted one; ``target=`` is the
        deprecated spelling).
    modes : which panels to search and draw: ``("PN", "PP")`` (default), ``("PN",)`` or
        ``("PP",)``.
    kappa, beta, gamma, c_init, max_iterations : the starting settings (default: the
        explainer's; built from a model, ``max_iterations`` defaults to 300 and ``c_steps`` to
        4 so that a slider move re-runs in about a second).
    ae_model, feature_range, no_info_val, c_steps, clip, learning_rate_init, search, c_grid,
        score, update_every : passed to :class:`CEMExplainer` when it is built from a model.
    class_names : names of the classes (default: the explainer's, else "0", "1", ...).
    layout : the axes of ``image`` (``"hwc"``, ``"chw"``..., see
        :func:`~xaiwidgets._arrays.as_images`).
    Other keyword arguments set display traits (``cell_size``, ``title``, ``ranges``,
    ``show_advanced``).

    Traits
    ------
    ``kappa``, ``beta``, ``gamma``, ``c_init``, ``max_iterations``: the search settings (a
    change re-runs). ``ranges``: ``{name: [min, max, step]}`` of the sliders (``c_init`` is
    drawn on a log scale). Drawn state (written by the widget): ``original`` ``(h, w, c)``;
    ``frame``, one update of the search sent as one message: ``images`` and ``deltas``
    ``(modes, h, w, c)`` and ``panels`` (one dict per mode: status ``"searching"``/
    ``"found"``/``"not_found"``, class, label, probability, steps, message) with the
    ``generation`` and ``settings`` it belongs to; ``generation`` (the current request);
    ``running``.
    """

    _bundle = "cem_widget"
    live_settings = _SETTINGS
    _live_progress_step = 0.04

    kappa = traitlets.Float(0.0, help="Confidence margin on the class scores.").tag(sync=True)
    beta = traitlets.Float(0.1, help="Weight of the L1 term (sparsity of the delta).").tag(
        sync=True
    )
    gamma = traitlets.Float(0.0, help="Weight of the autoencoder term (needs ae_model).").tag(
        sync=True
    )
    c_init = traitlets.Float(10.0, help="First attack weight c.").tag(sync=True)
    max_iterations = traitlets.Int(300, help="FISTA steps per value of c.").tag(sync=True)

    modes = traitlets.List(traitlets.Unicode(), help="The searched panels: 'PN' and/or 'PP'.").tag(
        sync=True
    )
    original = NDArray(ndim=3, help="(h, w, c) the explained image.")
    original_label = traitlets.Unicode("", help="Predicted class name of the original.").tag(
        sync=True
    )
    original_proba = traitlets.Float(float("nan"), help="Its probability.").tag(sync=True)
    frame = traitlets.Dict(
        help="What the panels show, in one message: generation, panels, images, deltas."
    ).tag(sync=True, to_json=_frame_to_json)
    generation = traitlets.Int(0, help="Number of the current request.").tag(sync=True)
    running = traitlets.Bool(False, help="Whether a search runs now.").tag(sync=True)
    has_autoencoder = traitlets.Bool(False, help="Whether gamma can be used.").tag(sync=True)
    ranges = traitlets.Dict(help="{setting: [min, max, step]} of the sliders.").tag(sync=True)
    show_advanced = traitlets.Bool(False, help="Show gamma, c_init, max_iterations.").tag(sync=True)
    cell_size = traitlets.Int(112, min=16, max=1024, help="Panel width in CSS pixels.").tag(
        sync=True
    )
    title = traitlets.Unicode("", help="Title above the panels (text).").tag(sync=True)

    @renamed_kwargs(target="outputs", scores="score")
    def __init__(
        self,
        explainer_or_model: Any,
        image: Any,
        *,
        outputs: int | None = None,
        modes: Any = ("PN", "PP"),
        class_names: Any = None,
        layout: str = "auto",
        **kwargs: Any,
    ) -> None:
        options = {k: kwargs.pop(k) for k in _EXPLAINER_OPTIONS if k in kwargs}
        settings = {k: kwargs.pop(k) for k in _SETTINGS if k in kwargs}
        if isinstance(explainer_or_model, CEMExplainer):
            if options:
                raise TypeError(
                    f"CEMWidget: {sorted(options)} configure the explainer: pass them to "
                    "CEMExplainer(...), or pass the model instead of an explainer"
                )
            explainer = explainer_or_model
        else:
            settings.setdefault("max_iterations", _WIDGET_DEFAULTS["max_iterations"])
            options.setdefault("c_steps", _WIDGET_DEFAULTS["c_steps"])
            explainer = CEMExplainer(explainer_or_model, **options)
        self.explainer = explainer
        if not isinstance(modes, (str, list, tuple)):
            raise TypeError(f"modes: expected 'PN', 'PP' or both, got {modes!r}")
        modes = [modes] if isinstance(modes, str) else list(modes)
        if not modes or any(m not in ("PN", "PP") for m in modes) or len(set(modes)) != len(modes):
            raise ValueError(f"modes: expected 'PN', 'PP' or both, got {modes!r}")
        x = as_images(image, name="image", layout=layout)
        if len(x) != 1:
            raise ValueError(f"image: expected one image, got {len(x)}")
        start = {k: explainer.defaults[k] for k in _SETTINGS}
        start.update(settings)
        explainer.params(**start)  # bad settings raise here, at construction
        probs = explainer.backend.probabilities(x)[0]
        self._target = int(probs.argmax()) if outputs is None else int(outputs)
        if not 0 <= self._target < len(probs):
            raise ValueError(f"outputs: expected a class in 0..{len(probs) - 1}, got {outputs!r}")
        names = class_names if class_names is not None else explainer.class_names
        self._names = [str(c) for c in names] if names is not None else None
        self._image = x
        self._gen = 0
        self._latest: dict[str, CEMResult] = {}
        ranges = {k: list(v) for k, v in _DEFAULT_RANGES.items()}
        ranges.update(kwargs.pop("ranges", {}))
        super().__init__(
            **start,
            modes=modes,
            original=x[0],
            original_label=self._name(self._target),
            original_proba=float(probs[self._target]),
            has_autoencoder=explainer.ae is not None,
            ranges=ranges,
            **kwargs,
        )
        self._request()

    def __repr__(self) -> str:
        s = ", ".join(f"{k}={getattr(self, k)!r}" for k in _SETTINGS)
        return f"CEMWidget({s}, modes={list(self.modes)})"

    # ------------------------------------------------------------------ public API
    @property
    def result(self) -> dict[str, CEMResult]:
        """The latest :class:`CEMResult` of each mode for the current settings (a partial,
        best-so-far one while the search runs; ``complete`` says which). ``{}`` before the
        first update."""
        with self._lock:
            return dict(self._latest)

    # ------------------------------------------------------------------ requests (LiveWidget)
    # Every request that becomes current (or is invalid) is a new *generation*; a streamed
    # update is shown only while its generation is the current one.
    def _new_generation(self) -> int:
        self._gen += 1
        self._latest = {}
        self.generation = self._gen
        return self._gen

    def _live_key(self) -> Hashable:
        settings = {k: getattr(self, k) for k in _SETTINGS}
        self.explainer.params(**settings)  # bad settings raise: shown, nothing runs
        return tuple(settings.items())

    def _live_begin(self, lane: str, key: Hashable) -> None:
        self._new_generation()

    def _live_invalid(self, exc: BaseException) -> None:
        self._new_generation()  # the last pictures fade: their generation is not current
        self.running = False

    def _live_started(self, lane: str, key: Hashable) -> None:
        self.running = True

    def _live_failed(self, lane: str, key: Hashable, exc: BaseException) -> None:
        self.running = False

    # These run on the worker thread: no hold_sync there (it would also hold, and echo back,
    # a slider value the kernel thread receives meanwhile); ``frame`` is one message.
    def _live_draw(self, lane: str, key: Hashable, parts: Any, cached: bool) -> None:
        self._show(parts, self._gen, dict(key))  # type: ignore[arg-type]
        self.running = False

    def _live_job(self, lane: str, key: Hashable) -> Callable[..., Any]:
        gen, settings = self._gen, dict(key)  # type: ignore[arg-type]
        groups = [
            {"mode": m, **{k: settings[k] for k in ("kappa", "beta", "gamma", "c_init")}}
            for m in self.modes
        ]

        def on_update(parts: list[CEMResult]) -> None:
            with self._lock:  # a newer request has moved the generation on: drop it
                if gen == self._gen:
                    self._show(parts, gen, settings)

        def job(progress: Any, cancel: Any) -> list[CEMResult]:
            return self.explainer.explain_settings(
                self._image,
                groups,
                outputs=[self._target],
                layout="nhwc",
                progress=progress,
                cancel=cancel,
                on_update=on_update,
                max_iterations=settings["max_iterations"],
            )

        return job

    def _name(self, c: int) -> str:
        if self._names is not None and 0 <= c < len(self._names):
            return self._names[c]
        return str(c)

    def _show(self, parts: list[CEMResult], gen: int, settings: dict[str, Any]) -> None:
        """Write one update (streamed or final) of generation ``gen`` into the traits."""
        self._latest = {r.mode: r for r in parts}
        panels = []
        for r in parts:
            found, complete = bool(r.found[0]), bool(r.complete)
            cls = int(r.image_class[0])
            status = "found" if found else ("not_found" if complete else "searching")
            total = int(settings["max_iterations"]) * (
                1 if self.explainer.defaults["search"] == "batched" else int(r.params["c_steps"])
            )
            panels.append(
                {
                    "mode": r.mode,
                    "status": status,
                    "complete": complete,
                    "class": cls if found else -1,
                    "label": self._name(cls) if found else "",
                    "probability": float(r.image_proba[0, cls]) if found else None,
                    "steps": int(r.iterations),
                    "total_steps": total,
                    "c": float(r.c[0]) if found else None,
                    "distance": float(r.distance[0]) if found else None,
                    "message": "" if status != "not_found" else _WHY[r.mode],
                }
            )
        self.frame = {
            "generation": gen,
            "settings": dict(settings),
            "panels": panels,
            "images": np.concatenate([r.image for r in parts]),
            "deltas": np.concatenate([r.delta for r in parts]),
        }
