"""The top-level namespace: every advertised name resolves, lazily, and imports no framework."""

import subprocess
import sys

import pytest

import xaiwidgets


@pytest.mark.parametrize("name", sorted(xaiwidgets._LAZY))
def test_lazy_exports_resolve(name):
    obj = getattr(xaiwidgets, name)
    assert obj.__name__ == name


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        xaiwidgets.Nope  # noqa: B018


def test_explainers_and_widgets_import_no_framework():
    code = (
        "import sys, xaiwidgets\n"
        "xaiwidgets.PartitionExplainer, xaiwidgets.ShapleyExplorer, xaiwidgets.CEMWidget\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'keras', 'flax') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
