"""explain_dataset on one machine: every input kind gives the in-memory explainer's result
chunk by chunk, the store resumes after an interruption (only the missing chunks are
computed), a cancelled run leaves valid chunks, memory stays flat in the number of images,
and bad input says what was expected."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("zarr")

from tests.dataset_explanation.models import CALLS, linear_backend  # noqa: E402
from xaiwidgets import DatasetExplanation, Saliency, explain_dataset  # noqa: E402
from xaiwidgets._progress import Cancelled  # noqa: E402

N, BS = 100, 25


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, N)
    return x, y


@pytest.fixture
def explainer():
    return Saliency(linear_backend())


def _stored(result: DatasetExplanation) -> dict[str, np.ndarray]:
    g = result.group
    return {name: g[name][:] for name in g.keys()}


def _assert_same_store(a: DatasetExplanation, b: DatasetExplanation) -> None:
    sa, sb = _stored(a), _stored(b)
    assert sorted(sa) == sorted(sb)
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name], err_msg=name)


def test_rows_equal_the_in_memory_explainer_on_each_chunk(tmp_path, data, explainer):
    x, y = data
    result = explain_dataset(explainer, x, store=tmp_path / "s.zarr", batch_size=BS, labels=y)
    assert isinstance(result, DatasetExplanation)
    assert len(result) == N and result.complete
    assert result.method == "saliency" and result.params == explainer.params()
    for start in range(0, N, BS):
        ref = explainer(x[start : start + BS], labels=y[start : start + BS])
        got = result[start : start + BS]
        np.testing.assert_array_equal(got.values, ref.values)
        np.testing.assert_array_equal(got.data, ref.data)
        np.testing.assert_array_equal(got.base_values, ref.base_values)
        np.testing.assert_array_equal(got.output_indices, ref.output_indices)
        np.testing.assert_array_equal(got.probabilities, ref.probabilities)
        np.testing.assert_array_equal(got.labels, y[start : start + BS])
    # any selection, in the order given; the per-image vectors in full
    pick = result[[70, 3, 41]]
    np.testing.assert_array_equal(pick.data, x[[70, 3, 41]])
    mask = y == 3
    np.testing.assert_array_equal(result[mask].labels, y[mask])
    np.testing.assert_array_equal(result.labels, y)
    assert result.probabilities.shape == (N, 10)
    # the saliency of a linear model is its weight column: checked against the math
    W = explainer.backend.fn.W
    np.testing.assert_allclose(result[5].values[0, ..., 0, 2].ravel(), W[:, 2], rtol=1e-6)
    reopened = DatasetExplanation.open(tmp_path / "s.zarr")
    _assert_same_store(reopened, result)


def _kinds(x, y):
    import dask.array as da
    import zarr

    z = zarr.create_array(store={}, shape=x.shape, chunks=(BS, 8, 8, 1), dtype="float32")
    z[:] = x
    zy = zarr.create_array(store={}, shape=y.shape, chunks=(BS,), dtype="int64")
    zy[:] = y
    yield "zarr", z, {"labels": zy}
    yield "dask", da.from_array(x, chunks=(BS, 8, 8, 1)), {"labels": da.from_array(y)}
    yield "generator", (x[i : i + BS] for i in range(0, N, BS)), {}
    yield "pairs", [(x[i : i + 10], y[i : i + 10]) for i in range(0, N, 10)], {}
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # torch: NCHW
    ds = TensorDataset(xt, torch.from_numpy(y))
    yield "torch-dataset", ds, {}
    yield "torch-loader", DataLoader(ds, batch_size=BS, shuffle=False), {}


def test_every_input_kind_gives_the_array_result(tmp_path, data, explainer):
    x, y = data
    ref = explain_dataset(explainer, x, store=tmp_path / "ref.zarr", batch_size=BS, labels=y)
    ref_nolabels = explain_dataset(explainer, x, store=tmp_path / "ref2.zarr", batch_size=BS)
    for kind, images, kw in _kinds(x, y):
        got = explain_dataset(
            explainer, images, store=tmp_path / f"{kind}.zarr", batch_size=BS, progress=None, **kw
        )
        assert len(got) == N and got.complete, kind
        expected = ref if kind != "generator" else ref_nolabels
        for name in ("values", "data", "base_values", "output_indices", "probabilities"):
            np.testing.assert_array_equal(
                got.group[name][:], expected.group[name][:], err_msg=f"{kind}: {name}"
            )
        if kind != "generator":
            np.testing.assert_array_equal(got.labels, y, err_msg=kind)


def test_tf_data_dataset(tmp_path, data, explainer):
    tf = pytest.importorskip("tensorflow")
    x, y = data
    ref = explain_dataset(explainer, x, store=tmp_path / "ref.zarr", batch_size=BS, labels=y)
    for name, ds in [
        ("single", tf.data.Dataset.from_tensor_slices((x, y))),
        ("batched", tf.data.Dataset.from_tensor_slices((x, y)).batch(BS)),
    ]:
        got = explain_dataset(explainer, ds, store=tmp_path / f"{name}.zarr", batch_size=BS)
        np.testing.assert_array_equal(got.group["values"][:], ref.group["values"][:])
        np.testing.assert_array_equal(got.labels, y)


def test_an_interrupted_run_resumes_with_only_the_missing_chunks(tmp_path, data, explainer):
    x, y = data
    store = tmp_path / "s.zarr"
    stop = threading.Event()

    def progress(fraction):  # interrupt after the second chunk
        if fraction >= 2 * BS / N:
            stop.set()

    with pytest.raises(Cancelled):
        explain_dataset(explainer, x, store=store, batch_size=BS, labels=y, progress=progress,
                        cancel=stop)  # fmt: skip
    part = DatasetExplanation.open(store)
    assert not part.complete
    np.testing.assert_array_equal(part.done_rows, np.arange(N) < 2 * BS)
    np.testing.assert_array_equal(part[:BS].values, explainer(x[:BS], labels=y[:BS]).values)
    with pytest.raises(ValueError, match="not explained yet"):
        part[2 * BS]

    CALLS.update(forward=0, grad=0)
    explainer(x[:BS], labels=y[:BS])
    per_chunk = dict(CALLS)
    CALLS.update(forward=0, grad=0)
    resumed = explain_dataset(explainer, x, store=store, batch_size=BS, labels=y, progress=None)
    missing = N // BS - 2
    assert CALLS == {k: v * missing for k, v in per_chunk.items()}  # 2 chunks not redone
    assert resumed.complete
    whole = explain_dataset(explainer, x, store=tmp_path / "w.zarr", batch_size=BS, labels=y)
    _assert_same_store(resumed, whole)
    # and a finished store: nothing is computed again
    CALLS.update(forward=0, grad=0)
    explain_dataset(explainer, x, store=store, batch_size=BS, labels=y, progress=None)
    assert CALLS == {"forward": 0, "grad": 0}


def test_an_iterable_resumes_too(tmp_path, data, explainer):
    x, _ = data
    store = tmp_path / "s.zarr"
    stop = threading.Event()

    def batches():
        for i in range(0, N, BS):
            if i == 2 * BS:
                stop.set()
            yield x[i : i + BS]

    with pytest.raises(Cancelled):
        explain_dataset(explainer, batches(), store=store, cancel=stop, progress=None)
    assert DatasetExplanation.open(store).done_rows.sum() == 2 * BS
    got = explain_dataset(explainer, batches(), store=store, progress=None)
    whole = explain_dataset(explainer, batches(), store=tmp_path / "w.zarr", progress=None)
    _assert_same_store(got, whole)
    assert len(got) == N and got.complete


def test_cancel_within_a_chunk_keeps_the_finished_chunks(tmp_path, data):
    x, _ = data
    stop = threading.Event()
    backend = linear_backend(batch_size=5)
    explainer = Saliency(backend)
    fn = backend.fn
    seen = {"third": 0}

    def counting(images):  # cancel in the middle of the third chunk
        if (images == x[2 * BS + 10]).all(axis=(1, 2, 3)).any():
            seen["third"] += 1
            stop.set()
        return fn(images)

    backend.fn = counting
    with pytest.raises(Cancelled):
        explain_dataset(explainer, x, store=tmp_path / "s.zarr", batch_size=BS, cancel=stop)
    part = DatasetExplanation.open(tmp_path / "s.zarr")
    assert seen["third"] == 1  # cancelled within the chunk, at its first model call there
    np.testing.assert_array_equal(part.done_rows, np.arange(N) < 2 * BS)  # the third: not done
    backend.fn = fn
    np.testing.assert_array_equal(part[:BS].values, explainer(x[:BS]).values)


def test_another_run_in_the_same_store_is_refused(tmp_path, data, explainer):
    x, y = data
    store = tmp_path / "s.zarr"
    explain_dataset(explainer, x, store=store, batch_size=BS, labels=y)
    with pytest.raises(ValueError, match="params"):
        explain_dataset(Saliency(linear_backend(), absolute=True), x, store=store,
                        batch_size=BS, labels=y)  # fmt: skip
    with pytest.raises(ValueError, match="batch_size"):
        explain_dataset(explainer, x, store=store, batch_size=BS + 1, labels=y)
    with pytest.raises(ValueError, match="call"):
        explain_dataset(explainer, x, store=store, batch_size=BS, labels=y, outputs=[1, 2])
    changed = x.copy()
    changed[1] += 1
    with pytest.raises(ValueError, match="first_images"):
        explain_dataset(explainer, changed, store=store, batch_size=BS, labels=y)
    other = Saliency(_other_model())
    with pytest.raises(ValueError, match="model"):
        explain_dataset(other, x, store=store, batch_size=BS, labels=y)


def _other_model():
    from tests.dataset_explanation.models import LinearModel
    from xaiwidgets import wrap

    m = LinearModel(64, seed=5)
    return wrap(m, grad_fn=m.grad)


def test_memory_stays_flat_in_the_number_of_images(tmp_path, explainer):
    def batches(n):  # images made on the fly: the source holds one batch
        for i in range(0, n, 256):
            yield (
                np.random.default_rng(i).normal(size=(min(256, n - i), 8, 8, 1)).astype(np.float32)
            )

    peaks = {}
    explain_dataset(explainer, batches(512), store=tmp_path / "warm.zarr", progress=None)
    for n in (2000, 8000):
        tracemalloc.start()
        explain_dataset(explainer, batches(n), store=tmp_path / f"{n}.zarr", progress=None)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    # 8,000 images of attributions are 20 MB; one chunk's about 0.7 MB
    assert peaks[8000] < 1.3 * peaks[2000] + 2**20, peaks
    assert peaks[8000] < 16 * 2**20, peaks


@pytest.mark.parametrize(
    "images, error, match",
    [
        ("images.npy", TypeError, "expected a NumPy, zarr or dask array.*got str"),
        (42, TypeError, "got int"),
        ({"x": 1}, TypeError, "got dict"),
        (np.zeros((10, 64)), ValueError, r"expected an array of images .*got shape \(10, 64\)"),
        ([np.zeros((4, 8, 8, 5))], ValueError, "layout"),
        (["not", "images"], TypeError, "expected batches of images"),
    ],
)
def test_bad_images_say_what_was_expected(tmp_path, explainer, images, error, match):
    with pytest.raises(error, match=match):
        explain_dataset(explainer, images, store=tmp_path / "s.zarr", progress=None)


def test_bad_arguments_say_what_was_expected(tmp_path, data, explainer):
    x, y = data
    s = tmp_path / "s.zarr"
    with pytest.raises(TypeError, match="expected an xaiwidgets explainer"):
        explain_dataset(lambda v: v, x, store=s)
    with pytest.raises(TypeError, match="store: expected a zarr group or the path"):
        explain_dataset(explainer, x, store=3)
    with pytest.raises(TypeError, match="batch_size: expected None or a positive int"):
        explain_dataset(explainer, x, store=s, batch_size=2.5)
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        explain_dataset(explainer, x, store=s, batch_size=0)
    with pytest.raises(ValueError, match="labels: expected 100 labels"):
        explain_dataset(explainer, x, store=s, labels=y[:7])
    with pytest.raises(TypeError, match="executor: expected a concurrent.futures.Executor"):
        explain_dataset(explainer, x, store=s, executor="dask")
    with pytest.raises(TypeError, match="cancel: expected None or an event"):
        explain_dataset(explainer, x, store=s, cancel=True)
    with pytest.raises(TypeError, match="progress: expected None, True"):
        explain_dataset(explainer, x, store=s, progress="yes")
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.zeros(4, 1, 8, 8)), batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="shuffle=False"):
        explain_dataset(explainer, loader, store=s)
    with pytest.raises(FileNotFoundError):
        DatasetExplanation.open(tmp_path / "nothing.zarr")


def test_save_copies_the_store_and_load_opens_it(tmp_path, data, explainer):
    x, y = data
    result = explain_dataset(explainer, x, store=tmp_path / "s.zarr", batch_size=BS, labels=y)
    copy = DatasetExplanation.load(result.save(tmp_path / "copy.zarr"))
    _assert_same_store(copy, result)
    assert copy.meta == result.meta and copy.complete
    with pytest.raises(FileExistsError):
        result.save(tmp_path / "copy.zarr")
    assert "DatasetExplanation(method='saliency', images=100" in repr(copy)
