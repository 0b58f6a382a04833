"""Paging through a confusion cell of :class:`~xaiwidgets.widgets.MetricsView`: every grid
shows page ``cell_page`` of the cell's images (``max_images`` a page); the grid of a
:class:`~xaiwidgets.DatasetExplanation`'s stored explanations reads its page from disk, the
explainers' grids are explained again for it (one LiveWidget key per cell and page)."""

from __future__ import annotations

from typing import Any

import numpy as np


class CellPages:
    """Mixin of MetricsView (which owns the ``cell_page`` trait, the grids and the report)."""

    def _on_grid_page(self, change: dict[str, Any]) -> None:
        """A grid's pager moved: every grid shows that page (``cell_page``)."""
        if not self._syncing:
            self.cell_page = int(change["new"])

    def _page_of(self, cell: tuple[int, int], page: int) -> np.ndarray:
        idx = self.report.indices(true=cell[0], pred=cell[1])
        return idx[page * self.max_images : (page + 1) * self.max_images]

    def _show_cell_page(self, cell: tuple[int, int], page: int) -> None:
        idx = np.asarray(self.selected_indices, dtype=np.int64)
        pages = max(1, -(-len(idx) // self.max_images))
        if page >= pages:
            self.cell_page = pages - 1  # observed: shows that page
            return
        shown = self._page_of(cell, page)
        self.shown_indices = [int(i) for i in shown]
        if self.images is None:
            return
        self._syncing = True
        try:
            self._page_grids(idx, shown, page)
        finally:
            self._syncing = False
        if not len(shown):
            return
        if not self.explainers:
            if "images" in self.grids:
                self._show_images(self.grids["images"], cell, shown)
            return
        self._live_start((cell, page))

    def _page_grids(self, idx: np.ndarray, shown: np.ndarray, page: int) -> None:
        """Every grid on page ``page`` of the cell's rows ``idx`` (``shown`` on it): the
        stored grid reads it from disk; the others are cleared for their explainers."""
        size = self.max_images
        for name, grid in self.grids.items():
            grid.layout.display = "" if len(shown) else "none"
            if name == self._stored_name:
                if len(shown):
                    if grid._pager is None or not np.array_equal(grid._pager[1], idx):
                        grid.show_rows(self.dataset, idx, page_size=size)
                    grid.page = page
                continue
            self._clear_grid(grid)
            with grid.hold_trait_notifications():
                grid.row_count, grid.page_size = len(idx), size
                grid.page = page


def dataset_metrics(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` of a DatasetExplanation: its labels and probabilities."""
    y_pred = result.probabilities if result.probabilities is not None else result.predictions
    if result.labels is None or y_pred is None:
        raise ValueError(
            "MetricsView needs the true labels and the predictions of the data set: this "
            "DatasetExplanation has no labels (explain_dataset(..., labels=...) or "
            "(images, labels) batches store them)"
        )
    done = result.done_rows
    if not done.all():
        raise ValueError(
            f"the DatasetExplanation is not finished ({int(done.sum())} of {len(done)} rows): "
            "run explain_dataset again on its store to finish it"
        )
    return result.labels, y_pred
