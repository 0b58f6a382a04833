"""AttributionGrid paging through a DatasetExplanation: only the page shown is read into the
data traits; page moves, clamps, and a failing read shows in place."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("zarr")

from tests.dataset_explanation.models import linear_backend  # noqa: E402
from xaiwidgets import AttributionGrid, Saliency, explain_dataset  # noqa: E402

N = 70


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, N)
    store = tmp_path_factory.mktemp("grid") / "s.zarr"
    explainer = Saliency(linear_backend())
    return explain_dataset(explainer, x, store=store, batch_size=16, labels=y, progress=None), x


def test_pages_through_every_row(stored):
    result, x = stored
    grid = result.widget(page_size=30)
    assert isinstance(grid, AttributionGrid)
    assert (grid.page, grid.page_size, grid.row_count, grid.page_count) == (0, 30, N, 3)
    np.testing.assert_array_equal(grid.images, x[:30])
    expected = result[:30].values.sum(axis=3)
    np.testing.assert_array_equal(grid.values, expected)
    assert grid.row_titles[0].startswith("#0 · label: ")
    grid.page = 2
    np.testing.assert_array_equal(grid.images, x[60:])
    np.testing.assert_array_equal(grid.page_rows, np.arange(60, N))
    assert grid.row_titles[0].startswith("#60")
    assert len(grid.output_labels) == N - 60 and not grid.error
    grid.page = 9  # clamped to the last page
    assert grid.page == 2
    grid.page_size = 50  # back to the first page
    assert grid.page == 0 and grid.images.shape[0] == 50


def test_chosen_rows_and_a_failing_read(stored):
    result, x = stored
    grid = AttributionGrid.paging(result, rows=[65, 3, 40], page_size=2, top_k=2)
    np.testing.assert_array_equal(grid.images, x[[65, 3]])
    assert grid.values.shape[-1] == 2
    grid.page = 1
    np.testing.assert_array_equal(grid.images, x[[40]])

    class Broken:
        def __len__(self):
            return 4

        def __getitem__(self, rows):
            raise OSError("disk gone")

    grid.show_rows(Broken(), page_size=2)
    assert grid.error == "page 1: OSError: disk gone"
    grid.show_rows(result, [1, 2], page_size=2)  # usable again
    assert not grid.error
    np.testing.assert_array_equal(grid.images, x[[1, 2]])
    grid.show_rows(None)
    assert (grid.page_size, grid.row_count) == (0, 0)
    with pytest.raises(ValueError, match="page_size: expected a positive int"):
        grid.show_rows(result, page_size=0)
