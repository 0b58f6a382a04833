"""What every attribution explainer shares: wrapping the model, choosing the outputs,
progress/cancellation, and packing the result into an :class:`~xaiwidgets.Explanation`.

A subclass sets ``method`` and implements
``_explain(x, outputs, model_outputs, ctl) -> (values (n,h,w,c,o), base_values (n,o))``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .._arrays import as_images, as_labels, check_class_names, check_int, check_labels_range
from .._progress import RunControl
from ..backends import Backend, output_matrix, wrap
from ..explanation import Explanation

_TOPK = re.compile(r"^top[_-]?(\d+)$")


def select_outputs(outputs: Any, probabilities: np.ndarray, top_k: int | None = None) -> np.ndarray:
    """Which outputs to explain, per image, as an ``(n, o)`` int64 matrix.

    ``outputs`` may be ``None`` (every class, in class order), ``"top5"`` / ``"top_5"`` or an
    int ``k`` given as ``top_k`` (the ``k`` most probable classes of each image, most probable
    first, as ``shap``'s ``outputs=argsort.flip[:k]``), a list of class indices (the same for
    every image), or an ``(n, o)`` array (per image).
    """
    n, k = probabilities.shape
    if top_k is not None:
        if outputs is not None:
            raise ValueError("give either outputs=... or top_k=..., not both")
        outputs = f"top{check_top_k(top_k)}"
    if outputs is None:
        return np.tile(np.arange(k, dtype=np.int64), (n, 1))
    if isinstance(outputs, str):
        m = _TOPK.match(outputs.strip().lower())
        if m is None:
            raise ValueError(
                f"outputs: expected None, 'topK' (e.g. 'top5'), a list of class "
                f"indices or an (n, o) array, got {outputs!r}"
            )
        kk = int(m.group(1))
        if not 1 <= kk <= k:
            raise ValueError(f"outputs: top-k must be between 1 and {k} classes, got {kk}")
        return np.argsort(-probabilities, axis=1, kind="stable")[:, :kk].astype(np.int64)
    idx = output_matrix(outputs, n)
    if idx.min() < 0 or idx.max() >= k:
        raise ValueError(
            f"outputs: class indices must be in 0..{k - 1}, got {idx.min()}..{idx.max()}"
        )
    return idx


def add_true_outputs(idx: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``idx`` ``(n, o)`` with one extra last column where a row misses its true class.

    Each row that does not explain its true class ``labels[i]`` explains it in an extra last
    column; the other rows fill that column with their most probable class not already in the
    row (so a top-k row stays in decreasing probability: top-k, then the true class or the
    (k+1)-th). When every row already holds its true class (or holds every class), ``idx`` is
    returned unchanged. Returns an ``(n, o)`` or ``(n, o + 1)`` int64 matrix.
    """
    n, k = probabilities.shape
    labels = np.asarray(labels, np.int64)
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(
            f"labels: include_true needs class indices in 0..{k - 1}, "
            f"got {labels.min()}..{labels.max()}"
        )
    has_true = (idx == labels[:, None]).any(axis=1)
    if has_true.all() or idx.shape[1] >= k:
        return idx
    extra = labels.copy()
    order = np.argsort(-probabilities, axis=1, kind="stable")
    for i in np.flatnonzero(has_true):
        taken = set(idx[i].tolist())
        extra[i] = next((j for j in order[i].tolist() if j not in taken), labels[i])
    return np.concatenate([idx, extra[:, None]], axis=1)


def check_top_k(top_k: Any) -> int:
    """``top_k`` as a positive ``int`` (not a bool, float or string), else ``TypeError`` /
    ``ValueError`` saying so."""
    hint = " (for the 3 most probable classes give top_k=3 or outputs='top3')"
    return check_int(top_k, "top_k", 1, hint=hint)


class Explainer:
    """Base class of the attribution explainers.

    Parameters
    ----------
    model : any model :func:`~xaiwidgets.backends.wrap` accepts, or a backend.
    class_names : sequence of str, optional
        Names of the model's outputs, for label rows.
    backend_kwargs : passed to :func:`~xaiwidgets.backends.wrap` (``batch_size``, ...).
    """

    method = "explainer"

    def __init__(self, model: Any, *, class_names: Any = None, **backend_kwargs: Any):
        self.backend: Backend = wrap(model, **backend_kwargs)
        self.class_names = check_class_names(class_names)

    def params(self) -> dict[str, Any]:
        """The parameters recorded in the Explanation (JSON-serialisable)."""
        return {}

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(
        self,
        images: Any,
        outputs: Any = None,
        *,
        top_k: int | None = None,
        labels: Any = None,
        include_true: bool = False,
        progress: Any = None,
        cancel: Any = None,
        layout: str = "auto",
    ) -> Explanation:
        """Explain ``images`` (any accepted form, see :func:`xaiwidgets._arrays.as_images`).

        ``outputs``/``top_k`` choose the outputs (see :func:`select_outputs`); ``labels`` (true
        classes, labels or one-hot) are kept for the label rows; ``include_true=True`` (needs
        ``labels``) also explains the true class of each row whose chosen outputs miss it, in
        an extra last column (see :func:`add_true_outputs`); ``progress``/``cancel`` as in
        :class:`xaiwidgets._progress.RunControl`; ``layout`` names the axes of ``images``
        (``"nchw"``, ``"nhwc"``..., see :func:`~xaiwidgets._arrays.as_images`).

        Every argument is checked before the explainer's work starts (one model pass gives
        the number of classes that ``class_names``, ``labels`` and ``outputs`` are checked
        against).
        """
        if top_k is not None:
            check_top_k(top_k)
        if include_true and labels is None:
            raise ValueError("include_true=True needs labels=... (the true classes)")
        with RunControl(progress, cancel, desc=self.method) as ctl:
            x = as_images(images, layout=layout)
            y = None if labels is None else as_labels(labels, n=len(x), name="labels")
            model_outputs = self.backend.predict(x)
            probs = self.backend.to_probabilities(model_outputs)
            k = probs.shape[1]
            idx = select_outputs(outputs, probs, top_k)
            check_class_names(self.class_names, k)
            if y is not None:
                check_labels_range(y, k)
            if include_true:
                idx = add_true_outputs(idx, probs, y)
            values, base = self._explain(x, idx, model_outputs, ctl)
            ctl.step(1.0)
        return Explanation(
            values=values,
            data=x,
            base_values=base,
            output_indices=idx,
            class_names=self.class_names,
            predictions=model_outputs,
            probabilities=probs,
            labels=y,
            method=self.method,
            params=self.params(),
        )
