"""explain_dataset on an executor: a ProcessPoolExecutor and a dask LocalCluster (2 worker
processes) write stores identical to the local run's; the torch model travels as a state dict
with its class, a NumPy callable by the documented pickle fallback."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

pytest.importorskip("zarr")
torch = pytest.importorskip("torch")

from tests.dataset_explanation.models import TinyNet, linear_backend  # noqa: E402
from xaiwidgets import DatasetExplanation, IntegratedGradients, Saliency, explain_dataset  # noqa: E402
from xaiwidgets._progress import Cancelled  # noqa: E402

N, BS = 60, 12


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.normal(size=(N, 8, 8, 1)).astype(np.float32), rng.integers(0, 10, N)


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        yield ex


def _torch_explainer():
    torch.manual_seed(0)
    return IntegratedGradients(TinyNet().eval(), steps=8, tolerance=1.0)


def _same(a: DatasetExplanation, b: DatasetExplanation) -> None:
    names = sorted(a.group.keys())
    assert names == sorted(b.group.keys())
    for name in names:
        np.testing.assert_array_equal(a.group[name][:], b.group[name][:], err_msg=name)


def test_process_pool_and_dask_give_the_local_store(tmp_path, data, pool):
    distributed = pytest.importorskip("distributed")
    x, y = data
    explainer = _torch_explainer()
    local = explain_dataset(explainer, x, store=tmp_path / "l.zarr", batch_size=BS, labels=y,
                            outputs="top3")  # fmt: skip
    on_pool = explain_dataset(explainer, x, store=tmp_path / "p.zarr", batch_size=BS, labels=y,
                              outputs="top3", executor=pool)  # fmt: skip
    assert on_pool.meta["transport"] == "torch-state-dict"
    _same(local, on_pool)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = explain_dataset(explainer, x, store=tmp_path / "d.zarr", batch_size=BS,
                                  labels=y, outputs="top3", executor=client.get_executor())  # fmt: skip
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    _same(local, on_dask)


def test_a_numpy_model_travels_by_pickle_and_a_pool_run_resumes(tmp_path, data, pool):
    x, y = data
    explainer = Saliency(linear_backend())
    local = explain_dataset(explainer, x, store=tmp_path / "l.zarr", batch_size=BS, labels=y)
    stop = threading.Event()

    def progress(fraction):
        if fraction >= 0.4:
            stop.set()

    with pytest.raises(Cancelled):
        explain_dataset(explainer, x, store=tmp_path / "p.zarr", batch_size=BS, labels=y,
                        executor=pool, cancel=stop, progress=progress, max_in_flight=1)  # fmt: skip
    part = DatasetExplanation.open(tmp_path / "p.zarr")
    assert part.meta["transport"] == "pickle"
    assert 0 < part.done_rows.sum() < N
    done = part.done_rows
    np.testing.assert_array_equal(part[done].values, local[done].values)
    resumed = explain_dataset(explainer, x, store=tmp_path / "p.zarr", batch_size=BS, labels=y,
                              executor=pool)  # fmt: skip
    _same(local, resumed)


def test_a_model_that_cannot_travel_is_named(tmp_path, data, pool):
    from xaiwidgets import wrap

    x, _ = data
    lock = threading.Lock()  # a model holding a lock cannot be pickled

    def model(v):
        with lock:
            return v.reshape(len(v), -1)[:, :3]

    explainer = Saliency(wrap(model, grad_fn=lambda v, c: v))
    with pytest.raises(TypeError, match="cannot send this NumpyBackend model"):
        explain_dataset(explainer, x, store=tmp_path / "s.zarr", executor=pool)
