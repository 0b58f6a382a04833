"""Influence and performance maps of test sets read in chunks (zarr, dask, or any input on an
executor): the input checks and the result; the passes are in :mod:`._tilt_stream`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .._arrays import as_images, to_numpy
from .._progress import RunControl
from ._influence_inputs import check_channels, choose_classes, class_names_of
from ._influence_result import InfluenceResult, pack_result
from ._tilt_chunks import SampleSource, _read, is_streamed
from ._tilt_stream import resolve_layout, stream_tilt_features
from .classification import metric_name


def _per_sample(arr: Any, n: int, name: str) -> Any:
    """``arr`` as an array of ``n`` rows: zarr/dask kept as they are, anything else NumPy."""
    if arr is None:
        raise TypeError(f"{name}: expected an array with one row per image, got None")
    if not is_streamed(arr):
        arr = to_numpy(arr)
    shape, dtype = tuple(arr.shape), np.dtype(arr.dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric array, got dtype {dtype}")
    if len(shape) not in (1, 2):
        raise ValueError(f"{name}: expected (n,) or (n, k), got shape {shape}")
    if shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (one per image), got {shape[0]}")
    return arr


def _images(images: Any, layout: str) -> tuple[Any, str, int, tuple[int, int, int]]:
    """(images, resolved batch layout, n, (h, w, c)) of a streamed (or NumPy) image array."""
    if not is_streamed(images):
        images = to_numpy(images)
    shape = getattr(images, "shape", None)
    if shape is None or not hasattr(images, "dtype"):
        raise TypeError(
            f"images: expected an array (NumPy, zarr, dask), got {type(images).__name__}"
        )
    layout = resolve_layout(tuple(shape), layout)
    if shape[0] == 0:
        raise ValueError(f"images: got an empty array of shape {tuple(shape)}")
    first = as_images(_read(images, 0, 1), layout=layout)
    return images, layout, int(shape[0]), first.shape[1:]


def _label_count(labels: Any, n: int) -> int:
    top = 0
    for i in range(0, n, 1_000_000):
        part = _read(labels, i, min(i + 1_000_000, n))
        if part.size and part.min() < 0:
            raise ValueError("probabilities: class labels must be >= 0")
        top = max(top, int(part.max()) + 1)
    return top


def _fshape(hwc: tuple[int, int, int], channels: str) -> tuple[int, ...]:
    return hwc[:2] if channels == "mean" else hwc


def streamed_influence(
    images: Any,
    probabilities: Any,
    outputs: Any,
    top_k: int | None,
    alpha: float,
    channels: str,
    class_names: list[str] | None,
    max_iterations: int,
    tol: float,
    progress: Any,
    cancel: Any,
    layout: str,
    batch_size: int | None,
    executor: Any,
) -> InfluenceResult:
    """:func:`~.influence.influence_maps` streamed (arguments checked there, but for the
    arrays and ``outputs``). Every class is reweighted in the passes (the mean probabilities
    that rank ``"topK"`` are known only after them); the chosen maps are kept."""
    check_channels(channels)
    images, layout, n, hwc = _images(images, layout)
    probs = _per_sample(probabilities, n, "probabilities")
    labels = probs.ndim == 1
    if labels:
        if not np.issubdtype(np.dtype(probs.dtype), np.integer):
            raise ValueError(
                "probabilities: a 1-D array must hold integer class labels; "
                "give probabilities as (n, k)"
            )
        k = len(class_names) if class_names is not None else _label_count(probs, n)
    else:
        k = int(probs.shape[1])
    names = class_names_of(class_names, k)
    choose_classes(outputs, top_k, np.zeros(k))  # checked before the passes
    src = SampleSource(images, layout, channels, "influence", k, probabilities=probs, labels=labels)
    out, mean_image, base = stream_tilt_features(
        src, n, alpha, max_iterations=max_iterations, tol=tol, batch_size=batch_size, executor=executor,
        progress=progress, cancel=cancel, desc="influence",
    )  # fmt: skip
    params = {"alpha": alpha, "channels": channels, "max_iterations": max_iterations, "tol": tol}
    classes = choose_classes(outputs, top_k, base)
    params["outputs"] = classes.tolist()
    fshape = _fshape(hwc, channels)
    res = pack_result(
        out, fshape, None, base, names, "influence", params, mean_image=mean_image, n_samples=n
    )
    if len(classes) == k and (classes == np.arange(k)).all():
        return res
    return dataclasses.replace(
        res, maps=res.maps[classes], plus=res.plus[classes], minus=res.minus[classes],
        base=res.base[classes], class_names=[names[j] for j in classes],
    )  # fmt: skip


def streamed_performance(
    images: Any,
    y_true: Any,
    y_pred: Any,
    metric: Callable,
    alpha: float,
    channels: str,
    max_iterations: int,
    tol: float,
    fast: bool,
    progress: Any,
    cancel: Any,
    layout: str,
    batch_size: int | None,
    executor: Any,
) -> InfluenceResult:
    """:func:`~.performance.performance_maps` streamed: the metric must be a weighted mean of
    per-sample scores, computed chunk by chunk."""
    check_channels(channels)
    if not fast:
        raise ValueError(
            "fast=False: a streamed performance map needs the metric's per-sample scores "
            "(fast=True, accuracy_score or log_loss); a general metric needs every sample's "
            "weight at once"
        )
    RunControl(None, cancel)
    images, layout, n, hwc = _images(images, layout)
    yt = _per_sample(y_true, n, "y_true")
    yp = _per_sample(y_pred, n, "y_pred")
    src = SampleSource(
        images, layout, channels, "performance", 1, y_true=yt, y_pred=yp, metric=metric
    )
    out, mean_image, base = stream_tilt_features(
        src, n, alpha, max_iterations=max_iterations, tol=tol, batch_size=batch_size, executor=executor,
        progress=progress, cancel=cancel, desc="performance",
    )  # fmt: skip
    params = {
        "alpha": alpha,
        "channels": channels,
        "max_iterations": max_iterations,
        "tol": tol,
        "per_sample_scores": True,
    }
    name = metric_name(metric)
    fshape = _fshape(hwc, channels)
    return pack_result(
        out, fshape, None, base, [name], "performance", params, metric=name,
        mean_image=mean_image, n_samples=n,
    )  # fmt: skip
