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


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "keras_jax(job): the test reads a job of the shared Keras-on-JAX interpreter"
    )


@pytest.fixture(scope="session")
def keras_jax_results(request):
    """Every ``keras_jax`` job of the selected tests, in their order, run in one Keras-on-JAX
    interpreter (:func:`tests.keras_apps.run_jobs_on_keras_backend`): name -> result."""
    from tests.keras_apps import KERAS_JAX_JOBS, run_jobs_on_keras_backend

    names = [m.args[0] for item in request.session.items for m in item.iter_markers("keras_jax")]
    jobs = {name: KERAS_JAX_JOBS[name] for name in dict.fromkeys(names)}
    return run_jobs_on_keras_backend(jobs, "jax")


@pytest.fixture
def keras_jax(request):
    """The stdout of this test's ``keras_jax`` job; the test fails with the job's traceback
    when the job raised."""
    pytest.importorskip("jax")
    pytest.importorskip("keras")
    (name,) = [m.args[0] for m in request.node.iter_markers("keras_jax")]
    result = request.getfixturevalue("keras_jax_results")[name]
    assert result["error"] is None, result["error"][-4000:]
    return result["stdout"]
