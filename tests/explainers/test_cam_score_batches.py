"""Score-CAM's masked images go to the model in calls within the backend's forward rows
(``batch_size`` when given) and paced to about half a second: a slow model gets small calls, a
cancel is seen before the next call, and the maps do not depend on the calls' sizes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xaiwidgets.explainers.cam as cam  # noqa: E402
from xaiwidgets._progress import Cancelled  # noqa: E402
from xaiwidgets.explainers._paced import CALL_SECONDS, PROBE_ROWS  # noqa: E402


class Counted(torch.nn.Module):
    """A small CNN with 12 channels at ``conv``, recording the rows of every call; each call
    sleeps ``per_image`` seconds an image."""

    def __init__(self, per_image=0.0):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 12, 3, padding=1)
        self.head = torch.nn.Linear(12, 5)
        self.per_image = per_image
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(len(x))
        time.sleep(self.per_image * len(x))
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture
def images():
    return np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)


def masked_calls(net, n, channels=12):
    """The calls of Score-CAM's masked images: the last ones, ``n * channels`` rows in all."""
    calls, total = [], 0
    for c in reversed(net.calls):
        if total == n * channels:
            break
        calls.insert(0, c)
        total += c
    assert total == n * channels, net.calls
    return calls


def test_calls_within_the_backends_forward_rows(images):
    net = Counted()
    got = cam.ScoreCAM(net, "conv")(images, top_k=2)
    calls = masked_calls(net, len(images))
    assert calls[0] == PROBE_ROWS and max(calls) == 12, calls  # a fast model: full calls
    # a batch_size given is kept, and the maps do not depend on the calls' sizes
    net.calls.clear()
    again = cam.ScoreCAM(net, "conv", batch_size=5)(images, outputs=got.output_indices)
    assert masked_calls(net, len(images)) == [5, 5, 2] * 3
    np.testing.assert_allclose(got.values, again.values, rtol=1e-5, atol=1e-7)


def test_a_given_batch_size_is_kept_for_a_slow_model(images):
    net = Counted(0.1)  # a call of 4 masked images takes 0.4 s, of 12 1.2 s
    cam.ScoreCAM(net, "conv", batch_size=12)(images[:1], outputs=[1])
    assert masked_calls(net, 1) == [12]


def test_a_slow_model_gets_calls_of_about_half_a_second(images):
    per_image = 0.1  # a call of 12 masked images takes 1.2 s
    net = Counted(per_image)
    got = cam.ScoreCAM(net, "conv")(images[:1], outputs=[[1]])
    calls = masked_calls(net, 1)
    assert calls[0] == PROBE_ROWS
    # at the probe's rate (0.1 s an image, or slower on a busy machine) 5 images or fewer
    assert all(c * per_image <= CALL_SECONDS for c in calls[1:]), calls
    assert len(calls) >= 3, calls
    fast = Counted()
    fast.load_state_dict(net.state_dict())
    again = cam.ScoreCAM(fast, "conv")(images[:1], outputs=[[1]])
    np.testing.assert_allclose(got.values, again.values, rtol=1e-5, atol=1e-7)


def test_cancel_is_seen_before_the_next_call(images):
    net = Counted()
    cancel = threading.Event()
    seen: list = []

    def progress(fraction):
        seen.append(fraction)
        if 0 < fraction < 1:
            cancel.set()  # during the first image's masked calls

    ex = cam.ScoreCAM(net, "conv", batch_size=4)
    with pytest.raises(Cancelled):
        ex(images, outputs=[0], progress=progress, cancel=cancel)
    assert net.calls[-1] == 4  # the first masked call, then no other
    assert seen == [4 / 12 / len(images)]
