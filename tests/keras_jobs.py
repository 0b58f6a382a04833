"""ONE Keras-on-JAX interpreter for every test on the JAX Keras backend (the Keras backend is
fixed per process, by ``KERAS_BACKEND`` before ``import keras``).

A test declares its code as a job with :func:`keras_jax_job` (which also marks the test) and
takes the ``keras_jax`` fixture of ``tests/conftest.py``: a :class:`JobResult` whose
``stdout`` fails the test with the job's traceback when the job raised. The session's jobs, in the order of their tests, run
in one interpreter (:class:`KerasJobs`) started as soon as the tests are collected and left to
run in the background: each test waits only for its own job. Keras', JAX's and XLA's start-up
(5-15 s an interpreter) is paid once a session, and the jobs' compiles overlap the tests that
run meanwhile in the pytest process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

from tests.keras_apps import ROOT

#: the jobs that tests declared with :func:`keras_jax_job`: name -> (dedented code, argv)
KERAS_JAX_JOBS: dict[str, tuple[str, tuple[str, ...]]] = {}

#: how each job's result line starts on the interpreter's stdout
_MARK = "@@keras-job@@"

#: the interpreter: reads the jobs as one JSON line, runs each as ``__main__`` with its own
#: ``sys.argv``, captured stdout and Keras' seed set to 0 (the random initial weights do not
#: depend on the jobs before it), prints its result line, then clears Keras' session (fresh
#: layer names, as in a new process)
_RUNNER = """
import contextlib, gc, io, json, sys, traceback
import keras
for name, code, args in json.loads(sys.stdin.readline()):
    out = io.StringIO()
    sys.argv = ["-c", *args]
    keras.utils.set_random_seed(0)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<" + name + ">", "exec"), {"__name__": "__main__"})
        error = None
    except BaseException:
        error = traceback.format_exc()
    result = {"name": name, "stdout": out.getvalue(), "error": error}
    print(MARK + json.dumps(result), flush=True)
    keras.backend.clear_session()
    gc.collect()
"""


def keras_jax_job(name: str, code: str, *args: str):
    """Declare ``code`` (run with ``sys.argv[1:] == args``) as the job ``name`` of the shared
    Keras-on-JAX interpreter and return the ``keras_jax`` mark that ties a test to it."""
    import pytest

    KERAS_JAX_JOBS[name] = (textwrap.dedent(code), tuple(args))
    return pytest.mark.keras_jax(name)


class JobResult:
    """One job's outcome: ``error`` (its traceback, or None) and ``stdout``, which raises an
    ``AssertionError`` with that traceback when the job failed (a test reading it fails)."""

    def __init__(self, name: str, stdout: str, error: str | None):
        self.name, self.error, self._stdout = name, error, stdout

    @property
    def stdout(self) -> str:
        assert self.error is None, f"job {self.name} failed:\n{self.error[-4000:]}"
        return self._stdout


class KerasJobs:
    """Run ``jobs`` (name -> (code, argv)), in order, in one fresh interpreter with
    ``KERAS_BACKEND=keras_backend`` and the repository root on ``PYTHONPATH``, started now and
    read in the background. :meth:`result` waits for one job's :class:`JobResult`; when the interpreter died or ``timeout`` seconds (from the start)
    passed first, ``error`` says so, with its stderr's tail."""

    def __init__(
        self,
        jobs: dict[str, tuple[str, tuple[str, ...]]],
        keras_backend: str,
        timeout: float = 3600,
    ):
        import os

        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _RUNNER.replace("MARK", repr(_MARK))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=dict(os.environ, KERAS_BACKEND=keras_backend, PYTHONPATH=ROOT),
            cwd=ROOT,
            text=True,
        )
        payload = [[name, code, list(args)] for name, (code, args) in jobs.items()]
        self._proc.stdin.write(json.dumps(payload) + "\n")
        self._proc.stdin.close()
        self._deadline = time.monotonic() + timeout
        self._results: dict[str, dict] = {}
        self._exited = False
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            if line.startswith(_MARK):
                result = json.loads(line[len(_MARK) :])
                with self._changed:
                    self._results[result["name"]] = result
                    self._changed.notify_all()
        self._proc.wait()
        with self._changed:
            self._exited = True
            self._changed.notify_all()

    def result(self, name: str) -> dict:
        with self._changed:
            self._changed.wait_for(
                lambda: name in self._results or self._exited,
                timeout=max(0.0, self._deadline - time.monotonic()),
            )
            if name in self._results:
                result = self._results[name]
                return JobResult(name, result["stdout"], result["error"])
            why = f"exited {self._proc.returncode}" if self._exited else "timed out"
        self._stderr.seek(0)
        tail = self._stderr.read()[-4000:]
        return JobResult(name, "", f"the Keras interpreter {why} before job {name}:\n{tail}")

    def close(self) -> None:
        """Stop the interpreter if it still runs (jobs nobody waited for) and free its files."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._stderr.close()
