"""Inputs of :class:`~xaiwidgets.widgets.ExplainerComparison`: the named explainers, the
explained output of each image, and the row titles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


def named_explainers(explainers: Any) -> dict[str, Any]:
    """A dict name -> explainer from a dict or a list (names from the classes, numbered)."""
    if isinstance(explainers, Mapping):
        items = list(explainers.items())
        for name, _ in items:
            if not isinstance(name, str) or not name:
                raise TypeError(f"explainers: expected non-empty str names, got {name!r}")
    elif isinstance(explainers, (list, tuple)):
        items, seen = [], {}
        for ex in explainers:
            base = type(ex).__name__
            seen[base] = seen.get(base, 0) + 1
            items.append((base if seen[base] == 1 else f"{base} {seen[base]}", ex))
    else:
        raise TypeError(
            "explainers: expected a dict name -> explainer or a list of explainers, got "
            f"{type(explainers).__name__}"
        )
    if not items:
        raise ValueError("explainers: expected at least one explainer, got none")
    for name, ex in items:
        if not callable(ex) or not hasattr(ex, "backend"):
            raise TypeError(
                f"explainers[{name!r}]: expected an xaiwidgets explainer (e.g. GradCAM(model)), "
                f"got {type(ex).__name__}"
            )
    return dict(items)


def outputs_of(outputs: Any, probabilities: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 class per image: ``outputs`` checked against the ``(n, k)`` model
    probabilities, or the predicted class where ``outputs`` is ``None``."""
    n, k = probabilities.shape
    if outputs is None:
        return probabilities.argmax(axis=1).astype(np.int64)
    idx = np.asarray(outputs)
    if idx.shape != (n,) or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(
            f"outputs: expected ({n},) class indices, one per image, got {idx.dtype} {idx.shape}"
        )
    if idx.min() < 0 or idx.max() >= k:
        raise ValueError(f"outputs: class indices must be in 0..{k - 1}")
    return idx.astype(np.int64)


def row_title(i: int, cls: int, probs: np.ndarray, labels: Any, names: Any) -> str:
    """``"7 0.98"`` (the explained class and its probability), with ``"true 7 · "`` before it
    when labels are known and ``" ✗"`` after it when the explained class is not the true one."""

    def name(c: int) -> str:
        return names[c] if names is not None and 0 <= c < len(names) else str(c)

    title = f"{name(int(cls))} {probs[cls]:.2f}"
    if labels is not None:
        truth = int(labels[i])
        title = f"true {name(truth)} · {title}" + ("" if truth == cls else " ✗")
    return title
