"""What every attribution explainer shares: wrapping the model, choosing the outputs,
progress/cancellation, and packing the result into an :class:`~xaiwidgets.Explanation`.

A subclass sets ``method`` and implements
``_explain(x, outputs, model_outputs, ctl) -> (values (n,h,w,c,o), base_values (n,o))`` or
``-> (values, base_values, call_params)`` or ``-> (values, base_values, call_params,
standard_errors)``: ``call_params`` is a dict of what this one call found (the layer it
resolved, the evaluations it spent, its completeness error...), merged over
:meth:`Explainer.params` into the Explanation's ``params``; ``standard_errors`` (values'
shape) the Monte-Carlo standard error of each value of a sampled estimate, kept as the
Explanation's ``standard_errors``. Nothing of a call is kept on the explainer, so one
explainer may run on several threads at once.

An explainer that runs the model's forward pass itself (Grad-CAM: the layer pass gives the
outputs) overrides :meth:`Explainer._run` instead, choosing the outputs batch by batch with
the :class:`OutputChoice` it is given.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np

from .._arrays import as_images, as_labels, check_class_names, check_int, check_labels_range
from .._progress import RunControl
from ..backends import Backend, output_matrix, wrap
from ..explanation import Explanation
from ._paced import predict_paced

_TOPK = re.compile(r"^top[_-]?(\d+)$")


def top_count(outputs: str, k: int | None, expected: str) -> int:
    """The ``K`` of ``outputs="topK"`` (or ``"top_K"``), between 1 and ``k`` classes (any
    positive ``K`` when ``k`` is None); ``expected`` names the accepted forms in the error."""
    m = _TOPK.match(outputs.strip().lower())
    if m is None:
        raise ValueError(f"outputs: expected {expected}, got {outputs!r}")
    kk = int(m.group(1))
    if kk < 1 or (k is not None and kk > k):
        raise ValueError(f"outputs: top-k must be between 1 and {k} classes, got {kk}")
    return kk


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
        expected = "None, 'topK' (e.g. 'top5'), a list of class indices or an (n, o) array"
        kk = top_count(outputs, k, expected)
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


class CallResult(NamedTuple):
    """What one call computed: ``values`` ``(n, h, w, c, o)``, ``base_values`` ``(n, o)``,
    the model's outputs ``(n, k)``, the explained ``output_indices`` ``(n, o)``, the
    call's own ``params`` (merged over :meth:`Explainer.params`) and, for a sampled
    estimate, the ``standard_errors`` of the values (their shape; else ``None``)."""

    values: np.ndarray
    base_values: np.ndarray
    model_outputs: np.ndarray
    output_indices: np.ndarray
    params: dict[str, Any]
    standard_errors: np.ndarray | None = None


def check_top_k(top_k: Any) -> int:
    """``top_k`` as a positive ``int`` (not a bool, float or string), else ``TypeError`` /
    ``ValueError`` saying so."""
    hint = " (for the 3 most probable classes give top_k=3 or outputs='top3')"
    return check_int(top_k, "top_k", 1, hint=hint)


class OutputChoice:
    """The outputs a call explains, chosen from the model's outputs one batch of images at a
    time (rows are independent: top-k, a class list and the true class are all per row).

    ``choice(rows, model_outputs, probabilities)`` with the ``(m, k)`` outputs and
    probabilities of the images ``rows`` (a slice of the call's images) -> ``(m, o')`` int64
    indices. The first call checks ``class_names`` and ``labels`` against ``k``. With
    ``include_true`` every row gets the extra column (its true class, or its most probable
    class not yet explained): :meth:`finish` drops that column again when no row needed it, so
    the result is that of :func:`select_outputs` and :func:`add_true_outputs` on all rows.
    """

    def __init__(
        self,
        outputs: Any,
        top_k: int | None,
        labels: np.ndarray | None,
        include_true: bool,
        class_names: list[str] | None,
        n: int,
    ):
        if top_k is not None and outputs is not None:
            raise ValueError("give either outputs=... or top_k=..., not both")
        fixed = outputs is not None and not isinstance(outputs, str)
        self.fixed = output_matrix(outputs, n) if fixed else None
        self.outputs, self.top_k = outputs, top_k
        self.labels, self.include_true, self.class_names = labels, include_true, class_names
        self.k: int | None = None
        self.extra_column = False

    def __call__(self, rows: slice, model_outputs: np.ndarray, probs: np.ndarray) -> np.ndarray:
        k = probs.shape[1]
        if self.fixed is not None:
            idx = select_outputs(self.fixed[rows], probs)
        else:
            idx = select_outputs(self.outputs, probs, self.top_k)
        if self.k is None:
            check_class_names(self.class_names, k)
            if self.labels is not None:
                check_labels_range(self.labels, k)
            self.k = k
        if self.include_true and idx.shape[1] < k:
            out = add_true_outputs(idx, probs, self.labels[rows])
            if out.shape[1] == idx.shape[1]:  # every row holds its true class: the next one
                order = np.argsort(-probs, axis=1, kind="stable")
                extra = [next(j for j in o if j not in set(r)) for o, r in zip(order, idx)]
                out = np.concatenate([idx, np.asarray(extra, np.int64)[:, None]], axis=1)
            idx = out
            self.extra_column = True
        return idx

    def finish(self, idx: np.ndarray) -> np.ndarray:
        """``idx`` of every row, without the ``include_true`` column when no row needed it."""
        if self.extra_column and (idx[:, :-1] == self.labels[:, None]).any(axis=1).all():
            return idx[:, :-1]
        return idx


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
    ) -> tuple[np.ndarray, ...]:
        """``(values, base_values)``, ``(values, base_values, call_params)`` or
        ``(values, base_values, call_params, standard_errors)``."""
        raise NotImplementedError

    def _run(self, x: np.ndarray, choice: OutputChoice, ctl: RunControl) -> CallResult:
        """The model's outputs on ``x`` (:func:`._paced.predict_paced`: calls of about half a
        second, a cancel checked before each), the outputs ``choice`` picks from them, then
        :meth:`_explain`."""
        model_outputs = predict_paced(self.backend, x, ctl)
        probs = self.backend.to_probabilities(model_outputs)
        idx = choice.finish(choice(slice(None), model_outputs, probs))
        res = self._explain(x, idx, model_outputs, ctl)
        values, base = res[0], res[1]
        call_params = res[2] if len(res) > 2 else {}
        standard_errors = res[3] if len(res) > 3 else None
        return CallResult(values, base, model_outputs, idx, call_params, standard_errors)

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
            choice = OutputChoice(outputs, top_k, y, include_true, self.class_names, len(x))
            res = self._run(x, choice, ctl)
            ctl.step(1.0)
        return Explanation(
            values=res.values,
            data=x,
            base_values=res.base_values,
            output_indices=res.output_indices,
            class_names=self.class_names,
            predictions=res.model_outputs,
            probabilities=self.backend.to_probabilities(res.model_outputs),
            labels=y,
            method=self.method,
            params={**self.params(), **res.params},
            standard_errors=res.standard_errors,
        )
