"""The layers stay apart: an algorithm (every module of ``xaiwidgets/explainers/`` and
``xaiwidgets/faithfulness/``) reaches a model only through the backend protocol
(``xaiwidgets.backends``: ``wrap``, ``Backend`` and the public ``base`` helpers). Read from the
source (AST), every import counts, also one inside a function:

- no ML framework (torch, tensorflow, keras, tf_keras, jax, jaxlib, flax);
- no view (``xaiwidgets.widgets``): a result's widget comes from ``xaiwidgets._views``;
- no private backend module (``xaiwidgets.backends._*``) and no private name from a backend
  module; no ``importlib.import_module`` / ``__import__`` (a private module by its name);
- no private attribute of a backend (``self.backend._call``, ``backend._forward``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xaiwidgets"
FRAMEWORKS = {"torch", "tensorflow", "keras", "tf_keras", "jax", "jaxlib", "flax"}

#: Files that still break a rule, each with the issue that removes it (an xfail while they do,
#: a pass once they comply: then delete the entry). Empty when all comply.
KNOWN_EXCEPTIONS: dict[str, str] = {}


def algorithm_modules() -> list[Path]:
    return sorted((PACKAGE / "explainers").glob("*.py")) + sorted(
        (PACKAGE / "faithfulness").glob("*.py")
    )


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute module of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_private_backend(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 3 and parts[:2] == ["xaiwidgets", "backends"] and parts[2].startswith("_")


def violations(source: str, importer: str, is_package: bool = False) -> list[str]:
    """Every import of ``source`` (module ``importer``) that breaks a rule, as text."""
    found = []

    def check(module: str, line: int, what: str) -> None:
        root = module.split(".")[0]
        if root in FRAMEWORKS:
            found.append(f"line {line}: imports the framework {what}")
        elif module == "xaiwidgets.widgets" or module.startswith("xaiwidgets.widgets."):
            found.append(f"line {line}: imports the view {what}")
        elif _is_private_backend(module):
            found.append(f"line {line}: imports the private backend module {what}")

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(alias.name, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node.module, node.level, importer, is_package)
            check(module, node.lineno, module)
            backend = module == "xaiwidgets.backends" or module.startswith("xaiwidgets.backends.")
            for alias in node.names:
                if backend and alias.name.startswith("_") and not _is_private_backend(module):
                    found.append(
                        f"line {node.lineno}: imports the private name {alias.name} from {module}"
                    )
                elif module.startswith("xaiwidgets"):  # `from .. import widgets`
                    check(f"{module}.{alias.name}", node.lineno, f"{module}.{alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if "backend" in name and not node.attr.startswith("__"):
                found.append(f"line {node.lineno}: reads {name}.{node.attr}, a backend's private")
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__"):
                found.append(f"line {node.lineno}: imports a module by name ({name})")
    return found


@pytest.mark.parametrize("path", algorithm_modules(), ids=lambda p: p.name)
def test_algorithms_use_the_backend_protocol_only(path):
    rel = path.relative_to(ROOT).as_posix()
    found = violations(path.read_text(), _module_name(path), path.name == "__init__.py")
    if rel in KNOWN_EXCEPTIONS and found:
        pytest.xfail(KNOWN_EXCEPTIONS[rel])
    assert not found, f"{rel} reaches past the backend protocol:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import torch",
        "import jax.numpy as jnp",
        "def f():\n    import tensorflow as tf",
        "from flax import linen",
        "from keras import ops",
        "from ..widgets.influence_grid import InfluenceGrid",
        "from xaiwidgets.widgets import AttributionGrid",
        "from .. import widgets",
        "from ..backends._layout import pad_rows",
        "from ..backends import _layout",
        "from ..backends.base import _rows_text",
        "import xaiwidgets.backends._deeplift_torch",
        "import importlib\nimportlib.import_module('xaiwidgets.backends._deeplift_jax')",
        "def f(self, z):\n    return self.backend._call(z)",
        "out = backend._forward(z)",
    ],
)
def test_the_rules_catch_each_kind_of_violation(source):
    assert violations(source, "xaiwidgets.explainers.example")


@pytest.mark.parametrize(
    "source",
    [
        "from ..backends import Backend, wrap",
        "from ..backends.base import NonFiniteOutputError, check_finite",
        "from .._arrays import as_images",
        "from .base import Explainer",
        "from . import _fista",
        "import numpy as np\nfrom scipy.stats import rankdata",
        "from .._views import view_of",
        "out = self.backend.predict(x)\nself._cache = {}",
    ],
)
def test_the_rules_let_the_protocol_through(source):
    assert violations(source, "xaiwidgets.explainers.example") == []


def test_relative_imports_resolve_against_the_importer():
    assert _resolve("widgets", 1, "xaiwidgets.faithfulness", False) == "xaiwidgets.widgets"
    assert _resolve("backends._layout", 2, "xaiwidgets.explainers.deep", False) == (
        "xaiwidgets.backends._layout"
    )
    assert _resolve(None, 1, "xaiwidgets.explainers", True) == "xaiwidgets.explainers"


def test_a_result_gets_its_view_through_the_registry():
    from xaiwidgets._views import register_view, view_of

    class Unknown:
        pass

    with pytest.raises(TypeError, match="no view draws a Unknown"):
        view_of(Unknown())
    register_view("Unknown", lambda result, **kw: ("view", result, kw))
    try:
        r = Unknown()
        assert view_of(r, width=3) == ("view", r, {"width": 3})
    finally:
        from xaiwidgets import _views

        del _views._FACTORIES["Unknown"]
