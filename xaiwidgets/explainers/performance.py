"""Performance maps: the change of a metric when each pixel of a test set is saturated
(ethik's ``plot_performance``), by the entropic tilts of :mod:`xaiwidgets.explainers.influence`.

For pixel ``j`` with the tilted weights ``w+`` (its mean pulled up to ``tau+``) and ``w-``
(down to ``tau-``), the map holds ``metric(y_true, y_pred, sample_weight=w+) -
metric(y_true, y_pred, sample_weight=w-)``: how the metric moves when the pixel is lit rather
than dark. Any metric taking ``sample_weight`` works; a metric that is a weighted mean of
per-sample scores (``accuracy_score``, ``log_loss``) is one ``(chunk, n) @ (n,)`` product per
chunk of pixels instead of ``2 * pixels`` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._deprecation import renamed_kwargs
from .._progress import RunControl
from ._influence_inputs import as_targets, check_alpha, check_solver, features
from ._influence_result import InfluenceResult, pack_result
from ._tilt import tilt_features
from ._tilt_chunks import is_streamed
from .classification import check_metric, metric_name, per_sample_scores


@renamed_kwargs(max_iter="max_iterations", y_test="y_true")
def performance_maps(
    images: Any,
    y_true: Any,
    y_pred: Any,
    metric: Callable,
    *,
    alpha: float = 0.05,
    channels: str = "mean",
    max_iterations: int = 30,
    tol: float = 1e-9,
    chunk_size: int | None = None,
    fast: bool = True,
    progress: Any = None,
    cancel: Any = None,
    layout: str = "auto",
    batch_size: int | None = None,
    executor: Any = None,
) -> InfluenceResult:
    """Change of a metric when each pixel is saturated (ethik's ``plot_performance``).

    ``metric(y_true, y_pred, sample_weight=w)`` is evaluated under the two tilts of every pixel;
    ``y_true`` and ``y_pred`` go to the metric as given, so they take whatever form it wants:
    labels for ``sklearn.metrics.accuracy_score``, one-hot (or labels) and probabilities for
    ``log_loss``. A metric without ``sample_weight`` raises ``TypeError``.

    A general metric is called ``2 * pixels`` times (1,568 for MNIST), which dominates the
    cost. With ``fast=True`` (default) sklearn's ``accuracy_score`` and ``log_loss`` are
    recognised as weighted means of per-sample scores and computed as one matrix product per
    chunk, after checking on the data that the two agree (else the metric is called).

    Returns
    -------
    :class:`InfluenceResult` with ``kind="performance"``, one map ``(1, *F)`` =
    ``metric(w+) - metric(w-)``, ``base`` the unweighted metric and ``class_names`` /
    ``metric`` its name. Other parameters as in :func:`influence_maps`; streamed (zarr,
    dask or ``executor``) runs need a metric with per-sample scores (``fast``).
    """
    metric = check_metric(metric)
    alpha = check_alpha(alpha)
    max_iterations, tol, chunk_size = check_solver(max_iterations, tol, chunk_size)
    RunControl(None, cancel)  # checks cancel before the work
    if is_streamed(images) or executor is not None:
        from ._influence_stream import streamed_performance

        return streamed_performance(
            images, y_true, y_pred, metric, alpha, channels, max_iterations, tol, fast,
            progress, cancel, layout, batch_size, executor,
        )  # fmt: skip
    x, feats, fshape = features(images, channels, layout)
    n = x.shape[0]
    yt = as_targets(y_true, n, "y_true")
    yp = as_targets(y_pred, n, "y_pred")
    try:
        base = float(metric(yt, yp))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"metric: {metric_name(metric)}(y_true, y_pred) failed on the unweighted "
            f"test set ({exc}); check that y_true / y_pred have the form it expects "
            "(labels for accuracy_score, probabilities for log_loss)"
        ) from exc

    scores = per_sample_scores(metric, yt, yp) if fast else None

    def reduce(w: np.ndarray) -> np.ndarray:
        if scores is not None:  # a weighted mean of per-sample scores: one product
            return (w @ scores)[:, None]
        return np.array([[metric(yt, yp, sample_weight=row)] for row in w], dtype=np.float64)

    params = {"alpha": alpha, "channels": channels, "max_iterations": max_iterations, "tol": tol}
    out = tilt_features(
        feats,
        alpha,
        1,
        reduce,
        max_iterations=max_iterations,
        tol=tol,
        chunk_size=chunk_size,
        progress=progress,
        cancel=cancel,
        desc="performance",
    )
    params["per_sample_scores"] = scores is not None
    name = metric_name(metric)
    return pack_result(out, fshape, x, np.array([base]), [name], "performance", params, metric=name)
