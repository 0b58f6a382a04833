"""Faithfulness of attributions: the deletion curve and its area.

Deletion (Petsiuk et al. 2018, "RISE", sec. 4.2): hide the pixels of an image in the order of
their attribution, most positive first, and follow the model's score of the explained class.
A faithful attribution finds the evidence first, so the score falls fast and the area under the
curve is small. The hidden pixels are filled by a masker (the explanation's own by default), so
"which masker gives the better explanation" becomes a number: compare areas computed with one
and the same deletion masker for a fair comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._progress import RunControl
from .backends import wrap
from .explanation import Explanation
from .maskers import Masker


@dataclass(eq=False)
class DeletionCurve:
    """Result of :func:`deletion_curve` (``s`` steps, ``n`` images, ``o`` outputs).

    - ``fractions`` ``(s + 1,)`` share of the pixels hidden, 0 to 1
    - ``scores`` ``(n, o, s + 1)`` the model's score of each explained output at each step
    - ``area`` ``(n, o)`` area under each curve (trapezoid rule over ``fractions``); lower is
      more faithful
    - ``output_indices`` ``(n, o)`` the explained classes; ``masker`` its string form;
      ``score`` ``"probability"`` or ``"output"``
    """

    fractions: np.ndarray
    scores: np.ndarray
    area: np.ndarray
    output_indices: np.ndarray
    masker: str
    score: str

    @property
    def mean_area(self) -> float:
        """Area averaged over images and outputs."""
        return float(self.area.mean())


def deletion_curve(
    explanation: Explanation,
    model: Any,
    masker: Any = None,
    *,
    steps: int = 20,
    score: str = "probability",
    progress: Any = None,
    cancel: Any = None,
) -> DeletionCurve:
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
    :class:`DeletionCurve`. Cost: ``n * o * (steps - 1) + 2 n`` model evaluations at most
    (identical masked images are evaluated once).
    """
    from .explainers._regions import CoalitionEvaluator

    if not isinstance(explanation, Explanation):
        raise TypeError(
            f"explanation: expected an xaiwidgets Explanation, got {type(explanation).__name__}"
        )
    if score not in ("probability", "output"):
        raise ValueError(f"score: expected 'probability' or 'output', got {score!r}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}")
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
    ev = CoalitionEvaluator(backend, masker.bind(x), model_outputs)
    counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * h * w).astype(np.int64)
    handles = np.empty((n, o, steps + 1), np.int64)
    with RunControl(progress, cancel, desc="deletion") as ctl:
        for i in range(n):
            for j in range(o):
                attribution = explanation.values[i, ..., j].sum(axis=-1).reshape(-1)
                order = np.argsort(-attribution, kind="stable")
                rank = np.empty(h * w, np.int64)
                rank[order] = np.arange(h * w)
                keep = rank.reshape(1, h, w) >= counts[:, None, None]
                handles[i, j] = ev.request_many(i, keep)
            ev.run()
            ctl.step((i + 1) / n)
    outs = ev.outputs[: int(handles.max()) + 1]
    if score == "probability":
        outs = backend.to_probabilities(outs.astype(np.float32)).astype(np.float64)
    scores = outs[handles, idx[:, :, None]]
    fractions = counts / float(h * w)
    area = ((scores[..., 1:] + scores[..., :-1]) / 2 * np.diff(fractions)).sum(axis=-1)
    return DeletionCurve(
        fractions=fractions,
        scores=scores,
        area=area,
        output_indices=idx.copy(),
        masker=masker.spec,
        score=score,
    )
