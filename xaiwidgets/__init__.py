"""xaiwidgets: interactive explanations of image classifiers in Jupyter.

``%load_ext xaiwidgets``, then explain a PyTorch, Keras 3, JAX/Flax or NumPy model and look at
the result as a widget. Importing this package imports no ML framework; explainers, maskers and
widgets load on first use (``xaiwidgets.PartitionExplainer``, ``xaiwidgets.ShapleyExplorer``...).
"""

from __future__ import annotations

from importlib import import_module
from importlib import metadata as _metadata

from ._show import show
from .backends import wrap
from .explanation import Explanation

try:
    __version__ = _metadata.version("xaiwidgets")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    **dict.fromkeys(
        [
            "CEMExplainer",
            "CEMResult",
            "DeepExplainer",
            "EigenCAM",
            "GradCAM",
            "GradCAMPlusPlus",
            "HiResCAM",
            "LayerCAM",
            "Occlusion",
            "ScoreCAM",
            "GradientExplainer",
            "IncompleteAttributionError",
            "IncompleteAttributionWarning",
            "InfluenceExplainer",
            "InfluenceResult",
            "IntegratedGradients",
            "MetricsReport",
            "PartitionExplainer",
            "PermutationExplainer",
            "Saliency",
            "SmoothGrad",
            "influence_maps",
            "metrics_report",
            "performance_maps",
        ],
        "xaiwidgets.explainers",
    ),
    **dict.fromkeys(
        [
            "AttributionGrid",
            "CEMWidget",
            "ExplainerComparison",
            "InfluenceGrid",
            "MetricsView",
            "ShapleyExplorer",
        ],
        "xaiwidgets.widgets",
    ),
    "Masker": "xaiwidgets.maskers",
    **dict.fromkeys(["DatasetExplanation", "explain_dataset"], "xaiwidgets.dataset_explanation"),
    "export_html": "xaiwidgets.export",
    **dict.fromkeys(
        [
            "deletion_curve",
            "insertion_curve",
            "mufidelity",
            "MuFidelity",
            "PerturbationCurve",
            "RandomisationCheck",
            "randomisation_check",
            "sparseness",
        ],
        "xaiwidgets.faithfulness",
    ),
}

__all__ = ["Explanation", "show", "wrap", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xaiwidgets' has no attribute {name!r}")


def load_ipython_extension(ipython):
    """``%load_ext xaiwidgets`` (see :mod:`xaiwidgets.extension`)."""
    from .extension import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext xaiwidgets``."""
    from .extension import unload_ipython_extension as _unload

    _unload(ipython)
