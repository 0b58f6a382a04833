"""Bad content for a result or a view (an Explanation, ``show``, the widgets): non-finite or
ill-typed arrays end in a ValueError / TypeError / TraitError that names them (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

import xaiwidgets
from xaiwidgets import Explanation


@pytest.fixture
def images():
    return np.random.default_rng(1).random((2, 6, 5, 1)).astype(np.float32)


# -- Explanation / show: non-finite and ill-typed content ----------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": np.full((2, 6, 5, 1, 3), np.nan)}, "values: image 0 holds NaN"),
        ({"data": np.full((2, 6, 5, 1), np.inf)}, "data: image 0 holds NaN or infinite"),
        ({"base_values": np.full((2, 3), np.nan)}, "base_values"),
        ({"class_names": "abc"}, "class_names"),
        ({"predictions": np.zeros((2, 3)), "labels": [0, 5]}, r"labels: expected class indices"),
    ],
)
def test_explanation_rejects(images, kwargs, match):
    base = {"values": np.ones((2, 6, 5, 1, 3)), "data": images}
    with pytest.raises((ValueError, TypeError), match=match):
        Explanation(**{**base, **kwargs})


def test_show_rejects_nan_images_and_maps(images):
    values = [np.ones((2, 6, 5, 1)) for _ in range(3)]
    nan_images = images.copy()
    nan_images[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="images: contains NaN"):
        xaiwidgets.show(values, nan_images)
    values[1][1, 2, 2, 0] = np.inf
    with pytest.raises(ValueError, match="values: contains NaN or infinite"):
        xaiwidgets.show(values, images)
    with pytest.raises(ValueError, match="base_values: expected one value"):
        xaiwidgets.show(np.ones((2, 6, 5, 1, 3)), images, base_values=np.zeros(5))
    with pytest.raises(TypeError, match="true_labels"):
        xaiwidgets.show(np.ones((2, 6, 5, 1, 3)), images, true_labels=["cat", "dog"])


@pytest.mark.parametrize("which", ["images", "values"])
def test_attribution_grid_rejects_non_finite_arrays(images, which):
    import traitlets

    data = {"images": images, "values": np.ones((2, 6, 5, 3), np.float32)}
    data[which] = data[which].copy()
    data[which][0, 1, 1, 0] = np.nan
    with pytest.raises(traitlets.TraitError, match=f"{which}: contains NaN or infinite"):
        xaiwidgets.AttributionGrid(**data)


def test_widgets_take_layout_for_ambiguous_images():
    from xaiwidgets.widgets._image_pool import ImagePool

    w = np.random.default_rng(4).normal(size=(27, 3)).astype(np.float32)
    backend = xaiwidgets.wrap(lambda x: np.asarray(x, np.float32).reshape(len(x), -1) @ w)
    nchw = np.random.default_rng(5).random((4, 3, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="layout="):
        ImagePool(backend, nchw)
    pool = ImagePool(backend, nchw, labels=[0, 1, 2, 0], layout="nchw")
    np.testing.assert_array_equal(pool.images, nchw.transpose(0, 2, 3, 1))
    with pytest.raises(ValueError, match=r"labels: expected class indices in 0\.\.2"):
        ImagePool(backend, nchw, labels=[0, 1, 2, 3], layout="nchw")
    with pytest.raises(TypeError, match="candidates: expected an integer"):
        pool.offer("x")


def test_show_true_labels_index_the_models_classes_not_the_names_shown(images):
    e = xaiwidgets._show.to_explanation(
        np.ones((2, 6, 5, 1, 2)), images, output_names=["cat", "dog"], true_labels=[500, 3]
    )
    assert e.labels.tolist() == [500, 3]
