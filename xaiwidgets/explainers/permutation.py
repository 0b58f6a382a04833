"""`PermutationExplainer`: Shapley (or Owen) values of image regions by antithetic permutation
sampling.

For an order ``σ`` of the ``K`` regions, region ``σ_t`` gets its marginal contribution
``v(σ_1..σ_t) - v(σ_1..σ_{t-1})`` where ``v(S) = f(mask(x, S))``; the average over orders is the
Shapley value (over uniformly random orders) or the Owen value of the region hierarchy (over the
orders that keep every node of the hierarchy together, as shap's Permutation explainer does with
an Image masker: ``hierarchical=True``, the default). Each sampled order is paired with its
reverse (antithetic sampling: Mitchell et al. 2022, "Sampling permutations for Shapley value
estimation"). Every path telescopes to ``f(x) - f(fully masked)``, so efficiency is exact for any
number of orders.

Cost: ``f(x)`` and ``f(fully masked)`` once, then ``2 (K - 1)`` coalitions per pair; a coalition
met before (for an image) is not evaluated again. Pairs are drawn while the distinct evaluations
fit in ``max_evals``; with ``2^K <= max_evals`` (and few enough orders), every order is enumerated
instead and the values are exact. Nothing is spent on effects that were not asked for.

Regions: the pixels when one pair fits (``2 * h * w <= max_evals``), otherwise the balanced cut
of the region hierarchy (:mod:`._regions`) with ``max_evals // 2`` regions, or ``regions=K``.
A region's value is spread evenly over its pixels and a pixel's equally over its channels.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from typing import Any

import numpy as np

from .._progress import RunControl
from ..maskers import Masker
from ._regions import CoalitionEvaluator, RegionTree, region_tree, to_float32_exact_sums
from .base import Explainer
from .partition import _check_int, _names

_MAX_ENUMERATED_ORDERS = 5040
_MAX_MASK_BYTES = 128 * 2**20


class PermutationExplainer(Explainer):
    """Antithetic permutation sampling of region Shapley/Owen values, model agnostic.

    Parameters
    ----------
    model : any model :func:`~xaiwidgets.backends.wrap` accepts, or a backend.
    masker : :class:`~xaiwidgets.maskers.Masker` or its string form (``"blur(28,28)"``, ...).
    max_evals : int
        Distinct model evaluations per image, the unmasked and fully masked images included
        (default 1600: one antithetic pair over the 784 pixels of a 28 x 28 image).
    regions : int or None
        Number of regions (a balanced cut of the hierarchy); ``None`` picks the pixels when one
        pair fits in ``max_evals``, else ``max_evals // 2`` regions.
    hierarchical : bool
        ``True`` (default): orders that keep hierarchy nodes together (Owen values, as shap with
        an Image masker); ``False``: uniformly random orders (Shapley values).
    seed : int
        Seed of the orders (each call starts from it: same inputs, same values).
    class_names / output_names, backend_kwargs : as :class:`~xaiwidgets.explainers.PartitionExplainer`.
    """

    method = "permutation"

    def __init__(
        self,
        model: Any,
        masker: Any,
        *,
        max_evals: int = 1600,
        regions: int | None = None,
        hierarchical: bool = True,
        seed: int = 0,
        class_names: Any = None,
        output_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=_names(class_names, output_names), **backend_kwargs)
        self.masker = Masker.parse(masker)
        self.max_evals = _check_int(max_evals, "max_evals", 4)
        self.regions = None if regions is None else _check_int(regions, "regions", 2)
        self.hierarchical = bool(hierarchical)
        self.seed = int(seed)
        self.last_evaluations: np.ndarray | None = None
        self.last_orders = 0

    def params(self) -> dict[str, Any]:
        return {
            "masker": self.masker.spec,
            "max_evals": self.max_evals,
            "regions": self.regions,
            "hierarchical": self.hierarchical,
            "seed": self.seed,
        }

    def __call__(
        self, images: Any, outputs: Any = None, *, max_evals: int | None = None, **kwargs: Any
    ):
        if max_evals is not None and max_evals != self.max_evals:
            other = copy.copy(self)
            other.max_evals = _check_int(max_evals, "max_evals", 4)
            result = Explainer.__call__(other, images, outputs, **kwargs)
            self.__dict__.update({k: v for k, v in other.__dict__.items() if k.startswith("last_")})
            return result
        return super().__call__(images, outputs, **kwargs)

    # ------------------------------------------------------------------ orders
    def _cut(self, tree: RegionTree) -> list[int]:
        k = self.regions if self.regions is not None else self.max_evals // 2
        return tree.frontier(min(k, tree.n_pixels))

    def _orders(
        self, tree: RegionTree, cut: list[int], rng: np.random.Generator, count: int | None
    ) -> np.ndarray:
        """``(count, K)`` orders (``count=None``: every order). Hierarchical orders are read off
        random flips of the hierarchy's nodes: a region's sort key is its root-to-region path,
        each turn flipped where its node is flipped."""
        k = len(cut)
        if not self.hierarchical:
            if count is None:
                return np.array(list(itertools.permutations(range(k))), np.int64)
            return (
                np.stack([rng.permutation(k) for _ in range(count)])
                if count
                else np.zeros((0, k), np.int64)
            )
        anc, right = _paths(tree.height, tree.width, tuple(cut))
        if count is None:
            nodes = np.unique(anc[anc >= 0])
            combos = np.array(list(itertools.product((False, True), repeat=len(nodes))), bool)
            flips = np.zeros((len(combos), len(tree.box)), bool)
            flips[:, nodes] = combos
        else:
            flips = rng.random((count, len(tree.box))) < 0.5
        weights = np.left_shift(1, np.arange(anc.shape[1] - 1, -1, -1, dtype=np.int64))
        turn = right[None] ^ np.where(anc[None] >= 0, flips[:, np.maximum(anc, 0)], False)
        keys = (turn & (anc[None] >= 0)).astype(np.int64) @ weights
        return np.argsort(keys, axis=1, kind="stable")

    def _n_orders(self, k: int) -> int:
        return 2 ** (k - 1) if self.hierarchical else math.factorial(k)

    # ------------------------------------------------------------------ explain
    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        n, h, w, c = x.shape
        tree = region_tree(h, w)
        cut = self._cut(tree)
        k = len(cut)
        labels = tree.labels(cut)
        sizes = tree.size[cut].astype(np.float64)
        # masked images per model call: big batches, bounded memory, progress between calls
        max_rows = max(self.backend.batch_size, min(2048, _MAX_MASK_BYTES // (h * w * c * 4)))
        ev = CoalitionEvaluator(self.backend, self.masker.bind(x), model_outputs, max_rows=max_rows)
        rng = np.random.default_rng(self.seed)
        full_h = [ev.request(i, np.ones((h, w), bool)) for i in range(n)]
        base_h = [ev.request(i, np.zeros((h, w), bool)) for i in range(n)]
        paths: list[np.ndarray] = []  # the orders walked
        handles: list[np.ndarray] = []  # (n, K + 1) handles of each walked order
        budget = n * self.max_evals

        def walk(orders: np.ndarray, keeps: list[np.ndarray]) -> None:
            for order, kp in zip(orders, keeps):
                row = np.empty((n, k + 1), np.int64)
                row[:, 0], row[:, k] = base_h, full_h
                for i in range(n):
                    row[i, 1:k] = ev.request_many(i, kp)
                paths.append(order)
                handles.append(row)
            if ev.pending >= max_rows:
                ev.run(lambda done: ctl.step(0.98 * done / budget))

        if 2**k <= self.max_evals and self._n_orders(k) <= _MAX_ENUMERATED_ORDERS:
            orders = self._orders(tree, cut, rng, None)  # every order: exact values
            walk(orders, [self._prefix_masks(o, labels) for o in orders])
        else:
            for _ in range(4 * max(1, (self.max_evals - 2) // (2 * (k - 1)))):
                sigma = self._orders(tree, cut, rng, 1)[0]
                pair = np.stack([sigma, sigma[::-1]])  # an order and its reverse
                keeps = [self._prefix_masks(o, labels) for o in pair]
                new = ev.count_new(0, np.concatenate(keeps))  # the same masks for every image
                if ev.evaluations[0] + new > self.max_evals:
                    break
                walk(pair, keeps)
        ev.run(lambda done: ctl.step(0.98 * done / budget))
        if not paths:
            raise ValueError(
                f"max_evals={self.max_evals} is too small for {k} regions: one antithetic pair "
                f"needs {2 * k} evaluations; pass a larger max_evals or regions=..."
            )
        self.last_evaluations = ev.evaluations.copy()
        self.last_orders = len(paths)
        order = np.stack(paths)  # (P, K)
        hdl = np.stack(handles, axis=1)  # (n, P, K + 1)
        vals = ev.outputs[hdl[..., None], outputs[:, None, None, :]]  # (n, P, K + 1, o)
        diffs = vals[:, :, 1:] - vals[:, :, :-1]  # contribution of the region added at each step
        rank = np.argsort(order, axis=1)  # position of each region in each order
        phi = np.take_along_axis(diffs, rank[None, :, :, None], axis=2).mean(axis=1)  # (n, K, o)
        per_pixel = phi[:, labels] / sizes[labels][None, :, :, None]  # (n, h, w, o)
        values = np.broadcast_to((per_pixel / c)[:, :, :, None, :], (n, h, w, c, outputs.shape[1]))
        base = ev.outputs[np.asarray(base_h)[:, None], outputs]
        totals = ev.outputs[np.asarray(full_h)[:, None], outputs] - base
        return to_float32_exact_sums(values, totals), base.astype(np.float32)

    @staticmethod
    def _prefix_masks(order: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``(K - 1, h, w)`` the coalitions strictly between empty and full along ``order``."""
        k = len(order)
        rank = np.empty(k, np.int64)
        rank[order] = np.arange(k)
        pixel_rank = rank[labels]
        return pixel_rank[None] < np.arange(1, k)[:, None, None]


@functools.lru_cache(maxsize=8)
def _paths(height: int, width: int, cut: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Ancestors ``(K, D)`` (root first, ``-1`` padded) of each region of ``cut`` and whether
    the path turns right there: what hierarchy-respecting orders are read from."""
    tree = region_tree(height, width)
    parent = np.full(len(tree.box), -1, np.int64)
    inner = np.flatnonzero(tree.left >= 0)
    parent[tree.left[inner]] = inner
    parent[tree.right[inner]] = inner
    cur = np.array(cut, np.int64)
    rows = np.arange(len(cur))
    anc = np.full((len(cur), max(int(tree.depth[cur].max()), 1)), -1, np.int64)
    right = np.zeros(anc.shape, bool)
    while (cur != 0).any():  # climb one level for every region not yet at the root
        up = cur != 0
        child = cur[up]
        p = parent[child]
        anc[rows[up], tree.depth[child] - 1] = p
        right[rows[up], tree.depth[child] - 1] = tree.right[p] == child
        cur[up] = p
    return anc, right
