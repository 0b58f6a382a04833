"""Dataset-level influence and performance maps by entropic variable projection.

Bachoc, Gamboa, Loubes, Risser, "Entropic variable projection for explainability and
interpretability" (2018), as the ``ethik`` library applies it to images: every pixel ``j`` is
a feature. The test set is reweighted with the minimum-KL exponential tilt
``w_i ∝ exp(lambda * x_ij)`` whose weighted mean of pixel ``j`` is a target ``tau`` (see
:mod:`xaiwidgets.explainers._tilt`); the targets "saturate" and "desaturate" the pixel:

    tau+ = mean_j + max(q_{1-alpha, j} - mean_j, 0),    tau- = mean_j - max(mean_j - q_{alpha, j}, 0)

with ``q`` the pixel's quantiles over the test set (``alpha = 0.05`` by default). A pixel whose
quantiles equal its mean (for instance a pixel that never changes) gets 0.

- influence of pixel ``j`` on class ``k``: ``E_{w+}[p_k] - E_{w-}[p_k]`` (the change of the
  mean predicted probability of ``k`` between the two reweighted test sets);
- performance of pixel ``j``: ``metric(y_true, y_pred, sample_weight=w+) -
  metric(y_true, y_pred, sample_weight=w-)`` for any metric taking ``sample_weight``
  (:func:`~xaiwidgets.explainers.performance.performance_maps`).

Only the images and the model's outputs are needed; a model is optional. The pixels are
processed in chunks, so memory is ``O(n * chunk)`` beyond the inputs: no ``n x pixels x
classes`` array is ever built (the influence of a chunk is one ``(chunk, n) @ (n, k)`` product).

RGB images: ``channels="mean"`` (default) makes the feature of a pixel the mean of its
channels and gives one map per class of shape ``(h, w)``; ``channels="separate"`` makes every
channel value a feature and gives maps of shape ``(h, w, c)`` (``(h, w, 1)`` for grey images,
whose ``"mean"`` maps are ``(h, w)`` with the same values).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import as_images, check_class_names, to_numpy
from .._deprecation import renamed_kwargs, warn_renamed
from .._progress import RunControl
from ..backends import wrap
from ._influence_inputs import (
    as_probabilities,
    check_alpha,
    check_channels,
    check_solver,
    choose_classes,
    class_names_of,
    features,
    probabilities_given_as_outputs,
)
from ._influence_result import InfluenceResult, pack_result
from ._tilt import tilt_features
from ._tilt_chunks import is_streamed
from .classification import check_metric
from .performance import performance_maps

# -- public API --------------------------------------------------------------------------


@renamed_kwargs(max_iter="max_iterations")
def influence_maps(
    images: Any,
    probabilities: Any,
    *,
    outputs: Any = None,
    top_k: int | None = None,
    alpha: float = 0.05,
    channels: str = "mean",
    class_names: Any = None,
    max_iterations: int = 30,
    tol: float = 1e-9,
    chunk_size: int | None = None,
    progress: Any = None,
    cancel: Any = None,
    layout: str = "auto",
    batch_size: int | None = None,
    executor: Any = None,
) -> InfluenceResult:
    """Influence of every pixel on every class over a test set (ethik's ``plot_influence``).

    Parameters
    ----------
    images : (n, h, w[, c]) images in any form :func:`~xaiwidgets._arrays.as_images` accepts.
    probabilities : (n, k) predicted probabilities (any per-class scores work), or (n,) integer
        predicted labels (one-hot encoded).
    outputs, top_k : the classes whose maps are computed: ``None`` (default: every class), a
        class index or a list of distinct class indices (maps in that order), ``"topK"`` or
        ``top_k=K`` (the ``K`` classes of highest mean probability over the test set, most
        probable first); a per-image ``(n, o)`` array is refused (see
        :mod:`~xaiwidgets.explainers._influence_inputs`). In memory only the chosen columns of
        ``probabilities`` are reweighted (fewer classes cost less); a streamed run reweights
        every class in its passes and keeps the chosen maps.
    alpha : quantile level of the targets (default 0.05: the 5% and 95% quantiles).
    channels : ``"mean"`` (one feature per pixel, the channel mean; default) or ``"separate"``
        (one feature per channel value).
    class_names : k names for the maps (default ``"0"``, ``"1"``...).
    max_iterations, tol : Newton steps and tolerance of the tilts (see
        :func:`~xaiwidgets.explainers._tilt.solve_tilts`).
    chunk_size : pixels per chunk (default: about 320,000 / n, bounding memory at ~2.5 MB per
        work array).
    progress, cancel : as in :class:`~xaiwidgets._progress.RunControl`.
    layout : the axes of ``images`` (see :func:`~xaiwidgets._arrays.as_images`).
    batch_size, executor : a zarr or dask ``images`` array (``probabilities`` may be one too)
        is streamed in chunks of ``batch_size`` samples (default: about 2 million values, in
        whole chunks of the array's own chunking), in passes whose partial sums add (see
        :mod:`~xaiwidgets.explainers._tilt_stream`): memory does not grow with ``n``.
        ``executor`` (any ``concurrent.futures.Executor``: a process pool, a Dask
        ``Client.get_executor()``) computes the chunks there, NumPy input included, and gives
        the local result bitwise. Streamed maps equal the in-memory ones within 1e-8 (both
        stop within ``tol`` of the same tilts; sums run in another order).

    Returns
    -------
    :class:`InfluenceResult` with ``maps[j] = E_{w+}[p_k] - E_{w-}[p_k]`` of shape ``(o, *F)``
    for the chosen classes ``k = params["outputs"][j]`` (``class_names`` theirs).
    """
    alpha = check_alpha(alpha)
    max_iterations, tol, chunk_size = check_solver(max_iterations, tol, chunk_size)
    RunControl(None, cancel)  # checks cancel before the work
    class_names = check_class_names(class_names)
    if is_streamed(images) or executor is not None:
        from ._influence_stream import streamed_influence

        return streamed_influence(
            images, probabilities, outputs, top_k, alpha, channels, class_names, max_iterations,
            tol, progress, cancel, layout, batch_size, executor,
        )  # fmt: skip
    x, feats, fshape = features(images, channels, layout)
    n = x.shape[0]
    k_hint = None if class_names is None else len(class_names)
    probs = as_probabilities(probabilities, n, k_hint)
    names = class_names_of(class_names, probs.shape[1])
    base = probs.mean(axis=0)
    classes = choose_classes(outputs, top_k, base)
    if len(classes) < probs.shape[1] or (classes != np.arange(len(classes))).any():
        probs, base, names = probs[:, classes], base[classes], [names[j] for j in classes]
    params = {"alpha": alpha, "channels": channels, "max_iterations": max_iterations, "tol": tol}
    params["outputs"] = classes.tolist()
    out = tilt_features(
        feats,
        alpha,
        len(classes),
        lambda w: w @ probs,
        max_iterations=max_iterations,
        tol=tol,
        chunk_size=chunk_size,
        progress=progress,
        cancel=cancel,
        desc="influence",
    )
    return pack_result(out, fshape, x, base, names, "influence", params)


class InfluenceExplainer:
    """Entropic-projection influence and performance maps of a classifier over a test set.

    Parameters
    ----------
    model : optional; any model :func:`~xaiwidgets.backends.wrap` accepts (or a backend). Only
        needed when the predictions are not handed in.
    alpha, channels, max_iterations, tol, chunk_size : see :func:`influence_maps`.
    class_names : names of the classes.
    backend_kwargs : passed to :func:`~xaiwidgets.backends.wrap` (``batch_size``...).

    Example
    -------
    >>> explainer = InfluenceExplainer()                      # doctest: +SKIP
    >>> result = explainer(x_test, probabilities=y_pred)      # (n, k) probabilities
    >>> top3 = InfluenceExplainer(model)(x_test, top_k=3)     # the model predicts
    >>> perf = explainer.performance(x_test, y_true.argmax(1), y_pred.argmax(1), accuracy_score)
    """

    method = "influence"

    @renamed_kwargs(max_iter="max_iterations")
    def __init__(
        self,
        model: Any = None,
        *,
        alpha: float = 0.05,
        channels: str = "mean",
        class_names: Any = None,
        max_iterations: int = 30,
        tol: float = 1e-9,
        chunk_size: int | None = None,
        **backend_kwargs: Any,
    ):
        self.alpha = check_alpha(alpha)
        self.channels = check_channels(channels)
        self.class_names = check_class_names(class_names)
        self.max_iterations, self.tol, self.chunk_size = check_solver(
            max_iterations, tol, chunk_size
        )
        self.backend = None
        if model is not None:
            self.backend = wrap(model, **backend_kwargs)
        elif backend_kwargs:
            raise TypeError(
                f"unexpected keyword arguments without a model: {sorted(backend_kwargs)}"
            )

    @property
    def max_iter(self) -> int:
        """Deprecated spelling of :attr:`max_iterations`."""
        warn_renamed("InfluenceExplainer", "max_iter", "max_iterations")
        return self.max_iterations

    def _kw(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "channels": self.channels,
            "max_iterations": self.max_iterations,
            "tol": self.tol,
            "chunk_size": self.chunk_size,
        }

    def predict_proba(self, images: Any, layout: str = "auto") -> np.ndarray:
        """``(n, k)`` probabilities of the wrapped model."""
        if self.backend is None:
            raise ValueError(
                "no model: pass the predicted probabilities, or give InfluenceExplainer(model)"
            )
        return self.backend.probabilities(as_images(images, layout=layout))

    def __call__(
        self,
        images: Any,
        outputs: Any = None,
        *,
        top_k: int | None = None,
        labels: Any = None,
        probabilities: Any = None,
        progress: Any = None,
        cancel: Any = None,
        layout: str = "auto",
    ) -> InfluenceResult:
        """Influence maps of ``images`` (see :func:`influence_maps`), the calling convention
        of every explainer.

        ``outputs``/``top_k`` choose the classes whose maps are computed, once for the whole
        test set: ``None`` (every class), a class index or a list of them, ``"topK"`` /
        ``top_k=K`` (the ``K`` classes of highest mean probability over the test set); a
        per-image ``(n, o)`` array is refused. ``probabilities`` ``(n, k)`` (or ``(n,)``
        predicted labels) are the predictions to use; default: the model's. ``labels`` (true
        classes) are not used by influence maps, which describe the predictions: a metric
        against the true labels is :meth:`performance` (``labels`` given here raise
        ``ValueError`` saying so). ``progress``/``cancel``/``layout`` as for every explainer.

        The old call ``explainer(images, probabilities)`` (predictions as the second
        positional argument) still works this release, with a ``DeprecationWarning``: an
        array there is read as probabilities when it has no other meaning (no model, a 2-D
        float array, a zarr/dask array, or ``n`` integer labels with a repeat).
        """
        if labels is not None:
            raise ValueError(
                "labels: influence maps describe the predictions and take no true labels; "
                "for a metric against the true labels use explainer.performance(images, "
                "y_true, metric=...)"
            )
        RunControl(None, cancel)  # checks cancel before the model runs
        n = len(images) if hasattr(images, "__len__") else -1
        given = probabilities_given_as_outputs(outputs, n, self.backend is not None)
        if probabilities is None and given:
            warn_renamed(
                "InfluenceExplainer()", "probabilities as the second positional argument",
                "probabilities=",
            )  # fmt: skip
            probabilities, outputs = outputs, None
        # checked before the model runs (against the class names' count when they are given)
        known = None if self.class_names is None else np.zeros(len(self.class_names))
        choose_classes(outputs, top_k, known)
        if probabilities is None:
            probabilities = self.predict_proba(images, layout)
        return influence_maps(
            images, probabilities, outputs=outputs, top_k=top_k, class_names=self.class_names,
            progress=progress, cancel=cancel, layout=layout, **self._kw(),
        )  # fmt: skip

    explain_influence = __call__

    @renamed_kwargs(y_test="y_true")
    def performance(
        self,
        images: Any,
        y_true: Any,
        y_pred: Any = None,
        metric: Callable | None = None,
        *,
        progress: Any = None,
        cancel: Any = None,
        layout: str = "auto",
    ) -> InfluenceResult:
        """Performance map of ``metric`` (see :func:`performance_maps`).

        Without ``y_pred`` the model predicts: its probabilities are handed to the metric, or
        its labels when the metric rejects probabilities (``accuracy_score``).
        """
        if metric is None:
            raise TypeError(
                "performance(): metric is required, e.g. sklearn.metrics.accuracy_score or log_loss"
            )
        metric = check_metric(metric)
        RunControl(None, cancel)  # checks cancel before the model runs
        if y_pred is None:
            probs = self.predict_proba(images, layout)
            try:
                metric(to_numpy(y_true), probs)
                y_pred = probs
            except (TypeError, ValueError):
                y_pred = probs.argmax(axis=1)
        return performance_maps(
            images,
            y_true,
            y_pred,
            metric,
            progress=progress,
            cancel=cancel,
            layout=layout,
            **self._kw(),
        )

    explain_performance = performance
