"""Shared fixtures. Matplotlib draws off screen in every test."""

import os

import matplotlib
import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
matplotlib.use("Agg")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def small_explanation(rng):
    """3 grey 6x5 images, 4 classes, all explained, with probabilities and names."""
    from xaiwidgets import Explanation

    n, h, w, c, k = 3, 6, 5, 1, 4
    logits = rng.normal(size=(n, k)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return Explanation(
        values=rng.normal(size=(n, h, w, c, k)),
        data=rng.random((n, h, w, c)),
        base_values=rng.normal(size=(n, k)),
        class_names=["zero", "one", "two", "three"],
        predictions=logits,
        probabilities=probs,
        labels=[0, 1, 2],
        method="test",
        params={"alpha": 0.5, "name": "x"},
    )
