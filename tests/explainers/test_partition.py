"""PartitionExplainer: efficiency, axioms, brute-force Owen values, shap as an oracle, outputs,
batching, progress and cancellation."""

import threading

import numpy as np
import pytest

from tests.explainers.shapley_oracles import (
    MLP,
    check_efficiency,
    digits,
    game_2x2,
    grey_game,
    owen_2x2,
    shapley,
)
from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import PartitionExplainer
from xaiwidgets.explainers._regions import coalition_masks, node_bits, region_tree


@pytest.mark.parametrize("masker", ["blur(28,28)", "inpaint_telea", "constant(0.5)"])
def test_efficiency_numpy(masker):
    f, x = MLP(), digits(3)
    e = PartitionExplainer(f, masker, max_evals=120)(x, "top5")
    assert e.values.shape == (3, 28, 28, 1, 5)
    check_efficiency(e, f(x))
    assert e.method == "partition" and e.params["masker"] == masker


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_efficiency_framework_models(framework):
    pytest.importorskip(framework)
    models = pytest.importorskip("tests.backends.models")
    model = models.torch_cnn() if framework == "torch" else models.flax_cnn()
    x = digits(2)
    ex = PartitionExplainer(model, "blur(28,28)", max_evals=60)
    e = ex(x, top_k=3)
    check_efficiency(e, ex.backend.predict(x))
    assert ex.backend.framework in (framework, "jax")


def test_torch_models_get_masked_images_channels_first_with_the_same_values():
    """A torch model takes the masked images as NCHW arrays built by the masker
    (``predict_in_layout``, no transposed copy); the values are those of the NHWC path."""
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)
    ).eval()
    g = digits(2)[..., 0]
    x = np.stack([g, 0.5 * g, 1 - g], axis=-1)
    ex = PartitionExplainer(net, "blur(7,5)", max_evals=80)
    direct = ex(x, top_k=2)
    backend, seen, calls = ex.backend, [], []
    in_layout, predict = backend.predict_in_layout, backend.predict
    backend.predict_in_layout = lambda a: seen.append(a.shape) or in_layout(a)
    backend.predict = lambda a: calls.append(len(a)) or predict(a)
    np.testing.assert_array_equal(ex(x, top_k=2).values, direct.values)
    assert seen and all(shape[1:] == (3, 28, 28) for shape in seen)
    assert calls == [2]  # predict saw the unmasked images only
    backend.predict_in_layout = None  # a backend without the capability: NHWC and predict
    calls.clear()
    np.testing.assert_array_equal(ex(x, top_k=2).values, direct.values)
    assert sum(calls) == 2 + sum(shape[0] for shape in seen)


def brute_force_image():
    return np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 2, 2, 1) / 4


def test_exact_owen_values_by_brute_force():
    x = brute_force_image()
    e = PartitionExplainer(game_2x2, "constant(0)", max_evals=14)(x)  # 2 + 4 * 3: fully split
    expected = owen_2x2(grey_game(game_2x2, x[0]))
    np.testing.assert_allclose(e.values[0].reshape(4, 3), expected, atol=1e-6)
    np.testing.assert_allclose(e.base_values[0], game_2x2(np.zeros_like(x))[0], atol=1e-6)


def test_owen_equals_shapley_when_interactions_are_pairwise():
    def pairwise(z):
        p = z.reshape(len(z), 4)
        return np.stack(
            [p[:, 0] * p[:, 2] + 3 * p[:, 1] * p[:, 3] - p[:, 0] * p[:, 1] + p[:, 3]], axis=1
        )

    x = brute_force_image()
    e = PartitionExplainer(pairwise, "constant(0)", max_evals=14)(x)
    np.testing.assert_allclose(
        e.values[0].reshape(4, 1), shapley(grey_game(pairwise, x[0]), 4), atol=1e-6
    )


def test_dummy_pixels_get_zero_and_symmetric_pixels_equal_values():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 4)).astype(np.float32)
    w[:, 2:] = 0  # the model ignores the right half

    def f(z):
        a = (z[..., 0] * w).sum(axis=(1, 2))
        return np.stack([np.tanh(a), a**2, np.tanh(z[..., 0].sum(axis=(1, 2)))], axis=1)

    x = np.ones((1, 4, 4, 1), np.float32)
    e = PartitionExplainer(f, "constant(0)", max_evals=2 + 16 * 15)(x)
    assert np.abs(e.values[0, :, 2:, 0, :2]).max() < 1e-7  # dummy
    sym = e.values[0, ..., 0, 2]  # output 2 treats every pixel alike: all equal
    np.testing.assert_allclose(sym, np.full_like(sym, sym.mean()), atol=1e-7)
    check_efficiency(e, f(x))


@pytest.mark.slow  # importing shap and compiling its numba code take most of the time
def test_agrees_with_shap_partition_explainer():
    shap = pytest.importorskip("shap")
    f, x = MLP(seed=3), digits(2)
    masker = shap.maskers.Image("blur(28,28)", x[0].shape)
    reference = shap.PartitionExplainer(f, masker)(
        x, max_evals=500, batch_size=10, outputs=shap.Explanation.argsort.flip[:5], silent=True
    )
    ours = PartitionExplainer(f, "blur(28,28)", max_evals=500, round_size=10)(x, "top5")
    assert reference.values.shape == ours.values.shape
    for i in range(2):
        for j in range(5):
            r = np.corrcoef(reference.values[i, ..., j].ravel(), ours.values[i, ..., j].ravel())[
                0, 1
            ]
            assert r >= 0.99, (i, j, r)
    np.testing.assert_allclose(reference.base_values, ours.base_values, atol=1e-5)
    # same tree and priorities: with shap's round size the splits coincide
    np.testing.assert_allclose(reference.values, ours.values, atol=1e-5)


def test_tree_is_shaps_balanced_hierarchy():
    t = region_tree(6, 5)
    assert [tuple(t.box[c]) for c in (t.left[0], t.right[0])] == [(0, 3, 0, 5), (3, 6, 0, 5)]
    a = t.left[0]
    assert [tuple(t.box[c]) for c in (t.left[a], t.right[a])] == [(0, 3, 0, 3), (0, 3, 3, 5)]
    assert sorted(t.leaf_of_pixel.tolist()) == sorted(np.flatnonzero(t.left < 0).tolist())
    assert (t.size[t.left >= 0] == t.size[t.left[t.left >= 0]] + t.size[t.right[t.left >= 0]]).all()
    bits = node_bits(6, 5)  # coalitions as ints: each node's int is its rectangle
    for node in range(len(t.box)):
        np.testing.assert_array_equal(coalition_masks([bits[node]], 6, 5)[0], t.node_mask(node))


def test_outputs_order_names_and_probabilities():
    f, x = MLP(), digits(2)
    names = [f"class {i}" for i in range(10)]
    ex = PartitionExplainer(f, "blur(28,28)", max_evals=40, output_names=names)
    e = ex(x, [7, 2])
    assert e.output_indices.tolist() == [[7, 2], [7, 2]]
    assert e.output_names[0] == ["class 7", "class 2"]
    assert e.probabilities.shape == (2, 10)
    swapped = ex(x, [2, 7])  # the same splits (priorities look at all explained outputs)
    np.testing.assert_allclose(swapped.values[..., ::-1], e.values, atol=1e-6)
    assert ex(x).values.shape == (2, 28, 28, 1, 10)
    top = ex(x, top_k=3)
    np.testing.assert_array_equal(top.output_indices, np.argsort(-f(x), axis=1)[:, :3])
    with pytest.raises(ValueError, match="not both"):
        PartitionExplainer(f, "blur(3,3)", class_names=names, output_names=names)


def after_prediction(calls, n):
    """The model calls after the explainer's first prediction (paced calls holding the ``n``
    images in all)."""
    done = i = 0
    while done < n:
        done, i = done + calls[i], i + 1
    return calls[i:]


def test_one_model_call_per_round_for_all_images_and_budget():
    f, x = MLP(), digits(4)
    ex = PartitionExplainer(f, "blur(28,28)", max_evals=200, round_size=40)
    f.calls.clear()
    ex(x[:1], "top5")
    one = after_prediction(f.calls, 1)
    f.calls.clear()
    got = ex(np.repeat(x[:1], 4, axis=0), "top5")
    four = after_prediction(f.calls, 4)
    assert len(four) == len(one)  # 4 images cost as many model calls as 1
    assert four == [4 * c for c in one]
    spent = np.array(got.params["evaluations"])
    assert len(spent) == 4 and (spent <= 200).all() and (spent >= 198).all()
    e = ex(x, "top5", max_evals=60)  # a per-call budget leaves the explainer as it was
    assert ex.max_evals == 200 and e.params["max_evals"] == 60
    assert (np.array(e.params["evaluations"]) <= 60).all()


def test_slow_calls_shrink_to_min_call_rows_not_to_one_image(monkeypatch):
    import xaiwidgets.explainers._coalitions as co

    monkeypatch.setattr(co, "CALL_SECONDS", 0.0)  # every model call counts as slow
    f, x = MLP(), digits(1)
    # no batch_size: a given one is kept as is (xaiwidgets.explainers._paced.paced)
    e = PartitionExplainer(f, "blur(28,28)", max_evals=300, round_size=200)
    e(x, "top1")
    masked = f.calls[1:]  # the first call: the unmasked image
    assert sum(masked) >= 290 and max(masked) == co.MIN_CALL_ROWS  # 16 a call, not 1
    assert len(masked) <= sum(masked) // co.MIN_CALL_ROWS + 6  # short calls end rounds only


def test_three_channels_share_a_pixel_value_equally():
    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    f = MLP(d=192, k=4)
    e = PartitionExplainer(f, "blur(3,3)", max_evals=50)(x)
    np.testing.assert_allclose(e.values[..., 0, :], e.values[..., 1, :], rtol=0, atol=1e-6)
    check_efficiency(e, f(x))


def test_progress_and_cancel():
    f, x = MLP(), digits(2)
    seen = []
    PartitionExplainer(f, "blur(28,28)", max_evals=100, round_size=10)(x, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) > 3
    stop = threading.Event()

    def progress(frac):
        if frac > 0.2:
            stop.set()

    with pytest.raises(Cancelled):
        PartitionExplainer(f, "blur(28,28)", max_evals=100, round_size=10)(
            x, progress=progress, cancel=stop
        )


def test_bad_settings():
    with pytest.raises(ValueError, match="max_evals"):
        PartitionExplainer(MLP(), "blur(3,3)", max_evals=2)
    with pytest.raises(TypeError, match="round_size"):
        PartitionExplainer(MLP(), "blur(3,3)", round_size=2.5)
    with pytest.raises(ValueError, match="inpaint_telea"):
        PartitionExplainer(MLP(), "gaussian")
