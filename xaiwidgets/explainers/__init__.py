"""Attribution and model-level explainers, each written once against the backend protocol."""

from .base import Explainer, select_outputs

__all__ = ["Explainer", "select_outputs"]
