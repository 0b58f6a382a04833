"""InfluenceGrid on the Python side: built from influence/performance results, validation,
the opened class, binary buffers."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

from xaiwidgets.explainers import influence_maps, performance_maps
from xaiwidgets.widgets import InfluenceGrid

XSS = '<img src=x onerror="window.__xss=1">'


@pytest.fixture(scope="module")
def data():
    """60 grey 6x5 images; class 1 is likely when pixel (2, 3) is bright, class 0 otherwise."""
    rng = np.random.default_rng(0)
    x = rng.random((60, 6, 5, 1)).astype(np.float32)
    p1 = 1 / (1 + np.exp(-8 * (x[:, 2, 3, 0] - 0.5)))
    probs = np.stack([1 - p1, p1], axis=1)
    return x, probs


def test_from_result_carries_maps_names_mean_and_base(data):
    x, probs = data
    result = influence_maps(x, probs, class_names=["zero", XSS])
    g = InfluenceGrid.from_result(result)
    assert g.maps.dtype == np.float32 and g.maps.shape == (2, 6, 5)
    np.testing.assert_array_equal(g.maps, result.maps)
    assert g.class_names == ["zero", XSS]  # kept as text; the browser sets it as text
    np.testing.assert_allclose(g.mean_image, x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(g.base_values, probs.mean(axis=0), rtol=1e-6)
    assert "60 images" in g.title and "α = 0.05" in g.title
    assert g.colorbar_label == "Δ probability" and g.value_label == "influence"
    # the pixel that drives class 1 is where its map peaks (and class 0's map dips)
    assert np.unravel_index(np.argmax(g.maps[1]), (6, 5)) == (2, 3)
    assert np.unravel_index(np.argmin(g.maps[0]), (6, 5)) == (2, 3)
    assert (g.selected, g.cell_size, g.columns, g.show_mean_image) == (-1, 120, 0, True)


def test_performance_map_is_one_map_named_by_the_metric(data):
    from sklearn.metrics import accuracy_score

    x, probs = data
    y = (x[:, 2, 3, 0] > 0.5).astype(int)
    result = performance_maps(x, y, probs.argmax(1), accuracy_score)
    g = InfluenceGrid.from_result(result, cell_size=90)
    assert g.maps.shape == (1, 6, 5) and g.class_names == ["accuracy_score"]
    assert g.colorbar_label == "Δ accuracy_score" and g.base_label == "accuracy_score"
    assert g.base_values[0] == pytest.approx(accuracy_score(y, probs.argmax(1)))
    assert g.title.startswith("Performance map of accuracy_score") and g.cell_size == 90


def test_maps_shapes_channel_mean_and_single_map():
    rng = np.random.default_rng(1)
    rgb = rng.normal(size=(3, 4, 4, 3))
    g = InfluenceGrid(maps=rgb, class_names=["a", "b", "c"])
    np.testing.assert_allclose(g.maps, rgb.mean(axis=3), rtol=1e-6, atol=1e-6)
    one = InfluenceGrid(maps=rng.normal(size=(4, 4)), mean_image=rng.random((4, 4)))
    assert one.maps.shape == (1, 4, 4) and one.mean_image.shape == (4, 4, 1)
    with pytest.raises(traitlets.TraitError, match=r"maps: expected \(k, h, w\)"):
        InfluenceGrid(maps=np.zeros(5))
    with pytest.raises(traitlets.TraitError, match="mean_image: expected"):
        InfluenceGrid(maps=np.zeros((1, 4, 4)), mean_image=np.zeros((4, 4, 2)))


def test_inconsistent_traits_raise_then_show_in_place():
    maps = np.zeros((2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="class_names: expected 2 names"):
        InfluenceGrid(maps=maps, class_names=["a"])
    with pytest.raises(ValueError, match=r"mean_image: expected \(4, 4, c\)"):
        InfluenceGrid(maps=maps, mean_image=np.zeros((5, 5, 1)))
    with pytest.raises(ValueError, match=r"base_values: expected shape \(2,\)"):
        InfluenceGrid(maps=maps, base_values=np.zeros(3))
    g = InfluenceGrid(maps=maps, class_names=["a", "b"])
    g.class_names = ["a", "b", "c"]  # after construction: shown in the widget, no raise
    assert g.error.startswith("class_names: expected 2 names")
    g.class_names = ["a", "b"]
    assert g.error == ""


def test_selected_class_open_close_and_bounds():
    g = InfluenceGrid(maps=np.ones((3, 4, 4)), class_names=["cat", "dog", "eel"])
    g.open_class("dog")
    assert g.selected == 1
    g.open_class(2)
    assert g.selected == 2
    g.close_class()
    assert g.selected == -1
    with pytest.raises(traitlets.TraitError, match="selected: expected -1 or a class index < 3"):
        g.selected = 3
    with pytest.raises(KeyError, match="unknown class 'fox'"):
        g.open_class("fox")
    g.selected = 2
    g.maps = np.ones((2, 4, 4))  # fewer maps: the opened one no longer exists
    g.class_names = ["cat", "dog"]
    assert g.selected == -1


def test_state_is_binary_and_kwargs_are_checked(data):
    x, probs = data
    g = InfluenceGrid.from_result(influence_maps(x, probs))
    state = g.get_state()
    for name in ("maps", "mean_image", "base_values"):
        assert isinstance(state[name]["view"], memoryview) and state[name]["dtype"] == "float32"
    assert state["maps"]["shape"] == [2, 6, 5]
    assert "render" in str(g._esm)
    with pytest.raises(TypeError, match="Did you mean 'cell_size'"):
        InfluenceGrid(maps=np.zeros((1, 2, 2)), cell_sise=3)
    assert "InfluenceGrid(maps=(2, 6, 5)" in repr(g)


def test_state_embeds_for_static_html_export(data):
    from ipywidgets.embed import dependency_state, embed_data

    x, probs = data
    g = InfluenceGrid.from_result(influence_maps(x, probs), selected=1)
    embedded = embed_data(views=[g], state=dependency_state([g], drop_defaults=False))
    state = embedded["manager_state"]["state"][g.model_id]["state"]
    buffers = {tuple(b["path"]) for b in embedded["manager_state"]["state"][g.model_id]["buffers"]}
    assert {("maps", "view"), ("mean_image", "view"), ("base_values", "view")} <= buffers
    assert state["selected"] == 1 and state["class_names"] == ["0", "1"]
    assert embedded["view_specs"][0]["model_id"] == g.model_id


def test_influence_result_displays_as_the_grid():
    rng = np.random.default_rng(0)
    x = rng.random((60, 6, 6, 1)).astype(np.float32)
    p = rng.dirichlet(np.ones(3), size=60)
    result = influence_maps(x, p, class_names=["a", "b", "c"])
    bundle = result._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert result.widget().class_names == ["a", "b", "c"]
