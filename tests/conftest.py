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


#: where the session keeps its :class:`tests.keras_jobs.KerasJobs`
KERAS_JAX_STASH = pytest.StashKey()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "keras_jax(job): the test reads a job of the shared Keras-on-JAX interpreter"
    )


def pytest_collection_finish(session):
    """Start the ``keras_jax`` jobs of the selected tests, in their order, in one Keras-on-JAX
    interpreter (:class:`tests.keras_jobs.KerasJobs`) as soon as the tests are known: it runs
    beside the tests before them, which then find their jobs done or under way."""
    import importlib.util

    names = [m.args[0] for item in session.items for m in item.iter_markers("keras_jax")]
    if session.config.option.collectonly or not names:
        return
    if all(importlib.util.find_spec(m) for m in ("jax", "keras")):
        from tests.keras_jobs import KERAS_JAX_JOBS, KerasJobs

        jobs = {name: KERAS_JAX_JOBS[name] for name in dict.fromkeys(names)}
        session.config.stash[KERAS_JAX_STASH] = KerasJobs(jobs, "jax")


def pytest_sessionfinish(session):
    jobs = session.config.stash.get(KERAS_JAX_STASH, None)
    if jobs is not None:
        jobs.close()  # stops jobs that no test waited for (an interrupted session)


@pytest.fixture
def keras_jax(request):
    """This test's ``keras_jax`` job's :class:`tests.keras_jobs.JobResult` (waiting for it):
    reading its ``stdout`` fails the test with the job's traceback when the job raised."""
    pytest.importorskip("jax")
    pytest.importorskip("keras")
    (name,) = [m.args[0] for m in request.node.iter_markers("keras_jax")]
    return request.config.stash[KERAS_JAX_STASH].result(name)
