"""Deletion and insertion curves (Petsiuk et al. 2018, "RISE", sec. 4.2).

- Deletion: hide the pixels of an image in the order of their attribution, most positive
  first, and follow the model's score of the explained class. A faithful attribution finds
  the evidence first, so the score falls fast and the area under the curve is small. The
  hidden pixels are filled by a masker (the explanation's own by default), so "which masker
  gives the better explanation" becomes a number: compare areas computed with one and the
  same deletion masker for a fair comparison.
- Insertion: start from the fully hidden image and reveal pixels in the same order; the score
  should rise fast, so a *larger* area is more faithful.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._progress import RunControl
from .._result import Result
from ..backends import wrap
from ..explanation import Explanation
from ..maskers import Masker
from ._ranks import kept_pixels


@dataclass(eq=False)
class PerturbationCurve(Result):
    """Result of :func:`deletion_curve` / :func:`insertion_curve` (``s`` steps, ``n``
    images, ``o`` outputs).

    - ``fractions`` ``(s + 1,)`` share of the pixels hidden (deletion) or revealed
      (insertion), 0 to 1
    - ``scores`` ``(n, o, s + 1)`` the model's score of each explained output at each step
    - ``area`` ``(n, o)`` area under each curve (trapezoid rule over ``fractions``); lower is
      more faithful for deletion, higher for insertion
    - ``output_indices`` ``(n, o)`` the explained classes; ``masker`` its string form;
      ``score`` ``"probability"`` or ``"output"``; ``kind`` ``"deletion"`` or ``"insertion"``

    Keeps the result protocol (:class:`~xaiwidgets._result.Result`): ``params``,
    ``save``/``load``, ``widget()`` (a bqplot figure of the mean curves),
    ``_repr_mimebundle_``.
    """

    _arrays: ClassVar[tuple[str, ...]] = ("fractions", "scores", "area", "output_indices")
    _required: ClassVar[tuple[str, ...]] = _arrays
    _meta: ClassVar[tuple[str, ...]] = ("masker", "score", "kind")
    _shapes = {"fractions": ("s",), "scores": ("n", "o", "s"), "area": ("n", "o"),
               "output_indices": ("n", "o")}  # fmt: skip
    _choices = {"kind": ("deletion", "insertion"), "score": ("probability", "output")}

    fractions: np.ndarray
    scores: np.ndarray
    area: np.ndarray
    output_indices: np.ndarray
    masker: str
    score: str
    kind: str = "deletion"

    @property
    def mean_area(self) -> float:
        """Area averaged over images and outputs."""
        return float(self.area.mean())

    @property
    def params(self) -> dict[str, Any]:
        """``kind``, ``masker``, ``score`` and ``steps`` of the curve."""
        steps = len(self.fractions) - 1
        return {"kind": self.kind, "masker": self.masker, "score": self.score, "steps": steps}


def deletion_curve(
    explanation: Explanation,
    model: Any,
    masker: Any = None,
    *,
    steps: int = 20,
    score: str = "probability",
    progress: Any = None,
    cancel: Any = None,
) -> PerturbationCurve:
    """Deletion curve of every image and explained output of ``explanation``.

    Parameters
    ----------
    explanation : :class:`~xaiwidgets.Explanation` with values ``(n, h, w, c, o)``.
    model : any model :func:`~xaiwidgets.backends.wrap` accepts, or a backend.
    masker : :class:`~xaiwidgets.maskers.Masker` or its string form; ``None`` uses the one in
        ``explanation.params["masker"]``.
    steps : int
        Number of deletion steps (default 20): after step ``t``, the ``round(t / steps * h * w)``
        pixels of largest attribution (summed over channels, ties in raster order) are hidden.
    score : ``"probability"`` (default: softmax of the outputs, or the outputs when the model
        ends in a softmax) or ``"output"`` (the model's outputs as they are, e.g. logits).
    progress, cancel : as :class:`xaiwidgets._progress.RunControl`.

    Returns
    -------
    :class:`PerturbationCurve`. Cost: ``n * o * (steps - 1) + 2 n`` model evaluations at most
    (identical masked images are evaluated once).
    """
    return _curve(explanation, model, masker, steps, score, progress, cancel, "deletion")


def insertion_curve(
    explanation: Explanation,
    model: Any,
    masker: Any = None,
    *,
    steps: int = 20,
    score: str = "probability",
    progress: Any = None,
    cancel: Any = None,
) -> PerturbationCurve:
    """Insertion curve: from the fully hidden image, reveal the ``round(t / steps * h * w)``
    pixels of largest attribution at step ``t``; a larger area is more faithful. Arguments,
    cost and result as :func:`deletion_curve`."""
    return _curve(explanation, model, masker, steps, score, progress, cancel, "insertion")


def _check_common(explanation: Any, score: str) -> None:
    if not isinstance(explanation, Explanation):
        raise TypeError(
            f"explanation: expected an xaiwidgets Explanation, got {type(explanation).__name__}"
        )
    if score not in ("probability", "output"):
        raise ValueError(f"score: expected 'probability' or 'output', got {score!r}")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _curve(explanation, model, masker, steps, score, progress, cancel, kind):
    from ..explainers._coalitions import CoalitionEvaluator, rows_per_call

    _check_common(explanation, score)
    steps = _positive_int(steps, "steps")
    if masker is None:
        masker = explanation.params.get("masker")
        if masker is None:
            raise ValueError(
                "masker: this explanation records no masker; pass one, e.g. masker='blur(28,28)'"
            )
    masker = Masker.parse(masker)
    backend = wrap(model)
    x = explanation.data
    n, h, w, c, o = explanation.values.shape
    idx = explanation.output_indices
    model_outputs = backend.predict(x)
    backend.to_probabilities(model_outputs)  # detects (once) whether the model ends in a softmax
    rows = rows_per_call(backend, *x.shape[1:])  # the images' channels, not the map's
    ev = CoalitionEvaluator(backend, masker.bind(x), model_outputs, max_rows=rows)
    counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * h * w).astype(np.int64)
    handles = np.empty((n, o, steps + 1), np.int64)
    with RunControl(progress, cancel, desc=kind) as ctl:
        for i in range(n):
            ctl.check()
            # the channel sums per output as before (bitwise: the order of the ranks' ties)
            sums = [explanation.values[i, ..., j].sum(axis=-1).reshape(-1) for j in range(o)]
            keeps = kept_pixels(np.stack(sums), counts, kind).reshape(o, steps + 1, h, w)
            for j in range(o):
                handles[i, j] = ev.request_many(i, keeps[j])
            if ev.pending >= rows or i == n - 1:  # full model calls across images
                ev.run(lambda _: ctl.check())
                ctl.step((i + 1) / n)
    outs = ev.outputs[: int(handles.max()) + 1]
    if score == "probability":
        outs = backend.to_probabilities(outs.astype(np.float32)).astype(np.float64)
    scores = outs[handles, idx[:, :, None]]
    fractions = counts / float(h * w)
    area = ((scores[..., 1:] + scores[..., :-1]) / 2 * np.diff(fractions)).sum(axis=-1)
    return PerturbationCurve(
        fractions=fractions,
        scores=scores,
        area=area,
        output_indices=idx.copy(),
        masker=masker.spec,
        score=score,
        kind=kind,
    )
