"""Orders of image regions for permutation sampling, and the sums along them.

Used by :class:`~xaiwidgets.explainers.PermutationExplainer` (see there for the method): the
orders (uniformly random, or hierarchy-respecting: read off random flips of the region tree's
nodes), how many distinct coalitions they can reach, and :class:`PathSums`, the running sums of
the marginal contributions along walked orders (memory bounded by one chunk of orders).
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from ._regions import RegionTree, region_tree


def region_orders(
    tree: RegionTree,
    cut: list[int],
    rng: np.random.Generator,
    count: int | None,
    hierarchical: bool,
) -> np.ndarray:
    """``(count, K)`` orders (``count=None``: every order). Hierarchical orders are read off
    random flips of the hierarchy's nodes: a region's sort key is its root-to-region path,
    each turn flipped where its node is flipped."""
    k = len(cut)
    if not hierarchical:
        if count is None:
            return np.array(list(itertools.permutations(range(k))), np.int64)
        return (
            np.stack([rng.permutation(k) for _ in range(count)])
            if count
            else np.zeros((0, k), np.int64)
        )
    anc, right = region_paths(tree.height, tree.width, tuple(cut))
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


def reachable_coalitions(tree: RegionTree, cut: list[int], hierarchical: bool) -> int:
    """Distinct coalitions the orders can reach, the empty and full ones included: ``2^K``
    for all orders; for hierarchy-respecting ones ``p(N) = 2 (p(L) + p(R)) - 4`` over the
    tree above the cut (``p = 2`` for a region: hidden or shown)."""
    k = len(cut)
    if not hierarchical:
        return 1 << k
    in_cut = set(cut)

    def p(node: int) -> int:
        if node in in_cut:
            return 2
        return 2 * (p(int(tree.left[node])) + p(int(tree.right[node]))) - 4

    return p(0)


def prefix_bits(order: np.ndarray) -> list[int]:
    """The ``K - 1`` coalitions (region ints) strictly between empty and full along ``order``."""
    out, acc = [], 0
    for r in order[:-1].tolist():
        acc |= 1 << r
        out.append(acc)
    return out


class PathSums:
    """Running sums of the marginal contributions along walked orders: orders are queued with
    :meth:`add`, evaluated and summed by :meth:`flush`, then dropped (memory bounded by one
    chunk, whatever the number of orders)."""

    def __init__(self, ev, outputs, full_h, base_h, k):
        self.ev, self.outputs, self.k = ev, outputs, k
        self.full_h, self.base_h = full_h, base_h
        n = len(full_h)
        self.sums = np.zeros((n, k, outputs.shape[1]))
        self.count = 0
        self._orders: list[np.ndarray] = []
        self._handles: list[np.ndarray] = []

    @property
    def held(self) -> int:
        """Handles queued (images x orders x (K + 1))."""
        return len(self._handles) * len(self.full_h) * (self.k + 1)

    def add(self, orders: np.ndarray, bits: list[int] | None = None) -> None:
        ev, k = self.ev, self.k
        if bits is None:
            bits = [b for order in orders for b in prefix_bits(order)]
        for j, order in enumerate(orders):
            row = np.empty((len(self.full_h), k + 1), np.int64)
            row[:, 0], row[:, k] = self.base_h, self.full_h
            part = bits[j * (k - 1) : (j + 1) * (k - 1)]
            for i in range(len(self.full_h)):
                row[i, 1:k] = ev.request_many(i, part)
            self._orders.append(order)
            self._handles.append(row)

    def flush(self, progress) -> None:
        self.ev.run(progress)
        if not self._orders:
            return
        order = np.stack(self._orders)  # (P, K)
        hdl = np.stack(self._handles, axis=1)  # (n, P, K + 1)
        self._orders, self._handles = [], []
        vals = self.ev.outputs[hdl[..., None], self.outputs[:, None, None, :]]  # (n, P, K+1, o)
        diffs = vals[:, :, 1:] - vals[:, :, :-1]  # contribution of the region added at each step
        rank = np.argsort(order, axis=1)  # position of each region in each order
        self.sums += np.take_along_axis(diffs, rank[None, :, :, None], axis=2).sum(axis=1)
        self.count += len(order)

    def mean(self) -> np.ndarray:
        return self.sums / self.count


@functools.lru_cache(maxsize=8)
def region_paths(height: int, width: int, cut: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
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
