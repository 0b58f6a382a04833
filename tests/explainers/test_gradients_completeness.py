"""Completeness of integrated gradients and expected gradients is checked after every call:
above the documented tolerance a warning names the steps (IG) or samples (expected gradients)
that would meet it, ``strict=True`` raises, and the diagnostics are in the Explanation's
params."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from xaiwidgets.explainers import GradientExplainer, IntegratedGradients
from xaiwidgets.explainers._completeness import (
    IncompleteAttributionError,
    IncompleteAttributionWarning,
)
from xaiwidgets.explainers.gradients import IG_TOLERANCE, steps_for_tolerance

torch = pytest.importorskip("torch")
models = pytest.importorskip("tests.backends.models")


def curved_net():
    """A smooth net with strong curvature along the path (tanh of a large convolution)."""
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(1, 4, 3)
    with torch.no_grad():
        conv.weight.mul_(12.0)
    return torch.nn.Sequential(
        conv, torch.nn.Tanh(), torch.nn.AdaptiveAvgPool2d(3), torch.nn.Flatten(),
        torch.nn.Linear(36, 4),
    )  # fmt: skip


@pytest.fixture(scope="module")
def x():
    return models.random_images(2, seed=3, shape=(10, 10, 1))


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", IncompleteAttributionWarning)
        return fn()


def test_few_steps_warn_and_name_the_steps_that_meet_the_tolerance(x):
    net = curved_net()
    with pytest.warns(IncompleteAttributionWarning, match=r"about steps=\d+ would meet it") as w:
        ex = IntegratedGradients(net, steps=2)(x, outputs=[0, 3])
    needed = int(re.search(r"steps=(\d+) would", str(w[0].message)).group(1))
    assert needed > 2
    assert ex.params["relative_completeness_error"] > IG_TOLERANCE
    assert ex.params["steps_for_tolerance"] == needed and ex.params["tolerance"] == IG_TOLERANCE
    # the named number of steps does meet it (a smooth path: error ~ steps^-2)
    ok = _quiet(lambda: IntegratedGradients(net, steps=needed)(x, outputs=[0, 3]))
    assert ok.params["relative_completeness_error"] <= IG_TOLERANCE
    assert ok.params["steps_for_tolerance"] is None


def test_many_steps_are_quiet_and_strict_raises(x):
    net = models.torch_cnn()
    digits = models.mnist_images(2)[0]
    ex = _quiet(lambda: IntegratedGradients(net, steps=400)(digits, outputs=[1]))
    assert ex.params["relative_completeness_error"] < IG_TOLERANCE
    with pytest.raises(IncompleteAttributionError, match="steps="):
        IntegratedGradients(net, steps=2, strict=True)(digits, outputs=[1])
    # the tolerance is a parameter: a loose one lets few steps through
    _quiet(lambda: IntegratedGradients(net, steps=2, tolerance=10.0)(digits, outputs=[1]))
    with pytest.raises(ValueError, match="tolerance"):
        IntegratedGradients(net, tolerance=0)


def test_steps_estimate_follows_the_measured_decay():
    # quadratic decay measured (error 4x larger at half the steps): sqrt of the ratio
    assert steps_for_tolerance(10, 0.04, 0.16, 0.01) == 20
    # linear (or unmeasured) decay: the ratio itself
    assert steps_for_tolerance(10, 0.04, 0.08, 0.01) == 40
    assert steps_for_tolerance(10, 0.04, None, 0.01) == 40


def test_expected_gradients_name_the_samples_and_strict_raises(x):
    net = curved_net()
    bg = models.random_images(6, seed=4, shape=(10, 10, 1))
    with pytest.warns(IncompleteAttributionWarning, match=r"nsamples >= \d+") as w:
        ex = GradientExplainer(net, bg, nsamples=2, seed=0)(x, outputs=[0])
    needed = int(re.search(r"nsamples >= (\d+)", str(w[0].message)).group(1))
    assert ex.params["nsamples_for_tolerance"] == needed > 2
    assert ex.params["relative_completeness_error"] > 0.05
    with pytest.raises(IncompleteAttributionError):
        GradientExplainer(net, bg, nsamples=2, seed=0, strict=True)(x, outputs=[0])
    # local smoothing: the sums estimate E f(x + noise), not f(x); recorded, not checked
    sm = _quiet(
        lambda: GradientExplainer(net, bg, nsamples=2, local_smoothing=0.5, strict=True)(
            x, outputs=[0]
        )
    )
    assert sm.params["nsamples_for_tolerance"] is None
    fx = sm.predictions[:, [0]]
    gap = fx - sm.base_values - sm.values.reshape(2, -1, 1).sum(1)
    assert sm.params["relative_completeness_error"] == pytest.approx(
        np.abs(gap).max() / np.abs(fx - sm.base_values).max(), rel=1e-3
    )
