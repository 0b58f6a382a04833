"""The model-randomisation sanity check: explanations that depend on the learnt weights pass,
one that ignores the model fails, and the model is restored exactly (torch and Keras)."""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.explainers import GradCAM, Saliency
from xaiwidgets.explainers.base import Explainer
from xaiwidgets.faithfulness import randomisation_check


class ImageAsAttribution(Explainer):
    """An 'explanation' that is the image itself: it cannot pass the check."""

    method = "image"

    def _explain(self, x, outputs, model_outputs, ctl):
        values = np.repeat(x[..., None], outputs.shape[1], axis=-1)
        return values, np.zeros(outputs.shape, np.float32)


def _torch_net():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch, torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 12 * 12, 4),
    ).eval()


def test_torch_gradient_explanations_pass_and_the_image_fails():
    torch, net = _torch_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = np.random.default_rng(0).random((3, 12, 12, 3), dtype=np.float32)
    saliency = randomisation_check(Saliency(net), x, top_k=1, stages=3)
    assert saliency.layers == ["0", "2", "5"]
    assert saliency.randomised.tolist() == [1, 2, 3]
    assert saliency.similarity.shape == (3, 3, 1)
    assert saliency.passed, saliency.similarity
    image = randomisation_check(ImageAsAttribution(net), x, top_k=1, stages=3)
    np.testing.assert_allclose(image.similarity, 1.0, atol=1e-12)
    assert not image.passed
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_torch_model_restored_when_the_explainer_raises():
    torch, net = _torch_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}

    class Fails(ImageAsAttribution):
        calls = 0

        def _explain(self, x, outputs, model_outputs, ctl):
            Fails.calls += 1
            if Fails.calls > 1:
                raise RuntimeError("boom")
            return super()._explain(x, outputs, model_outputs, ctl)

    with pytest.raises(RuntimeError, match="boom"):
        randomisation_check(Fails(net), np.zeros((1, 12, 12, 3), np.float32), outputs=[0])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_keras_gradcam_passes_and_weights_are_restored():
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4, name="head"),
        ]
    )
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(1).random((2, 12, 12, 3), dtype=np.float32)
    check = randomisation_check(GradCAM(model, "c2"), x, outputs=[0, 2], stages=2)
    assert check.layers == ["c1", "c2", "head"] and check.randomised.tolist() == [1, 3]
    assert check.similarity.shape == (2, 2, 2)
    assert check.passed, check.similarity
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_models_that_cannot_be_randomised_are_refused():
    with pytest.raises(TypeError, match="cannot redraw"):
        randomisation_check(
            ImageAsAttribution(lambda x: x.reshape(len(x), -1)), np.zeros((1, 2, 2, 1))
        )


def test_a_map_that_ranks_nothing_cannot_pass_and_a_vanished_one_changed():
    from xaiwidgets.faithfulness.randomisation import _spearman

    rng = np.random.default_rng(3)
    varied = rng.normal(size=(1, 9, 1))
    zero = np.zeros((1, 9, 1))
    assert _spearman(zero, zero)[0, 0] == 1.0
    assert _spearman(zero, varied)[0, 0] == 1.0  # the reference ranks nothing
    assert _spearman(np.ones((1, 9, 1)), varied)[0, 0] == 1.0
    assert _spearman(varied, zero)[0, 0] == 0.0  # the redrawn map ranks nothing
    assert _spearman(varied, 2 * varied + 1)[0, 0] == pytest.approx(1.0)


def test_shared_zeros_do_not_inflate_the_similarity():
    """Two maps that agree only on a zero background (90 % of the pixels) and are
    independent elsewhere: Spearman with the zeros is high, ours is near 0; without zeros,
    ours is scipy's Spearman."""
    from scipy.stats import spearmanr

    from xaiwidgets.faithfulness.randomisation import _spearman

    rng = np.random.default_rng(4)
    p, live = 2000, 200
    a, b = np.zeros((3, p, 2)), np.zeros((3, p, 2))
    a[:, :live], b[:, :live] = rng.random((3, live, 2)) + 0.1, rng.random((3, live, 2)) + 0.1
    plain = spearmanr(a[0, :, 0], b[0, :, 0])[0]
    assert plain > 0.85
    ours = _spearman(a, b)
    assert ours.shape == (3, 2) and np.abs(ours).max() < 0.25
    for i in range(3):
        for j in range(2):
            expected = spearmanr(a[i, :live, j], b[i, :live, j])[0]
            assert ours[i, j] == pytest.approx(expected, abs=1e-12)
    # ties among non-zero values are averaged, as scipy does
    c = np.round(rng.random((1, 50, 1)) * 4) + 1
    d = c + rng.normal(size=c.shape)
    assert _spearman(c, d)[0, 0] == pytest.approx(spearmanr(c[0, :, 0], d[0, :, 0])[0])


class ZeroAttribution(Explainer):
    """An 'explanation' that is zero everywhere: it says nothing, so it cannot pass."""

    method = "zero"

    def _explain(self, x, outputs, model_outputs, ctl):
        return np.zeros(x.shape + (outputs.shape[1],), np.float32), np.zeros(outputs.shape)


def test_a_zero_explanation_fails_the_check():
    _, net = _torch_net()
    x = np.random.default_rng(5).random((2, 12, 12, 3), dtype=np.float32)
    check = randomisation_check(ZeroAttribution(net), x, top_k=1, stages=2)
    np.testing.assert_array_equal(check.similarity, 1.0)
    assert not check.passed
