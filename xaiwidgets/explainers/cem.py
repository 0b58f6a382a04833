"""Contrastive Explanation Method: pertinent negatives and pertinent positives.

Dhurandhar et al. (2018), "Explanations based on the Missing: Towards Contrastive Explanations
with Pertinent Negatives", https://arxiv.org/abs/1802.07623. For an image ``x0`` of class ``t``:

- a **pertinent negative** (PN) is the smallest addition ``delta`` (pixels only moved away from
  the no-information value) such that ``x0 + delta`` is classified otherwise;
- a **pertinent positive** (PP) is the smallest part ``delta`` of ``x0`` (``x0 - delta`` only
  moves towards the no-information value) that the model still classifies as ``t`` on its own.

Both minimise ``c f_kappa + ||delta||^2 + beta ||delta||_1 + gamma ||AE(z) - z||^2`` (z the
model's input) with FISTA; the attack weight ``c`` is searched. The loss, the projections and
the sequential binary search on ``c`` follow alibi's ``CEM`` (``search="sequential"``); the
default ``search="batched"`` runs a grid of ``c`` values side by side instead, so a whole search
costs ``max_iterations`` batched steps. See :mod:`xaiwidgets.explainers._fista` for the maths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._arrays import as_images, as_labels, check_class_names
from .._deprecation import renamed_kwargs, renamed_value
from .._progress import RunControl
from ..backends import wrap
from ._cem_result import CEMResult, SearchBest
from ._cem_settings import check_settings, finite_array, pair
from ._fista import CEMProblem, ImageModel, fista

_SETTING_KEYS = ("mode", "kappa", "beta", "gamma", "c_init")
_OLD_SCORES = {"probabilities": "probability", "outputs": "output"}


class CEMExplainer:
    """Pertinent negatives (``mode="PN"``) or positives (``"PP"``) of a classifier's images.

    Parameters (alibi's names and defaults unless said)
    ----------
    model : any model :func:`~xaiwidgets.backends.wrap` accepts, with gradients.
    mode : ``"PN"`` or ``"PP"``.
    ae_model : optional autoencoder (images to images, any framework, or a backend) for the
        ``gamma`` term.
    kappa : confidence margin on the class scores (default 0).
    beta : L1 weight (default 0.1). gamma : autoencoder weight (default 0).
    c_init, c_steps : first attack weight (default 10) and number of c values (default 10):
        binary-search rounds (``search="sequential"``) or grid size (``"batched"``).
    max_iterations : FISTA steps per c (default 1000).
    feature_range : ``(low, high)`` scalars or per-feature arrays; default the images' min/max.
    clip : gradient clipping (default (-100, 100)).
    learning_rate_init : first step size, decayed as ``(1 - k/max_iterations)^0.5`` (0.01).
    no_info_val : scalar or per-feature value carrying no information, default the lower end of
        ``feature_range`` (the background of dark-background images).
    search : ``"batched"`` (default) or ``"sequential"`` (alibi's binary search, for parity).
    c_grid : multiples of ``c_init`` run side by side by the batched search; default 1 (the
        first round of the sequential search) and ``c_steps - 1`` values log-spaced from
        ``10**3`` down to ``10**-2``: large c finds a PN/PP in few steps, small c stays close.
    score : ``"probability"`` (default: softmax of logits, outputs of a softmax model as
        they are) or ``"output"`` (raw outputs, as alibi) for the attack loss and kappa
        (``scores="probabilities"|"outputs"``: the deprecated spelling).
    update_every : stream the best-so-far result to ``on_update`` every so many steps (10).
    """

    method = "cem"

    @renamed_kwargs(scores="score")
    def __init__(
        self,
        model: Any,
        mode: str = "PN",
        *,
        ae_model: Any = None,
        kappa: float = 0.0,
        beta: float = 0.1,
        gamma: float = 0.0,
        c_init: float = 10.0,
        c_steps: int = 10,
        max_iterations: int = 1000,
        feature_range: tuple[Any, Any] | None = None,
        clip: tuple[float, float] = (-100.0, 100.0),
        learning_rate_init: float = 1e-2,
        no_info_val: Any = None,
        search: str = "batched",
        c_grid: Any = None,
        score: str = "probability",
        update_every: int = 10,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        self.backend = wrap(model, **backend_kwargs)
        self.ae = None if ae_model is None else ImageModel(ae_model)
        self.class_names = check_class_names(class_names)
        score = renamed_value("CEMExplainer(score=...)", score, _OLD_SCORES)
        if score not in ("probability", "output"):
            raise ValueError(f"score: expected 'probability' or 'output', got {score!r}")
        self.score = score
        self._fista_scores = {"probability": "probabilities", "output": "outputs"}[score]
        self.feature_range = None if feature_range is None else pair("feature_range", feature_range)
        self.no_info_val = None if no_info_val is None else finite_array("no_info_val", no_info_val)
        self.defaults = self._check(
            dict(
                mode=mode,
                kappa=kappa,
                beta=beta,
                gamma=gamma,
                c_init=c_init,
                c_steps=c_steps,
                max_iterations=max_iterations,
                clip=clip,
                learning_rate_init=learning_rate_init,
                search=search,
                c_grid=c_grid,
                update_every=update_every,
            )
        )

    # -- parameters -----------------------------------------------------------------
    def _check(self, s: dict[str, Any]) -> dict[str, Any]:
        return check_settings(s, has_ae=self.ae is not None)

    def params(self, **overrides: Any) -> dict[str, Any]:
        """The settings a call with ``overrides`` would use (JSON-serialisable)."""
        return self._jsonable(self._settings(overrides))

    def _jsonable(self, s: dict[str, Any]) -> dict[str, Any]:
        return {**s, "c_grid": s["c_grid"].tolist(), "clip": list(s["clip"]), "score": self.score}

    def _settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"unknown CEM parameter(s) {sorted(unknown)}; expected some of "
                f"{sorted(self.defaults)}"
            )
        if "c_steps" in overrides and "c_grid" not in overrides:
            overrides = {**overrides, "c_grid": None}
        return self._check({**self.defaults, **overrides})

    def _ranges(self, x: np.ndarray) -> tuple[Any, Any, Any]:
        lo, hi = self.feature_range or (np.float32(x.min()), np.float32(x.max()))
        try:
            lo, hi = np.broadcast_to(lo, x.shape[1:]), np.broadcast_to(hi, x.shape[1:])
            ni = lo if self.no_info_val is None else np.broadcast_to(self.no_info_val, x.shape[1:])
        except ValueError as exc:
            raise ValueError(
                f"feature_range / no_info_val: expected scalars or arrays that fit "
                f"images of shape {x.shape[1:]}: {exc}"
            ) from None
        if np.any(x < lo - 1e-6) or np.any(x > hi + 1e-6):
            raise ValueError(
                f"images: values {x.min():.4g}..{x.max():.4g} lie outside "
                f"feature_range {float(lo.min()):.4g}..{float(hi.max()):.4g}"
            )
        return lo, hi, ni

    # -- public entry points -----------------------------------------------------------
    @renamed_kwargs(target="outputs")
    def __call__(
        self,
        images: Any,
        outputs: Any = None,
        *,
        progress: Any = None,
        cancel: Any = None,
        on_update: Callable[[CEMResult], Any] | None = None,
        layout: str = "auto",
        **overrides: Any,
    ) -> CEMResult:
        """PN or PP of every image (``(n, h, w, c)`` or any form ``as_images`` accepts).

        ``outputs``: the class to explain of each image (default: the predicted ones;
        ``target=`` is the deprecated spelling). ``progress``/
        ``cancel``: see :class:`~xaiwidgets._progress.RunControl` (a set cancel raises
        :class:`~xaiwidgets._progress.Cancelled`). ``on_update(partial)`` receives the
        best-so-far :class:`CEMResult` every ``update_every`` steps and when a first solution
        appears. ``layout``: the axes of ``images`` (see :func:`~xaiwidgets._arrays.as_images`).
        ``overrides``: any constructor setting for this call (``kappa=0.2``, ...).
        """
        s = self._settings(overrides)
        x = as_images(images, layout=layout)
        groups = [{k: s[k] for k in _SETTING_KEYS} for _ in range(len(x))]
        emit = None if on_update is None else (lambda parts: on_update(parts[0]))
        return self._run(x, np.arange(len(x)), groups, s, outputs, progress, cancel, emit)[0]

    @renamed_kwargs(target="outputs")
    def explain_settings(
        self,
        image: Any,
        settings: Sequence[dict[str, Any]],
        outputs: Any = None,
        *,
        progress: Any = None,
        cancel: Any = None,
        on_update: Callable[[list[CEMResult]], Any] | None = None,
        layout: str = "auto",
        **overrides: Any,
    ) -> list[CEMResult]:
        """Several settings for one image in one batched search (e.g. PN and PP, or a few
        kappa/beta values of a slider). ``settings``: dicts of ``mode``, ``kappa``, ``beta``,
        ``gamma``, ``c_init``. Returns one single-image :class:`CEMResult` per setting."""
        s = self._settings(overrides)
        x = as_images(image, name="image", layout=layout)
        if len(x) != 1:
            raise ValueError(f"image: expected one image, got {len(x)}")
        if not settings:
            raise ValueError("settings: expected at least one dict of CEM settings")
        groups = []
        for g in settings:
            if not isinstance(g, dict) or set(g) - set(_SETTING_KEYS):
                raise ValueError(
                    f"settings: expected dicts with keys among {_SETTING_KEYS}, got {g!r}"
                )
            groups.append({k: self._check({**s, **g})[k] for k in _SETTING_KEYS})
        index = np.zeros(len(groups), np.int64)
        return self._run(x, index, groups, s, outputs, progress, cancel, on_update)

    # -- the search ----------------------------------------------------------------
    def _run(
        self,
        x: np.ndarray,
        index: np.ndarray,
        groups: list[dict[str, Any]],
        s: dict[str, Any],
        target: Any,
        progress: Any,
        cancel: Any,
        on_update: Callable[[list[CEMResult]], Any] | None,
    ) -> list[CEMResult]:
        lo, hi, ni = self._ranges(x)
        if on_update is not None and not callable(on_update):
            raise TypeError(f"on_update: expected a callable, got {type(on_update).__name__}")
        RunControl(None, cancel)  # checks cancel before the model runs
        t = None if target is None else as_labels(target, n=len(x), name="outputs")
        out = self.backend.predict(x)
        probs = self.backend.to_probabilities(out)
        check_class_names(self.class_names, probs.shape[1])
        t = probs.argmax(1) if t is None else t
        if t.min() < 0 or t.max() >= probs.shape[1]:
            raise ValueError(
                f"outputs: expected classes in 0..{probs.shape[1] - 1}, got {t.tolist()}"
            )
        batched = s["search"] == "batched"
        per = len(s["c_grid"]) if batched else 1
        rounds = 1 if batched else s["c_steps"]
        T = s["max_iterations"]
        g_of_row = np.repeat(np.arange(len(groups)), per)
        col = lambda key: np.array([g[key] for g in groups], np.float32)[g_of_row]  # noqa: E731
        x0 = x[index][g_of_row]
        is_pp = np.array([g["mode"] == "PP" for g in groups])[g_of_row]
        c = col("c_init") * (np.tile(s["c_grid"], len(groups)) if batched else 1.0)
        lb, ub = np.zeros(len(c)), np.full(len(c), 1e10)
        best = SearchBest(len(groups), x0.shape[1:], T)
        state = {"last_emit": 0, "changed": False}

        def emit(k: int, done: bool) -> list[CEMResult]:
            return self._results(x, index, groups, best, t, probs, s, k, done)

        with RunControl(progress, cancel, desc="CEM") as ctl:
            every = max(1, T * rounds // 100)
            for r in range(rounds):
                prob = CEMProblem(
                    self.backend,
                    self.ae,
                    x0,
                    t[index][g_of_row],
                    c,
                    col("kappa"),
                    col("beta"),
                    col("gamma"),
                    is_pp,
                    self._fista_scores,
                )
                row_found = np.zeros(len(c), bool)
                trace = np.full((len(c), T), np.nan, np.float32)
                for k, a, loss, scores in fista(
                    prob,
                    lo=lo,
                    hi=hi,
                    no_info=ni,
                    max_iterations=T,
                    learning_rate_init=s["learning_rate_init"],
                    clip=s["clip"],
                ):
                    trace[:, k] = loss
                    _, ok, dist = prob.evaluate(a, scores)
                    row_found |= ok
                    first = best.update(ok, dist, a, c, g_of_row, trace)
                    state["changed"] |= first or best.improved
                    step = r * T + k + 1
                    if step % every == 0:
                        ctl.step(step / (T * rounds))
                    else:
                        ctl.check()
                    if (
                        on_update is not None
                        and state["changed"]
                        and (first or step - state["last_emit"] >= s["update_every"])
                    ):
                        on_update(emit(step, False))
                        state.update(last_emit=step, changed=False)
                if not batched:  # alibi's binary search on c, per row
                    ub = np.where(row_found, np.minimum(ub, c), ub)
                    lb = np.where(row_found, lb, np.maximum(lb, c))
                    c = np.where(ub < 1e9, (lb + ub) / 2, c * 10).astype(np.float32)
            ctl.step(1.0)
        return emit(T * rounds, True)

    def _results(
        self,
        x: np.ndarray,
        index: np.ndarray,
        groups: list[dict[str, Any]],
        best: SearchBest,
        t: np.ndarray,
        probs: np.ndarray,
        s: dict[str, Any],
        steps: int,
        done: bool,
    ) -> list[CEMResult]:
        """Pack the per-group bests into results: one per image (a ``__call__``) or one per
        setting (``explain_settings``)."""
        is_pp = np.array([g["mode"] == "PP" for g in groups])
        x0 = x[index]
        a = np.where(best.found[:, None, None, None], best.a, x0)
        delta = np.where(is_pp[:, None, None, None], x0 - a, a - x0).astype(np.float32)
        image = np.where(is_pp[:, None, None, None], delta, a).astype(np.float32)
        img_proba = np.full(probs[index].shape, np.nan, np.float32)
        if best.found.any():
            img_proba[best.found] = self.backend.probabilities(image[best.found])
        img_class = np.where(best.found, np.nan_to_num(img_proba).argmax(1), -1)
        params = self._jsonable(s)
        lo, hi, ni = self._ranges(x)
        params["feature_range"] = [float(lo.min()), float(hi.max())]
        params["no_info_val"] = float(ni.ravel()[0]) if np.ptp(ni) == 0 else "per-feature"

        loss = best.loss

        def pack(sel: np.ndarray, g: dict[str, Any]) -> CEMResult:
            return CEMResult(
                mode=g["mode"],
                original=x0[sel],
                image=image[sel],
                delta=delta[sel],
                found=best.found[sel].copy(),
                original_class=t[index][sel],
                original_proba=probs[index][sel],
                image_class=img_class[sel],
                image_proba=img_proba[sel],
                c=best.c[sel].copy(),
                distance=best.dist[sel].copy(),
                loss=loss[sel],
                iterations=steps,
                complete=done,
                class_names=self.class_names,
                params={**params, **g},
            )

        if len(groups) == len(x) and np.array_equal(index, np.arange(len(x))):
            return [pack(np.arange(len(x)), groups[0])]
        return [pack(np.array([i]), g) for i, g in enumerate(groups)]
