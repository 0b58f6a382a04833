"""The model-randomisation sanity check (Adebayo et al., NeurIPS 2018): cascading
randomisation of the model's layers from the output down; an explanation that does not change
shows the input, not the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._progress import RunControl
from .._result import Result
from ..explanation import Explanation
from .curves import _positive_int


@dataclass(eq=False)
class RandomisationCheck(Result):
    """Result of :func:`randomisation_check` (``s`` cascade stages, ``n`` images, ``o``
    outputs).

    - ``layers`` the parameterised layers, in forward order; ``randomised`` ``(s,)`` how many
      of them (counted from the output) were redrawn at each stage
    - ``similarity`` ``(s, n, o)`` Spearman rank correlation of ``|phi|`` on the randomised
      model with ``|phi|`` on the trained one, over the pixels where either is non-zero (ties
      averaged; 1 where the trained model's map ranks nothing, see :func:`_spearman`)
    - ``threshold``; ``passed``: the mean similarity with every layer redrawn is below it
      (the explanation depends on what the model learnt)
    """

    _arrays: ClassVar[tuple[str, ...]] = ("randomised", "similarity")
    _required: ClassVar[tuple[str, ...]] = _arrays
    _meta: ClassVar[tuple[str, ...]] = ("layers", "threshold", "passed")
    _shapes = {"randomised": ("s",), "similarity": ("s", None, None)}

    layers: list[str]
    randomised: np.ndarray
    similarity: np.ndarray
    threshold: float
    passed: bool

    @property
    def params(self) -> dict[str, Any]:
        """``threshold`` and the cascade's ``stages`` (how many layers each one redrew)."""
        return {"threshold": self.threshold, "stages": [int(c) for c in self.randomised]}


def _spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of a reference map ``a`` and a redrawn map ``b`` ``(n, p, o)``
    over ``p``, ``(n, o)``, not inflated by ties:

    - pixels where both maps are zero are left out (a shared zero background, or the zeros a
      ReLU leaves, rank nothing: tied at the bottom of both maps they would correlate by
      themselves), the rest ranked with ties averaged (scipy's ``rankdata``);
    - a reference map that ranks nothing (constant over those pixels, all zero, or fewer than
      two pixels left) is 1: it says nothing the model could change, so it cannot pass;
    - a redrawn map constant where the reference varies is 0 (it no longer ranks anything).
    """
    from scipy.stats import rankdata

    a = np.moveaxis(np.asarray(a, np.float64), 1, -1)  # (n, o, p)
    b = np.moveaxis(np.asarray(b, np.float64), 1, -1)
    keep = (a != 0) | (b != 0)
    count = keep.sum(-1)
    # left-out pixels rank above every kept one (+inf), so kept pixels rank 1..count
    ra = rankdata(np.where(keep, a, np.inf), axis=-1)
    rb = rankdata(np.where(keep, b, np.inf), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = (ra * keep).sum(-1, keepdims=True) / np.maximum(count, 1)[..., None]
        mean_b = (rb * keep).sum(-1, keepdims=True) / np.maximum(count, 1)[..., None]
        da, db = (ra - mean_a) * keep, (rb - mean_b) * keep
        va, vb = (da * da).sum(-1), (db * db).sum(-1)
        rho = (da * db).sum(-1) / np.sqrt(np.where((va > 0) & (vb > 0), va * vb, 1.0))
    return np.where(va <= 0, 1.0, np.where(vb <= 0, 0.0, rho))


def randomisation_check(
    explainer: Any,
    images: Any,
    outputs: Any = None,
    *,
    top_k: int | None = None,
    stages: int = 4,
    threshold: float = 0.5,
    seed: int = 0,
    progress: Any = None,
    cancel: Any = None,
) -> RandomisationCheck:
    """The model-randomisation sanity check, cascading from the output layer (Adebayo et al.,
    "Sanity checks for saliency maps", NeurIPS 2018): an explanation that stays the same when
    the model's learnt weights are replaced by random ones does not explain the model.

    ``explainer`` is any attribution explainer whose backend can redraw its weights
    (``backend.parameter_layers()`` and ``backend.randomized(layers)``: torch and Keras
    models). It explains ``images`` once on the trained model, then ``stages`` more times with
    the last ``1 .. L`` parameterised layers redrawn (evenly spaced counts, the last stage all
    ``L`` layers), each time for the same outputs. The model is restored after every stage,
    also on error or cancel. Cost: ``stages + 1`` runs of the explainer.
    """
    backend = explainer.backend
    if not hasattr(backend, "randomized"):
        raise TypeError(
            f"randomisation_check: {type(backend).__name__} cannot redraw its model's weights "
            "(torch and Keras models can)"
        )
    stages = _positive_int(stages, "stages")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold: expected a number in (0, 1], got {threshold!r}")
    layers = backend.parameter_layers()
    if not layers:
        raise ValueError("randomisation_check: the model has no parameterised layers")
    counts = np.unique(np.rint(np.linspace(1, len(layers), min(stages, len(layers)))).astype(int))
    original = explainer(images, outputs, top_k=top_k)
    n, h, w, _, o = original.values.shape

    def magnitudes(e: Explanation) -> np.ndarray:
        return np.abs(e.values.sum(axis=3)).reshape(n, h * w, o)

    reference = magnitudes(original)
    similarity = np.empty((len(counts), n, o))
    cached = dict(vars(explainer))  # per-model caches (e.g. expected_value) are dropped below
    with RunControl(progress, cancel, desc="randomisation") as ctl:
        for s, k in enumerate(counts):
            ctl.check()
            try:
                vars(explainer).pop("expected_value", None)
                with backend.randomized(layers[-k:], seed=seed + s):
                    redrawn = explainer(original.data, original.output_indices)
            finally:
                vars(explainer).update(cached)
            similarity[s] = _spearman(reference, magnitudes(redrawn))
            ctl.step((s + 1) / len(counts))
    full = float(np.nanmean(similarity[-1]))
    return RandomisationCheck(
        layers=layers,
        randomised=counts,
        similarity=similarity,
        threshold=float(threshold),
        passed=bool(full < threshold),
    )
