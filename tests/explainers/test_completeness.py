"""The completeness check: measured, never forced; warns or raises above the tolerance."""

import warnings

import pytest

from xaiwidgets import IncompleteAttributionError, IncompleteAttributionWarning
from xaiwidgets.explainers._completeness import check_completeness, completeness_gap


def _case(rng, noise):
    values = rng.normal(size=(2, 3, 3, 1, 2))
    base = rng.normal(size=(2, 2))
    fx = base + values.reshape(2, -1, 2).sum(1) + noise
    return values, fx, base


def test_complete_attributions_pass_quietly(rng):
    values, fx, base = _case(rng, 0.0)
    gap = completeness_gap(values, fx, base)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rel = check_completeness(gap, fx, base, method="m", tolerance=1e-6)
    assert rel < 1e-12


def test_incomplete_attributions_warn_with_the_culprit_and_strict_raises(rng):
    values, fx, base = _case(rng, 0.5)
    gap = completeness_gap(values, fx, base)
    with pytest.warns(IncompleteAttributionWarning, match="layer 'blocks.0'"):
        rel = check_completeness(
            gap, fx, base, method="m", tolerance=1e-3, culprit="layer 'blocks.0'"
        )
    assert rel > 1e-3
    with pytest.raises(IncompleteAttributionError, match="relative completeness error"):
        check_completeness(gap, fx, base, method="m", tolerance=1e-3, strict=True)


def test_random_attributions_fail(rng):
    values, fx, base = _case(rng, 0.0)
    shuffled = rng.normal(size=values.shape)
    with pytest.warns(IncompleteAttributionWarning):
        check_completeness(
            completeness_gap(shuffled, fx, base), fx, base, method="m", tolerance=1e-3
        )
