"""Optional frameworks stay optional: `import xaiwidgets` (and every module that is not a
framework backend) imports no ML framework, and a missing framework is an ImportError naming
the extra to install. Run in fresh interpreters, since this test session imports them all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ("torch", "tensorflow", "keras", "tf_keras", "jax", "flax")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_xaiwidgets_imports_no_framework():
    proc = _python(
        f"""
        import importlib, pkgutil, sys
        import xaiwidgets
        def framework_module(name):  # backends named after a framework import it on purpose
            leaf = name.rsplit(".", 1)[-1]
            return name.startswith("xaiwidgets.backends.") and any(
                fw in leaf for fw in ("torch", "keras", "tensorflow", "jax", "flax")
            )

        for info in pkgutil.walk_packages(xaiwidgets.__path__, "xaiwidgets."):
            if not framework_module(info.name):
                importlib.import_module(info.name)
        print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_missing_framework_names_the_extra_to_install():
    proc = _python(
        f"""
        import sys
        for name in {FRAMEWORKS!r}:
            sys.modules[name] = None  # as if not installed
        from xaiwidgets.backends import wrap

        def f(x):
            return x

        for framework, extra in [("torch", "torch"), ("tensorflow", "tensorflow"),
                                 ("keras", "tensorflow"), ("jax", "jax")]:
            try:
                wrap(f, framework=framework)
            except ImportError as exc:
                assert f"pip install 'xaiwidgets[{{extra}}]'" in str(exc), str(exc)
            else:
                raise AssertionError(framework + " did not raise")
        try:
            from xaiwidgets.backends.torch_backend import TorchBackend
        except ImportError as exc:
            assert "pip install 'xaiwidgets[torch]'" in str(exc), str(exc)
        else:
            raise AssertionError("torch_backend imported without torch")
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
