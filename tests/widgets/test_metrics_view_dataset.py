"""MetricsView over whole data sets: a DatasetExplanation's labels and probabilities make the
metrics, a confusion cell pages through all its stored explanations (read from disk a page at
a time), an explainer re-runs on each page, and on-disk images are read by the page."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("zarr")

from tests.dataset_explanation.models import linear_backend  # noqa: E402
from xaiwidgets import MetricsView, Saliency, explain_dataset  # noqa: E402

N, PAGE = 80, 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8, 8, 1)).astype(np.float32)
    explainer = Saliency(linear_backend())
    pred = explainer.backend.predict(x).argmax(1)
    y = np.where(np.arange(N) % 4 == 0, (pred + 1) % 10, pred)  # a quarter wrong
    store = tmp_path_factory.mktemp("mv") / "s.zarr"
    result = explain_dataset(explainer, x, store=store, batch_size=16, labels=y, top_k=2,
                             progress=None)  # fmt: skip
    return result, x, y, pred, explainer


def _biggest_cell(y, pred):
    cells = {}
    for t, p in zip(y.tolist(), pred.tolist()):
        cells[(t, p)] = cells.get((t, p), 0) + 1
    return max(cells, key=cells.get)


def test_a_cell_pages_through_all_its_stored_explanations(run):
    result, x, y, pred, _ = run
    view = MetricsView.from_dataset(result, max_images=PAGE)
    np.testing.assert_array_equal(view.report.y_true, y)
    assert view.report.class_names == [str(i) for i in range(10)]
    t, p = _biggest_cell(y, pred)
    want = np.flatnonzero((y == t) & (pred == p))
    assert len(want) > 2 * PAGE
    view.select(t, p)
    grid = view.grids["saliency (stored)"]
    assert list(view.grids) == ["saliency (stored)"]
    assert (grid.row_count, grid.page_size, grid.page) == (len(want), PAGE, 0)
    np.testing.assert_array_equal(grid.images, x[want[:PAGE]])
    np.testing.assert_array_equal(grid.values, result[want[:PAGE]].values.sum(axis=3))
    seen = list(view.shown_indices)
    pages = -(-len(want) // PAGE)
    for page in range(1, pages):
        grid.page = page  # the grid's "next ›" button
        assert view.cell_page == page
        rows = want[page * PAGE : (page + 1) * PAGE]
        assert view.shown_indices == rows.tolist()
        np.testing.assert_array_equal(grid.images, x[rows])
        np.testing.assert_array_equal(grid.values, result[rows].values.sum(axis=3))
        seen += view.shown_indices
    assert seen == want.tolist()  # every image of the cell, not the first few
    view.show_page(99)  # clamped
    assert view.cell_page == pages - 1
    view.clear_selection()
    assert grid.layout.display == "none" and grid.row_count == 0
    view.close()


def test_an_explainer_runs_on_each_page(run):
    result, x, y, pred, explainer = run
    view = MetricsView.from_dataset(result, {"again": explainer}, max_images=PAGE)
    t, p = _biggest_cell(y, pred)
    want = np.flatnonzero((y == t) & (pred == p))
    view.select(t, p)
    view.show_page(1)
    view.wait(30)
    grid = view.grids["again"]
    rows = want[PAGE : 2 * PAGE]
    assert grid.page == 1 and view.grids["saliency (stored)"].page == 1
    np.testing.assert_array_equal(grid.images, x[rows])
    ref = explainer(x[rows], outputs=[t] if t == p else [t, p])
    np.testing.assert_allclose(grid.values, ref.values.sum(axis=3), rtol=1e-6)
    view.close()


def test_on_disk_images_are_read_by_the_page(run, tmp_path):
    import zarr

    result, x, y, pred, _ = run
    z = zarr.create_array(str(tmp_path / "x.zarr"), shape=x.shape, chunks=(10, 8, 8, 1),
                          dtype="float32")  # fmt: skip
    z[:] = x
    probs = result.probabilities
    view = MetricsView(y, probs, z, max_images=PAGE)
    t, p = _biggest_cell(y, pred)
    want = np.flatnonzero((y == t) & (pred == p))
    view.select(t, p)
    view.show_page(1)
    np.testing.assert_array_equal(view.grids["images"].images, x[want[PAGE : 2 * PAGE]])
    view.close()


def test_a_dataset_without_labels_or_unfinished_is_refused(run, tmp_path):
    result, x, _, _, explainer = run
    nolabels = explain_dataset(explainer, x[:20], store=tmp_path / "n.zarr", progress=None)
    with pytest.raises(ValueError, match="has no labels"):
        MetricsView.from_dataset(nolabels)
    with pytest.raises(TypeError, match="expected a DatasetExplanation"):
        MetricsView.from_dataset(x)
