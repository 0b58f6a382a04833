"""`InfluenceGrid`: dataset-level influence (or performance) maps, one per class.

The interactive view of :func:`~xaiwidgets.explainers.influence_maps` (ethik's
``plot_influence``) and :func:`~xaiwidgets.explainers.performance_maps` (``plot_performance``).
Each class gets one map: the change of the mean predicted probability of that class when a
pixel is saturated rather than desaturated over the test set (red: saturating the pixel makes
the class more likely, blue: less likely). All maps share one colour scale symmetric around
0, so they compare with each other; a colour bar gives the numbers. A performance map is the
same picture with one map, the change of the metric.

Interaction, all in the browser: hovering a map reads out the pixel (x, y), its value and the
mean pixel value; the toolbar sets the cell width (ethik's ``cell_width``) and whether the
faint mean image shows under the maps; clicking a class opens its map large with the test
set's mean image beside it (``selected`` holds the opened class; clicking it again, or the
close button, closes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from .._deprecation import renamed_kwargs, warn_renamed
from .._views import register_view
from ._base import XaiWidget, image_array
from ._ndarray_trait import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from ..explainers._influence_result import InfluenceResult


class InfluenceGrid(XaiWidget):
    """Grid of per-class influence maps with a shared symmetric colour scale.

    Shapes (k maps of h x w pixels):

    - ``maps`` ``(k, h, w)``: the maps. ``(k, h, w, c)`` maps (``channels="separate"``) are
      averaged over the channels on assignment: one coloured pixel shows one number.
      ``(h, w)`` is one map.
    - ``class_names`` ``k`` strings, the titles of the maps (shown as text, never HTML).
    - ``mean_image`` ``(h, w, c)`` or ``(h, w)`` or ``None``: the mean image of the test set,
      drawn faintly under the maps and beside the opened map.
    - ``base_values`` ``(k,)`` or ``None``: the unweighted value of each map's quantity (the
      mean predicted probability of the class, or the metric), shown on hover.

    Display traits: ``cell_size`` (CSS pixels per map, default 120; ethik's ``cell_width``,
    which is the deprecated spelling here),
    ``columns`` (maps per row; 0 = automatic: up to 5), ``show_mean_image`` (the faint mean
    image under the maps), ``selected`` (index of the class opened large, -1 for none;
    settable from Python), ``detail_width`` (width of the opened map), ``title``,
    ``colorbar_label``, ``value_label`` (the name of a map value in the tooltip),
    ``show_controls``; plus ``error``/``progress`` of :class:`XaiWidget`.

    Example::

        result = InfluenceExplainer()(x_test, probabilities=y_pred)
        InfluenceGrid.from_result(result, cell_size=100)
    """

    _bundle = "influence_grid"

    maps = NDArray(ndim=None, help="(k, h, w) maps, one per class (or one for a metric).")
    class_names = traitlets.List(traitlets.Unicode(), help="k titles of the maps.").tag(sync=True)
    mean_image = NDArray(ndim=None, help="(h, w, c) mean image of the test set, or None.")
    base_values = NDArray(ndim=1, help="(k,) unweighted value of each map's quantity, or None.")
    cell_size = traitlets.Int(120, min=16, max=1024, help="Width of a map in CSS pixels.").tag(
        sync=True
    )
    columns = traitlets.Int(0, min=0, help="Maps per row; 0 chooses (at most 5).").tag(sync=True)
    show_mean_image = traitlets.Bool(True, help="Draw the mean image faintly under the maps.").tag(
        sync=True
    )
    selected = traitlets.Int(-1, min=-1, help="Index of the class opened large; -1 for none.").tag(
        sync=True
    )
    detail_width = traitlets.Int(
        280, min=32, max=2048, help="Width of the opened map in CSS pixels."
    ).tag(sync=True)
    title = traitlets.Unicode("", help="Title above the grid (text).").tag(sync=True)
    colorbar_label = traitlets.Unicode("influence", help="Caption of the colour bar.").tag(
        sync=True
    )
    value_label = traitlets.Unicode(
        "influence", help="Name of a map value in the hover read-out."
    ).tag(sync=True)
    base_label = traitlets.Unicode(
        "mean probability", help="Name of the base value in the hover read-out."
    ).tag(sync=True)
    show_controls = traitlets.Bool(True, help="Show the toolbar above the grid.").tag(sync=True)

    @renamed_kwargs(cell_width="cell_size")
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check_consistent()

    @property
    def cell_width(self) -> int:
        """Deprecated spelling of :attr:`cell_size`."""
        warn_renamed("InfluenceGrid", "cell_width", "cell_size")
        return self.cell_size

    @cell_width.setter
    def cell_width(self, value: int) -> None:
        warn_renamed("InfluenceGrid", "cell_width", "cell_size")
        self.cell_size = value

    def __repr__(self) -> str:
        shape = None if self.maps is None else tuple(self.maps.shape)
        return f"InfluenceGrid(maps={shape}, classes={self.class_names})"

    # ------------------------------------------------------------------ validation
    @traitlets.validate("maps")
    def _valid_maps(self, proposal: dict[str, Any]) -> np.ndarray | None:
        arr = proposal["value"]
        if arr is None:
            return None
        if arr.ndim == 4:
            arr = arr.mean(axis=3, dtype=np.float32)
        elif arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or 0 in arr.shape:
            raise traitlets.TraitError(
                f"maps: expected (k, h, w) (or (k, h, w, c), or one (h, w) map), "
                f"got shape {arr.shape}"
            )
        return np.ascontiguousarray(arr)

    @traitlets.validate("mean_image")
    def _valid_mean_image(self, proposal: dict[str, Any]) -> np.ndarray | None:
        return image_array(proposal["value"], "mean_image", 3)

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: dict[str, Any]) -> int:
        k = proposal["value"]
        n = 0 if self.maps is None else self.maps.shape[0]
        if k >= n and k != -1:
            raise traitlets.TraitError(f"selected: expected -1 or a class index < {n}, got {k}")
        return k

    def _inconsistency(self) -> str:
        """'' when the data traits agree, else what disagrees."""
        if self.maps is None:
            return ""
        k, h, w = self.maps.shape
        if self.class_names and len(self.class_names) != k:
            return f"class_names: expected {k} names (one per map), got {len(self.class_names)}"
        mean = self.mean_image
        if mean is not None and mean.shape[:2] != (h, w):
            return f"mean_image: expected ({h}, {w}, c) to match the maps, got {mean.shape}"
        base = self.base_values
        if base is not None and base.shape != (k,):
            return f"base_values: expected shape ({k},), got {base.shape}"
        return ""

    @traitlets.observe("maps", "class_names", "mean_image", "base_values")
    def _on_data(self, change: dict[str, Any]) -> None:
        self._show_inconsistency(_SHAPE_ERRORS)
        if self.maps is not None and self.selected >= self.maps.shape[0]:
            self.selected = -1

    # ------------------------------------------------------------------ API
    def open_class(self, key: int | str) -> None:
        """Open the map of one class large (by index or by name)."""
        if isinstance(key, str):
            if key not in self.class_names:
                raise KeyError(f"unknown class {key!r}; classes are {self.class_names}")
            key = self.class_names.index(key)
        self.selected = int(key)

    def close_class(self) -> None:
        """Close the opened map (``selected = -1``)."""
        self.selected = -1

    @classmethod
    @renamed_kwargs(cell_width="cell_size")
    def from_result(cls, result: InfluenceResult, **kwargs: Any) -> InfluenceGrid:
        """The grid of an :class:`~xaiwidgets.explainers.InfluenceResult` (influence maps or a
        performance map). Other keyword arguments set traits (``cell_size=100``...)."""
        n = int(getattr(result, "n_samples", 0) or 0)
        alpha = getattr(result, "alpha", None)
        where = f"{n:,} images" + (f", α = {alpha:g}" if alpha is not None else "")
        if getattr(result, "kind", "influence") == "performance":
            name = result.metric or (result.class_names[0] if result.class_names else "metric")
            state: dict[str, Any] = {
                "title": f"Performance map of {name} ({where})",
                "colorbar_label": f"Δ {name}",
                "value_label": f"Δ {name}",
                "base_label": name,
            }
        else:
            state = {
                "title": f"Influence of each pixel on the predicted probabilities ({where})",
                "colorbar_label": "Δ probability",
                "value_label": "influence",
                "base_label": "mean probability",
            }
        state.update(
            maps=result.maps,
            class_names=list(result.class_names),
            mean_image=result.mean_image,
            base_values=np.asarray(result.base, dtype=np.float32),
        )
        state.update(kwargs)
        return cls(**state)


def influence_widget(result: InfluenceResult, **kwargs: Any) -> InfluenceGrid:
    """``InfluenceGrid.from_result(result, **kwargs)``, for ``InfluenceResult.widget()``."""
    return InfluenceGrid.from_result(result, **kwargs)


_SHAPE_ERRORS = ("class_names:", "mean_image:", "base_values:")


register_view("InfluenceResult", influence_widget)  # InfluenceResult.widget()
