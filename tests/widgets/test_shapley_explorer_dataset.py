"""ShapleyExplorer on images on disk: a DatasetExplanation (its images, labels and class
names) or a zarr array is the pool; the explanation equals the one of the same images in
memory, and only the images used are read."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("zarr")

from tests.widgets.test_shapley_explorer import DigitsModel  # noqa: E402
from xaiwidgets import Saliency, explain_dataset, wrap  # noqa: E402
from xaiwidgets.datasets import load_sklearn_digits  # noqa: E402
from xaiwidgets.widgets._image_rows import LazyImages  # noqa: E402
from xaiwidgets.widgets.shapley_explorer import ShapleyExplorer  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    x, y = load_sklearn_digits()
    return x[:120], y[:120]


def test_a_dataset_explanation_is_the_pool(digits, tmp_path):
    x, y = digits
    model = DigitsModel(x, y)
    names = [f"digit {i}" for i in range(10)]
    stored = explain_dataset(Saliency(wrap(model, grad_fn=lambda v, c: v), class_names=names),
                             x, store=tmp_path / "s.zarr", labels=y, batch_size=40,
                             progress=None)  # fmt: skip
    on_disk = ShapleyExplorer(model, stored, max_evals=60, top_k=2).wait(20)
    in_memory = ShapleyExplorer(model, x, labels=y, class_names=names, max_evals=60,
                                top_k=2).wait(20)  # fmt: skip
    try:
        assert isinstance(on_disk.pool, LazyImages) and len(on_disk.pool) == 120
        np.testing.assert_array_equal(on_disk.labels, y)
        assert on_disk.indices == in_memory.indices
        assert on_disk.error == "" and in_memory.error == ""
        np.testing.assert_array_equal(on_disk.explanation.values, in_memory.explanation.values)
        np.testing.assert_array_equal(on_disk.candidates, in_memory.candidates)
        assert on_disk.output_labels[0][0][0].startswith("digit ")
    finally:
        on_disk.close()
        in_memory.close()


def test_a_zarr_array_is_read_by_the_rows_used(digits, tmp_path):
    import zarr

    x, y = digits
    z = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(10, 8, 8, 1),
                          dtype="float32")  # fmt: skip
    z[:] = x
    model = DigitsModel(x, y)
    ex = ShapleyExplorer(model, z, labels=y, indices=[5, 17], max_evals=60, top_k=2).wait(20)
    try:
        assert ex.error == ""
        np.testing.assert_array_equal(ex.explanation.data, x[[5, 17]])
    finally:
        ex.close()
