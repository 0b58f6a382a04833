"""CEMExplainer (pertinent negatives / positives) on a seed-like CNN + autoencoder trained on
MNIST digits (``conftest.py``): the PN/PP conditions and constraints, the c search, the
settings batch, streaming/cancel, bad input and rows beyond a backend's batch. alibi itself
(TF < 2.15) is the oracle in bench/cem.py."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import xaiwidgets
from tests.explainers.cem.seed_models import FAST, HI, LO, torch_threads
from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import CEMExplainer, CEMResult


@pytest.fixture(scope="module")
def seed_results(seedlike):
    """PN and PP of 8 digits with the autoencoder term (gamma > 0)."""
    model, ae, x = seedlike
    with torch_threads():
        cem = CEMExplainer(model, ae_model=ae, gamma=1.0, beta=0.1, **FAST)
        return {mode: cem(x, mode=mode) for mode in ("PN", "PP")}, x, model


def test_pn_changes_the_class_and_pp_keeps_it(seed_results):
    results, x, model = seed_results
    pn, pp = results["PN"], results["PP"]
    assert isinstance(pn, CEMResult) and pn.mode == "PN" and pp.pp is pp.image and pn.pp is None
    assert pn.found.sum() >= 6 and pp.found.sum() >= 6
    original = model.predict(x).argmax(1)
    np.testing.assert_array_equal(pn.original_class, original)
    for r, same in ((pn, False), (pp, True)):
        f = r.found
        again = model.predict(r.image[f]).argmax(1)  # the model's own verdict on the answer
        np.testing.assert_array_equal(again, r.image_class[f])
        assert np.all((again == original[f]) == same)
        np.testing.assert_allclose(r.image_proba[f].sum(1), 1.0, atol=1e-4)
        assert np.all(r.image_class[~f] == -1) and np.all(r.delta[~f] == 0)
        assert np.all(r.c[f] > 0) and np.all(np.isfinite(r.distance[f]))
        assert r.loss.shape == (len(x), FAST["max_iterations"]) and r.complete
        assert np.all(np.isfinite(r.loss[f]))


def test_range_and_sign_constraint(seed_results):
    results, x, _ = seed_results
    no_info = LO  # the default: the lower end of the feature range
    pn, pp = results["PN"], results["PP"]
    # PN: x + delta, inside the range, only moved away from the no-information value
    np.testing.assert_allclose(pn.image, x + pn.delta, atol=1e-6)
    assert pn.image.min() >= LO - 1e-6 and pn.image.max() <= HI + 1e-6
    assert np.all(np.abs(pn.image - no_info) >= np.abs(x - no_info) - 1e-6)
    assert np.any(pn.delta[pn.found] != 0)
    # PP: the model sees delta; x - delta lies in the range, moved towards no_info
    rest = x - pp.delta
    np.testing.assert_array_equal(pp.image, pp.delta)
    assert rest.min() >= LO - 1e-6 and rest.max() <= HI + 1e-6
    assert np.all(np.abs(rest - no_info) <= np.abs(x - no_info) + 1e-6)
    assert np.all(pp.delta >= -1e-6)  # here (no_info at the bottom) a PP is non-negative


def test_raising_beta_never_grows_the_l1_size(seedlike):
    model, _, x = seedlike
    with torch_threads():
        cem = CEMExplainer(model, **dict(FAST, c_init=1000.0, c_grid=[1.0], clip=(-1e3, 1e3)))
        runs = [cem(x, beta=beta) for beta in (0.0, 0.02, 0.05)]
    found = np.logical_and.reduce([r.found for r in runs])
    assert found.sum() >= 4
    sizes = [np.abs(r.delta[found]).reshape(found.sum(), -1).sum(1).mean() for r in runs]
    assert sizes[0] >= sizes[1] >= sizes[2], sizes


def test_batched_search_finds_at_least_what_sequential_finds(seedlike):
    model, _, x = seedlike
    with torch_threads():
        cfg = dict(FAST, c_init=10.0, c_steps=3, max_iterations=40, kappa=0.1, beta=0.05)
        seq = CEMExplainer(model, "PN", search="sequential", **cfg)(x)
        bat = CEMExplainer(model, "PN", search="batched", **cfg)(x)
    assert bat.found.sum() >= seq.found.sum() > 0
    assert bat.params["search"] == "batched" and seq.params["search"] == "sequential"
    # the sequential search ends its binary search where alibi's would: c halves after success
    assert np.all(seq.c[seq.found] <= cfg["c_init"] * 10 ** (cfg["c_steps"] - 1))


def test_settings_batch_equals_separate_calls(seedlike):
    model, ae, x = seedlike
    with torch_threads():
        cem = CEMExplainer(model, ae_model=ae, gamma=0.5, **FAST)
        both = cem.explain_settings(x[0], [dict(mode="PN"), dict(mode="PP", beta=0.2)])
        pn, pp = cem(x[:1], mode="PN"), cem(x[:1], mode="PP", beta=0.2)
    assert [r.mode for r in both] == ["PN", "PP"] and both[1].params["beta"] == 0.2
    for one, alone in zip(both, (pn, pp)):
        assert one.found[0] == alone.found[0] and one.image_class[0] == alone.image_class[0]
        np.testing.assert_allclose(one.image, alone.image, atol=1e-3)


def test_streams_best_so_far_and_cancels(seedlike):
    model, _, x = seedlike
    seen, fractions = [], []
    with torch_threads():
        cem = CEMExplainer(model, update_every=5, **FAST)
        final = cem(x[:2], on_update=seen.append, progress=fractions.append)
        assert seen and all(isinstance(r, CEMResult) and not r.complete for r in seen)
        steps = [r.iterations for r in seen]
        assert steps == sorted(steps) and steps[-1] <= FAST["max_iterations"]
        assert seen[0].found.any()  # the first update comes as soon as something is found
        dist = [r.distance[0] for r in seen if r.found[0]]
        assert all(a >= b for a, b in zip(dist, dist[1:]))  # best so far only improves
        assert final.distance[0] <= dist[-1] and fractions[-1] == 1.0
        assert fractions == sorted(fractions)

        stop = threading.Event()

        def cancel_on_first(partial):
            stop.set()

        with pytest.raises(Cancelled):
            cem(x[:2], on_update=cancel_on_first, cancel=stop)


def test_bad_input(seedlike):
    model, ae, x = seedlike
    with pytest.raises(ValueError, match="mode"):
        CEMExplainer(model, "XX")
    with pytest.raises(ValueError, match="beta"):
        CEMExplainer(model, beta=-1)
    with pytest.raises(TypeError, match="kappa"):
        CEMExplainer(model, kappa="big")
    with pytest.raises(ValueError, match="ae_model"):
        CEMExplainer(model, gamma=1.0)
    with pytest.raises(ValueError, match="search"):
        CEMExplainer(model, search="random")
    with pytest.raises(ValueError, match="feature_range"):
        CEMExplainer(model, feature_range=(1, 0))
    with pytest.raises(ValueError, match="c_grid"):
        CEMExplainer(model, c_grid=[1.0, -2.0])
    with pytest.raises(ValueError, match="max_iterations"):
        CEMExplainer(model, max_iterations=2.5)
    cem = CEMExplainer(model, **FAST)
    with pytest.raises(ValueError, match="outside feature_range"):
        cem(x[:1] + 2.0)
    with pytest.raises(TypeError, match="unknown CEM parameter"):
        cem(x[:1], kapa=0.1)
    with pytest.raises(ValueError, match="outputs"):
        cem(x[:1], outputs=[12])
    with pytest.raises(ValueError, match="one image"):
        cem.explain_settings(x[:2], [dict(mode="PN")])
    with pytest.raises(ValueError, match="settings"):
        cem.explain_settings(x[:1], [dict(mode="PN", max_iterations=3)])
    shrink_ae = xaiwidgets.wrap(lambda z: z[:, ::2], grad_fn=lambda z, c: z)
    with pytest.raises(ValueError, match="autoencoder"):
        CEMExplainer(model, ae_model=shrink_ae, gamma=1.0, **FAST)(x[:1])
    no_grad = xaiwidgets.wrap(lambda z: model.predict(z))
    with pytest.raises(NotImplementedError, match="gradients"):
        CEMExplainer(no_grad, **FAST)(x[:1])


def test_more_rows_than_a_backend_batch_give_the_same_answer(seedlike):
    """Rows (images x c values) beyond ``batch_size``: the cotangent callables still see every
    row, so small-batch backends give the one-batch answer."""
    model, ae, x = seedlike
    small = (
        xaiwidgets.wrap(model.model, batch_size=3),
        xaiwidgets.wrap(ae.model, batch_size=3),
    )
    with torch_threads():
        ref = CEMExplainer(model, ae_model=ae, gamma=0.5, **FAST)(x[:2])
        got = CEMExplainer(small[0], ae_model=small[1], gamma=0.5, **FAST)(x[:2])
    np.testing.assert_array_equal(got.found, ref.found)
    np.testing.assert_allclose(got.image, ref.image, atol=1e-3)
