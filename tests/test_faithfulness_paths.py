"""The fast paths of the faithfulness metrics give what the plain definitions give: the
curves' step masks equal the stable-argsort ranks (ties, signed zeros, infinities), and
MuFidelity's reused buffer of masked copies (hidden, predicted, restored chunk by chunk, in
the model's own layout) equals masking fresh copies of the images for every subset."""

import numpy as np
import pytest

from xaiwidgets import Explanation
from xaiwidgets.backends import wrap
from xaiwidgets.faithfulness import mufidelity
from xaiwidgets.faithfulness._ranks import kept_pixels


def stable_rank_masks(values, counts, kind):
    out = []
    for row in values:
        rank = np.empty(len(row), np.int64)
        rank[np.argsort(-row, kind="stable")] = np.arange(len(row))
        out.append(rank >= counts[:, None] if kind == "deletion" else rank < counts[:, None])
    return np.stack(out)


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_step_masks_equal_the_stable_argsort_ranks(kind):
    rng = np.random.default_rng(0)
    for case in range(24):
        p = int(rng.integers(1, 700))
        values = rng.normal(size=(3, p)).astype(np.float32)
        if case % 4 == 1:
            values = np.round(values * 2).astype(np.float32)  # many ties
        if case % 4 == 2:
            values[:, ::3], values[:, 1::5] = -0.0, 0.0  # equal for the sort, not in bits
        if case % 4 == 3:
            values[:, ::7], values[:, 1::11] = np.inf, -np.inf
            values[:, 2::13], values[:, 3::17] = np.float32(1e-45), np.float32(-1e-45)
        steps = p + 3 if case % 6 == 0 else int(rng.integers(1, 30))  # repeated counts too
        counts = np.rint(np.linspace(0.0, 1.0, steps + 1) * p).astype(np.int64)
        got = kept_pixels(values, counts, kind)
        np.testing.assert_array_equal(got, stable_rank_masks(values, counts, kind))


def test_step_masks_of_float64_or_nan_rows_use_the_stable_sort():
    rng = np.random.default_rng(1)
    counts = np.array([0, 10, 25, 50])
    for values in (
        rng.normal(size=(2, 50)),
        np.where(rng.random((2, 50)) < 0.2, np.nan, rng.normal(size=(2, 50))).astype(np.float32),
    ):
        np.testing.assert_array_equal(
            kept_pixels(values, counts, "deletion"), stable_rank_masks(values, counts, "deletion")
        )


class RowByRow:
    """Logits of each image alone (no batch-size rounding effects); records the batches."""

    def __init__(self, d, k=4):
        self.W = np.random.default_rng(0).normal(size=(d, k)).astype(np.float32)
        self.batches = []

    def __call__(self, x):
        self.batches.append(len(x))
        return np.stack([row.reshape(-1) @ self.W for row in x])


def plain_mufidelity(e, model, subsets, baseline):
    """The definition: a fresh masked copy of the images for every run."""
    x, n = e.data, len(e.data)
    flat_attr = e.values.sum(axis=3).reshape(n, -1, e.values.shape[-1])
    f_x = np.take_along_axis(model(x), e.output_indices, axis=1)
    sums, drops = [], []
    for run in subsets:
        masked = x.reshape(n, -1, x.shape[-1]).copy()
        masked[np.arange(n)[:, None], run] = baseline
        out = model(masked.reshape(x.shape))
        drops.append(f_x - np.take_along_axis(out, e.output_indices, axis=1))
        sums.append(flat_attr[np.arange(n)[:, None], run].sum(axis=1))
    return np.moveaxis(np.array(sums), 0, -1), np.moveaxis(np.array(drops), 0, -1)


@pytest.mark.parametrize("batch_size", [1, 3, 8, None])
def test_mufidelity_buffer_equals_fresh_masked_copies(batch_size):
    rng = np.random.default_rng(2)
    n, h, w, c = 4, 6, 5, 3
    x = rng.random((n, h, w, c)).astype(np.float32)
    e = Explanation(
        values=rng.normal(size=(n, h, w, c, 2)).astype(np.float32),
        data=x,
        output_indices=np.array([[0, 1], [2, 3], [1, 0], [3, 2]]),
    )
    subsets = rng.integers(0, h * w, (7, n, 5))  # repeated pixels within a subset too
    model = RowByRow(h * w * c)
    got = mufidelity(
        e, wrap(model, batch_size=batch_size), subsets=subsets, baseline=0.5, score="output"
    )
    sums, drops = plain_mufidelity(e, RowByRow(h * w * c), subsets, 0.5)
    np.testing.assert_allclose(got.attribution_sums, sums, rtol=1e-6)
    np.testing.assert_array_equal(got.output_drops, drops)
    if batch_size is not None:
        assert max(model.batches) <= max(batch_size, n)


def test_mufidelity_torch_model_gets_its_own_layout_and_the_images_back():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    n, h, w, c = 3, 5, 4, 2
    x = rng.random((n, h, w, c)).astype(np.float32)
    e = Explanation(values=rng.normal(size=(n, h, w, c, 1)).astype(np.float32), data=x,
                    output_indices=np.zeros((n, 1), np.int64))  # fmt: skip
    W = torch.from_numpy(rng.normal(size=(c * h * w, 3)).astype(np.float32))

    class Net(torch.nn.Module):  # NCHW in, one row at a time
        def forward(self, t):
            return torch.stack([row.reshape(-1) @ W for row in t])

    subsets = rng.integers(0, h * w, (5, n, 3))
    got = mufidelity(e, wrap(Net(), batch_size=2), subsets=subsets, baseline=-1.0, score="output")

    def as_numpy_nchw(z):
        return Net()(torch.from_numpy(np.ascontiguousarray(z.transpose(0, 3, 1, 2)))).numpy()

    sums, drops = plain_mufidelity(e, as_numpy_nchw, subsets, -1.0)
    np.testing.assert_array_equal(got.output_drops, drops)
    np.testing.assert_allclose(got.attribution_sums, sums, rtol=1e-6)
    np.testing.assert_array_equal(e.data, x)  # the explanation's images untouched
