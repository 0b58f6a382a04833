"""The arguments of influence and performance maps (:mod:`xaiwidgets.explainers.influence`),
checked before the work: images to the feature matrix, probabilities, targets, the solver's
settings, and the classes that ``outputs`` / ``top_k`` choose.

Influence maps describe a whole test set, one map per class, so ``outputs`` chooses classes
for every image at once: ``None`` (every class, in class order), a class index or a list of
distinct class indices (in that order), ``"topK"`` / ``top_k=K`` (the ``K`` classes of highest
mean predicted probability over the test set, most probable first). A per-image ``(n, o)``
matrix, which the per-image explainers take, has no meaning here and is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_images, check_class_names, check_int, check_number, to_numpy
from ._tilt_chunks import image_features, is_streamed
from .base import top_count

CHANNELS = ("mean", "separate")


def features(
    images: Any, channels: str, layout: str = "auto"
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Images -> (float32 NHWC images, (n, p) feature matrix, feature shape)."""
    check_channels(channels)
    x = as_images(images, layout=layout)
    n, h, w, c = x.shape
    return x, image_features(x, channels), ((h, w) if channels == "mean" else (h, w, c))


def check_channels(channels: Any) -> str:
    if channels not in CHANNELS:
        raise ValueError(f"channels: expected 'mean' or 'separate', got {channels!r}")
    return channels


def check_alpha(alpha: float) -> float:
    alpha = check_number(alpha, "alpha")
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha: expected a number in [0, 0.5), got {alpha}")
    return alpha


def check_solver(max_iterations: Any, tol: Any, chunk_size: Any) -> tuple[int, float, int | None]:
    """``max_iterations`` a positive int, ``tol`` a positive finite number, ``chunk_size`` ``None``
    or a positive int; else ``TypeError`` / ``ValueError``."""
    max_iterations = check_int(max_iterations, "max_iterations", 1)
    tol = check_number(tol, "tol", low=0.0, low_open=True)
    chunk_size = None if chunk_size is None else check_int(chunk_size, "chunk_size", 1)
    return max_iterations, tol, chunk_size


def as_probabilities(probabilities: Any, n: int, k: int | None = None) -> np.ndarray:
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


def class_names_of(class_names: Any, k: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    return check_class_names(class_names, k)


def as_targets(y: Any, n: int, name: str) -> np.ndarray:
    arr = to_numpy(y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name}: expected labels (n,) or rows (n, k), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries (one per image), got {arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


# -- which classes ---------------------------------------------------------------------------


def choose_classes(
    outputs: Any, top_k: Any, mean_probabilities: np.ndarray | None
) -> np.ndarray | None:
    """The class indices ``(o,)`` int64 whose maps are computed, in map order (see the module
    docstring); ``mean_probabilities`` ``(k,)`` rank the classes for ``"topK"`` / ``top_k``
    (``None``: the number of classes is not known yet; only the form of ``outputs`` is
    checked, and ``None`` returned). ``TypeError`` / ``ValueError`` naming ``outputs`` (or
    ``top_k``) for anything else."""
    k = None if mean_probabilities is None else len(mean_probabilities)
    if top_k is not None:
        if outputs is not None:
            raise ValueError("give either outputs=... or top_k=..., not both")
        hint = " (for the 3 most probable classes give top_k=3 or outputs='top3')"
        outputs = f"top{check_int(top_k, 'top_k', 1, hint=hint)}"
    if outputs is None:
        return None if k is None else np.arange(k, dtype=np.int64)
    if isinstance(outputs, str):
        expected = "None, 'topK' (e.g. 'top5'), a class index or a list of class indices"
        kk = top_count(outputs, k, expected)
        if k is None:
            return None
        return np.argsort(-mean_probabilities, kind="stable")[:kk].astype(np.int64)
    if isinstance(outputs, (bool, np.bool_)):
        raise TypeError("outputs: expected a class index or a list of them, got a bool")
    arr = to_numpy(outputs)
    if arr.ndim > 1:
        raise ValueError(
            f"outputs: influence maps are one per class over the whole test set; give a list "
            f"of class indices, 'topK' or top_k=K, not a per-image array of shape {arr.shape} "
            "(precomputed probabilities go to probabilities=...)"
        )
    arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError("outputs: expected at least one class index, got none")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"outputs: expected integer class indices, got dtype {arr.dtype}")
    if arr.min() < 0 or (k is not None and arr.max() >= k):
        top = "" if k is None else f"..{k - 1}"
        raise ValueError(f"outputs: class indices must be in 0{top}, got {arr.min()}..{arr.max()}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"outputs: expected distinct class indices, got {arr.tolist()}")
    return None if k is None else arr.astype(np.int64)


def probabilities_given_as_outputs(outputs: Any, n: int, has_model: bool) -> bool:
    """Whether ``explainer(images, outputs)`` is the old call ``explainer(images,
    probabilities)``: ``outputs`` is a zarr/dask array, a 2-D floating array (scores, not class
    indices), any array when there is no model (nothing else could give probabilities), or an
    integer array of ``n`` predicted labels with a repeat (a class list has none)."""
    if outputs is None or isinstance(outputs, (str, int, np.integer)):
        return False
    if is_streamed(outputs):
        return True
    arr = to_numpy(outputs) if hasattr(outputs, "shape") else np.asarray(outputs)
    if arr.ndim == 0 or arr.dtype == object:
        return False
    if not has_model:
        return True
    if arr.ndim == 2:
        return bool(np.issubdtype(arr.dtype, np.floating))
    return (
        arr.ndim == 1
        and np.issubdtype(arr.dtype, np.integer)
        and len(arr) == n
        and len(np.unique(arr)) < n
    )
