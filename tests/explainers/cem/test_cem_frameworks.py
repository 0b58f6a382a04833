"""The same PN from torch, Keras and Flax copies of one model (same weights), and the compiled
one-call step (``explainers/_fista_compiled.py``: Flax and Keras) against the NumPy step."""

from __future__ import annotations

import numpy as np
import pytest

import xaiwidgets
from tests.explainers.cem.seed_models import FAST, framework_copies, torch_threads
from xaiwidgets.explainers import CEMExplainer


@pytest.mark.slow
def test_same_pn_in_torch_keras_and_flax(seedlike):
    model, ae, x = seedlike
    cfg = dict(FAST, gamma=0.5, beta=0.0, c_init=100.0, c_grid=[1.0], max_iterations=25)
    with torch_threads():
        ref = CEMExplainer(model, ae_model=ae, **cfg)(x[:3])
        copies = framework_copies(model.model, ae.model)
        assert ref.found.any()
        for name, (cnn, auto) in copies.items():
            np.testing.assert_allclose(
                xaiwidgets.wrap(cnn).predict(x[:3]), model.predict(x[:3]), atol=1e-5, err_msg=name
            )
            r = CEMExplainer(cnn, ae_model=auto, **cfg)(x[:3])
            np.testing.assert_array_equal(r.found, ref.found, err_msg=name)
            np.testing.assert_array_equal(r.image_class, ref.image_class, err_msg=name)
            np.testing.assert_allclose(r.image, ref.image, atol=2e-3, err_msg=name)


@pytest.mark.parametrize("framework", ["flax", "keras"])
@pytest.mark.parametrize("mode", ["PN", "PP"])
def test_compiled_step_follows_the_numpy_step(seedlike, framework, mode, monkeypatch):
    """Flax and Keras models take the one-call compiled step; it gives the NumPy path's
    answer."""
    from xaiwidgets.explainers import _fista

    model, ae, x = seedlike
    cnn, auto = framework_copies(model.model, ae.model)[framework]
    cfg = dict(FAST, gamma=0.5, max_iterations=30)
    cem = CEMExplainer(cnn, mode, ae_model=auto, **cfg)
    fast = cem(x[:2])
    assert cem.backend.__dict__.get("_compiled_steps")  # compiled and cached
    with monkeypatch.context() as m:
        m.setattr(_fista, "compiled_step", lambda *a, **k: None)
        plain = CEMExplainer(cnn, mode, ae_model=auto, **cfg)
        slow = plain(x[:2])
    assert "_compiled_steps" not in plain.backend.__dict__  # the NumPy path ran
    assert fast.found.any()
    np.testing.assert_array_equal(fast.found, slow.found)
    np.testing.assert_array_equal(fast.image_class, slow.image_class)
    np.testing.assert_allclose(fast.image, slow.image, atol=2e-3)
    np.testing.assert_allclose(fast.loss, slow.loss, rtol=2e-3, atol=1e-3)
