"""The anywidget views of xaiwidgets (one Python class + one ``js/src/<name>.ts`` each)."""

from ._base import MissingBundleError, XaiWidget
from .attribution_grid import AttributionGrid

__all__ = ["AttributionGrid", "MissingBundleError", "XaiWidget"]
