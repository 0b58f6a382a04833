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
  metric(y_true, y_pred, sample_weight=w-)`` for any metric taking ``sample_weight``.

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

from .._arrays import as_images, check_class_names, check_int, check_number, to_numpy
from .._deprecation import renamed_kwargs, warn_renamed
from .._progress import RunControl
from ..backends import wrap
from ._influence_result import InfluenceResult, pack_result
from ._tilt import tilt_features
from ._tilt_chunks import image_features, is_streamed
from .classification import check_metric, metric_name, per_sample_scores

_CHANNELS = ("mean", "separate")


# -- shared machinery --------------------------------------------------------------------


def _features(
    images: Any, channels: str, layout: str = "auto"
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Images -> (float32 NHWC images, (n, p) feature matrix, feature shape)."""
    if channels not in _CHANNELS:
        raise ValueError(f"channels: expected 'mean' or 'separate', got {channels!r}")
    x = as_images(images, layout=layout)
    n, h, w, c = x.shape
    return x, image_features(x, channels), ((h, w) if channels == "mean" else (h, w, c))


def _check_alpha(alpha: float) -> float:
    alpha = check_number(alpha, "alpha")
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha: expected a number in [0, 0.5), got {alpha}")
    return alpha


def _check_solver(max_iterations: Any, tol: Any, chunk_size: Any) -> tuple[int, float, int | None]:
    """``max_iterations`` a positive int, ``tol`` a positive finite number, ``chunk_size`` ``None``
    or a positive int; else ``TypeError`` / ``ValueError``."""
    max_iterations = check_int(max_iterations, "max_iterations", 1)
    tol = check_number(tol, "tol", low=0.0, low_open=True)
    chunk_size = None if chunk_size is None else check_int(chunk_size, "chunk_size", 1)
    return max_iterations, tol, chunk_size


def _as_outputs(probabilities: Any, n: int, k: int | None = None) -> np.ndarray:
    """(n, k) float64 outputs from probabilities/scores (n, k) or integer labels (n,)."""
    arr = to_numpy(probabilities)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"probabilities: expected a numeric (n, k) array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                "probabilities: a 1-D array must hold integer class labels; "
                "give probabilities as (n, k)"
            )
        if arr.size and arr.min() < 0:
            raise ValueError("probabilities: class labels must be >= 0")
        k = int(arr.max()) + 1 if k is None else k
        arr = np.eye(k)[arr]
    if arr.ndim != 2:
        raise ValueError(
            f"probabilities: expected (n, k) class probabilities, got shape {arr.shape}"
        )
    if arr.shape[0] != n:
        raise ValueError(f"probabilities: expected {n} rows (one per image), got {arr.shape[0]}")
    out = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError("probabilities: contains NaN or infinite values")
    return out


def _names(class_names: Any, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    return check_class_names(class_names, k)


def _as_targets(y: Any, n: int, name: str) -> np.ndarray:
    arr = to_numpy(y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name}: expected labels (n,) or rows (n, k), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per image), got {arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


# -- public API --------------------------------------------------------------------------


@renamed_kwargs(max_iter="max_iterations")
def influence_maps(
    images: Any,
    probabilities: Any,
    *,
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
    :class:`InfluenceResult` with ``maps[k] = E_{w+}[p_k] - E_{w-}[p_k]`` of shape ``(k, *F)``.
    """
    alpha = _check_alpha(alpha)
    max_iterations, tol, chunk_size = _check_solver(max_iterations, tol, chunk_size)
    RunControl(None, cancel)  # checks cancel before the work
    class_names = check_class_names(class_names)
    if is_streamed(images) or executor is not None:
        from ._influence_stream import streamed_influence

        return streamed_influence(
            images, probabilities, alpha, channels, class_names, max_iterations, tol,
            progress, cancel, layout, batch_size, executor,
        )  # fmt: skip
    x, feats, fshape = _features(images, channels, layout)
    n = x.shape[0]
    k_hint = None if class_names is None else len(class_names)
    probs = _as_outputs(probabilities, n, k_hint)
    k = probs.shape[1]
    names = _names(class_names, k)
    params = {"alpha": alpha, "channels": channels, "max_iterations": max_iterations, "tol": tol}
    out = tilt_features(
        feats,
        alpha,
        k,
        lambda w: w @ probs,
        max_iterations=max_iterations,
        tol=tol,
        chunk_size=chunk_size,
        progress=progress,
        cancel=cancel,
        desc="influence",
    )
    return pack_result(out, fshape, x, probs.mean(axis=0), names, "influence", params)


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
    alpha = _check_alpha(alpha)
    max_iterations, tol, chunk_size = _check_solver(max_iterations, tol, chunk_size)
    RunControl(None, cancel)  # checks cancel before the work
    if is_streamed(images) or executor is not None:
        from ._influence_stream import streamed_performance

        return streamed_performance(
            images, y_true, y_pred, metric, alpha, channels, max_iterations, tol, fast,
            progress, cancel, layout, batch_size, executor,
        )  # fmt: skip
    x, feats, fshape = _features(images, channels, layout)
    n = x.shape[0]
    yt = _as_targets(y_true, n, "y_true")
    yp = _as_targets(y_pred, n, "y_pred")
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
    >>> result = explainer(x_test, y_pred)                    # (n, k) probabilities
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
        self.alpha = _check_alpha(alpha)
        if channels not in _CHANNELS:
            raise ValueError(f"channels: expected 'mean' or 'separate', got {channels!r}")
        self.channels = channels
        self.class_names = check_class_names(class_names)
        self.max_iterations, self.tol, self.chunk_size = _check_solver(
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
        probabilities: Any = None,
        *,
        progress: Any = None,
        cancel: Any = None,
        layout: str = "auto",
    ) -> InfluenceResult:
        """Influence maps (see :func:`influence_maps`); ``probabilities`` default to the
        model's."""
        RunControl(None, cancel)  # checks cancel before the model runs
        if probabilities is None:
            probabilities = self.predict_proba(images, layout)
        return influence_maps(
            images,
            probabilities,
            class_names=self.class_names,
            progress=progress,
            cancel=cancel,
            layout=layout,
            **self._kw(),
        )

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
