"""`PartitionExplainer`: Owen values over the balanced hierarchy of image regions.

The Owen value (Owen 1977; shap's Partition explainer, Lundberg et al.) of a region game
``v(S) = f(mask(x, S))`` with coalition structure given by a binary tree: for a node ``N`` met in
a context ``C`` (the regions already visible), with contribution ``Δ = v(C ∪ N) - v(C)`` and
weight ``w``, the two children ``L, R`` get four terms of weight ``w / 2``,

    L in context C:       v(C ∪ L) - v(C)          R in context C:       v(C ∪ R) - v(C)
    L in context C ∪ R:   v(C ∪ L ∪ R) - v(C ∪ R)  R in context C ∪ L:   v(C ∪ L ∪ R) - v(C ∪ L)

(each child's two-player Shapley value, averaged over the sibling being absent or present), whose
weighted sum is ``w * Δ``: splitting never changes the total. Started from the root (context ∅,
``Δ = f(x) - f(masked x)``, ``w = 1``) and split down to pixels, this is the exact Owen value
(``h * w * (h * w - 1)`` evaluations). With a budget, ``max_evals`` is spent best first: the
(node, context) with the largest ``w * max_outputs |Δ|`` is split next, and a node left unsplit
has its ``w * Δ`` spread evenly over its pixels. Efficiency is exact whatever the budget: per
image and output, ``sum(values) = f(x) - f(fully masked)``. A budget above the full expansion
(:func:`._regions.full_expansion_evals`: ``2 + 2 * sum over inner nodes of 2^depth``, 2,732 on
8 x 8, about 11.2 million on 64 x 64) is capped to it with a ``BudgetCappedWarning``, the capped
value recorded as ``params["max_evals"]``.

Memory and cancellation: masked images go to the model at most ``backend.batch_size`` (and
:data:`._coalitions.WORK_BYTES` of images) at a time, with progress reported and cancel checked
after each model call; a round queues at most :data:`MAX_ROUND` coalitions per image. The
split frontier (heap) and the cache grow with the evaluations done, by about 400 bytes and
``8 k`` bytes of outputs per coalition whatever the image size: a coalition is a key
``(node, context pattern)`` (:class:`._regions.TreeCoalitions`), its mask made only when the
model call is.

The same order of splits as ``shap.PartitionExplainer`` with ``shap.maskers.Image`` (same tree,
same priority, ``round_size`` = shap's ``batch_size``), except that equal priorities go first in,
first out here and at random in shap. Every round splits the best ``round_size / 2`` nodes of
every image, and all the coalitions of the round, for all images, go to the model in one
batched call.

Values are in the model's output space (logits or probabilities, as the model gives them); a
pixel's value is split equally over its ``c`` channels, so the channel sum is the pixel's value.
"""

from __future__ import annotations

import copy
import heapq
from typing import Any

import numpy as np

from .._progress import RunControl
from ..maskers import Masker
from ._coalitions import CoalitionEvaluator, rows_per_call
from ._regions import (
    cap_budget,
    full_expansion_evals,
    paused_gc,
    region_tree,
    to_float32_exact_sums,
    tree_coalitions,
)
from .base import Explainer

#: Most coalitions per image in one round, whatever ``round_size`` or ``max_evals`` say: the
#: coalitions of a round are queued (as pixel ints) before the model sees them.
MAX_ROUND = 1024


def _names(class_names: Any, output_names: Any) -> Any:
    if class_names is not None and output_names is not None:
        raise ValueError(
            "give either class_names=... or output_names=... (the same thing), not both"
        )
    return class_names if class_names is not None else output_names


class PartitionExplainer(Explainer):
    """Hierarchical Owen values of image regions, model agnostic.

    Parameters
    ----------
    model : any model :func:`~xaiwidgets.backends.wrap` accepts, or a backend.
    masker : :class:`~xaiwidgets.maskers.Masker` or its string form (``"blur(28,28)"``,
        ``"inpaint_telea"``, ``"inpaint_ns"``, ``"constant(0.5)"``).
    max_evals : int
        Model evaluations per image, the unmasked and the fully masked image included
        (default 500, as shap).
    round_size : int or None
        Coalitions evaluated per image per round (2 per split). ``None`` (default) picks
        ``max(10, max_evals // 8)``: about 8 rounds, each one batched model call for all images.
        ``10`` reproduces shap's order of splits (its default ``batch_size``).
    class_names / output_names : names of the model's outputs, for label rows.
    backend_kwargs : passed to :func:`~xaiwidgets.backends.wrap` (``batch_size``, ...).

    Calling it: ``explainer(images, outputs="top5")`` (see
    :meth:`~xaiwidgets.explainers.base.Explainer.__call__`; ``max_evals=`` may also be given
    there) -> :class:`~xaiwidgets.Explanation` with values ``(n, h, w, c, o)`` and
    ``base_values = f(fully masked)``; its ``params["evaluations"]`` are the distinct model
    evaluations the call spent per image (a list in image order).
    """

    method = "partition"

    def __init__(
        self,
        model: Any,
        masker: Any,
        *,
        max_evals: int = 500,
        round_size: int | None = None,
        class_names: Any = None,
        output_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=_names(class_names, output_names), **backend_kwargs)
        self.masker = Masker.parse(masker)
        self.max_evals = _check_int(max_evals, "max_evals", 3)
        self.round_size = None if round_size is None else _check_int(round_size, "round_size", 2)
        self._capped: int | None = None  # set on the per-call copy when max_evals is capped

    def params(self) -> dict[str, Any]:
        params = {
            "masker": self.masker.spec,
            "max_evals": self._budget(),
            "round_size": self._round_size(),
        }
        if self._capped is not None:
            params["max_evals_requested"] = self.max_evals
        return params

    def _budget(self) -> int:
        return self._capped if self._capped is not None else self.max_evals

    def _round_size(self) -> int:
        size = self.round_size if self.round_size is not None else max(10, self._budget() // 8)
        return min(size, MAX_ROUND)

    def __call__(
        self, images: Any, outputs: Any = None, *, max_evals: int | None = None, **kwargs: Any
    ):
        return _call_on_copy(self, 3, images, outputs, max_evals, **kwargs)

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        n, h, w, c = x.shape
        tree = region_tree(h, w)
        left, right = tree.left.tolist(), tree.right.tolist()
        depth = tree.depth.tolist()
        keys = tree_coalitions(h, w)  # coalitions as (node, context pattern) keys
        usable = full_expansion_evals(h, w)
        if self.max_evals > usable:
            why = f"every node split down to the pixels of a {h}x{w} image"
            self._capped = cap_budget("PartitionExplainer", self.max_evals, usable, why)
        rows = rows_per_call(self.backend, h, w, c)
        ev = CoalitionEvaluator(
            self.backend, self.masker.bind(x), model_outputs, max_rows=rows, keys=keys
        )
        budget = self._budget() - 2  # the unmasked and fully masked images are evaluations too
        step = self._round_size()
        total_rows = max(1, n * budget)
        full_h = [ev.request(i, ev.full) for i in range(n)]
        base_h = [ev.request(i, keys.empty) for i in range(n)]
        node_values = np.zeros((n, len(left), outputs.shape[1]), np.float64)
        # heap entries: (-priority, order, context pattern of the node (see TreeCoalitions),
        # handle of v(C), handle of v(C ∪ N), node, weight)
        heaps = [[(0.0, 0, 0, base_h[i], full_h[i], 0, 1.0)] for i in range(n)]
        used = np.zeros(n, np.int64)
        order = 1
        leaf_terms: list[tuple[int, int, int, int, float]] = []
        with paused_gc():  # the loop allocates many tuples, none in cycles
            while True:
                split = []  # (image, entry, handle of v(C ∪ L), handle of v(C ∪ R), pattern of the
                # children's context with their sibling visible)
                for i in range(n):
                    heap = heaps[i]
                    if not heap:
                        continue
                    if used[i] >= budget:  # out of evaluations: what is left stays on its node
                        leaf_terms.extend((i, e[5], e[3], e[4], e[6]) for e in heap)
                        heap.clear()
                        continue
                    taken = 0
                    while heap and 2 * taken < step and used[i] + 2 * taken < budget:
                        entry = heapq.heappop(heap)
                        ctx, node = entry[2], entry[5]
                        lc = left[node]
                        if lc < 0:  # a pixel: its term is final
                            leaf_terms.append((i, node, entry[3], entry[4], entry[6]))
                            continue
                        rc = right[node]
                        a = ev.request(i, (lc, ctx))  # C ∪ L
                        b = ev.request(i, (rc, ctx))  # C ∪ R
                        split.append((i, entry, a, b, ctx | (1 << depth[node])))
                        taken += 1
                    used[i] += 2 * taken
                ev.run(lambda done: ctl.step(0.98 * done / total_rows))
                if not split and not any(heaps):
                    break
                if split:
                    order = self._push_children(
                        split, ev.outputs, outputs, heaps, left, right, order
                    )
                ctl.step(0.98 * ev.evaluated / total_rows)
        if leaf_terms:
            img, node, lo, hi, wt = (np.array(col) for col in zip(*leaf_terms))
            f = ev.outputs
            sel = outputs[img]
            delta = (f[hi[:, None], sel] - f[lo[:, None], sel]) * wt[:, None]
            np.add.at(node_values, (img, node), delta)
        pixels = tree.spread_to_pixels(node_values.transpose(1, 0, 2))  # (h, w, n, o)
        values = np.moveaxis(pixels, 2, 0)[:, :, :, None, :] / c
        values = np.broadcast_to(values, (n, h, w, c, outputs.shape[1]))
        base = ev.outputs[np.asarray(base_h)[:, None], outputs]
        totals = ev.outputs[np.asarray(full_h)[:, None], outputs] - base
        call = {"evaluations": ev.evaluations.tolist()}
        return to_float32_exact_sums(values, totals), base.astype(np.float32), call

    @staticmethod
    def _push_children(split, f, outputs, heaps, left, right, order):
        """Queue the four (child, context) terms of every split node, prioritised by
        ``weight / 2 * max |Δ|`` over the explained outputs (computed for the whole round at once)."""
        img = np.fromiter((s[0] for s in split), np.int64, len(split))
        lo = np.fromiter((s[1][3] for s in split), np.int64, len(split))
        hi = np.fromiter((s[1][4] for s in split), np.int64, len(split))
        h10 = np.fromiter((s[2] for s in split), np.int64, len(split))
        h01 = np.fromiter((s[3] for s in split), np.int64, len(split))
        half = np.fromiter((s[1][6] for s in split), np.float64, len(split)) / 2
        sel = outputs[img]
        v00, v11 = f[lo[:, None], sel], f[hi[:, None], sel]
        v10, v01 = f[h10[:, None], sel], f[h01[:, None], sel]
        prio = (
            np.stack(
                [
                    np.abs(v10 - v00).max(1),
                    np.abs(v01 - v00).max(1),
                    np.abs(v11 - v01).max(1),
                    np.abs(v11 - v10).max(1),
                ],
                axis=1,
            )
            * half[:, None]
        )
        prio = (-prio).tolist()
        for (i, entry, a, b, up), p, wt in zip(split, prio, half.tolist()):
            ctx, f00, f11, node = entry[2], entry[3], entry[4], entry[5]
            lc, rc = int(left[node]), int(right[node])
            heap = heaps[i]
            heapq.heappush(heap, (p[0], order, ctx, f00, a, lc, wt))
            heapq.heappush(heap, (p[1], order + 1, ctx, f00, b, rc, wt))
            heapq.heappush(heap, (p[2], order + 2, up, b, f11, lc, wt))  # L in context C ∪ R
            heapq.heappush(heap, (p[3], order + 3, up, a, f11, rc, wt))  # R in context C ∪ L
            order += 4
        return order


def _call_on_copy(explainer, minimum, images, outputs, max_evals, **kwargs):
    """Run ``explainer`` on a shallow copy (with ``max_evals`` if given), so that what one
    call sets (a capped budget) stays with that call."""
    other = copy.copy(explainer)
    other._capped = None
    if max_evals is not None:
        other.max_evals = _check_int(max_evals, "max_evals", minimum)
    return Explainer.__call__(other, images, outputs, **kwargs)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)
