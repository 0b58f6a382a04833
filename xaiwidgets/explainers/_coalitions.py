"""Evaluating the model on coalitions of visible regions: batched over all images, cached per
image, in model calls of bounded size with progress and cancellation between them.

:class:`CoalitionEvaluator` sends the queued coalitions of all images to the model, at most
``max_rows`` masked images per call (:func:`rows_per_call`: the backend's ``batch_size`` and
:data:`WORK_BYTES`), shrinking calls that take longer than :data:`CALL_SECONDS`, and evaluates
each distinct coalition of an image once (cache keyed by the coalition's content).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._regions import coalition_bits, coalition_masks

#: Working memory for the masked images of one model call (and the masker's temporaries):
#: :func:`rows_per_call` sends at most this many bytes of images at once (256 MiB; e.g. 106
#: RGB 224 x 224 images), so memory does not grow with the number of images or the budget.
WORK_BYTES = 256 * 2**20

#: Target duration of one model call of :meth:`CoalitionEvaluator.run` (seconds): slower calls
#: are shrunk towards it, so a cancel is seen within about this long.
CALL_SECONDS = 0.5

#: Fewest masked images a slow call is shrunk to (or ``max_rows`` when smaller). Below it a
#: model's fixed cost per call (a pass over every layer: many small ops, each a thread
#: synchronisation) dominates, and on a loaded CPU it grows so much that shrinking towards
#: :data:`CALL_SECONDS` ran away to one image a call (Partition on torchvision
#: mobilenet_v3_small at 224 x 224, 2-core CPU under load: 94 model calls for 100 evaluations,
#: 3.3x slower than with this bound). Measured there: 0.47 s a call of one image, 0.12 s per
#: image in calls of 8, 0.11 in calls of 32; in another run (best of 3) 100 images took 12.0 s
#: in calls of 8 and 7.2 s in calls of 32. A cancel waits for one call of this many images
#: (estimated 0.8 s for torchvision resnet18 at 224 x 224 on a quiet 2-core CPU).
MIN_CALL_ROWS = 16

#: Bytes a :class:`CoalitionEvaluator` may keep for its cache of evaluated coalitions before a
#: sampler that can afford to forget them calls :meth:`CoalitionEvaluator.forget`.
CACHE_BYTES = 256 * 2**20


def rows_per_call(backend, height: int, width: int, channels: int) -> int:
    """Masked images per model call: at most the backend's rows per forward-only call
    (``forward_rows``: ``batch_size`` when given, else by the memory a forward pass keeps; so a
    cancel is seen within one model batch) and at most :data:`WORK_BYTES` of float32 images
    counted four times (the masked images, the masker's temporaries, the framework's copy)."""
    per_row = 4 * 4 * height * width * channels
    return max(1, min(forward_rows(backend, (height, width, channels)), WORK_BYTES // per_row))


def forward_rows(backend: Any, image_shape: tuple[int, ...]) -> int:
    """The backend's rows per forward-only call for ``image_shape`` (``batch_size`` for a
    backend without ``forward_rows``)."""
    rows = getattr(backend, "forward_rows", None)
    return int(rows(tuple(image_shape))) if callable(rows) else int(backend.batch_size)


class CoalitionEvaluator:
    """Model outputs on coalitions, batched over all images and cached per image.

    A coalition is a Python int over the ``h * w`` pixels (bit set = pixel visible, see
    :func:`coalition_bits`) or an ``(h, w)`` bool mask; with ``labels`` (an ``(h, w)`` map of
    region indices) it is an int over the regions instead (bit ``r`` set = region ``r``
    visible), which keeps keys small on large images. It is cached by content, so a coalition
    requested twice for an image is evaluated once (until :meth:`forget`).

    Parameters
    ----------
    backend : the wrapped model (``predict(x) -> (n, k)``).
    bound : a bound masker (:meth:`xaiwidgets.maskers.Masker.bind`) for the images.
    model_outputs : ``(n, k)`` outputs on the unmasked images (seeded in the cache, so the full
        coalition costs nothing and efficiency holds against exactly these outputs).
    max_rows : largest number of masked images materialised and sent at once (see
        :func:`rows_per_call`).
    labels : ``(h, w)`` int region map, or ``None`` for pixel coalitions.
    keys : coalitions given as other hashable keys, e.g.
        :class:`~._regions.TreeCoalitions` (``keys.full`` is the whole image, ``keys.masks(list)
        -> (r, h, w)`` makes the masks).

    Use :meth:`request` / :meth:`request_many` to queue coalitions (they return handles),
    :meth:`run` to evaluate the queued ones, then ``evaluator.outputs[handle]`` (``(k,)``).
    A NaN or infinite model output raises
    :class:`~xaiwidgets.backends.base.NonFiniteOutputError` naming the images whose masked
    versions gave it.
    """

    def __init__(
        self,
        backend,
        bound,
        model_outputs: np.ndarray,
        max_rows: int = 8192,
        labels: np.ndarray | None = None,
        keys: Any = None,
    ):
        self.backend = backend
        self.bound = bound
        n, k = model_outputs.shape
        self.n = n
        self.labels = None if labels is None else np.asarray(labels, np.int64)
        units = bound.height * bound.width if labels is None else int(self.labels.max()) + 1
        self.units = units
        self.keys = keys
        self.full = (1 << units) - 1 if keys is None else keys.full
        self.evaluations = np.zeros(n, np.int64)  # distinct coalitions requested, per image
        self.evaluated = 0  # masked images sent to the model so far
        self.max_rows = int(max_rows)
        self._rows = self.max_rows  # rows of the next model call (see run)
        self._out = np.zeros((max(64, 4 * n), k), np.float64)
        self._cache: list[dict[int, int]] = [{} for _ in range(n)]
        self._size = 0
        self._pending: list[tuple[int, int, int]] = []
        for i in range(n):
            handle = self._new_handle()
            self._out[handle] = model_outputs[i]
            self._cache[i][self.full] = handle
            self.evaluations[i] += 1
        self._pinned = self._size

    def pin(self) -> None:
        """Keep every coalition evaluated so far through later :meth:`forget` calls."""
        if self._pending:
            raise RuntimeError("pin() with coalitions still queued")
        self._pinned = self._size

    def forget(self) -> None:
        """Drop every cached coalition but the unmasked images and the pinned ones (whose
        handles stay valid): bounds the memory of a long sampling run. Nothing may be pending."""
        if self._pending:
            raise RuntimeError("forget() with coalitions still queued")
        keep = self._pinned
        self._cache = [{b: hd for b, hd in cache.items() if hd < keep} for cache in self._cache]
        self._size = keep
        if len(self._out) > max(64, 2 * keep):
            self._out = self._out[: max(64, 2 * keep)].copy()

    @property
    def cached_bytes(self) -> int:
        """About how much memory the cache holds (outputs, keys, dictionary entries)."""
        return self._size * (self._out.shape[1] * 8 + self.units // 8 + 120)

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
        if isinstance(coalition, np.ndarray):
            coalition = coalition_bits(np.asarray(coalition, bool)[None])[0]
        cache = self._cache[image]
        handle = cache.get(coalition)
        if handle is None:
            handle = self._new_handle()
            cache[coalition] = handle
            self._pending.append((image, handle, coalition))
            self.evaluations[image] += 1
        return handle

    def request_many(self, image: int, keeps: np.ndarray | list[int]) -> np.ndarray:
        """:meth:`request` for a stack of masks ``(r, h, w)`` (or a list of coalition ints);
        returns ``(r,)`` handles."""
        bits = keeps if isinstance(keeps, list) else coalition_bits(keeps)
        return np.fromiter((self.request(image, b) for b in bits), np.int64, len(bits))

    def count_new(self, image: int, keeps: np.ndarray | list[int]) -> int:
        """How many distinct coalitions of ``keeps`` (masks or ints) were never requested."""
        cache = self._cache[image]
        bits = keeps if isinstance(keeps, list) else coalition_bits(keeps)
        return sum(1 for b in set(bits) if b not in cache)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _masks(self, bits: list) -> np.ndarray:
        if self.keys is not None:
            return self.keys.masks(bits)
        if self.labels is None:
            return coalition_masks(bits, self.bound.height, self.bound.width)
        regions = coalition_masks(bits, 1, self.units)[:, 0]  # (r, K) bool
        return regions[:, self.labels]

    def _model_call(self) -> tuple[Callable, Callable[[np.ndarray], np.ndarray]]:
        """``mask(index, keep) -> images`` and the model call ``predict(images) -> (r, k)``
        that takes them: the images in the model's own layout where the backend takes them so
        (:class:`~xaiwidgets.backends.protocol.InputLayout`; torch: NCHW, no transposed copy of
        every masked image) and the masker can build them so, else NHWC and ``predict``."""
        bound, backend = self.bound, self.backend
        layout = getattr(backend, "input_layout", None)
        predict = getattr(backend, "predict_in_layout", None)
        if layout in ("nhwc", "nchw") and predict is not None and hasattr(bound, "in_layout"):
            return (lambda index, keep: bound.in_layout(index, keep, layout)), predict
        return bound, backend.predict

    def run(self, progress: Callable[[int], Any] | None = None) -> None:
        """Evaluate every queued coalition, at most ``max_rows`` masked images per model call,
        then ``progress(rows evaluated so far)`` after each call (where a cancel is seen).

        A call that takes longer than :data:`CALL_SECONDS` shrinks the next ones to about that
        long, but not below :data:`MIN_CALL_ROWS` images (a slow model, e.g. a ResNet at 224 x
        224 on a CPU, then sees a cancel within about half a second after its first call);
        fast calls grow back to ``max_rows``. A ``batch_size`` the user gave is kept
        (:func:`~._paced.paced`)."""
        import time

        from ..backends.base import NonFiniteOutputError, rows_text
        from ._paced import paced

        mask, predict = self._model_call()
        pending, self._pending = self._pending, []
        start = 0
        while start < len(pending):
            part = pending[start : start + self._rows]
            start += len(part)
            index, handles, bits = zip(*part)
            index = np.asarray(index, np.int64)
            masked = mask(index, self._masks(list(bits)))
            began = time.perf_counter()
            try:
                out = predict(masked)
            except NonFiniteOutputError as exc:
                images = np.unique(index[exc.rows])
                raise NonFiniteOutputError(
                    f"the model's outputs are NaN or infinite on masked versions of image(s) "
                    f"{rows_text(images)} (the images with part of them hidden by the "
                    "masker): every attribution would be NaN. Check the model on such inputs",
                    images,
                ) from exc
            took = time.perf_counter() - began
            del masked
            self._out[np.asarray(handles, np.int64)] = out
            self.evaluated += len(part)
            if not paced(self.backend):
                pass
            elif took > CALL_SECONDS and len(part) > 1:
                least = min(MIN_CALL_ROWS, self.max_rows)
                self._rows = max(least, int(len(part) * CALL_SECONDS / took))
            elif took < CALL_SECONDS / 4 and len(part) == self._rows:
                self._rows = min(self.max_rows, 2 * self._rows)
            if progress is not None:
                progress(self.evaluated)
