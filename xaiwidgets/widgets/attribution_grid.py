"""`AttributionGrid`: the interactive equivalent of ``shap.image_plot``.

Rows are images. The first column shows the image; then one column per explained output shows
its attribution map: a diverging colour map symmetric around 0 (positive red, negative blue,
near 0 transparent) over a faint grey copy of the image, with the output's label (class name
and probability, ranked when the explanation was cut with ``top_k``) above it. A colour bar
with a numeric scale sits at the right: one scale for the whole grid or one per row
(``scale_mode``). Hovering a cell shows the pixel (x, y), the pixel value, the attribution
and the class. All of it is drawn in the browser from binary buffers; nothing is a PNG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from ._base import XaiWidget, image_array
from ._ndarray_trait import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from ..explanation import Explanation


#: the order data traits are set in (images before values: their shapes are checked together)
_DATA_ORDER = (
    "images",
    "output_labels",
    "output_probabilities",
    "row_titles",
    "true_columns",
    "wrong_rows",
    "predicted_names",
    "values",
)


class AttributionGrid(XaiWidget):
    """Grid of attribution maps, one row per image and one column per explained output.

    Shapes (n images of h x w pixels with c channels, o explained outputs):

    - ``images`` ``(n, h, w, c)``: the images, any value range (each drawn normalised to its
      own min..max); c = 1 (grey), 3 (RGB) or 4 (RGBA, alpha ignored). ``(n, h, w)`` is grey.
    - ``values`` ``(n, h, w, o)``: attributions **summed over the channels** (what one
      coloured pixel can show). ``(n, h, w, c, o)`` arrays are summed over axis 3 on
      assignment; ``(n, h, w)`` is one output.
    - ``output_labels`` ``(n, o)`` names of the explained outputs, per image (shown as text).
    - ``output_probabilities`` ``(n, o)`` or ``None``: shown after the name ("Sandal 0.93").
    - ``row_titles`` ``n`` strings (e.g. the true label) above the image column, or ``[]``.
    - ``true_columns`` ``n`` ints or ``[]``: the output column of each row's true class (its
      cell gets a green frame, its label turns green and says "true label" on hover), ``-1``
      where the true class is not among the row's outputs or unknown.
    - ``wrong_rows`` ``n`` bools or ``[]``: rows whose prediction is wrong (the image gets a
      red frame, its label a "✗", and its hover text says what was predicted, from
      ``predicted_names``).
    - ``predicted_names`` ``n`` strings or ``[]``: each row's predicted class name.

    Display traits: ``scale_mode`` ("grid": one colour scale for all cells, "row": one per
    image), ``cell_size`` (width of a cell in CSS pixels, like ethik's ``cell_width``; default
    0: chosen from the image width (small images at a whole multiple near 84 px, larger ones
    at their own size up to 224 px) and shrunk to fit the output area's width down to 48 px;
    past that, or with a user's size, a row's cells wrap onto more lines), ``invert_image``
    (draw ``-x``, as the DeepExplainer example plots ``-x_test``), ``show_colorbar``,
    ``show_controls`` (the toolbar with the scale toggle, the cell size slider with its "fit"
    button (back to 0, automatic) and the invert checkbox), ``title``, ``colorbar_label``;
    plus ``error``/``progress`` of :class:`XaiWidget`. Labels too long for their cell are
    abbreviated with "…" and shown in full on hover; narrow cells put the probability on a
    second line. Each row is drawn on one canvas, only while it is near the viewport.

    Paging (:meth:`paging`, :meth:`show_rows`: a :class:`~xaiwidgets.DatasetExplanation` or
    the images of a confusion cell): ``page`` (from 0), ``page_size`` (rows per page; 0: no
    paging) and ``row_count`` (rows of all pages); the page shows "‹ rows 21–40 of 312 ›"
    buttons that move ``page``, and Python reads only the page shown into the data traits.

    Example::

        grid = AttributionGrid(images=x, values=sv.sum(axis=3), output_labels=names)
        AttributionGrid.from_explanation(explanation, top_k=3)
    """

    _bundle = "attribution_grid"

    images = NDArray(ndim=None, help="(n, h, w, c) images, any value range.")
    values = NDArray(ndim=None, help="(n, h, w, o) attributions summed over channels.")
    output_labels = traitlets.List(
        traitlets.List(traitlets.Unicode()), help="(n, o) name of each explained output."
    ).tag(sync=True)
    output_probabilities = NDArray(
        ndim=2, help="(n, o) probability of each explained output, or None."
    )
    row_titles = traitlets.List(traitlets.Unicode(), help="n titles above the image column.").tag(
        sync=True
    )
    scale_mode = traitlets.Enum(
        ["grid", "row"], "grid", help="'grid': one colour scale; 'row': one per image."
    ).tag(sync=True)
    true_columns = traitlets.List(
        traitlets.Int(), help="n output columns of the true classes (-1: not explained)."
    ).tag(sync=True)
    wrong_rows = traitlets.List(traitlets.Bool(), help="n flags: the prediction is wrong.").tag(
        sync=True
    )
    predicted_names = traitlets.List(
        traitlets.Unicode(), help="n names of the predicted classes."
    ).tag(sync=True)
    cell_size = traitlets.Int(
        0, min=0, max=1024, help="Cell width in CSS pixels; 0: from the image size and width."
    ).tag(sync=True)
    invert_image = traitlets.Bool(False, help="Draw the images inverted (-x).").tag(sync=True)
    show_colorbar = traitlets.Bool(True, help="Show the colour bar with its scale.").tag(sync=True)
    show_controls = traitlets.Bool(True, help="Show the toolbar above the grid.").tag(sync=True)
    title = traitlets.Unicode("", help="Title above the grid (text).").tag(sync=True)
    colorbar_label = traitlets.Unicode("attribution", help="Caption of the colour bar.").tag(
        sync=True
    )
    page = traitlets.Int(0, min=0, help="Page shown when paging (rows page*page_size...).").tag(
        sync=True
    )
    page_size = traitlets.Int(0, min=0, help="Rows per page when paging; 0: no paging.").tag(
        sync=True
    )
    row_count = traitlets.Int(0, min=0, help="Rows of all pages together (0: no paging).").tag(
        sync=True
    )

    _pager: tuple[Any, np.ndarray, int | None, Any] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check_consistent()

    def __repr__(self) -> str:
        shape = None if self.images is None else tuple(self.images.shape)
        outputs = None if self.values is None else self.values.shape[-1]
        return f"AttributionGrid(images={shape}, outputs={outputs})"

    # ------------------------------------------------------------------ validation
    @traitlets.validate("images")
    def _valid_images(self, proposal: dict[str, Any]) -> np.ndarray | None:
        return image_array(proposal["value"], "images", 4, finite=True)

    @traitlets.validate("values")
    def _valid_values(self, proposal: dict[str, Any]) -> np.ndarray | None:
        arr = proposal["value"]
        if arr is None:
            return None
        if arr.ndim == 5:
            arr = arr.sum(axis=3, dtype=np.float32)
        elif arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or 0 in arr.shape:
            raise traitlets.TraitError(
                f"values: expected (n, h, w, outputs) (or (n, h, w, c, outputs)), got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise traitlets.TraitError("values: contains NaN or infinite values")
        return np.ascontiguousarray(arr)

    def _inconsistency(self) -> str:
        """'' when the data traits agree, else what disagrees."""
        images, values = self.images, self.values
        if images is None or values is None:
            return ""
        n, h, w = images.shape[:3]
        if values.shape[:3] != (n, h, w):
            return f"values: expected shape ({n}, {h}, {w}, outputs) to match images {images.shape}, got {values.shape}"
        o = values.shape[3]
        if self.output_labels and (
            len(self.output_labels) != n or any(len(r) != o for r in self.output_labels)
        ):
            shape = (len(self.output_labels), {len(r) for r in self.output_labels})
            return f"output_labels: expected {n} rows of {o} names, got {shape[0]} rows of lengths {sorted(shape[1])}"
        probs = self.output_probabilities
        if probs is not None and probs.shape != (n, o):
            return f"output_probabilities: expected shape ({n}, {o}), got {probs.shape}"
        if self.row_titles and len(self.row_titles) != n:
            return f"row_titles: expected {n} strings, got {len(self.row_titles)}"
        for name in ("true_columns", "wrong_rows", "predicted_names"):
            entries = getattr(self, name)
            if entries and len(entries) != n:
                return f"{name}: expected {n} entries (one per image), got {len(entries)}"
        bad = [c for c in self.true_columns if not -1 <= c < o]
        if bad:
            return f"true_columns: expected output columns in -1..{o - 1}, got {bad[0]}"
        return ""

    @traitlets.observe(*_DATA_ORDER)
    def _on_data(self, change: dict[str, Any]) -> None:
        self._show_inconsistency(_SHAPE_ERRORS)

    # ------------------------------------------------------------------ paging
    @classmethod
    def paging(
        cls, source: Any, rows: Any = None, *, page_size: int = 20, top_k: int | None = None,
        **kwargs: Any,
    ) -> AttributionGrid:  # fmt: skip
        """A grid paging through ``source`` (a :class:`~xaiwidgets.DatasetExplanation`, or
        anything whose ``source[int_array]`` is an :class:`~xaiwidgets.Explanation`),
        ``page_size`` rows at a time; ``rows`` chooses which (default all, in order). The
        ``page`` trait (and the paging buttons in the page) moves; only the page shown is
        read. Other keywords as :meth:`from_explanation`."""
        grid = cls(**kwargs)
        grid.show_rows(source, rows, page_size=page_size, top_k=top_k)
        return grid

    def show_rows(
        self, source: Any, rows: Any = None, *, page_size: int | None = None,
        top_k: int | None = None, titles: Any = None,
    ) -> None:  # fmt: skip
        """Page through ``rows`` of ``source`` (see :meth:`paging`) from the first page.
        ``titles(rows) -> list[str]`` makes the row titles (default ``"#i"`` and the label).
        ``source=None`` stops paging (the data traits are left as they are)."""
        if source is None:
            self._pager = None
            with self.hold_sync():
                self.row_count, self.page_size, self.page = 0, 0, 0
            return
        idx = np.arange(len(source)) if rows is None else np.asarray(rows, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"rows: expected a 1-D list of row indices, got shape {idx.shape}")
        size = self.page_size or 20 if page_size is None else int(page_size)
        if size < 1:
            raise ValueError(f"page_size: expected a positive int, got {page_size}")
        self._pager = (source, idx, top_k, titles)
        with self.hold_sync():
            self.page_size, self.row_count, self.page = size, len(idx), 0
        self._load_page()

    @property
    def page_count(self) -> int:
        """Pages of the rows being paged through (1 without paging)."""
        if not self.page_size or not self.row_count:
            return 1
        return -(-self.row_count // self.page_size)

    @property
    def page_rows(self) -> np.ndarray:
        """Indices (in the source) of the rows on the page shown; empty without paging."""
        pager = getattr(self, "_pager", None)
        if pager is None:
            return np.zeros(0, np.int64)
        start = self.page * self.page_size
        return pager[1][start : start + self.page_size]

    @traitlets.validate("page")
    def _valid_page(self, proposal: dict[str, Any]) -> int:
        return int(min(max(0, proposal["value"]), self.page_count - 1))

    @traitlets.observe("page", "page_size")
    def _on_page(self, change: dict[str, Any]) -> None:
        if getattr(self, "_pager", None) is not None:
            if change["name"] == "page_size" and self.page != 0:
                self.page = 0  # observed again: loads page 0
                return
            self._load_page()

    def _load_page(self) -> None:
        source, idx, top_k, titles = self._pager
        rows = self.page_rows
        if len(rows) == 0:
            with self.hold_sync():
                self.values, self.images = None, None
            return
        try:
            e = source[rows]
            state = _grid_state(e if top_k is None else e.top_k(top_k))
        except Exception as exc:  # noqa: BLE001 - shown in the widget, which stays usable
            self.error = f"page {self.page + 1}: {type(exc).__name__}: {exc}"
            return
        made = titles(rows) if titles is not None else None
        label_titles = state["row_titles"]
        state["row_titles"] = made if made is not None else [
            f"#{int(i)}" + (f" · {t}" if label_titles else "")
            for i, t in zip(rows, label_titles or [""] * len(rows))
        ]  # fmt: skip
        with self.hold_sync():
            self.values = None  # so that no mix of two pages is ever checked or drawn
            for name in _DATA_ORDER:
                setattr(self, name, state[name])
            if self.error.startswith("page "):
                self.error = ""

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_explanation(
        cls, explanation: Explanation, *, top_k: int | None = None, **kwargs: Any
    ) -> AttributionGrid:
        """The grid of an :class:`~xaiwidgets.Explanation` (values summed over channels).

        ``top_k`` keeps, per image, the ``k`` most probable explained outputs in decreasing
        order (ranked label rows). Row titles show the true labels when the explanation has
        them; with true labels and predictions, the true class's column is marked and rows
        predicted wrong say so. Other keyword arguments set traits (``cell_size=100``,
        ``invert_image=True``)."""
        e = explanation if top_k is None else explanation.top_k(top_k)
        state = _grid_state(e)
        state.update(kwargs)
        return cls(**state)


def _grid_state(e: Explanation) -> dict[str, Any]:
    """The grid's data traits for explanation ``e`` (see :meth:`AttributionGrid.from_explanation`)."""
    probs = e.output_probabilities
    names = e.class_names

    def name(j: int) -> str:
        return names[j] if names is not None and 0 <= j < len(names) else str(j)

    titles: list[str] = []
    true_columns: list[int] = []
    wrong: list[bool] = []
    predicted_names: list[str] = []
    predicted = e.predicted
    if predicted is not None:
        predicted_names = [name(int(p)) for p in predicted]
    if e.labels is not None:
        titles = [f"label: {name(int(y))}" for y in e.labels]
        hit = e.output_indices == e.labels[:, None]
        true_columns = np.where(hit.any(axis=1), hit.argmax(axis=1), -1).tolist()
        if predicted is not None:
            wrong = (predicted != e.labels).tolist()
    state: dict[str, Any] = {
        "images": e.data,
        "values": e.values.sum(axis=3, dtype=np.float32),
        "output_labels": e.output_names,
        "output_probabilities": probs,
        "row_titles": titles,
        "true_columns": true_columns,
        "wrong_rows": wrong,
        "predicted_names": predicted_names,
    }
    return state


_SHAPE_ERRORS = (
    "values:",
    "output_labels:",
    "output_probabilities:",
    "row_titles:",
    "true_columns:",
    "wrong_rows:",
    "predicted_names:",
)
