"""What the Shapley explainers share: the balanced hierarchy of image regions and a
batched, cached evaluator of the model on coalitions of visible regions.

The hierarchy (:func:`region_tree`) is the one of ``shap.maskers.Image``: starting from the
whole ``h x w`` image, a region is cut in two across its longest side (rows when it is at least
as tall as it is wide) until single pixels remain; every region is an axis-aligned rectangle.
A side of length ``L`` is cut into ``ceil(L/2)`` then ``floor(L/2)`` pixels, the cut shap's
Image masker ends up with (its leaf numbering mirrors the image), so regions of both libraries
coincide. Channels are never split: a leaf is a pixel with all its channels.

A coalition is a boolean ``keep`` mask ``(h, w)``: ``True`` where the image is visible, ``False``
where the masker hides it. :class:`CoalitionEvaluator` sends coalitions of all images to the
model in one batched ``backend.predict`` call per :meth:`~CoalitionEvaluator.run`, and evaluates
each distinct coalition of an image once (cache keyed by the mask's content).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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


class CoalitionEvaluator:
    """Model outputs on coalitions, batched over all images and cached per image.

    A coalition is a Python int over the ``h * w`` pixels (bit set = pixel visible, see
    :func:`coalition_bits`) or an ``(h, w)`` bool mask; it is cached by content, so a coalition
    requested twice for an image is evaluated once.

    Parameters
    ----------
    backend : the wrapped model (``predict(x) -> (n, k)``).
    bound : a bound masker (:meth:`xaiwidgets.maskers.Masker.bind`) for the images.
    model_outputs : ``(n, k)`` outputs on the unmasked images (seeded in the cache, so the full
        coalition costs nothing and efficiency holds against exactly these outputs).
    max_rows : largest number of masked images materialised and sent at once.

    Use :meth:`request` / :meth:`request_many` to queue coalitions (they return handles),
    :meth:`run` to evaluate the queued ones, then ``evaluator.outputs[handle]`` (``(k,)``).
    """

    def __init__(self, backend, bound, model_outputs: np.ndarray, max_rows: int = 8192):
        self.backend = backend
        self.bound = bound
        n, k = model_outputs.shape
        self.n = n
        self.full = (1 << (bound.height * bound.width)) - 1
        self._cache: list[dict[int, int]] = [{} for _ in range(n)]
        self._out = np.zeros((max(64, 4 * n), k), np.float64)
        self._size = 0
        self._pending: list[tuple[int, int, int]] = []
        self.evaluations = np.zeros(n, np.int64)  # distinct coalitions requested, per image
        self.evaluated = 0  # masked images sent to the model so far
        self.max_rows = int(max_rows)
        for i in range(n):
            handle = self._new_handle()
            self._out[handle] = model_outputs[i]
            self._cache[i][self.full] = handle
            self.evaluations[i] += 1

    @property
    def outputs(self) -> np.ndarray:
        """``(handles, k)`` model outputs of the evaluated coalitions."""
        return self._out

    def _new_handle(self) -> int:
        if self._size == len(self._out):
            self._out = np.concatenate([self._out, np.zeros_like(self._out)])
        self._size += 1
        return self._size - 1

    def request(self, image: int, coalition: int | np.ndarray) -> int:
        """Queue one coalition of image ``image``; returns its handle (the same handle for a
        coalition requested before, which is not evaluated again)."""
        if not isinstance(coalition, int):
            coalition = coalition_bits(np.asarray(coalition, bool)[None])[0]
        cache = self._cache[image]
        handle = cache.get(coalition)
        if handle is None:
            handle = self._new_handle()
            cache[coalition] = handle
            self._pending.append((image, handle, coalition))
            self.evaluations[image] += 1
        return handle

    def request_many(self, image: int, keeps: np.ndarray) -> np.ndarray:
        """:meth:`request` for a stack of masks ``(r, h, w)``; returns ``(r,)`` handles."""
        return np.fromiter(
            (self.request(image, b) for b in coalition_bits(keeps)), np.int64, len(keeps)
        )

    def count_new(self, image: int, keeps: np.ndarray) -> int:
        """How many distinct coalitions of ``keeps`` ``(r, h, w)`` were never requested."""
        cache = self._cache[image]
        return sum(1 for b in set(coalition_bits(keeps)) if b not in cache)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def run(self, progress: Callable[[int], Any] | None = None) -> None:
        """Evaluate every queued coalition: one ``backend.predict`` call (or a few, each of at
        most ``max_rows`` masked images), then ``progress(rows evaluated so far)`` after each."""
        pending, self._pending = self._pending, []
        h, w = self.bound.height, self.bound.width
        for start in range(0, len(pending), self.max_rows):
            part = pending[start : start + self.max_rows]
            index, handles, bits = zip(*part)
            keep = coalition_masks(list(bits), h, w)
            out = self.backend.predict(self.bound(np.asarray(index, np.int64), keep))
            self._out[np.asarray(handles, np.int64)] = out
            self.evaluated += len(part)
            if progress is not None:
                progress(self.evaluated)


def to_float32_exact_sums(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """``values`` ``(n, h, w, c, o)`` as float32 whose sums (taken in float64) over ``h, w, c``
    equal ``totals`` ``(n, o)`` up to one float32 rounding of the largest entry: the rounding
    residual of the cast is put on the entry of largest magnitude of each image and output."""
    out = np.ascontiguousarray(values, dtype=np.float32)
    n, o = totals.shape
    flat = out.reshape(n, -1, o)
    where = np.abs(flat).argmax(axis=1)  # (n, o)
    rows, cols = np.arange(n)[:, None], np.arange(o)[None, :]
    for _ in range(2):
        residual = totals - flat.sum(axis=1, dtype=np.float64)
        flat[rows, where, cols] = (flat[rows, where, cols].astype(np.float64) + residual).astype(
            np.float32
        )
    return out
