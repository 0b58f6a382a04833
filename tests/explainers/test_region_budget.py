"""What the region explainers (Partition, Permutation) share: budgets capped where the values
are exact, cancellation within one model batch, working memory bounded at 224 x 224 x 3, and
efficiency leftovers bounded by float32 rounding (so random attributions fail the check)."""

import threading
import time
import tracemalloc

import numpy as np
import pytest

from xaiwidgets._progress import Cancelled
from xaiwidgets.explainers import PartitionExplainer, PermutationExplainer
from xaiwidgets.explainers._coalitions import WORK_BYTES
from xaiwidgets.explainers._regions import (
    BudgetCappedWarning,
    EfficiencyError,
    full_expansion_evals,
    to_float32_exact_sums,
)


def _linear(c=3, k=4, seed=0):
    w = np.random.default_rng(seed).normal(size=(c, k)).astype(np.float32)
    return lambda z: z.mean(axis=(1, 2)) @ w


# ---------------------------------------------------------------- efficiency leftovers
def test_float32_rounding_is_all_that_is_moved():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 8, 8, 3, 4))
    totals = values.sum(axis=(1, 2, 3))
    out = to_float32_exact_sums(values, totals)
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3), dtype=np.float64), totals, atol=1e-6)
    # only one entry per image and output moved, by at most a few float32 ulps of the total
    moved = np.abs(out.astype(np.float64) - values.astype(np.float32).astype(np.float64))
    assert (np.count_nonzero(moved.reshape(2, -1, 4), axis=1) <= 1).all()
    assert moved.max() < 8 * np.finfo(np.float32).eps * np.abs(values).sum(axis=(1, 2, 3)).max()


def test_random_attributions_fail_the_efficiency_check():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 8, 8, 3, 4))
    totals = values.sum(axis=(1, 2, 3)) + rng.normal(size=(2, 4))  # do not add up
    with pytest.raises(EfficiencyError, match="more than float32 rounding"):
        to_float32_exact_sums(values, totals)
    with pytest.raises(EfficiencyError):  # NaN never passes either
        to_float32_exact_sums(np.full((1, 2, 2, 1, 1), np.nan), np.zeros((1, 1)))


# ---------------------------------------------------------------- budget caps
def test_partition_budget_is_capped_at_the_full_expansion():
    rng = np.random.default_rng(0)
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    f = _linear()
    assert full_expansion_evals(8, 8) == 2732
    ex = PartitionExplainer(f, "blur(3,3)")
    with pytest.warns(BudgetCappedWarning, match="capped to 2732"):
        e = ex(x, max_evals=10**9)
    assert e.params["max_evals"] == 2732 and e.params["max_evals_requested"] == 10**9
    assert e.params["evaluations"] == [2732, 2732]  # every coalition of the full expansion
    exact = ex(x, max_evals=2732)  # the same values as the capped run, no warning
    assert "max_evals_requested" not in exact.params
    np.testing.assert_array_equal(e.values, exact.values)


def test_partition_huge_budget_cancels_within_one_model_batch():
    """max_evals=10**9 on 64 x 64 (capped at 11.2 million): cancel from another thread
    returns within one model batch, and memory does not run ahead of the evaluations."""
    rng = np.random.default_rng(0)
    x = rng.random((2, 64, 64, 3)).astype(np.float32)
    w = rng.normal(size=(64 * 64 * 3, 5)).astype(np.float32) / 50

    def f(z):
        time.sleep(0.02)
        return np.tanh(z.reshape(len(z), -1) @ w)

    stop, when, seen = threading.Event(), [], []

    def cancel_later():
        time.sleep(0.5)
        when.append(time.perf_counter())
        stop.set()

    def progress(frac):
        if not seen:  # the run is under way: cancel half a second later
            threading.Thread(target=cancel_later).start()
        seen.append(frac)

    tracemalloc.start()
    with pytest.raises(Cancelled), pytest.warns(BudgetCappedWarning):
        PartitionExplainer(f, "blur(5,5)", max_evals=10**9, batch_size=64)(
            x, progress=progress, cancel=stop
        )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # one batch (0.02 s), its masking and the bookkeeping of one round (1024 splits an image);
    # generous for a loaded machine (load 13 on 2 cores measured 0.55 s with 4096 splits)
    assert time.perf_counter() - when[0] < 1.0
    assert len(seen) > 1 and seen == sorted(seen) and seen[-1] > seen[0]  # moved within
    assert peak < 200 * 2**20


# ---------------------------------------------------------------- memory at 224 x 224 x 3
@pytest.mark.slow
def test_partition_working_memory_is_bounded_at_224():
    """64 RGB 224 x 224 images: the masked images go to the model a batch at a time (before,
    the whole round: 512 masked images, 0.5 GB here, 3.3 GB at the default budget)."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 224, 224, 3)).astype(np.float32)
    ex = PartitionExplainer(_linear(), "blur(16,16)", max_evals=12)
    tracemalloc.start()
    e = ex(x, outputs=[0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # measured 234 MB: the chunk of masked images, the blurred copies, the result and its
    # float64 intermediates (the result alone is 37 MB)
    assert peak < 3 * WORK_BYTES // 4 + 4 * e.values.nbytes, peak / 2**20


@pytest.mark.slow
def test_permutation_working_memory_is_bounded_at_224():
    """Coalitions are kept as ints over the regions (100 bytes for 800 regions, not 6 kB over
    the pixels) and the walked orders are summed and dropped a batch at a time."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 224, 224, 3)).astype(np.float32)
    ex = PermutationExplainer(_linear(), "blur(16,16)", max_evals=200)
    tracemalloc.start()
    ex(x, outputs=[0])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < WORK_BYTES // 2 + 10 * x.nbytes, peak / 2**20  # measured 83 MB (before 212)


def test_slow_model_calls_shrink_to_about_half_a_second():
    """A model that needs 4 ms an image: the first call of 256 masked images takes 1 s, the
    next ones are cut to about CALL_SECONDS (0.5 s), so a cancel is seen within that."""
    from xaiwidgets.explainers._coalitions import CALL_SECONDS

    rng = np.random.default_rng(0)
    x = rng.random((1, 28, 28, 1)).astype(np.float32)
    sizes = []

    def f(z):
        sizes.append(len(z))
        time.sleep(0.004 * len(z))
        return z.reshape(len(z), -1)[:, :3]

    stop = threading.Event()

    def progress(frac):
        if len(sizes) >= 5:
            stop.set()

    with pytest.raises(Cancelled):
        PermutationExplainer(f, "constant(0)", max_evals=1600)(x, progress=progress, cancel=stop)
    assert sizes[:3] == [1, 1, 256]  # f(x), f(masked), then the backend's batch_size
    assert all(s * 0.004 < 2 * CALL_SECONDS for s in sizes[3:]), sizes


def test_tree_coalition_keys_make_the_masks_of_their_pixel_sets():
    """(node, pattern) keys: the node and, for each set bit j, the sibling of its ancestor at
    depth j + 1; checked against the pixel sets of the hierarchy on an odd-sized image."""
    from xaiwidgets.explainers._regions import node_bits, region_tree, tree_coalitions

    h, w = 5, 7
    tree, bits, keys = region_tree(h, w), node_bits(h, w), tree_coalitions(h, w)
    parent = np.full(len(tree.box), -1)
    for p in np.flatnonzero(tree.left >= 0):
        parent[tree.left[p]] = parent[tree.right[p]] = p
    rng = np.random.default_rng(0)
    chosen = [keys.full, keys.empty]
    expected = [bits[0], 0]
    for node in rng.choice(len(tree.box), 60):
        node = int(node)
        pattern = int(rng.integers(0, 1 << max(1, int(tree.depth[node]))))
        want, child = bits[node], node
        while parent[child] >= 0:  # climb: the sibling at each depth, if its bit is set
            p = parent[child]
            sibling = tree.right[p] if tree.left[p] == child else tree.left[p]
            if pattern >> int(tree.depth[p]) & 1:
                want |= bits[int(sibling)]
            child = p
        chosen.append((node, pattern))
        expected.append(want)
    got = keys.masks(chosen).reshape(len(chosen), -1)
    want = np.array([[(b >> q) & 1 for q in range(h * w)] for b in expected], bool)
    np.testing.assert_array_equal(got, want)


def test_forgetting_the_cache_keeps_pinned_coalitions_and_counts_re_evaluations():
    from xaiwidgets.backends import wrap
    from xaiwidgets.explainers._coalitions import CoalitionEvaluator
    from xaiwidgets.maskers import Masker

    rng = np.random.default_rng(0)
    x = rng.random((2, 4, 4, 1)).astype(np.float32)
    backend = wrap(lambda z: z.reshape(len(z), -1)[:, :3] * 2)
    labels = np.arange(16).reshape(4, 4) // 4  # 4 regions: the rows
    ev = CoalitionEvaluator(
        backend, Masker.parse("constant(0)").bind(x), backend.predict(x), labels=labels
    )
    base = [ev.request(i, 0) for i in range(2)]
    ev.run()
    ev.pin()
    first = ev.request(1, 0b0011)
    ev.run()
    np.testing.assert_allclose(ev.outputs[first], np.r_[x[1, 0, :3, 0]] * 2)
    assert ev.request(1, 0b0011) == first and ev.evaluations.tolist() == [2, 3]  # cached
    ev.forget()
    again = ev.request(1, 0b0011)  # forgotten: evaluated (and counted) again
    ev.run()
    assert ev.evaluations.tolist() == [2, 4]
    np.testing.assert_allclose(ev.outputs[again], ev.outputs[first])
    np.testing.assert_allclose(ev.outputs[base], 0)  # the pinned empty coalitions stay
    assert [ev.request(i, 0) for i in range(2)] == base
