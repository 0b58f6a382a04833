"""`ImagePool`: the images a view lets the user pick from, with the model's predictions.

A pool holds ``(N, h, w, c)`` images, optionally their true labels and class names, and
predicts them lazily (in chunks, only as far as needed). It offers the first correct and the
first wrong predictions for a picker (``offer``), and the next ones a page at a time
(``offer_page``), describes an image for label rows and
tooltips (``info``: index, true label, predicted class and probability, correct or not) and
makes small thumbnails (strided copies) to send to the browser.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_labels, check_class_names, check_int, check_labels_range
from ._image_rows import image_rows

_CHUNK = 256  # images predicted per call while looking for correct / wrong predictions


class ImagePool:
    """Images to pick from, with lazily computed predictions.

    Parameters
    ----------
    backend : a :class:`~xaiwidgets.backends.Backend` (``probabilities`` is used).
    images : ``(N, h, w, c)`` images (any form ``as_images`` accepts), or on disk (a zarr or
        dask array, a :class:`~xaiwidgets.DatasetExplanation`'s images): read by the rows used.
    labels : ``(N,)`` true classes, or ``None``.
    class_names : names of the ``k`` model outputs, or ``None`` (the index is the name).
    layout : the axes of ``images`` (see :func:`~xaiwidgets._arrays.as_images`).
    """

    def __init__(
        self,
        backend: Any,
        images: Any,
        labels: Any = None,
        class_names: Any = None,
        layout: str = "auto",
    ):
        self.backend = backend
        self.images = image_rows(images, layout=layout)
        n = len(self.images)
        self.labels = None if labels is None else as_labels(labels, n=n, name="labels")
        self._predicted: dict[int, tuple[int, float]] = {}
        self._right: list[int] = []  # correct predictions (every image without labels), in order
        self._wrong: list[int] = []
        self._scanned = 0  # images sorted into _right / _wrong so far
        self.n_outputs = self.predict([0])
        if self.labels is not None:
            check_labels_range(self.labels, self.n_outputs)
        class_names = check_class_names(class_names, self.n_outputs)
        self.class_names = class_names

    def __len__(self) -> int:
        return len(self.images)

    def predict(self, indices: Any) -> int:
        """Predict the images ``indices`` not predicted yet; returns the number of outputs."""
        todo = [i for i in np.asarray(indices, dtype=np.int64).tolist() if i not in self._predicted]
        k = getattr(self, "n_outputs", 0)
        if todo:
            probs = self.backend.probabilities(self.images[todo])
            k = probs.shape[1]
            for i, p in zip(todo, probs):
                j = int(p.argmax())
                self._predicted[i] = (j, float(p[j]))
        return k

    def _scan(self, right: int, wrong: int) -> None:
        """Sort images, in pool order and a chunk at a time, into correct and wrong
        predictions until ``right`` correct and ``wrong`` wrong ones are known (or the pool
        ends)."""
        while self._scanned < len(self) and (
            len(self._right) < right or (self.labels is not None and len(self._wrong) < wrong)
        ):
            chunk = range(self._scanned, min(self._scanned + _CHUNK, len(self)))
            self.predict(chunk)
            for i in chunk:
                (self._right if self.correct(i) is not False else self._wrong).append(i)
            self._scanned = chunk.stop

    def offer_page(self, per_group: int, page: int) -> list[int]:
        """Page ``page`` (from 0) of the picker: the ``page``-th ``per_group`` correct and wrong
        predictions in pool order (``2 * per_group`` images without labels); ``[]`` past the
        end."""
        per_group = max(1, int(per_group))
        cap = per_group if self.labels is not None else 2 * per_group
        page = max(0, int(page))
        self._scan((page + 1) * cap, (page + 1) * per_group)
        right = self._right[page * cap : (page + 1) * cap]
        wrong = self._wrong[page * per_group : (page + 1) * per_group]
        return sorted(right + wrong)

    def has_page(self, per_group: int, page: int) -> bool:
        """Whether page ``page`` offers at least one image (predicts only as far as needed)."""
        per_group = max(1, int(per_group))
        cap = per_group if self.labels is not None else 2 * per_group
        page = max(0, int(page))
        self._scan(page * cap + 1, 0)
        if len(self._right) > page * cap:
            return True
        self._scan(0, page * per_group + 1)
        return len(self._wrong) > page * per_group

    def offer(self, per_group: int, indices: Any = None) -> tuple[list[int], list[int]]:
        """The indices a picker offers and the ones selected first.

        With labels: the first ``per_group`` correct and the first ``per_group`` wrong
        predictions; selected first, 2 correct and 2 wrong (4 correct when none is wrong).
        Without labels: the first ``2 * per_group`` images, the first 4 selected. ``indices``
        (checked) replaces the first selection and is always offered."""
        per_group = check_int(per_group, "candidates", 1)
        per_group = max(1, int(per_group))
        cap = per_group if self.labels is not None else 2 * per_group
        self._scan(cap, per_group)
        right, wrong = self._right[:cap], self._wrong[:per_group]
        if indices is not None:
            first = self.check_indices(indices)
        else:
            first = right[:2] + wrong[:2] if wrong else right[:4]
        return sorted(set(right) | set(wrong) | set(first)), first

    def check_indices(self, indices: Any) -> list[int]:
        """``indices`` as a list of ints; ``ValueError`` for none, non-integers or out of range."""
        idx = np.asarray(indices).reshape(-1)
        if idx.size == 0:
            raise ValueError("indices: expected at least one pool index, got none")
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices: expected integer pool indices, got {idx.dtype} values")
        if idx.min() < 0 or idx.max() >= len(self):
            raise ValueError(
                f"indices: expected pool indices in 0..{len(self) - 1}, got {idx.min()}..{idx.max()}"
            )
        return [int(i) for i in idx]

    def name(self, j: int) -> str:
        """Name of class ``j``."""
        return self.class_names[j] if self.class_names is not None else str(j)

    def correct(self, i: int) -> bool | None:
        """Whether image ``i`` is predicted right (``None`` without labels)."""
        if self.labels is None:
            return None
        self.predict([i])
        return bool(self._predicted[i][0] == self.labels[i])

    def info(self, i: int) -> dict[str, Any]:
        """``{index, label, predicted, probability, correct}`` of image ``i`` (names as text)."""
        self.predict([i])
        pred, prob = self._predicted[i]
        return {
            "index": int(i),
            "label": None if self.labels is None else self.name(int(self.labels[i])),
            "predicted": self.name(pred),
            "probability": prob,
            "correct": self.correct(i),
        }

    def thumbnails(self, indices: list[int], side: int = 48) -> np.ndarray:
        """The images ``indices``, strided down to at most about ``side`` pixels a side."""
        h, w = self.images.shape[1:3]
        step = max(1, -(-max(h, w) // side))
        return self.images[np.asarray(indices, dtype=np.int64)][:, ::step, ::step]
