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


# -- layout: framework tensors keep their framework's layout; NumPy asks when unsure ----------
def test_torch_tensors_are_channels_first_whatever_their_shape():
    torch = pytest.importorskip("torch")
    t = torch.arange(2 * 3 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3, 3)
    np.testing.assert_array_equal(as_images(t), t.permute(0, 2, 3, 1).numpy())
    one = torch.arange(3 * 8 * 9, dtype=torch.float32).reshape(3, 8, 9)  # one RGB image
    np.testing.assert_array_equal(as_images(one), one.permute(1, 2, 0).numpy()[None])
    grey = torch.zeros(60, 28, 28)  # torchvision's MNIST .data: 60 grey images
    assert as_images(grey).shape == (60, 28, 28, 1)
    nhwc = torch.zeros(2, 8, 9, 3)
    assert as_images(nhwc, layout="nhwc").shape == (2, 8, 9, 3)


def test_jax_arrays_are_channels_last():
    jnp = pytest.importorskip("jax.numpy")
    x = np.random.default_rng(0).random((2, 3, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(as_images(jnp.asarray(x)), x)
    np.testing.assert_array_equal(as_images(jnp.asarray(x[0])), x[:1])


@pytest.mark.parametrize(
    "shape, match",
    [
        ((2, 3, 3, 3), r"layout='nchw' or layout='nhwc'"),
        ((5, 3, 4, 3), r"layout='nchw' or layout='nhwc'"),
        ((5, 28, 28, 5), r"layout='nchw' or layout='nhwc'"),
        ((3, 28, 28), r"3 grey images .* or one channels-first image.*layout='nhw'.*layout='chw'"),
        ((4, 28, 28), "layout='chw'"),
    ],
)
def test_ambiguous_numpy_shapes_ask_for_layout(shape, match):
    with pytest.raises(ValueError, match=match):
        as_images(np.zeros(shape))


@pytest.mark.parametrize(
    "shape, layout, expected",
    [
        ((2, 3, 3, 3), "nchw", (2, 3, 3, 3)),
        ((2, 3, 4, 5), "nchw", (2, 4, 5, 3)),
        ((5, 28, 28, 5), "nhwc", (5, 28, 28, 5)),
        ((3, 28, 28), "nhw", (3, 28, 28, 1)),
        ((3, 28, 28), "chw", (1, 28, 28, 3)),
        ((3, 28, 28), "nchw", (1, 28, 28, 3)),  # one image in that convention
        ((28, 28, 3), "nhwc", (1, 28, 28, 3)),
        ((28, 28), "nchw", (1, 28, 28, 1)),
        ((1, 4, 4, 1), "auto", (1, 4, 4, 1)),  # 4x4 grey, not 4 channels of 4x1 pixels
        ((3, 4, 3, 1), "auto", (3, 4, 3, 1)),
        ((5, 1, 4, 4), "auto", (5, 4, 4, 1)),
    ],
)
def test_explicit_and_unambiguous_layouts(shape, layout, expected):
    x = np.random.default_rng(0).random(shape)
    out = as_images(x, layout=layout)
    assert out.shape == expected and out.sum() == pytest.approx(x.sum(), rel=1e-5)
    if layout in ("chw", "nchw") and len(shape) == 3:
        np.testing.assert_allclose(out[0], x.transpose(1, 2, 0), rtol=1e-6)


def test_layout_that_does_not_fit_the_rank():
    with pytest.raises(ValueError, match=r"layout='nhw' names 3 axes but the array has shape"):
        as_images(np.zeros((2, 8, 8, 1)), layout="nhw")


def test_complex_images_are_refused():
    with pytest.raises(TypeError, match="expected real numbers, got complex dtype complex128"):
        as_images(np.zeros((2, 8, 8), complex))


def test_float64_beyond_float32_is_reported_as_overflow():
    x = np.full((2, 8, 8), 1e300)
    with pytest.raises(ValueError, match=r"values overflow float32 \(largest magnitude 1e\+300"):
        as_images(x)
    with pytest.raises(ValueError, match="NaN or infinite"):
        as_images(np.full((2, 8, 8), np.inf))


def test_explainer_call_takes_layout():
    from xaiwidgets.explainers import PartitionExplainer

    w = np.random.default_rng(0).normal(size=(3 * 3 * 3, 2)).astype(np.float32)
    model = lambda x: np.asarray(x, np.float32).reshape(len(x), -1) @ w  # noqa: E731
    x = np.random.default_rng(1).random((2, 3, 3, 3)).astype(np.float32)  # NCHW
    explainer = PartitionExplainer(model, "constant(0)", max_evals=20)
    with pytest.raises(ValueError, match="layout="):
        explainer(x)
    e = explainer(x, layout="nchw")
    np.testing.assert_array_equal(e.data, x.transpose(0, 2, 3, 1))
