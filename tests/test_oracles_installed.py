"""The oracles the explainer and metric tests compare against are installed (``make
install`` puts them in the test environment without their dependencies): a missing one fails
here instead of silently skipping its comparisons."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["pytorch_grad_cam", "captum.attr", "quantus", "shap"])
def test_oracle_imports(name):
    assert importlib.import_module(name) is not None
