"""PermutationExplainer: efficiency, exact enumeration against brute force, antithetic pairs,
evaluation budget and cache, regions, seeds."""

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
from xaiwidgets.explainers import PermutationExplainer
from xaiwidgets.explainers._regions import region_tree

IMAGE = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 2, 2, 1) / 4


def test_exact_shapley_values_by_enumeration():
    ex = PermutationExplainer(game_2x2, "constant(0)", max_evals=16, hierarchical=False)
    e = ex(IMAGE)
    np.testing.assert_allclose(
        e.values[0].reshape(4, 3), shapley(grey_game(game_2x2, IMAGE[0]), 4), atol=1e-6
    )
    assert (
        e.params["orders"] == 24 and e.params["evaluations"][0] == 16
    )  # every order, each coalition once


def test_exact_owen_values_by_enumeration():
    ex = PermutationExplainer(game_2x2, "constant(0)", max_evals=16)
    e = ex(IMAGE)
    np.testing.assert_allclose(
        e.values[0].reshape(4, 3), owen_2x2(grey_game(game_2x2, IMAGE[0])), atol=1e-6
    )
    assert e.params["orders"] == 8  # 2^3 orders keep the rows together


def test_an_antithetic_pair_is_exact_for_pairwise_interactions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), np.triu(rng.normal(size=(16, 16)), 1)

    def f(z):
        p = z.reshape(len(z), 16).astype(np.float64)
        return (p @ a + np.einsum("ni,ij,nj->n", p, b, p))[:, None]

    x = rng.random((1, 4, 4, 1)).astype(np.float32)
    ex = PermutationExplainer(
        f, "constant(0)", max_evals=40, hierarchical=False
    )  # 2^16 > 40: sampled
    e = ex(x)
    assert e.params["orders"] == 2  # one order and its reverse
    p = x.reshape(16).astype(np.float64)
    exact = a * p + 0.5 * p * ((b + b.T) @ p)  # a_i x_i + half of each pair term
    np.testing.assert_allclose(e.values[0].reshape(16), exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hierarchical", [True, False])
def test_efficiency_numpy(hierarchical):
    f, x = MLP(), digits(2)
    ex = PermutationExplainer(f, "blur(28,28)", max_evals=300, hierarchical=hierarchical)
    e = ex(x, "top5")
    check_efficiency(e, f(x))
    assert e.method == "permutation" and e.params["hierarchical"] is hierarchical


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_efficiency_framework_models(framework):
    pytest.importorskip(framework)
    models = pytest.importorskip("tests.backends.models")
    model = models.torch_cnn() if framework == "torch" else models.flax_cnn()
    x = digits(2)
    ex = PermutationExplainer(model, "inpaint_telea", max_evals=100)
    check_efficiency(ex(x, top_k=2), ex.backend.predict(x))


def test_seed_setting_spends_what_one_pair_needs():
    f, x = MLP(), digits(2)
    ex = PermutationExplainer(f, "blur(28,28)", max_evals=1600)
    e = ex(x, "top5")
    # f(x), f(masked) and 2 * 783 path coalitions: no main effects, nothing else
    assert e.params["evaluations"] == [1568, 1568] and e.params["orders"] == 2
    check_efficiency(e, f(x))


def test_regions_fit_the_budget_and_share_their_value():
    f, x = MLP(), digits(1)
    ex = PermutationExplainer(f, "blur(28,28)", max_evals=100)
    e = ex(x)
    assert (np.array(e.params["evaluations"]) <= 100).all()
    tree = region_tree(28, 28)
    for k, values in (
        (50, e.values),
        (16, PermutationExplainer(f, "blur(28,28)", max_evals=100, regions=16)(x).values),
    ):
        labels = tree.labels(tree.frontier(k))
        assert labels.max() == k - 1
        for r in range(k):  # one value per region, spread evenly over its pixels
            inside = values[0, ..., 0, :][labels == r]
            assert np.ptp(inside, axis=0).max() < 1e-6


def test_the_cache_turns_repeated_coalitions_into_more_orders():
    f, x = MLP(), digits(1)
    ex = PermutationExplainer(f, "blur(28,28)", max_evals=60, regions=8)  # 2^8 > 60: sampled
    e = ex(x)
    assert e.params["evaluations"][0] <= 60
    without_cache = (60 - 2) // (2 * 7)
    assert e.params["orders"] // 2 > without_cache


def test_seed_makes_runs_reproducible():
    f, x = MLP(), digits(1)
    a = PermutationExplainer(f, "blur(28,28)", max_evals=200, seed=1)(x).values
    b = PermutationExplainer(f, "blur(28,28)", max_evals=200, seed=1)(x).values
    c = PermutationExplainer(f, "blur(28,28)", max_evals=200, seed=2)(x).values
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_budget_errors():
    with pytest.raises(ValueError, match="too small"):
        PermutationExplainer(MLP(), "blur(28,28)", max_evals=100, regions=200)(digits(1))
    with pytest.raises(ValueError, match="max_evals"):
        PermutationExplainer(MLP(), "blur(28,28)", max_evals=3)


def test_progress_and_cancel_between_model_calls():
    import threading

    from xaiwidgets._progress import Cancelled

    f, x = MLP(), digits(3)
    seen = []
    PermutationExplainer(f, "blur(28,28)", max_evals=1600)(x, progress=seen.append)
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == 1.0
    stop = threading.Event()
    with pytest.raises(Cancelled):
        PermutationExplainer(f, "blur(28,28)", max_evals=1600)(
            x, progress=lambda frac: frac > 0 and stop.set(), cancel=stop
        )


# ---------------------------------------------------------------- budgets, memory, cancel
def test_a_huge_budget_is_capped_where_the_values_are_exact():
    from xaiwidgets.explainers import PartitionExplainer
    from xaiwidgets.explainers._regions import BudgetCappedWarning

    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    f = MLP(d=192, k=4)
    with pytest.warns(BudgetCappedWarning, match="capped to 2732"):
        e = PermutationExplainer(f, "blur(3,3)", max_evals=10**8)(x)
    # 2732 = every coalition hierarchy-respecting orders of 64 pixels reach
    assert e.params["max_evals"] == 2732 and e.params["max_evals_requested"] == 10**8
    check_efficiency(e, f(x))
    # exact Owen values: the same as the Owen recursion of Partition split to every pixel
    with pytest.warns(BudgetCappedWarning):
        p = PartitionExplainer(f, "blur(3,3)", max_evals=10**6)(x)
    np.testing.assert_allclose(e.values, p.values, rtol=0, atol=1e-5)


def test_exact_shapley_values_from_every_coalition():
    from xaiwidgets.explainers._regions import BudgetCappedWarning

    rng = np.random.default_rng(1)
    image = rng.random((1, 3, 3, 1)).astype(np.float32)
    w1 = rng.normal(size=(9, 6))

    def f(z):
        return np.tanh(z.reshape(len(z), 9).astype(np.float64) @ w1)[:, :2] * 3

    # 9! orders are too many to enumerate; 2^9 = 512 coalitions fit: exact Shapley values
    with pytest.warns(BudgetCappedWarning, match="capped to 512"):
        ex = PermutationExplainer(f, "constant(0)", max_evals=10**6, hierarchical=False)
        e = ex(image)
    np.testing.assert_allclose(
        e.values[0].reshape(9, 2), shapley(grey_game(f, image[0]), 9), atol=1e-5
    )
    assert e.params["evaluations"][0] == 512


def test_huge_sampling_budget_returns_on_cancel_with_bounded_memory():
    """2^64 coalitions of 64 pixels: 10^8 evaluations are usable, so the run is long; it
    stops at cancel, and what it holds does not grow with the orders walked."""
    import threading
    import time
    import tracemalloc

    from xaiwidgets._progress import Cancelled

    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    f = MLP(d=192, k=4)
    stop = threading.Event()
    seen = []

    def progress(frac):
        seen.append((time.perf_counter(), frac))

    tracemalloc.start()
    timer = threading.Timer(1.5, stop.set)
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        PermutationExplainer(f, "blur(3,3)", max_evals=10**8, hierarchical=False)(
            x, progress=progress, cancel=stop
        )
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.5 + 1.0  # returned within about one model batch of the cancel
    assert len(seen) > 3 and seen[-1][1] > seen[0][1]  # progress moved within the images
    assert peak < 200 * 2**20  # without streaming, the walked paths alone grow past this


def test_cancel_within_one_model_batch_at_224():
    """Cancel set from another thread while a 224 x 224 RGB image is being explained returns
    within about one model batch (here 0.1 s), not at the end of the image."""
    import threading
    import time

    from xaiwidgets._progress import Cancelled

    rng = np.random.default_rng(0)
    x = rng.random((2, 224, 224, 3)).astype(np.float32)

    def f(z):  # a slow model: about 0.1 s a batch of 16
        time.sleep(0.1)
        return z.reshape(len(z), -1)[:, ::5000].astype(np.float32)

    stop, when = threading.Event(), []

    def cancel_soon():
        time.sleep(0.3)
        when.append(time.perf_counter())
        stop.set()

    def progress(frac):
        if frac > 0 and not when and not getattr(progress, "started", False):
            progress.started = True
            threading.Thread(target=cancel_soon).start()

    with pytest.raises(Cancelled):
        PermutationExplainer(f, "constant(0)", max_evals=1600, batch_size=16)(
            x, progress=progress, cancel=stop
        )
    latency = time.perf_counter() - when[0]
    assert latency < 1.0, latency  # one batch (0.1 s) and the masking of the next
