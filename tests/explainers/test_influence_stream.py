"""Influence / performance maps of test sets streamed from zarr and dask arrays, and on
executors, against the in-memory computation (tests/explainers/test_influence.py checks that
one against an independent bisection oracle)."""

from __future__ import annotations

import multiprocessing
import threading
import tracemalloc
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error

from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import influence_maps, performance_maps

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

#: Streamed maps agree with in-memory ones to this (absolute; probabilities are in [0, 1]):
#: the Newton passes start from the histogram's solution, so both stop within the solver's
#: tolerance (1e-9 * std on the tilted mean) of the same root, and sums run in another order.
MAPS_ATOL = 1e-8


def _zarr(array: np.ndarray, chunk: int, store=None):
    store = zarr.storage.MemoryStore() if store is None else store
    z = zarr.create_array(store=store, shape=array.shape, dtype=array.dtype,
                          chunks=(chunk, *array.shape[1:]))  # fmt: skip
    z[:] = array
    return z


def _data(n: int = 1200, seed: int = 0):
    """Grey (n, 6, 7) images mixing the cases the tilts meet: continuous skewed pixels, pixels
    on a grid of 4 values with many ties, a pixel that never changes, a mostly-zero pixel."""
    rng = np.random.default_rng(seed)
    images = rng.gamma(2.0, 0.5, size=(n, 6, 7)).astype(np.float32)
    images[:, 0] = np.round(images[:, 0] * 1.5) / 1.5
    images[:, 1, 0] = 0.25
    images[:, 1, 1] = np.where(rng.random(n) < 0.93, 0.0, images[:, 1, 1])
    flat = images.reshape(n, -1).astype(np.float64)
    probs = softmax(flat[:, :5] @ rng.normal(size=(5, 4)) + rng.normal(size=(n, 4)), axis=1)
    return images, probs


def _assert_same(ref, res, atol=MAPS_ATOL):
    assert res.maps.shape == ref.maps.shape and res.n_samples == ref.n_samples
    np.testing.assert_allclose(res.maps, ref.maps, rtol=2.4e-7, atol=atol)  # + float32 ulps
    np.testing.assert_allclose(res.plus, ref.plus, rtol=0, atol=atol)
    np.testing.assert_allclose(res.minus, ref.minus, rtol=0, atol=atol)
    np.testing.assert_allclose(res.taus, ref.taus, rtol=0, atol=1e-12)  # exact quantiles
    finite = np.isfinite(ref.lambdas)
    assert (np.isfinite(res.lambdas) == finite).all()
    assert (res.lambdas[~finite] == ref.lambdas[~finite]).all()  # the same boundary tilts
    np.testing.assert_allclose(res.lambdas[finite], ref.lambdas[finite], rtol=1e-5, atol=1e-8)
    assert (res.converged == ref.converged).all()
    np.testing.assert_allclose(res.base, ref.base, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.mean_image, ref.mean_image, rtol=1e-5)
    assert res.class_names == ref.class_names and res.kind == ref.kind


def test_zarr_matches_in_memory():
    images, probs = _data()
    ref = influence_maps(images, probs)
    res = influence_maps(_zarr(images, 250), _zarr(probs, 250), batch_size=300)
    _assert_same(ref, res)
    assert np.abs(ref.maps).max() > 0.05  # the maps are not trivially 0
    one = influence_maps(_zarr(images, 1200), probs, batch_size=len(images))  # one chunk
    _assert_same(ref, one)
    # outputs / top_k: the streamed run keeps the maps of the chosen classes
    for kw in ({"top_k": 2}, {"outputs": [3, 1]}):
        top = influence_maps(images, probs, **kw)
        _assert_same(top, influence_maps(_zarr(images, 250), probs, batch_size=300, **kw))
        assert top.params["outputs"] == (kw.get("outputs") or np.argsort(-ref.base)[:2].tolist())
    with pytest.raises(ValueError, match=r"in 0\.\.3"):
        influence_maps(_zarr(images, 250), probs, outputs=[4])


def test_dask_matches_zarr_bitwise_and_labels_and_rgb():
    images, probs = _data(seed=1)
    z = influence_maps(_zarr(images, 200), probs, batch_size=400)
    d = influence_maps(da.from_array(images, chunks=(300, 6, 7)),
                       da.from_array(probs, chunks=(500, 4)), batch_size=400)  # fmt: skip
    assert (d.maps == z.maps).all() and (d.plus == z.plus).all()
    labels = probs.argmax(axis=1)
    ref = influence_maps(images, labels, class_names=list("abcd"))
    _assert_same(
        ref, influence_maps(_zarr(images, 300), _zarr(labels, 300), class_names=list("abcd"))
    )
    _assert_same(ref, influence_maps(_zarr(images, 300), labels, class_names=list("abcd")))
    rgb = np.random.default_rng(2).random((300, 5, 4, 3), dtype=np.float32)
    rgb[:, 0, 0, 1] = np.round(rgb[:, 0, 0, 1] * 2) / 2
    chw = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
    p = probs[:300]
    for channels in ("mean", "separate"):
        ref = influence_maps(rgb, p, channels=channels, layout="nhwc")
        res = influence_maps(da.from_array(chw, chunks=(70, 3, 5, 4)), p, channels=channels,
                             layout="nchw", batch_size=90)  # fmt: skip
        _assert_same(ref, res)


def test_performance_maps_streamed():
    images, probs = _data(seed=3)
    y = probs.argmax(axis=1)
    rng = np.random.default_rng(4)
    y_pred = np.where(rng.random(len(y)) < 0.7, y, (y + 1) % 4)
    z = _zarr(images, 300)
    ref = performance_maps(images, y, y_pred, accuracy_score)
    res = performance_maps(z, da.from_array(y, chunks=250), y_pred, accuracy_score)
    _assert_same(ref, res)
    assert res.base[0] == pytest.approx(accuracy_score(y, y_pred), abs=1e-12)
    onehot = np.eye(4)[y]
    _assert_same(performance_maps(images, onehot, probs, log_loss),
                 performance_maps(z, onehot, probs, log_loss))  # fmt: skip
    with pytest.raises(ValueError, match="per-sample scores"):
        performance_maps(z, y.astype(float), y_pred.astype(float), mean_squared_error)
    with pytest.raises(ValueError, match="fast=False"):
        performance_maps(z, y, y_pred, accuracy_score, fast=False)


def test_executors_give_the_local_result_bitwise(tmp_path):
    images, probs = _data(n=900, seed=5)
    z = _zarr(images, 150, store=zarr.storage.LocalStore(str(tmp_path / "x.zarr")))
    local = influence_maps(z, probs, batch_size=150)
    with ThreadPoolExecutor(3) as pool:
        threaded = influence_maps(z, probs, batch_size=150, executor=pool)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        procs = influence_maps(z, probs, batch_size=150, executor=pool)
        numpy_on_pool = influence_maps(images, probs, batch_size=150, executor=pool)
    for res in (threaded, procs, numpy_on_pool):
        for name in ("maps", "plus", "minus", "taus", "lambdas", "converged", "mean_image"):
            assert (getattr(res, name) == getattr(local, name)).all(), name


def test_dask_distributed_executor():
    distributed = pytest.importorskip("distributed")
    images, probs = _data(n=600, seed=6)
    d = da.from_array(images, chunks=(100, 6, 7))
    local = influence_maps(d, probs, batch_size=100)
    with distributed.Client(processes=False, n_workers=2, threads_per_worker=1,
                            dashboard_address=":0") as client:  # fmt: skip
        res = influence_maps(d, probs, batch_size=100, executor=client.get_executor())
    assert (res.maps == local.maps).all() and (res.lambdas == local.lambdas).all()


def test_memory_does_not_grow_with_the_number_of_samples():
    """Peak traced memory streaming 3,000 and 24,000 MNIST-size images from zarr in chunks
    of 1,000: 24,000 in memory would be 75 MB of float32 features alone."""
    rng = np.random.default_rng(7)

    def peak(n: int) -> int:
        imgs = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(n, 28, 28),
                                 chunks=(1000, 28, 28), dtype="u1")  # fmt: skip
        probs = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(n, 10),
                                  chunks=(1000, 10), dtype="f4")  # fmt: skip
        for s in range(0, n, 1000):
            block = rng.integers(0, 256, size=(1000, 28, 28)) * (rng.random((1000, 28, 28)) < 0.2)
            imgs[s : s + 1000] = block.astype(np.uint8)
            probs[s : s + 1000] = softmax(rng.normal(size=(1000, 10)), axis=1)
        tracemalloc.start()
        res = influence_maps(imgs, probs, batch_size=1000)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert res.converged.all()
        return top

    small, large = peak(3000), peak(24000)
    assert large < 1.3 * small + 5e6, f"{small / 1e6:.1f} MB -> {large / 1e6:.1f} MB"
    assert large < 60e6, f"peak {large / 1e6:.1f} MB"


def test_progress_and_cancel():
    images, probs = _data(n=600, seed=8)
    z = _zarr(images, 100)
    seen = []
    influence_maps(z, probs, batch_size=100, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 6 * 4
    cancel = threading.Event()

    def stop_after_three(fraction):
        if len(calls) == 2:
            cancel.set()
        calls.append(fraction)

    for executor in (None, ThreadPoolExecutor(2)):
        calls: list[float] = []
        cancel.clear()
        with pytest.raises(Cancelled):
            influence_maps(z, probs, batch_size=100, progress=stop_after_three, cancel=cancel,
                           executor=executor)  # fmt: skip
        assert len(calls) == 3  # stopped at the next chunk
        if executor is not None:
            executor.shutdown()


def test_bad_input():
    images, probs = _data(n=300, seed=9)
    z = _zarr(images, 100)
    with pytest.raises(ValueError, match="expected 300 rows"):
        influence_maps(z, probs[:-1])
    with pytest.raises(ValueError, match="integer class labels"):
        influence_maps(z, probs[:, 0])
    with pytest.raises(ValueError, match=r"class labels must be in \[0, 2\)"):
        influence_maps(z, probs.argmax(axis=1), class_names=["a", "b"])
    with pytest.raises(ValueError, match="must be a batch"):
        influence_maps(_zarr(images[0], 6), probs[:6])
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        influence_maps(z, probs, executor="dask")
    with pytest.raises(ValueError, match="batch_size"):
        influence_maps(z, probs, batch_size=0)
    with pytest.raises(ValueError, match="layout"):
        influence_maps(z, probs, layout="nchw")
    with pytest.raises(TypeError, match="numeric"):
        influence_maps(z, np.array(["x"] * 300))
    bad = images.copy()
    bad[250, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        influence_maps(_zarr(bad, 100), probs)
    nan_probs = probs.copy()
    nan_probs[123, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        influence_maps(z, da.from_array(nan_probs, chunks=100))


class _CountingExecutor(ThreadPoolExecutor):
    def __init__(self):
        super().__init__(1)
        self.calls: list[str] = []

    def submit(self, fn, *args, **kwargs):
        self.calls.append(fn.__name__)
        return super().submit(fn, *args, **kwargs)


def test_integer_images_take_two_passes_and_match_in_memory():
    """8-bit grey images: statistics + histogram in one pass, the histogram is the data (one
    value per bin) so the tilts need no pass over the data, then the reduction: 2 passes.
    RGB means (766 levels), int16 with negative values and bool images take Newton passes."""
    rng = np.random.default_rng(10)
    n = 800
    grey = (rng.integers(0, 256, (n, 5, 6)) * (rng.random((n, 5, 6)) < 0.3)).astype(np.uint8)
    grey[:, 0, 0] = 7  # constant
    probs = softmax(grey.reshape(n, -1)[:, 3:9] @ rng.normal(size=(6, 3)) / 50, axis=1)
    ref = influence_maps(grey, probs)
    with _CountingExecutor() as ex:
        res = influence_maps(_zarr(grey, 200), probs, batch_size=200, executor=ex)
    assert ex.calls == ["_stats_histogram_chunk"] * 4 + ["_reduce_chunk"] * 4
    _assert_same(ref, res)
    assert res.converged.all() and np.abs(res.maps).max() > 0.01
    rgb = rng.integers(0, 256, (n, 5, 6, 3)).astype(np.uint8)
    _assert_same(influence_maps(rgb, probs, layout="nhwc"), influence_maps(_zarr(rgb, 300), probs))
    signed = rng.integers(-300, 300, (n, 5, 6)).astype(np.int16)
    _assert_same(influence_maps(signed, probs), influence_maps(_zarr(signed, 300), probs))
    flags = rng.random((n, 5, 6)) < 0.2
    _assert_same(influence_maps(flags, probs), influence_maps(_zarr(flags, 300), probs))
