"""What the Shapley explainers share: the balanced hierarchy of image regions and a
batched, cached evaluator of the model on coalitions of visible regions.

The hierarchy (:func:`region_tree`) is the one of ``shap.maskers.Image``: starting from the
whole ``h x w`` image, a region is cut in two across its longest side (rows when it is at least
as tall as it is wide) until single pixels remain; every region is an axis-aligned rectangle.
A side of length ``L`` is cut into ``ceil(L/2)`` then ``floor(L/2)`` pixels, the cut shap's
Image masker ends up with (its leaf numbering mirrors the image), so regions of both libraries
coincide. Channels are never split: a leaf is a pixel with all its channels.

A coalition is a boolean ``keep`` mask ``(h, w)``: ``True`` where the image is visible, ``False``
where the masker hides it, or the same as a Python int (:func:`coalition_bits`).
:class:`~._coalitions.CoalitionEvaluator` evaluates the model on them.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True, eq=False)
class RegionTree:
    """A binary tree of rectangles over an ``h x w`` image. Node 0 is the whole image.

    Attributes (``N = 2 * h * w - 1`` nodes, parents before children):

    - ``box``   ``(N, 4)`` ``r0, r1, c0, c1``: the node covers ``[r0:r1, c0:c1]``
    - ``left``, ``right`` ``(N,)`` children ids, ``-1`` for a leaf (a single pixel)
    - ``size``  ``(N,)`` pixels covered
    - ``depth`` ``(N,)`` distance from the root
    - ``leaf_of_pixel`` ``(h * w,)`` node id of each pixel (row-major)
    """

    height: int
    width: int
    box: np.ndarray
    left: np.ndarray
    right: np.ndarray
    size: np.ndarray
    depth: np.ndarray
    leaf_of_pixel: np.ndarray

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    def is_leaf(self, node: int) -> bool:
        return self.left[node] < 0

    def paint(self, keep: np.ndarray, nodes) -> np.ndarray:
        """Set ``keep[r0:r1, c0:c1] = True`` for every node in ``nodes``; returns ``keep``."""
        box = self.box
        for node in nodes:
            r0, r1, c0, c1 = box[node]
            keep[r0:r1, c0:c1] = True
        return keep

    def node_mask(self, node: int) -> np.ndarray:
        """``(h, w)`` bool mask of one node."""
        return self.paint(np.zeros((self.height, self.width), bool), (node,))

    def frontier(self, k: int) -> list[int]:
        """A cut of the tree into (at most) ``k`` balanced regions: starting from the root,
        the largest region (ties: the first made) is split until there are ``k`` regions or
        only pixels remain. ``k >= h * w`` gives the pixels."""
        k = max(1, int(k))
        if k >= self.n_pixels:
            return [int(v) for v in self.leaf_of_pixel]
        import heapq

        heap = [(-int(self.size[0]), 0)]
        leaves: list[int] = []
        while heap and len(heap) + len(leaves) < k:
            _, node = heapq.heappop(heap)
            if self.left[node] < 0:
                leaves.append(node)
                continue
            for child in (self.left[node], self.right[node]):
                heapq.heappush(heap, (-int(self.size[child]), int(child)))
        return sorted(leaves + [node for _, node in heap])

    def labels(self, regions: list[int]) -> np.ndarray:
        """``(h, w)`` int map: the index in ``regions`` of the region covering each pixel."""
        out = np.full((self.height, self.width), -1, np.int64)
        for i, node in enumerate(regions):
            r0, r1, c0, c1 = self.box[node]
            out[r0:r1, c0:c1] = i
        if (out < 0).any():
            raise ValueError("regions do not cover the image")
        return out

    def spread_to_pixels(self, node_values: np.ndarray) -> np.ndarray:
        """Push values held on nodes down to the pixels, each node's value spread evenly over
        its pixels (shap's ``lower_credit``).

        ``node_values`` ``(N, ...)`` -> ``(h, w, ...)``: pixel ``p`` gets
        ``sum over nodes a covering p of node_values[a] / size[a]``.
        """
        values = np.asarray(node_values, dtype=np.float64)
        rest = values.shape[1:]
        acc = values.reshape(len(values), -1).copy()
        size = self.size.astype(np.float64)[:, None]
        inner = np.flatnonzero(self.left >= 0)
        for d in range(int(self.depth.max()) + 1):
            nodes = inner[self.depth[inner] == d]
            share = acc[nodes] / size[nodes]
            acc[self.left[nodes]] += share * size[self.left[nodes]]
            acc[self.right[nodes]] += share * size[self.right[nodes]]
        return acc[self.leaf_of_pixel].reshape((self.height, self.width) + rest)


@lru_cache(maxsize=16)
def region_tree(height: int, width: int) -> RegionTree:
    """The balanced region hierarchy of an ``height x width`` image (cached per shape)."""
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise ValueError(f"image size: expected positive height and width, got {height}x{width}")
    n_nodes = 2 * height * width - 1
    boxes = [(0, height, 0, width)]
    left, right, depth = [-1] * n_nodes, [-1] * n_nodes, [0] * n_nodes
    leaf_of_pixel = [0] * (height * width)
    for node in range(n_nodes):  # breadth first: children are always made after their parent
        r0, r1, c0, c1 = boxes[node]
        hh, ww = r1 - r0, c1 - c0
        if hh == 1 and ww == 1:
            leaf_of_pixel[r0 * width + c0] = node
            continue
        if hh >= ww:
            mid = r0 + (hh + 1) // 2
            boxes += [(r0, mid, c0, c1), (mid, r1, c0, c1)]
        else:
            mid = c0 + (ww + 1) // 2
            boxes += [(r0, r1, c0, mid), (r0, r1, mid, c1)]
        left[node], right[node] = len(boxes) - 2, len(boxes) - 1
        depth[left[node]] = depth[right[node]] = depth[node] + 1
    box = np.array(boxes, np.int64)
    size = (box[:, 1] - box[:, 0]) * (box[:, 3] - box[:, 2])
    arrays = [box] + [np.array(v, np.int64) for v in (left, right, depth, leaf_of_pixel)] + [size]
    for arr in arrays:
        arr.setflags(write=False)
    box, left, right, depth, leaf_of_pixel, size = arrays
    return RegionTree(height, width, box, left, right, size, depth, leaf_of_pixel)


@lru_cache(maxsize=16)
def full_expansion_evals(height: int, width: int) -> int:
    """Model evaluations per image of the Owen recursion split down to every pixel (the exact
    Owen values): the unmasked and fully masked images, and two coalitions ``C ∪ L``,
    ``C ∪ R`` for each inner node in each of its ``2^depth`` contexts."""
    tree = region_tree(height, width)
    inner = tree.depth[tree.left >= 0]
    return 2 + 2 * sum(1 << int(d) for d in inner)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector around a loop that allocates many small tuples
    that never form cycles (heap entries): repeated full collections would otherwise scan the
    growing heaps again and again. Restored afterwards if it was on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def coalition_bits(keeps: np.ndarray) -> list[int]:
    """Coalitions ``(r, h, w)`` bool as Python ints: bit ``p`` is pixel ``p`` (row-major)."""
    flat = np.packbits(keeps.reshape(len(keeps), -1), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in flat]


def coalition_masks(bits: list[int], height: int, width: int) -> np.ndarray:
    """Inverse of :func:`coalition_bits`: ``(r, h, w)`` bool masks."""
    m = height * width
    nbytes = (m + 7) // 8
    raw = b"".join(b.to_bytes(nbytes, "little") for b in bits)
    flat = np.frombuffer(raw, np.uint8).reshape(len(bits), nbytes)
    out = np.unpackbits(flat, axis=1, count=m, bitorder="little")
    return out.view(bool).reshape(len(bits), height, width)


class NodeBits:
    """The pixels of each node of :func:`region_tree` as a Python int (see
    :func:`coalition_bits`), made on first use and kept: ``bits[node]``.

    A rectangle ``[r0:r1, c0:c1]`` is one row pattern repeated every ``w`` bits:
    ``row * (1 + 2^w + ... + 2^((rows - 1) w)) << (r0 * w)``, with no carries between rows.
    """

    def __init__(self, height: int, width: int):
        self.width = width
        self.box = region_tree(height, width).box.tolist()
        self._bits: dict[int, int] = {}

    def __getitem__(self, node: int) -> int:
        bits = self._bits.get(node)
        if bits is None:
            r0, r1, c0, c1 = self.box[node]
            w = self.width
            row = ((1 << (c1 - c0)) - 1) << c0
            every_row = ((1 << (w * (r1 - r0))) - 1) // ((1 << w) - 1)
            bits = self._bits[node] = (row * every_row) << (r0 * w)
        return bits

    def __len__(self) -> int:
        return len(self.box)


@lru_cache(maxsize=16)
def node_bits(height: int, width: int) -> NodeBits:
    """:class:`NodeBits` of the ``height x width`` hierarchy (cached per shape)."""
    return NodeBits(int(height), int(width))


class TreeCoalitions:
    """Coalitions of the Owen recursion as small keys ``(node, pattern)``, whatever the image
    size: ``node`` visible, and for each level ``j < depth(node)`` with bit ``j`` of
    ``pattern`` set, the sibling of ``node``'s ancestor at depth ``j + 1`` visible too (the
    context a node is met in is made of such siblings). ``(0, 0)`` is the whole image,
    ``(-1, 0)`` the empty coalition. A node's pixels as a Python int take ``h * w / 8`` bytes
    (6 kB at 224 x 224); a key takes a few dozen.

    Masks are painted: the node's rectangle, then, climbing towards the root, the sibling's
    rectangle at each level whose bit is set (at most ``depth`` rectangles a key).
    """

    full = (0, 0)
    empty = (-1, 0)

    def __init__(self, height: int, width: int):
        tree = region_tree(height, width)
        self.height, self.width = height, width
        parent = np.full(len(tree.box), -1, np.int64)
        sibling = np.full(len(tree.box), -1, np.int64)
        inner = np.flatnonzero(tree.left >= 0)
        parent[tree.left[inner]] = parent[tree.right[inner]] = inner
        sibling[tree.left[inner]], sibling[tree.right[inner]] = tree.right[inner], tree.left[inner]
        self.parent, self.sibling = parent.tolist(), sibling.tolist()
        self.depth = tree.depth.tolist()
        self.box = tree.box.tolist()

    def masks(self, keys: list[tuple[int, int]]) -> np.ndarray:
        """``(r, h, w)`` bool masks of ``keys``."""
        out = np.zeros((len(keys), self.height, self.width), bool)
        box, parent, sibling, depth = self.box, self.parent, self.sibling, self.depth
        for i, (node, pattern) in enumerate(keys):
            if node < 0:
                continue
            r0, r1, c0, c1 = box[node]
            out[i, r0:r1, c0:c1] = True
            child = node
            pattern &= (1 << depth[node]) - 1
            while pattern:  # levels above with a visible sibling remain
                level = depth[child] - 1  # the parent's depth: bit of the sibling met here
                if pattern >> level & 1:
                    r0, r1, c0, c1 = box[sibling[child]]
                    out[i, r0:r1, c0:c1] = True
                    pattern ^= 1 << level
                child = parent[child]
        return out


@lru_cache(maxsize=16)
def tree_coalitions(height: int, width: int) -> TreeCoalitions:
    """:class:`TreeCoalitions` of the ``height x width`` hierarchy (cached per shape)."""
    return TreeCoalitions(int(height), int(width))


class BudgetCappedWarning(UserWarning):
    """``max_evals`` was more than the method can use: it was lowered to the number of
    evaluations that give the exact values (recorded in the Explanation's ``params``)."""


def cap_budget(method: str, max_evals: int, usable: int, why: str) -> int:
    """``min(max_evals, usable)``, with a :class:`BudgetCappedWarning` when it lowers it."""
    if max_evals <= usable:
        return max_evals
    import warnings

    warnings.warn(
        f"{method}: max_evals={max_evals} is more than it can use; {usable} evaluations per "
        f"image give the exact values ({why}), so max_evals is capped to {usable} (recorded "
        "in the Explanation's params as max_evals, the requested value as max_evals_requested)",
        BudgetCappedWarning,
        stacklevel=7,  # the user's explainer(...) call
    )
    return usable


class EfficiencyError(ArithmeticError):
    """Attributions that do not add up to ``f(x) - f(masked)`` beyond float32 rounding: a bug
    in the explainer, never hidden by :func:`to_float32_exact_sums`."""


def to_float32_exact_sums(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """``values`` ``(n, h, w, c, o)`` as float32 whose sums (taken in float64) over ``h, w, c``
    equal ``totals`` ``(n, o)`` up to one float32 rounding of the largest entry: the rounding
    residual of the cast is put on the entry of largest magnitude of each image and output.

    Only rounding is moved. The cast changes each entry by at most half a float32 ulp, so the
    leftover ``totals - sum(float32 values)`` is at most ``eps32 / 2 * sum |values|`` (plus the
    float64 error of the algorithm, far smaller); a leftover above
    ``eps32 * (sum |values| + |totals|)`` means the values do not add up and raises
    :class:`EfficiencyError` instead of being hidden on one entry.
    """
    out = np.ascontiguousarray(values, dtype=np.float32)
    n, o = totals.shape
    flat = out.reshape(n, -1, o)
    leftover = np.asarray(totals, np.float64) - flat.sum(axis=1, dtype=np.float64)
    scale = np.abs(flat).sum(axis=1, dtype=np.float64) + np.abs(np.asarray(totals, np.float64))
    bound = float(np.finfo(np.float32).eps) * scale + np.finfo(np.float32).tiny
    if not (np.abs(leftover) <= bound).all():  # also catches NaN
        excess = np.where(np.isnan(leftover), np.inf, np.abs(leftover) / bound)
        i, j = np.unravel_index(np.argmax(excess), leftover.shape)
        raise EfficiencyError(
            f"attributions of image {i}, output {j} sum to {totals[i, j] - leftover[i, j]!r}, "
            f"not to f(x) - f(masked) = {totals[i, j]!r}: a leftover of {leftover[i, j]:.3g}, "
            f"more than float32 rounding explains ({bound[i, j]:.3g})"
        )
    where = np.abs(flat).argmax(axis=1)  # (n, o)
    rows, cols = np.arange(n)[:, None], np.arange(o)[None, :]
    for _ in range(2):
        residual = totals - flat.sum(axis=1, dtype=np.float64)
        flat[rows, where, cols] = (flat[rows, where, cols].astype(np.float64) + residual).astype(
            np.float32
        )
    return out
