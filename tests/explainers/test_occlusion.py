"""Occlusion: the definition on a model whose answer is known, captum's Occlusion as an oracle
on a torch CNN, NumPy models, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.explainers.occlusion import Occlusion, window_positions


def test_linear_model_gets_its_weights_times_pixels():
    """For f(x) = sum(W * x) and a zero baseline, hiding a window drops f by the window's
    sum(W * x); each pixel gets the mean over the windows covering it."""
    rng = np.random.default_rng(0)
    wts = rng.normal(size=(6, 6, 1)).astype(np.float32)

    def model(x):
        s = (x * wts).sum(axis=(1, 2, 3))
        return np.stack([s, -s], axis=1)

    x = rng.random((2, 6, 6, 1), dtype=np.float32)
    got = Occlusion(model, window=1, strides=1)(x, outputs=[0, 1])
    np.testing.assert_allclose(got.values[..., 0, 0], (x * wts)[..., 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.values[..., 0, 1], -(x * wts)[..., 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.base_values, 0.0, atol=1e-6)
    # 2x2 windows, stride 2: each pixel's value is its window's total drop
    blocks = Occlusion(model, window=2, strides=2)(x, outputs=[0]).values[0, ..., 0, 0]
    expected = (x[0, ..., 0] * wts[..., 0]).reshape(3, 2, 3, 2).sum(axis=(1, 3))
    np.testing.assert_allclose(blocks[::2, ::2], expected, rtol=1e-5, atol=1e-6)


def test_matches_captum_occlusion_on_a_torch_cnn():
    torch = pytest.importorskip("torch")
    captum_attr = pytest.importorskip("captum.attr")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 8 * 8, 5),
    ).eval()
    x = np.random.default_rng(1).random((3, 16, 16, 3), dtype=np.float32)
    ours = Occlusion(net, window=4, strides=2, batch_size=7)(x, top_k=2)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    occ = captum_attr.Occlusion(net)
    for j in range(2):
        theirs = occ.attribute(
            xt,
            sliding_window_shapes=(3, 4, 4),
            strides=(3, 2, 2),
            baselines=0.0,
            target=torch.from_numpy(ours.output_indices[:, j]),
        ).numpy()  # (n, 3, h, w): the same map in every channel
        np.testing.assert_allclose(ours.values[..., 0, j], theirs[:, 0], rtol=1e-4, atol=1e-5)


def test_positions_and_bad_arguments():
    assert window_positions(5, 5, (3, 3), (2, 2)).tolist() == [[0, 0], [0, 2], [2, 0], [2, 2]]
    with pytest.raises(ValueError, match="window"):
        Occlusion(lambda x: x.reshape(len(x), -1), window=0)
    with pytest.raises(ValueError, match="strides"):
        Occlusion(lambda x: x.reshape(len(x), -1), strides=(1, 2, 3))
    with pytest.raises(ValueError, match="baseline"):
        Occlusion(lambda x: x.reshape(len(x), -1), baseline=np.nan)
    with pytest.raises(ValueError, match=r"expected an image of shape \(4, 4, 1\)"):
        Occlusion(lambda x: x.reshape(len(x), -1)[:, :3], baseline=np.zeros((5, 5, 1)))(
            np.zeros((1, 4, 4, 1))
        )
    with pytest.raises(ValueError, match="larger than the images"):
        Occlusion(lambda x: x.reshape(len(x), -1)[:, :3], window=9)(np.zeros((1, 4, 4, 1)))


def test_cancel_between_batches():
    calls = []

    def model(x):
        calls.append(len(x))
        return x.reshape(len(x), -1)[:, :2]

    import threading

    cancel = threading.Event()

    def progress(fraction):
        cancel.set()

    from xaiwidgets._progress import Cancelled

    with pytest.raises(Cancelled):
        Occlusion(model, window=1, strides=1, batch_size=4)(
            np.zeros((1, 6, 6, 1), np.float32), outputs=[0], progress=progress, cancel=cancel
        )
    assert len(calls) <= 3  # the first prediction, one batch, then cancelled
