"""Faithfulness of attributions: numbers that say which explanation to trust.

- Deletion (Petsiuk et al. 2018, "RISE", sec. 4.2): hide the pixels of an image in the order
  of their attribution, most positive first, and follow the model's score of the explained
  class. A faithful attribution finds the evidence first, so the score falls fast and the
  area under the curve is small. The hidden pixels are filled by a masker (the explanation's
  own by default), so "which masker gives the better explanation" becomes a number: compare
  areas computed with one and the same deletion masker for a fair comparison.
- Insertion (same paper): start from the fully hidden image and reveal pixels in the same
  order; the score should rise fast, so a *larger* area is more faithful.
- MuFidelity / faithfulness correlation (Bhatt, Weller & Moura, IJCAI 2020): over random
  subsets ``S`` of pixels, the Pearson correlation between ``sum_{i in S} phi_i`` and the
  output drop ``f(x) - f(x with S := baseline)``; 1 is best.
- Sparseness (Chalasani et al., ICML 2020): the Gini index of ``|phi|``; 1 when one pixel
  holds all the attribution, 0 when it is spread evenly.

Every metric reads an :class:`~xaiwidgets.Explanation` (attributions summed over channels:
one score per pixel) and evaluates the model through the backend protocol, batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ._progress import RunControl
from ._result import Result
from .backends import wrap
from .explanation import Explanation
from .maskers import Masker


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
    from .explainers._coalitions import CoalitionEvaluator

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
    ev = CoalitionEvaluator(backend, masker.bind(x), model_outputs)
    counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * h * w).astype(np.int64)
    handles = np.empty((n, o, steps + 1), np.int64)
    with RunControl(progress, cancel, desc=kind) as ctl:
        for i in range(n):
            for j in range(o):
                attribution = explanation.values[i, ..., j].sum(axis=-1).reshape(-1)
                order = np.argsort(-attribution, kind="stable")
                rank = np.empty(h * w, np.int64)
                rank[order] = np.arange(h * w)
                rank = rank.reshape(1, h, w)
                if kind == "deletion":
                    keep = rank >= counts[:, None, None]
                else:
                    keep = rank < counts[:, None, None]
                handles[i, j] = ev.request_many(i, keep)
            ev.run()
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


@dataclass(eq=False)
class MuFidelity(Result):
    """Result of :func:`mufidelity` (``n`` images, ``o`` outputs, ``r`` random subsets).

    - ``correlation`` ``(n, o)`` Pearson correlation of attribution sums and output drops
      (``nan`` where either is constant over the subsets)
    - ``attribution_sums`` / ``output_drops`` ``(n, o, r)`` what was correlated
    - ``output_indices`` ``(n, o)``; ``subset_size``, ``baseline``, ``score`` as given
    """

    _arrays: ClassVar[tuple[str, ...]] = (
        "correlation", "attribution_sums", "output_drops", "output_indices"
    )  # fmt: skip
    _required: ClassVar[tuple[str, ...]] = _arrays
    _meta: ClassVar[tuple[str, ...]] = ("subset_size", "baseline", "score")
    _shapes = {"correlation": ("n", "o"), "attribution_sums": ("n", "o", "r"),
               "output_drops": ("n", "o", "r"), "output_indices": ("n", "o")}  # fmt: skip
    _choices = {"score": ("probability", "output")}

    correlation: np.ndarray
    attribution_sums: np.ndarray
    output_drops: np.ndarray
    output_indices: np.ndarray
    subset_size: int
    baseline: float
    score: str

    @property
    def mean(self) -> float:
        """Correlation averaged over images and outputs (``nan`` entries left out)."""
        return float(np.nanmean(self.correlation))

    @property
    def params(self) -> dict[str, Any]:
        """``runs`` (random subsets per image), ``subset_size``, ``baseline``, ``score``."""
        runs = int(self.attribution_sums.shape[-1])
        return {"runs": runs, "subset_size": self.subset_size, "baseline": self.baseline,
                "score": self.score}  # fmt: skip


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (``nan`` where either side is constant)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(-1) / np.where(den > 0, den, 1), np.nan)


def mufidelity(
    explanation: Explanation,
    model: Any,
    *,
    runs: int = 100,
    subset_size: int | None = None,
    baseline: float = 0.0,
    score: str = "probability",
    seed: int | None = 0,
    subsets: Any = None,
    progress: Any = None,
    cancel: Any = None,
) -> MuFidelity:
    """MuFidelity (faithfulness correlation) of every image and explained output.

    Parameters
    ----------
    explanation, model : as :func:`deletion_curve`.
    runs : int
        Random pixel subsets per image (default 100).
    subset_size : int, optional
        Pixels per subset (default: 10 % of the ``h * w`` pixels, at least 1).
    baseline : float
        Value the subset's pixels take, in every channel (default 0.0).
    score : ``"probability"`` (default) or ``"output"``, as :func:`deletion_curve`.
    seed : int or None
        Seed of the subsets (default 0).
    subsets : int array ``(runs, n, subset_size)`` of flat pixel indices, optional
        The subsets to use instead of random ones (e.g. to reproduce another tool's draws).
    progress, cancel : as :class:`xaiwidgets._progress.RunControl`.

    Cost: ``n * runs + n`` model evaluations, batched (``n`` masked images per run).
    """
    _check_common(explanation, score)
    backend = wrap(model)
    x = explanation.data
    n, h, w, _, o = explanation.values.shape
    if not np.isfinite(baseline):
        raise ValueError(f"baseline: expected a finite number, got {baseline!r}")
    if subsets is None:
        runs = _positive_int(runs, "runs")
        size = (
            max(1, (h * w) // 10)
            if subset_size is None
            else _positive_int(subset_size, "subset_size")
        )
        if size > h * w:
            raise ValueError(f"subset_size: at most the {h * w} pixels, got {size}")
        rng = np.random.default_rng(seed)
        subsets = np.stack(
            [
                np.stack([rng.choice(h * w, size, replace=False) for _ in range(n)])
                for _ in range(runs)
            ]
        )
    else:
        subsets = np.asarray(subsets)
        if (
            subsets.ndim != 3
            or subsets.shape[1] != n
            or not np.issubdtype(subsets.dtype, np.integer)
        ):
            raise ValueError(
                f"subsets: expected integer pixel indices (runs, n={n}, size), got "
                f"{subsets.dtype} {subsets.shape}"
            )
        if subsets.min() < 0 or subsets.max() >= h * w:
            raise ValueError(f"subsets: pixel indices must be in 0..{h * w - 1}")
        runs, size = subsets.shape[0], subsets.shape[2]
    idx = explanation.output_indices
    outputs = backend.predict(x)
    convert = backend.to_probabilities if score == "probability" else (lambda a: a)
    f_x = np.take_along_axis(convert(outputs), idx, axis=1)  # (n, o)
    attribution = explanation.values.sum(axis=3).reshape(n, h * w, o)
    sums = np.empty((n, o, runs))
    drops = np.empty((n, o, runs))
    images = np.arange(n)[None, :, None]
    per_call = max(1, backend.batch_size // n)
    flat = x.reshape(n, h * w, -1)
    # one buffer of per_call copies of the images: each chunk hides its subsets, is
    # predicted, and gets its pixels back (no full copy of the images per chunk)
    masked = np.repeat(flat[None], min(per_call, runs), axis=0)
    with RunControl(progress, cancel, desc="mufidelity") as ctl:
        for start in range(0, runs, per_call):
            ctl.check()
            chunk = subsets[start : start + per_call]  # (b, n, size)
            b = len(chunk)
            rows = np.arange(b)[:, None, None]
            masked[rows, images, chunk] = baseline
            out = convert(backend.predict(masked[:b].reshape((-1,) + x.shape[1:])))
            masked[rows, images, chunk] = flat[images, chunk]
            out = out.reshape(b, n, -1)
            picked = np.take_along_axis(out, np.broadcast_to(idx, (b,) + idx.shape), axis=2)
            drops[:, :, start : start + b] = np.moveaxis(f_x[None] - picked, 0, -1)
            part = attribution[images, chunk].sum(axis=2)  # (b, n, o)
            sums[:, :, start : start + b] = np.moveaxis(part, 0, -1)
            ctl.step(min(runs, start + b) / runs)
    return MuFidelity(
        correlation=_pearson(sums, drops),
        attribution_sums=sums,
        output_drops=drops,
        output_indices=idx.copy(),
        subset_size=int(size),
        baseline=float(baseline),
        score=score,
    )


def sparseness(explanation: Explanation) -> np.ndarray:
    """Gini index of ``|phi|`` (summed over channels) per image and output, ``(n, o)``:

        G = sum_i (2 i - N - 1) a_(i) / (N sum_i a_(i)),  a_(1) <= ... <= a_(N)

    (Chalasani et al., ICML 2020; Hurley & Rickard 2009). 0 for an all-zero map.
    """
    if not isinstance(explanation, Explanation):
        raise TypeError(
            f"explanation: expected an xaiwidgets Explanation, got {type(explanation).__name__}"
        )
    n, h, w, c, o = explanation.values.shape
    p = h * w
    values = explanation.values
    m = values.reshape(n, p, o) if c == 1 else values.sum(axis=3).reshape(n, p, o)
    rows = m.reshape(n, 1, p) if o == 1 else np.moveaxis(m, 1, -1)  # (n, o, p)
    # one batched float32 sort of every map (SIMD); the sums in float64
    a = np.sort(np.abs(rows, dtype=np.float32), axis=-1)
    weights = 2 * np.arange(1, p + 1, dtype=np.float64) - p - 1
    total = a.sum(axis=-1, dtype=np.float64)
    g = (a.reshape(-1, p) @ weights).reshape(n, o) / (p * np.where(total > 0, total, 1.0))
    return np.where(total > 0, g, 0.0)


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
