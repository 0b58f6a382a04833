"""The attribution grids of :class:`~xaiwidgets.widgets.MetricsView`: one
:class:`~xaiwidgets.widgets.AttributionGrid` per explainer (and one of a data set's stored
explanations, or of the bare images without an explainer), the room they hold from the start,
and what is drawn into them (an Explanation, the images alone, or nothing)."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from ..explanation import Explanation
from ._image_rows import LazyImages
from .attribution_grid import AttributionGrid


class CellGrids:
    """Mixin of MetricsView (which owns ``images``, ``explainers``, ``dataset``, ``report``,
    ``max_images``, ``shown_indices`` and the grids' page observer)."""

    def _make_grids(self, cell_size: int, invert_image: bool | None) -> dict[str, AttributionGrid]:
        """The grids, hidden until a cell is selected: the stored explanations' first (with a
        data set), then one per explainer (``"images"`` alone without any)."""
        grids: dict[str, AttributionGrid] = {}
        if self.images is None:
            return grids
        names = list(self.explainers) or ([] if self.dataset is not None else ["images"])
        if self.dataset is not None:
            names.insert(0, self._stored_name)
        invert = self._invert(invert_image)
        for name in names:
            grid = AttributionGrid(cell_size=cell_size, title=name, invert_image=invert)
            grid.layout.margin = "0 16px 0 0"
            grid.layout.flex = "0 0 auto"
            grid.layout.display = "none"
            grid.observe(self._on_grid_page, "page")
            grids[name] = grid
        return grids

    def _invert(self, invert_image: bool | None) -> bool:
        if invert_image is not None:
            return bool(invert_image)
        x = self.images.sample() if isinstance(self.images, LazyImages) else self.images
        lo, hi = float(x.min()), float(x.max())
        return bool(hi > lo and x.mean() < (lo + hi) / 2)

    def _reserved_size(self, cell_size: int) -> tuple[int, int]:
        """``(width, height)`` in CSS pixels of the grids of a full selection (max_images rows
        of the image and two classes, labels, title and colour bar) and the caption above
        them: the selection box keeps this size from the start so that nothing under it moves
        when a click fills the grids in."""
        if self.images is None:
            return 0, 0
        h, w = self.images.shape[1:3]
        cell_h = int(np.ceil(cell_size * h / w))
        rows = min(self.max_images, len(self.images))
        grid_h = 30 + 34 + rows * (cell_h + 24) + 16  # title, labels, rows, margins
        grid_w = 3 * (cell_size + 12) + 110  # image and two classes, the colour bar
        return len(self.grids) * (grid_w + 16), 28 + grid_h

    @staticmethod
    def _clear_grid(grid: AttributionGrid) -> None:
        if grid._pager is not None or grid.page_size:
            grid.show_rows(None)
        with grid.hold_sync():
            grid.values = None
            grid.output_labels, grid.output_probabilities, grid.row_titles = [], None, []
            grid.images = None
            grid.error, grid.progress = "", -1.0

    def _titles(self) -> list[str]:
        return [f"#{i}" for i in self.shown_indices]

    def _draw(self, grid: AttributionGrid, cell: Hashable, e: Explanation) -> None:
        titles = self._titles()
        with grid.hold_sync():
            grid.values = None
            grid.output_labels, grid.output_probabilities = [], None
            grid.images = e.data
            grid.row_titles = titles if len(titles) == len(e) else []
            grid.output_labels = e.output_names
            grid.output_probabilities = e.output_probabilities
            grid.show_colorbar = True
            grid.values = e.values.sum(axis=3, dtype=np.float32)
            grid.progress = -1.0

    def _show_images(self, grid: AttributionGrid, cell: tuple[int, int], shown: np.ndarray) -> None:
        """Without an explainer: the images, and a blank column labelled by the prediction."""
        x = self.images[shown]
        name = f"predicted {self.report.class_names[cell[1]]}"
        probs = self.report.probabilities
        with grid.hold_sync():
            grid.values = None
            grid.images = x
            grid.row_titles = self._titles()
            grid.output_labels = [[name] for _ in shown]
            grid.output_probabilities = None if probs is None else probs[shown, cell[1]][:, None]
            grid.show_colorbar = False
            grid.values = np.zeros((*x.shape[:3], 1), np.float32)
