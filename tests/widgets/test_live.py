"""LiveWidget: settings keys, one cache, progress, errors in place, supersede, wait/close."""

import threading
import time

import numpy as np
import pytest
import traitlets

from xaiwidgets._progress import RunControl
from xaiwidgets.widgets import CEMWidget, MetricsView, ShapleyExplorer
from xaiwidgets.widgets._base import XaiWidget
from xaiwidgets.widgets._live import LiveWidget


class Squares(LiveWidget, XaiWidget):
    """A toy live view: draws ``n ** 2`` for the setting ``n`` (negative ``n`` is invalid)."""

    live_settings = ("n", "offset")
    n = traitlets.Int(1).tag(sync=True)
    offset = traitlets.Int(0).tag(sync=True)
    drawn = traitlets.Int(-1).tag(sync=True)

    def __init__(self, **kw):
        self.calls, self.draws, self.gates = [], [], {}
        self.started = threading.Event()
        super().__init__(**kw)
        self._request()

    def _live_key(self):
        if self.n < 0:
            raise ValueError(f"n: expected a number >= 0, got {self.n}")
        return (self.n, self.offset)

    def _live_job(self, lane, key):
        n, offset = key

        def job(progress, cancel):
            self.calls.append(key)
            gate = self.gates.get(n)
            if gate is not None:  # blocks until released, then ignores its cancel event
                self.started.set()
                gate.wait(5)
                return n * n + offset
            if n == 13:
                raise RuntimeError("unlucky")
            with RunControl(progress, cancel) as ctl:
                for i in range(10):
                    time.sleep(0.002)
                    ctl.step(i / 10)
            return n * n + offset

        return job

    def _live_draw(self, lane, key, result, cached):
        self.draws.append((key, result, cached))
        self.drawn = result


def test_a_setting_change_runs_in_the_background_and_wait_returns_the_view():
    w = Squares(n=3)
    assert w.wait(5) is w
    assert w.drawn == 9 and w.progress == -1.0 and w.error == ""
    seen = []
    w.observe(lambda ch: seen.append(ch["new"]), "progress")
    w.n = 4
    assert w.wait(5).drawn == 16
    assert seen[0] == 0.0 and any(0.0 < p < 1.0 for p in seen) and seen[-1] == -1.0
    w.close()


def test_the_same_key_starts_nothing_and_an_earlier_key_comes_from_the_cache():
    w = Squares(n=2).wait(5)
    calls = len(w.calls)
    w.update(n=2, offset=0)  # the current key again: nothing starts
    w.wait(5)
    assert len(w.calls) == calls
    w.update(n=5, offset=1)  # two settings, one request
    w.wait(5)
    assert w.calls[-1] == (5, 1) and len(w.calls) == calls + 1 and w.drawn == 26
    w.n = 2
    w.offset = 0  # back to the first key: drawn at once, no call
    assert w.drawn == 4 and w.draws[-1] == ((2, 0), 4, True) and len(w.calls) == calls + 1
    w.clear_cache()
    w.n = 5
    w.offset = 1
    w.wait(5)
    assert len(w.calls) == calls + 2  # the cache was cleared: computed again
    with pytest.raises(TypeError, match="unknown setting"):
        w.update(m=1)
    w.close()


def test_the_key_on_its_way_is_not_started_again():
    """A browser message setting several traits fires one observer per trait: the requests
    after the first have the same key while it runs and must not restart it."""
    gate = threading.Event()
    w = Squares(n=1).wait(5)
    w.gates[6] = gate
    w.n = 6
    assert w.started.wait(5)
    w.update(n=6)  # the same key while it runs
    w._request()
    gate.set()
    w.wait(5)
    assert w.calls.count((6, 0)) == 1 and w.drawn == 36
    w.close()


def test_a_newer_request_supersedes_and_the_stale_result_is_never_drawn():
    gate = threading.Event()
    w = Squares(n=1).wait(5)
    w.gates[7] = gate
    w.n = 7  # blocks in the worker until released
    assert w.started.wait(5) and w.progress == 0.0
    w.n = 8  # supersedes it
    gate.set()
    w.wait(5)
    assert w.drawn == 64 and all(key != (7, 0) for key, _, _ in w.draws)
    assert (7, 0) in w.calls
    w.n = 7  # the superseded run's result was kept: drawn from the cache
    assert w.drawn == 49 and w.draws[-1][2] is True
    w.close()


def test_errors_show_in_place_and_the_view_stays_usable():
    w = Squares(n=2).wait(5)
    w.n = -1  # invalid: shown at once, nothing runs, the last picture stays
    assert w.error.startswith("ValueError: n: expected") and w.progress == -1.0
    assert w.drawn == 4
    w.n = 13  # valid, but the job fails
    w.wait(5)
    assert w.error == "RuntimeError: unlucky" and w.progress == -1.0 and w.drawn == 4
    w.n = 3
    w.wait(5)
    assert w.error == "" and w.drawn == 9
    w.close()


def test_close_cancels_the_run_and_nothing_lands_after():
    gate = threading.Event()
    w = Squares(n=1).wait(5)
    w.gates[9] = gate
    w.n = 9
    assert w.started.wait(5)
    w.close()
    gate.set()
    time.sleep(0.1)
    assert w.drawn == 1


def test_every_live_view_is_a_live_widget_whose_wait_returns_the_view():
    for cls in (ShapleyExplorer, CEMWidget, MetricsView):
        assert issubclass(cls, LiveWidget)
        assert cls.wait is LiveWidget.wait and cls.update is LiveWidget.update
    y = np.array([0, 1, 1, 0])
    view = MetricsView(y, np.eye(2)[[0, 1, 0, 0]])
    assert view.wait(1) is view
    view.close()
