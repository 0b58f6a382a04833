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
met before (for an image) is not evaluated again. Pairs are drawn while the evaluations fit in
``max_evals``. Nothing is spent on effects that were not asked for.

Exact values and capped budgets: the orders reach ``U`` distinct coalitions (``2^K`` for all
orders; for hierarchy-respecting ones ``p(N) = 2 (p(L) + p(R)) - 4`` over the tree above the
regions, ``p = 2`` for a region: 2,732 for the 64 pixels of an 8 x 8 image). With
``max_evals >= U`` the values are computed exactly, by enumerating every order when there are
at most 5,040, else by the Owen recursion over the hierarchy (as
:class:`~xaiwidgets.explainers.PartitionExplainer` split to the regions) or from all ``2^K``
coalitions (Shapley, ``K <= 20``), and a larger ``max_evals`` is capped to ``U`` with a
``BudgetCappedWarning`` (``params["max_evals"]`` is the capped value,
``params["max_evals_requested"]`` the one given).

Memory and cancellation: coalitions are ints over the regions (``K / 8`` bytes), the walked
orders are summed and dropped after each batch of model calls, the cache is forgotten beyond
:data:`._coalitions.CACHE_BYTES`, and masked images go to the model at most ``batch_size`` (and
:data:`._coalitions.WORK_BYTES`) at a time, with progress and a cancel check after every call.

Regions: the pixels when one pair fits (``2 * h * w <= max_evals``), otherwise the balanced cut
of the region hierarchy (:mod:`._regions`) with ``max_evals // 2`` regions, or ``regions=K``.
A region's value is spread evenly over its pixels and a pixel's equally over its channels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import check_seed
from .._progress import RunControl
from ..maskers import Masker
from ._coalitions import CACHE_BYTES, CoalitionEvaluator, rows_per_call
from ._region_orders import PathSums, prefix_bits, reachable_coalitions, region_orders
from ._regions import RegionTree, cap_budget, region_tree, to_float32_exact_sums
from .base import Explainer
from .partition import _call_on_copy, _check_int, _names

_MAX_ENUMERATED_ORDERS = 5040
_MAX_SUBSET_REGIONS = 20  # exact Shapley values from all 2^K coalitions up to this K
_ORDERS_PER_CHUNK = 256
_PATH_ENTRIES = 2**20  # handles held before the walked orders are evaluated and summed


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

    Each Explanation's ``params`` also record what its call spent: ``evaluations`` (distinct
    model evaluations per image, a list in image order) and ``orders`` (the orders averaged,
    or enumerated for exact values).
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
        self.seed = check_seed(seed, allow_none=False)
        self._capped: int | None = None  # set on the per-call copy when max_evals is capped

    def params(self) -> dict[str, Any]:
        params = {
            "masker": self.masker.spec,
            "max_evals": self._budget(),
            "regions": self.regions,
            "hierarchical": self.hierarchical,
            "seed": self.seed,
        }
        if self._capped is not None:
            params["max_evals_requested"] = self.max_evals
        return params

    def __call__(
        self, images: Any, outputs: Any = None, *, max_evals: int | None = None, **kwargs: Any
    ):
        return _call_on_copy(self, 4, images, outputs, max_evals, **kwargs)

    # ------------------------------------------------------------------ orders
    def _cut(self, tree: RegionTree) -> list[int]:
        k = self.regions if self.regions is not None else self.max_evals // 2
        return tree.frontier(min(k, tree.n_pixels))

    def _orders(
        self, tree: RegionTree, cut: list[int], rng: np.random.Generator, count: int | None
    ) -> np.ndarray:
        """``(count, K)`` orders of the regions (``count=None``: every order)."""
        return region_orders(tree, cut, rng, count, self.hierarchical)

    def _n_orders(self, k: int) -> int:
        return 2 ** (k - 1) if self.hierarchical else math.factorial(k)

    # ------------------------------------------------------------------ budget
    def _usable(self, tree: RegionTree, cut: list[int]) -> int:
        """Distinct coalitions the orders can reach (:func:`._region_orders.reachable_coalitions`)."""
        return reachable_coalitions(tree, cut, self.hierarchical)

    def _budget(self) -> int:
        return self._capped if self._capped is not None else self.max_evals

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
        usable = self._usable(tree, cut)
        if self.max_evals > usable and (self.hierarchical or k <= _MAX_SUBSET_REGIONS):
            why = f"every coalition of the {k} regions that " + (
                "hierarchy-respecting orders reach" if self.hierarchical else "orders reach"
            )
            self._capped = cap_budget("PermutationExplainer", self.max_evals, usable, why)
        budget = self._budget()
        rows = rows_per_call(self.backend, h, w, c)
        ev = CoalitionEvaluator(
            self.backend, self.masker.bind(x), model_outputs, max_rows=rows, labels=labels
        )
        total_rows = max(1, n * budget)

        def progress(done: int) -> None:
            ctl.step(0.98 * done / total_rows)

        full_h = np.array([ev.request(i, ev.full) for i in range(n)], np.int64)
        base_h = np.array([ev.request(i, 0) for i in range(n)], np.int64)
        ev.run(progress)
        ev.pin()  # the unmasked and fully masked images stay cached whatever is forgotten
        acc = PathSums(ev, outputs, full_h, base_h, k)
        exact = budget >= usable  # every reachable coalition fits: the exact values
        orders_used = 0
        if exact and self._n_orders(k) <= _MAX_ENUMERATED_ORDERS:
            orders = self._orders(tree, cut, self._rng(), None)  # every order: exact values
            for start in range(0, len(orders), _ORDERS_PER_CHUNK):
                acc.add(orders[start : start + _ORDERS_PER_CHUNK])
                acc.flush(progress)
            phi = acc.mean()
        elif exact and self.hierarchical:
            phi = self._exact_owen(tree, cut, ev, outputs, full_h, base_h, progress, ctl)
            orders_used = self._n_orders(k)
        elif exact and k <= _MAX_SUBSET_REGIONS:
            phi = self._exact_shapley(k, ev, outputs, progress)
            orders_used = self._n_orders(k)
        else:
            phi = self._sample(tree, cut, ev, acc, budget, progress, ctl)
        if acc.count:
            orders_used = acc.count
        call = {"evaluations": ev.evaluations.tolist(), "orders": int(orders_used)}
        per_pixel = phi[:, labels] / sizes[labels][None, :, :, None]  # (n, h, w, o)
        values = np.broadcast_to((per_pixel / c)[:, :, :, None, :], (n, h, w, c, outputs.shape[1]))
        base = ev.outputs[base_h[:, None], outputs]
        totals = ev.outputs[full_h[:, None], outputs] - base
        return to_float32_exact_sums(values, totals), base.astype(np.float32), call

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def _sample(self, tree, cut, ev, acc, budget, progress, ctl) -> np.ndarray:
        """Antithetic pairs while their new coalitions fit in ``budget``; the model sees them a
        batch at a time, the paths are summed and dropped after each batch, and the cache is
        forgotten beyond :data:`._coalitions.CACHE_BYTES` (memory bounded whatever the budget)."""
        k = len(cut)
        rng = self._rng()
        for _ in range(4 * max(1, (budget - 2) // (2 * (k - 1)))):
            ctl.check()
            sigma = self._orders(tree, cut, rng, 1)[0]
            pair = np.stack([sigma, sigma[::-1]])  # an order and its reverse
            bits = [b for order in pair for b in prefix_bits(order)]
            if ev.evaluations[0] + ev.count_new(0, bits) > budget:
                break
            acc.add(pair, bits)
            if ev.pending >= ev.max_rows or acc.held >= _PATH_ENTRIES:
                acc.flush(progress)
                if ev.cached_bytes > CACHE_BYTES:
                    ev.forget()
        acc.flush(progress)
        if not acc.count:
            raise ValueError(
                f"max_evals={budget} is too small for {k} regions: one antithetic pair "
                f"needs {2 * k} evaluations; pass a larger max_evals or regions=..."
            )
        return acc.mean()

    def _exact_owen(self, tree, cut, ev, outputs, full_h, base_h, progress, ctl) -> np.ndarray:
        """Exact Owen values of the cut's regions when every reachable coalition fits in the
        budget but the orders are too many to enumerate: the recursion of
        :class:`~xaiwidgets.explainers.PartitionExplainer` (a node in context ``C`` gives its
        children four terms of half its weight), level by level, stopped at the cut."""
        n, k = len(full_h), len(cut)
        index = {node: i for i, node in enumerate(cut)}
        region_bits: dict[int, int] = {}

        def bits_of(node: int) -> int:
            if node not in region_bits:
                region_bits[node] = (
                    1 << index[node]
                    if node in index
                    else bits_of(int(tree.left[node])) | bits_of(int(tree.right[node]))
                )
            return region_bits[node]

        bits_of(0)
        phi = np.zeros((n, k, outputs.shape[1]))
        level = [(0, 0, base_h, full_h, 1.0)]  # (node, context, h(C), h(C ∪ node), weight)
        while level:
            ctl.check()
            nxt, done = [], []
            for node, ctx, h00, h11, wt in level:
                if node in index:
                    done.append((index[node], h00, h11, wt))
                    continue
                lc, rc = int(tree.left[node]), int(tree.right[node])
                m10, m01 = ctx | region_bits[lc], ctx | region_bits[rc]
                a = np.array([ev.request(i, m10) for i in range(n)], np.int64)
                b = np.array([ev.request(i, m01) for i in range(n)], np.int64)
                half = wt / 2
                nxt += [
                    (lc, ctx, h00, a, half),
                    (rc, ctx, h00, b, half),
                    (lc, m01, b, h11, half),
                    (rc, m10, a, h11, half),
                ]
            ev.run(progress)
            f = ev.outputs
            for r, h00, h11, wt in done:
                phi[:, r] += wt * (f[h11[:, None], outputs] - f[h00[:, None], outputs])
            level = nxt
        return phi

    @staticmethod
    def _exact_shapley(k, ev, outputs, progress) -> np.ndarray:
        """Exact Shapley values from all ``2^K`` coalitions (``K <= 20``):
        ``phi_i = sum_{S not containing i} |S|! (K - |S| - 1)! / K! (v(S ∪ i) - v(S))``."""
        n = ev.n
        every = list(range(1 << k))
        hdl = np.stack([ev.request_many(i, every) for i in range(n)])  # (n, 2^K)
        ev.run(progress)
        v = ev.outputs[hdl[:, :, None], outputs[:, None, :]]  # (n, 2^K, o)
        subsets = np.arange(1 << k)
        size = np.zeros(1 << k, np.int64)
        for i in range(k):
            size += (subsets >> i) & 1
        weight = np.array(
            [math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)]
        )
        phi = np.zeros((n, k, outputs.shape[1]))
        for i in range(k):
            without = subsets[((subsets >> i) & 1) == 0]
            wt = weight[size[without]][None, :, None]
            phi[:, i] = (wt * (v[:, without | (1 << i)] - v[:, without])).sum(axis=1)
        return phi
