import numpy as np
import pytest

from xaiwidgets._arrays import as_images, as_labels, looks_like_probabilities, softmax


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((5, 28, 28), (5, 28, 28, 1)),
        ((5, 28, 28, 1), (5, 28, 28, 1)),
        ((5, 1, 28, 28), (5, 28, 28, 1)),  # torch NCHW
        ((5, 3, 32, 32), (5, 32, 32, 3)),
        ((28, 28, 3), (1, 28, 28, 3)),  # one image
        ((28, 28), (1, 28, 28, 1)),
        ((2, 4, 4), (2, 4, 4, 1)),  # tiny grey batch, not a 2x4 image with 4 channels
    ],
)
def test_as_images_layouts(shape, expected):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    out = as_images(x)
    assert out.shape == expected and out.dtype == np.float32
    assert out.sum() == pytest.approx(x.sum())


def test_nchw_transpose_is_exact():
    x = np.random.default_rng(0).random((2, 3, 5, 7))
    np.testing.assert_array_equal(as_images(x), x.transpose(0, 2, 3, 1).astype(np.float32))


def test_uint8_keeps_its_range():
    x = np.full((2, 4, 4), 255, np.uint8)
    assert as_images(x).max() == 255.0


def test_torch_tensor_nchw():
    torch = pytest.importorskip("torch")
    t = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5).requires_grad_()
    out = as_images(t)
    np.testing.assert_array_equal(out[..., 0], t.detach().numpy()[:, 0])


@pytest.mark.parametrize(
    "x, err, match",
    [
        (np.zeros((2, 3, 4, 5, 6)), ValueError, r"got an array of shape \(2, 3, 4, 5, 6\)"),
        (np.array(["a", "b"]), TypeError, "numeric"),
        (np.full((2, 4, 4), np.nan), ValueError, "NaN"),
        (np.zeros((0, 4, 4)), ValueError, "empty"),
    ],
)
def test_as_images_rejects(x, err, match):
    with pytest.raises(err, match=match):
        as_images(x)


def test_as_labels_accepts_one_hot_and_checks_length():
    np.testing.assert_array_equal(as_labels(np.eye(3)[[2, 0]]), [2, 0])
    np.testing.assert_array_equal(as_labels([1.0, 2.0]), [1, 2])
    with pytest.raises(ValueError, match="expected 3 entries"):
        as_labels([1, 2], n=3)
    with pytest.raises(ValueError, match="whole numbers"):
        as_labels([0.5, 1.0])


def test_probability_detection():
    logits = np.random.default_rng(1).normal(size=(4, 10))
    assert not looks_like_probabilities(logits)
    assert looks_like_probabilities(softmax(logits))
