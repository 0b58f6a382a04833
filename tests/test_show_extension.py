"""`show()` on the arrays shap users have, and `%load_ext xaiwidgets` in a real IPython shell."""

import types

import numpy as np
import pytest

from xaiwidgets._show import to_explanation


def test_shap_values_list_of_arrays(rng):
    images = rng.random((2, 8, 8, 1))
    shap_values = [rng.normal(size=(2, 8, 8, 1)) for _ in range(3)]
    e = to_explanation(shap_values, images, output_names=["a", "b", "c"])
    assert e.shape == (2, 8, 8, 1, 3)
    np.testing.assert_allclose(e.values[..., 1], shap_values[1], rtol=1e-6)
    assert e.output_names[1] == ["a", "b", "c"]


def test_torch_layout_values_follow_images(rng):
    images = rng.random((2, 1, 8, 9))  # NCHW
    values = rng.normal(size=(2, 1, 8, 9, 4))
    e = to_explanation(values, images)
    assert e.shape == (2, 8, 9, 1, 4)
    np.testing.assert_allclose(e.values[0, :, :, 0, 2], values[0, 0, :, :, 2], rtol=1e-6)


def test_per_image_labels_and_shap_like_object(rng):
    names = np.array([["Sandal", "Sneaker"], ["Bag", "Sandal"]])
    obj = types.SimpleNamespace(
        values=rng.normal(size=(2, 5, 5, 1, 2)),
        data=rng.random((2, 5, 5, 1)),
        output_names=names,
        base_values=np.zeros((2, 2)),
    )
    e = to_explanation(obj)
    assert e.output_names == names.tolist()


def test_mismatched_shapes_are_explained(rng):
    with pytest.raises(ValueError, match="do not match images"):
        to_explanation(rng.normal(size=(2, 5, 5, 1, 2)), rng.random((3, 5, 5, 1)))
    with pytest.raises(ValueError, match="images: expected"):
        to_explanation(rng.normal(size=(2, 5, 5, 1, 2)))
    with pytest.raises(ValueError, match="output_names: expected 2 names"):
        to_explanation(
            rng.normal(size=(2, 5, 5, 1, 2)), rng.random((2, 5, 5, 1)), output_names=["a"]
        )


def test_load_ext_registers_display_hooks(small_explanation):
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "xaiwidgets")
    try:
        data, _ = ip.display_formatter.format(small_explanation)
        assert "image/png" not in data  # a PNG only on request
        assert "application/vnd.jupyter.widget-view+json" in data
        # a shap.Explanation look-alike (same module and type name) shows as a grid too
        fake_shap = type("Explanation", (), {"__module__": "shap._explanation"})
        obj = fake_shap()
        obj.values = small_explanation.values
        obj.data = small_explanation.data
        obj.output_names = None
        obj.base_values = None
        data, _ = ip.display_formatter.format(obj)
        assert "application/vnd.jupyter.widget-view+json" in data
    finally:
        ip.run_line_magic("unload_ext", "xaiwidgets")
