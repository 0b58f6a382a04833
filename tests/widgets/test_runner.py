"""LatestRunner: superseded runs are cancelled and never delivered; cache hits are instant."""

import threading
import time

import pytest

from xaiwidgets._progress import RunControl
from xaiwidgets.widgets._runner import LatestRunner


class Recorder:
    def __init__(self):
        self.results, self.errors, self.progress = [], [], []
        self.done = threading.Event()

    def result(self, key, value):
        self.results.append((key, value))
        self.done.set()

    def error(self, key, exc):
        self.errors.append((key, exc))
        self.done.set()


def slow_job(value, steps=50, delay=0.01, started=None):
    def fn(progress, cancel):
        if started is not None:
            started.set()
        with RunControl(progress, cancel) as ctl:
            for i in range(steps):
                time.sleep(delay)
                ctl.step(i / steps)
        return value

    return fn


def test_newer_request_supersedes_older():
    rec = Recorder()
    runner = LatestRunner(rec.result, rec.error, rec.progress.append)
    started = threading.Event()
    first = runner.submit("a", slow_job("A", started=started))
    started.wait(2)
    runner.submit("b", slow_job("B", steps=3))
    runner.wait(5)
    first.result(5)
    assert rec.results == [("b", "B")]  # "A" was cancelled and never delivered
    assert not runner.cached("a") and runner.cached("b")
    runner.close()


def test_rapid_sequence_ends_on_last_choice():
    rec = Recorder()
    runner = LatestRunner(rec.result, rec.error)
    for key in ["blur", "telea", "ns", "blur", "constant"]:
        runner.submit(key, slow_job(key.upper(), steps=5))
    runner.wait(5)
    assert rec.results[-1] == ("constant", "CONSTANT")
    assert all(k == "constant" for k, _ in rec.results)
    runner.close()


def test_cache_hit_is_delivered_without_recomputing():
    rec = Recorder()
    runner = LatestRunner(rec.result, rec.error)
    calls = []

    def fn(progress, cancel):
        calls.append(1)
        return 42

    runner.submit("k", fn)
    runner.wait(5)
    assert runner.submit("k", fn) is None
    assert calls == [1] and rec.results == [("k", 42), ("k", 42)]
    runner.close()


def test_errors_are_reported_and_runner_stays_usable():
    rec = Recorder()
    runner = LatestRunner(rec.result, rec.error)

    def bad(progress, cancel):
        raise ValueError("masker: expected blur(kh,kw), got 'blurr'")

    runner.submit("bad", bad)
    runner.wait(5)
    assert rec.errors and "blurr" in str(rec.errors[0][1])
    runner.submit("good", lambda progress, cancel: "ok")
    runner.wait(5)
    assert rec.results == [("good", "ok")]
    runner.close()


@pytest.mark.parametrize("steps", [20])
def test_progress_reaches_listener(steps):
    rec = Recorder()
    runner = LatestRunner(rec.result, rec.error, rec.progress.append)
    runner.submit("p", slow_job("P", steps=steps, delay=0.001))
    runner.wait(5)
    assert rec.progress and rec.progress == sorted(rec.progress)
    runner.close()
