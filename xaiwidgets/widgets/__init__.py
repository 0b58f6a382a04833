"""The anywidget views of xaiwidgets (one Python class + one ``js/src/<name>.ts`` each)."""

from .._views import register_view
from . import result_views  # noqa: F401 - registers the views of CEM results and curves
from ._base import MissingBundleError, XaiWidget
from ._live import LiveWidget
from .attribution_grid import AttributionGrid
from .cem_widget import CEMWidget
from .explainer_comparison import ExplainerComparison
from .influence_grid import InfluenceGrid
from .shapley_explorer import ShapleyExplorer

__all__ = [
    "AttributionGrid",
    "CEMWidget",
    "ExplainerComparison",
    "InfluenceGrid",
    "LiveWidget",
    "MetricsView",
    "MissingBundleError",
    "ShapleyExplorer",
    "XaiWidget",
]


def _metrics_view(report, **kwargs):
    from .metrics_view import MetricsView

    return MetricsView.from_report(report, **kwargs)


register_view("MetricsReport", _metrics_view)  # MetricsReport.widget(); bqplot on first use
# DatasetExplanation.widget(): a grid paging through the rows on disk
register_view("DatasetExplanation", AttributionGrid.paging)


def __getattr__(name: str):
    # MetricsView is built on bqplot (which imports pandas): loaded on first use only
    if name == "MetricsView":
        from .metrics_view import MetricsView

        return MetricsView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
