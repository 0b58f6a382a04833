"""Attribution and model-level explainers, each written once against the backend protocol."""

from ._cem_result import CEMResult
from ._completeness import IncompleteAttributionError, IncompleteAttributionWarning
from ._influence_result import InfluenceResult
from ._regions import BudgetCappedWarning
from .base import Explainer, select_outputs
from .cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM
from .cem import CEMExplainer
from .classification import MetricsReport, metrics_from_model, metrics_report
from .deep import DeepExplainer
from .gradients import GradientExplainer, IntegratedGradients, Saliency, SmoothGrad
from .influence import InfluenceExplainer, influence_maps
from .occlusion import Occlusion
from .partition import PartitionExplainer
from .performance import performance_maps
from .permutation import PermutationExplainer

__all__ = [
    "BudgetCappedWarning",
    "Explainer",
    "IncompleteAttributionError",
    "IncompleteAttributionWarning",
    "select_outputs",
    "InfluenceExplainer",
    "InfluenceResult",
    "influence_maps",
    "performance_maps",
    "MetricsReport",
    "metrics_from_model",
    "metrics_report",
    "PartitionExplainer",
    "PermutationExplainer",
    "CEMExplainer",
    "CEMResult",
    "DeepExplainer",
    "GradientExplainer",
    "IntegratedGradients",
    "Saliency",
    "SmoothGrad",
    "GradCAM",
    "GradCAMPlusPlus",
    "HiResCAM",
    "LayerCAM",
    "EigenCAM",
    "ScoreCAM",
    "Occlusion",
]
