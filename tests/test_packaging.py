"""Extras name supported ranges, CI pins exact versions in its own constraints file, and the
test command also runs the backend contract suite on the newest framework releases."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "torchvision", "tensorflow-cpu", "keras", "jax", "flax")


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs.extend(extra)
    return reqs


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()


def test_extras_give_ranges_not_exact_pins():
    for req in _requirements():
        if _name(req) == "xaiwidgets":
            continue
        assert "==" not in req, f"{req!r}: extras name a supported range; pin in constraints.txt"
        assert "<" not in req or _name(req) not in FRAMEWORKS, f"{req!r}: no upper cap"


def test_ci_pins_every_framework_in_the_constraints_file():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    for fw in FRAMEWORKS:
        assert pins.get(fw), f"constraints.txt must pin {fw}"
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile
    test_rule = re.search(r"^test:(.*)$", makefile, re.M).group(1)
    assert "test-newest" in test_rule.split()
    newest = makefile[makefile.index("test-newest:") :]
    assert "constraints" not in newest.split("\n\n")[0]
    assert "tests/backends" in newest
