"""The runs of a :class:`~xaiwidgets.widgets.ShapleyExplorer`: the job of a setting and the
cache of its results by panel.

A panel's key is ``(masker, algorithm, max_evals, top_k, indices, scorer)``; a setting's key is
the tuple of its panels' keys (one, or two side by side). A key with a ``top_k`` smaller than a
cached key of the same other parts is answered by cutting that result (its first outputs are
the most probable classes, the same ones a smaller run explains; the deletion score is of the
predicted class, the first output, so it is the same too): no model call. The cut explanation
says where it came from in ``params["computed_top_k"]`` (for Partition the region tree was
expanded for that larger set of outputs, as in shap).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..explanation import Explanation
from ..faithfulness import PerturbationCurve, deletion_curve
from ..maskers import Masker
from ._live import LiveCache

#: deletion-curve steps of each panel's score
DELETION_STEPS = 20


@dataclass(eq=False)
class ExplorerResult:
    """One computed panel: the explanation, its deletion curve (predicted class) and cost."""

    explanation: Explanation
    deletion: PerturbationCurve
    seconds: float


class ResultCache(LiveCache):
    """At most ``size`` panel results by key, least recently used dropped first; a smaller
    ``top_k`` is cut from a larger one (not thread-safe: the explorer holds its lock around
    every call)."""

    def __init__(self, size: int = 64):
        super().__init__(size)

    def get(self, key: Hashable) -> ExplorerResult | None:
        """The result of ``key``: cached, or cut from the cached result of the smallest larger
        ``top_k`` of the same setting (then cached under ``key`` too); ``None`` otherwise."""
        hit = super().get(key)
        if hit is not None:
            return hit
        masker, algorithm, evals, top_k, indices, scorer = key  # type: ignore[misc]
        larger = [
            (k[3], r)
            for k, r in self.items()
            if k[3] > top_k and k[:3] == (masker, algorithm, evals) and k[4:] == (indices, scorer)
        ]
        if not larger:
            return None
        computed, source = min(larger, key=lambda kr: kr[0])
        e = source.explanation[:, :top_k]
        origin = source.explanation.params.get("computed_top_k", computed)
        params = {**e.params, "top_k": top_k, "computed_top_k": origin}
        result = ExplorerResult(replace(e, params=params), source.deletion, source.seconds)
        self.put(key, result)
        return result

    def scores(self, key: tuple) -> list[dict[str, Any]]:
        """Deletion areas of every cached setting that explains the same images and outputs
        as the setting ``key`` (its panels marked ``current``), lowest area first."""
        _, _, _, top_k, indices, scorer = key[0]
        current = set(key)
        rows = [
            {
                "masker": k[0],
                "algorithm": k[1],
                "max_evals": k[2],
                "area": r.deletion.mean_area,
                "area_masker": r.deletion.masker,
                "current": k in current,
            }
            for k, r in self.items()
            if k[3:] == (top_k, indices, scorer)
        ]
        return sorted(rows, key=lambda row: row["area"])


def panels_job(
    backend: Any,
    keys: tuple,
    images: np.ndarray,
    labels: np.ndarray | None,
    class_names: list[str] | None,
    cache: ResultCache,
    lock: threading.RLock,
) -> Callable[..., tuple[list[ExplorerResult], float]]:
    """The job of one setting: explain ``images`` and score each panel not cached yet.

    Each panel's result goes into ``cache`` as soon as it is done (a run superseded after
    its first panel keeps that one). Returns ``fn(progress, cancel) -> (results, seconds)``.
    """
    from ..explainers.partition import PartitionExplainer
    from ..explainers.permutation import PermutationExplainer

    algorithm, max_evals, top_k, scorer = keys[0][1], keys[0][2], keys[0][3], keys[0][5]
    explainer_class = PartitionExplainer if algorithm == "partition" else PermutationExplainer
    scorer = None if scorer is None else Masker.parse(scorer)

    def job(progress: Callable[[float], None], cancel: Any) -> tuple[list[ExplorerResult], float]:
        started = time.perf_counter()
        with lock:
            todo = [k for k in keys if cache.get(k) is None]
        for step, k in enumerate(todo):
            lo, span = step / len(todo), 1.0 / len(todo)

            def sub(a: float, b: float) -> Callable[[float], None]:
                return lambda f: progress(lo + span * (a + (b - a) * f))  # noqa: B023

            t0 = time.perf_counter()
            explainer = explainer_class(
                backend, Masker.parse(k[0]), max_evals=max_evals, class_names=class_names
            )
            e = explainer(
                images, top_k=top_k, labels=labels, progress=sub(0.0, 0.85), cancel=cancel,
                layout="nhwc",
            )  # fmt: skip
            scored = deletion_curve(
                e[:, :1], backend, scorer, steps=DELETION_STEPS, progress=sub(0.85, 1.0),
                cancel=cancel,
            )  # fmt: skip
            with lock:
                cache.put(k, ExplorerResult(e, scored, time.perf_counter() - t0))
        with lock:
            results = [cache.get(k) for k in keys]
        return results, time.perf_counter() - started

    return job


def panel_info(r: ExplorerResult) -> dict[str, Any]:
    """What the widget shows of one panel: masker, algorithm, evaluations, deletion area."""
    return {
        "masker": r.explanation.params["masker"],
        "algorithm": r.explanation.method,
        "max_evals": int(r.explanation.params["max_evals"]),
        "area": r.deletion.mean_area,
        "image_areas": [float(a) for a in r.deletion.area[:, 0]],
        "area_masker": r.deletion.masker,
        "curve": [float(v) for v in r.deletion.scores[:, 0].mean(axis=0)],
        "seconds": r.seconds,
    }


def spec_text(spec: Any) -> str:
    """A masker given as a Masker, a number or a string, as its string form (unchecked)."""
    if isinstance(spec, Masker):
        return spec.spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Masker.parse(spec).spec
    return str(spec)
