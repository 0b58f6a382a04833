"""Deletion curve and its area: faithful attributions score lower than unfaithful ones."""

import numpy as np
import pytest

from xaiwidgets import Explanation
from xaiwidgets.backends import wrap
from xaiwidgets.explainers import PartitionExplainer
from xaiwidgets.faithfulness import PerturbationCurve, deletion_curve


class Linear:
    """Logits ``x.reshape(n, -1) @ W``: the exact attribution of class ``j`` with a zero
    masker is ``x * W[:, j]``."""

    def __init__(self, d=64, k=3, seed=0):
        self.W = np.random.default_rng(seed).normal(size=(d, k)).astype(np.float32)
        self.calls = 0

    def __call__(self, x):
        self.calls += len(x)
        return x.reshape(len(x), -1) @ self.W


def linear_explanation(model, x, values_for):
    n, h, w, c = x.shape
    values = np.stack([values_for(j).reshape(n, h, w, c) for j in range(model.W.shape[1])], axis=-1)
    return Explanation(values=values, data=x, params={"masker": "constant(0)"})


def test_exact_attributions_delete_faster_than_reversed_or_random():
    rng = np.random.default_rng(1)
    f = Linear()
    x = rng.random((3, 8, 8, 1)).astype(np.float32)
    flat = x.reshape(3, -1)
    exact = linear_explanation(f, x, lambda j: flat * f.W[:, j])
    reverse = linear_explanation(f, x, lambda j: -flat * f.W[:, j])
    noise = linear_explanation(f, x, lambda j: rng.normal(size=flat.shape))
    curves = [deletion_curve(e, f, score="output") for e in (exact, reverse, noise)]
    assert all(isinstance(c, PerturbationCurve) for c in curves)
    a_exact, a_reverse, a_noise = (c.area for c in curves)
    assert (a_exact < a_noise).all() and (a_noise < a_reverse).all()
    assert curves[0].mean_area < curves[2].mean_area < curves[1].mean_area


def test_curve_ends_at_the_model_and_the_fully_masked_image():
    rng = np.random.default_rng(2)
    f = Linear()
    x = rng.random((2, 8, 8, 1)).astype(np.float32)
    e = linear_explanation(f, x, lambda j: rng.normal(size=(2, 64)))
    c = deletion_curve(e, wrap(f), "constant(0.5)", steps=8)
    assert c.fractions.tolist() == [i / 8 for i in range(9)]
    assert c.scores.shape == (2, 3, 9) and c.area.shape == (2, 3)
    probs = np.exp(f(x)) / np.exp(f(x)).sum(1, keepdims=True)
    np.testing.assert_allclose(c.scores[..., 0], probs, rtol=1e-5)
    masked = f(np.full_like(x, 0.5))
    np.testing.assert_allclose(
        c.scores[..., -1], np.exp(masked) / np.exp(masked).sum(1, keepdims=True), rtol=1e-5
    )
    assert c.masker == "constant(0.5)" and c.score == "probability"


def test_identical_masked_images_are_evaluated_once():
    rng = np.random.default_rng(3)
    f = Linear()
    x = rng.random((2, 8, 8, 1)).astype(np.float32)
    e = linear_explanation(f, x, lambda j: rng.normal(size=(2, 64)))
    f.calls = 0
    deletion_curve(e, f, steps=10)
    # per image: unmasked + fully masked once, 9 intermediate steps per output; + the first predict
    assert f.calls == 2 + 2 * (1 + 3 * 9)


def test_with_an_explainer_and_its_masker():
    rng = np.random.default_rng(4)
    f = Linear(d=36)
    x = rng.random((2, 6, 6, 1)).astype(np.float32)
    e = PartitionExplainer(f, "blur(3,3)", max_evals=60)(x, top_k=2)
    c = deletion_curve(e, f, steps=6)
    assert c.masker == "blur(3,3)" and c.output_indices.tolist() == e.output_indices.tolist()
    assert np.isfinite(c.area).all() and (c.area >= 0).all() and (c.area <= 1).all()


def test_bad_arguments():
    x = np.zeros((1, 4, 4, 1), np.float32)
    e = Explanation(values=np.zeros((1, 4, 4, 1, 1)), data=x)
    with pytest.raises(ValueError, match="records no masker"):
        deletion_curve(e, Linear(d=16))
    with pytest.raises(ValueError, match="'probability' or 'output'"):
        deletion_curve(e, Linear(d=16), "blur(3,3)", score="logit")
    with pytest.raises(ValueError, match="steps"):
        deletion_curve(e, Linear(d=16), "blur(3,3)", steps=0)
    with pytest.raises(TypeError, match="Explanation"):
        deletion_curve(np.zeros((1, 4, 4, 1, 1)), Linear(d=16), "blur(3,3)")


# ---------------------------------------------------------------- insertion, MuFidelity, Gini
from xaiwidgets.faithfulness import insertion_curve, mufidelity, sparseness  # noqa: E402


def test_insertion_rewards_exact_attributions_and_mirrors_deletion():
    rng = np.random.default_rng(3)
    f = Linear()
    x = rng.random((3, 8, 8, 1)).astype(np.float32)
    flat = x.reshape(3, -1)
    exact = linear_explanation(f, x, lambda j: flat * f.W[:, j])
    reverse = linear_explanation(f, x, lambda j: -flat * f.W[:, j])
    ins = [insertion_curve(e, f, score="output") for e in (exact, reverse)]
    assert (ins[0].area > ins[1].area).all() and ins[0].kind == "insertion"
    dele = deletion_curve(exact, f, score="output")
    # the curves run between the same two images, in opposite directions
    np.testing.assert_allclose(ins[0].scores[..., 0], dele.scores[..., -1], rtol=1e-5)
    np.testing.assert_allclose(ins[0].scores[..., -1], dele.scores[..., 0], rtol=1e-5)


def test_mufidelity_of_exact_linear_attributions_is_one_and_of_noise_is_small():
    rng = np.random.default_rng(4)
    f = Linear()
    x = rng.random((2, 8, 8, 1)).astype(np.float32)
    flat = x.reshape(2, -1)
    exact = linear_explanation(f, x, lambda j: flat * f.W[:, j])
    noise = linear_explanation(f, x, lambda j: rng.normal(size=flat.shape))
    good = mufidelity(exact, f, runs=50, subset_size=8, score="output")
    np.testing.assert_allclose(good.correlation, 1.0, atol=1e-5)
    np.testing.assert_allclose(good.attribution_sums, good.output_drops, rtol=1e-4, atol=1e-5)
    bad = mufidelity(noise, f, runs=50, subset_size=8, score="output")
    assert bad.mean < 0.6
    with pytest.raises(ValueError, match="subset_size"):
        mufidelity(exact, f, subset_size=65)
    with pytest.raises(ValueError, match="subsets"):
        mufidelity(exact, f, subsets=np.zeros((3, 5, 2), np.int64))


def test_sparseness_is_the_gini_index():
    one_hot = np.zeros((1, 4, 4, 1, 1))
    one_hot[0, 1, 2, 0, 0] = 3.0
    flat = np.ones((1, 4, 4, 1, 1))
    zero = np.zeros((1, 4, 4, 1, 1))
    data = np.zeros((1, 4, 4, 1))
    g = [sparseness(Explanation(values=v, data=data))[0, 0] for v in (one_hot, flat, zero)]
    np.testing.assert_allclose(g, [1 - 1 / 16, 0.0, 0.0], atol=1e-12)


def _quantus_torch_case():
    torch = pytest.importorskip("torch")
    pytest.importorskip("quantus")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 10 * 10, 3),
    ).eval()
    rng = np.random.default_rng(5)
    x = rng.random((4, 10, 10, 1)).astype(np.float32)
    x[:, 0, 0, 0] = 0.0  # Quantus' "black" baseline is the image minimum: 0 here
    values = rng.normal(size=(4, 10, 10, 1, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    expl = Explanation(values=values, data=x, output_indices=y[:, None])
    return torch, net, x, values, y, expl


def test_mufidelity_agrees_with_quantus_on_the_same_subsets(monkeypatch):
    torch, net, x, values, y, expl = _quantus_torch_case()
    import quantus

    runs, size = 20, 15
    draws = []
    choice = np.random.choice

    def recording_choice(*args, **kwargs):  # Quantus' own subsets, to give ours the same
        draws.append(choice(*args, **kwargs))
        return draws[-1]

    monkeypatch.setattr(np.random, "choice", recording_choice)
    theirs = quantus.FaithfulnessCorrelation(
        nr_runs=runs,
        subset_size=size,
        perturb_baseline="black",
        return_aggregate=False,
        disable_warnings=True,
    )(
        model=net,
        x_batch=x.transpose(0, 3, 1, 2),
        y_batch=y,
        a_batch=values[..., 0].transpose(0, 3, 1, 2),
        device="cpu",
        softmax=False,
    )
    monkeypatch.undo()
    subsets = np.stack(draws).reshape(runs, 4, size)  # drawn run by run, image by image
    ours = mufidelity(expl, net, subsets=subsets, baseline=0.0, score="output")
    np.testing.assert_allclose(ours.correlation[:, 0], theirs, rtol=1e-4, atol=1e-5)


def test_sparseness_agrees_with_quantus():
    torch, net, x, values, y, expl = _quantus_torch_case()
    import quantus

    theirs = quantus.Sparseness(return_aggregate=False, disable_warnings=True)(
        model=net,
        x_batch=x.transpose(0, 3, 1, 2),
        y_batch=y,
        a_batch=values[..., 0].transpose(0, 3, 1, 2),
        device="cpu",
    )
    np.testing.assert_allclose(sparseness(expl)[:, 0], theirs, rtol=1e-4, atol=1e-5)
