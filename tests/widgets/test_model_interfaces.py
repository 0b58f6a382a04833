"""Every widget's synced traits and its TypeScript model interface name the same fields with
compatible types, and the interfaces have no index signature: a trait misspelt on either side
fails here (and, without ``[key: string]: unknown``, ``model.get("misspelt")`` fails ``tsc``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import anywidget
import pytest
import traitlets

import xaiwidgets.widgets as widgets_package
from xaiwidgets.widgets._ndarray_trait import NDArray

SRC = Path(__file__).resolve().parents[2] / "js" / "src"

#: widget class name -> (TypeScript file under js/src, name of its model interface)
INTERFACES = {
    "AttributionGrid": ("lib/attribution_rows.ts", "GridModel"),
    "CEMWidget": ("cem_widget.ts", "CEMModel"),
    "ExplainerComparison": ("comparison/model.ts", "ComparisonModel"),
    "InfluenceGrid": ("influence_grid.ts", "InfluenceModel"),
    "ReportTable": ("report_table.ts", "TableModel"),
    "ShapleyExplorer": ("shapley_explorer.ts", "ExplorerModel"),
}

_ANYWIDGET_TRAITS = set(anywidget.AnyWidget.class_trait_names(sync=True)) | {"_css", "_esm"}


def _widget_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.iter_modules(widgets_package.__path__, "xaiwidgets.widgets."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, anywidget.AnyWidget)
                and obj.__module__ == module.__name__
                and "_esm" in vars(obj)
            ):
                found[name] = obj
    return found


def _interface(path: str, name: str) -> str:
    text = (SRC / path).read_text()
    match = re.search(rf"export interface {name} \{{\n(.*?)\n\}}", text, re.S)
    assert match, f"no `export interface {name}` in js/src/{path}"
    return match.group(1)


def _fields(body: str) -> dict[str, str]:
    fields = {}
    for line in body.splitlines():
        line = line.split("//", 1)[0].strip()
        if line:
            key, _, ts_type = line.rstrip(";").partition(":")
            fields[key.strip()] = ts_type.strip()
    return fields


def _compatible(trait: traitlets.TraitType, ts_type: str) -> bool:
    if isinstance(trait, NDArray):
        return "SerializedArray" in ts_type
    if isinstance(trait, traitlets.Bool):
        return ts_type == "boolean"
    if isinstance(trait, traitlets.Int | traitlets.Float):
        return ts_type == "number"
    if isinstance(trait, traitlets.Enum):
        literals = set(re.findall(r'"([^"]*)"', ts_type))
        return ts_type == "string" or literals == {str(v) for v in trait.values}
    if isinstance(trait, traitlets.Unicode):
        return ts_type == "string"
    if isinstance(trait, traitlets.List | traitlets.Tuple):
        return ts_type.endswith("[]") or ts_type.startswith("Array<")
    if isinstance(trait, traitlets.Dict):
        return ts_type.startswith(("Record<", "Partial<", "{")) or ts_type[:1].isupper()
    return False


def test_every_widget_has_a_typed_model_interface():
    assert set(_widget_classes()) == set(INTERFACES)


@pytest.mark.parametrize("widget", sorted(INTERFACES))
def test_model_interface_matches_the_python_traits(widget):
    cls = _widget_classes()[widget]
    body = _interface(*INTERFACES[widget])
    assert "[key: string]" not in body, "an index signature lets a misspelt trait type-check"
    fields = _fields(body)
    traits = {k: t for k, t in cls.class_traits(sync=True).items() if k not in _ANYWIDGET_TRAITS}
    assert set(fields) == set(traits), (
        f"{widget}: only in Python {sorted(set(traits) - set(fields))}, "
        f"only in TypeScript {sorted(set(fields) - set(traits))}"
    )
    wrong = {
        k: (type(t).__name__, fields[k]) for k, t in traits.items() if not _compatible(t, fields[k])
    }
    assert not wrong, f"{widget}: trait type vs TypeScript type {wrong}"
