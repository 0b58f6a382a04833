"""The Grad-CAM family runs one forward pass per batch: the layer pass's own outputs choose
what to explain (top-k, the true class), as the explainers' shared ``predict`` would have; the
result is the same as choosing first, and non-finite outputs are still named."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xaiwidgets.explainers.cam as cam  # noqa: E402
from xaiwidgets.backends import NonFiniteOutputError  # noqa: E402
from xaiwidgets.explainers.base import add_true_outputs, select_outputs  # noqa: E402


class Counted(torch.nn.Module):
    def __init__(self, k=6):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 5, 3, padding=1)
        self.head = torch.nn.Linear(5, k)
        self.calls = []

    def forward(self, x):
        self.calls.append(len(x))
        a = torch.relu(self.conv(x))
        return self.head(a.mean(dim=(2, 3)) + 0.3 * (a**2).mean(dim=(2, 3)))


@pytest.fixture
def images():
    return np.random.default_rng(0).random((7, 8, 8, 3), dtype=np.float32)


@pytest.mark.parametrize("cls", [cam.GradCAM, cam.GradCAMPlusPlus, cam.HiResCAM, cam.LayerCAM])
def test_one_forward_pass_per_batch(images, cls):
    net = Counted()
    got = cls(net, "conv", batch_size=3)(images, top_k=2)
    assert net.calls == [3, 3, 1]  # no separate prediction pass
    probs = torch.softmax(net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())), 1)
    np.testing.assert_array_equal(
        got.output_indices, select_outputs("top2", probs.detach().numpy())
    )
    np.testing.assert_allclose(got.probabilities, probs.detach().numpy(), rtol=1e-5)
    # the same maps as when the outputs are given
    given = cls(net, "conv", batch_size=3)(images, outputs=got.output_indices)
    np.testing.assert_allclose(got.values, given.values, rtol=1e-6, atol=1e-9)


def test_include_true_matches_choosing_first(images):
    net = Counted()
    ex = cam.GradCAM(net, "conv", batch_size=3)
    with torch.no_grad():
        probs = torch.softmax(net(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())), 1)
    probs = probs.numpy()
    top = select_outputs("top2", probs)
    # labels: most rows miss their true class in the top 2, one batch holds it everywhere
    labels = np.argsort(probs, axis=1)[:, 0].copy()
    labels[:3] = top[:3, 0]
    got = ex(images, top_k=2, labels=labels, include_true=True)
    np.testing.assert_array_equal(got.output_indices, add_true_outputs(top, probs, labels))
    assert got.output_indices.shape == (7, 3)
    # every row holds its true class: no extra column
    held = ex(images, top_k=2, labels=top[:, 1], include_true=True)
    np.testing.assert_array_equal(held.output_indices, top)
    # a class list, per image
    listed = ex(images, outputs=[4, 0])
    assert listed.output_indices.tolist() == [[4, 0]] * 7


def test_non_finite_outputs_are_named(images):
    net = Counted()
    x = images.copy()
    x[5] = 3e38  # finite, but the model overflows on it
    with pytest.raises(NonFiniteOutputError, match="5"):
        cam.GradCAM(net, "conv", batch_size=3)(x, top_k=1)
