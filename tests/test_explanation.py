import numpy as np
import pytest

from xaiwidgets import Explanation


def test_shapes_and_defaults(rng):
    e = Explanation(values=rng.normal(size=(2, 4, 4, 1, 3)), data=rng.random((2, 4, 4, 1)))
    assert e.values.dtype == np.float32 and e.shape == (2, 4, 4, 1, 3)
    assert e.base_values.shape == (2, 3)
    np.testing.assert_array_equal(e.output_indices, [[0, 1, 2], [0, 1, 2]])
    assert e.output_names == [["0", "1", "2"], ["0", "1", "2"]]
    assert e.predicted is None and e.output_probabilities is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": np.zeros((2, 4, 4))}, "values: expected"),
        ({"values": np.zeros((2, 4, 4, 1, 3)), "data": np.zeros((2, 4, 5, 1))}, "data: expected"),
        ({"values": np.zeros((2, 4, 4, 1, 3)), "base_values": np.zeros((2, 2))}, "base_values"),
        ({"values": np.zeros((2, 4, 4, 1, 3)), "probabilities": np.zeros((3, 4))}, "probabilities"),
        (
            {
                "values": np.zeros((2, 4, 4, 1, 3)),
                "probabilities": np.zeros((2, 4)),
                "class_names": ["a"],
            },
            "class_names: expected 4",
        ),
    ],
)
def test_bad_input_says_what_was_expected(kwargs, match):
    kwargs.setdefault("data", np.zeros((2, 4, 4, 1)))
    with pytest.raises(ValueError, match=match):
        Explanation(**kwargs)


def test_slicing_images_and_outputs(small_explanation):
    e = small_explanation
    assert e[:2].shape == (2, 6, 5, 1, 4)
    assert e[1].shape == (1, 6, 5, 1, 4)
    assert len(e[[0, 2]]) == 2 and e[[0, 2]].labels.tolist() == [0, 2]
    sub = e[:, ..., :2]
    assert sub.shape == (3, 6, 5, 1, 2)
    np.testing.assert_array_equal(sub.values, e.values[..., :2])
    np.testing.assert_array_equal(sub.base_values, e.base_values[:, :2])
    np.testing.assert_array_equal(e[:, [3, 1]].output_indices[0], [3, 1])
    np.testing.assert_array_equal(e[np.array([True, False, True])].data, e.data[[0, 2]])
    assert e[-1].labels.tolist() == [2]
    with pytest.raises(IndexError):
        e[5]
    with pytest.raises(ValueError, match="empty selection"):
        e[:0]


def test_top_k_orders_by_probability_per_image(small_explanation):
    e = small_explanation
    t = e.top_k(2)
    expected = np.argsort(-e.probabilities, axis=1)[:, :2]
    np.testing.assert_array_equal(t.output_indices, expected)
    for i in range(3):
        for j in range(2):
            np.testing.assert_array_equal(t.values[i, ..., j], e.values[i, ..., expected[i, j]])
            assert t.base_values[i, j] == e.base_values[i, expected[i, j]]
    assert np.all(np.diff(t.output_probabilities, axis=1) <= 0)
    assert t.output_names[0][0] == e.class_names[expected[0, 0]]
    with pytest.raises(ValueError, match="k: expected 1..4"):
        e.top_k(9)


def test_class_order_restores_class_indices(small_explanation):
    shuffled = small_explanation.top_k(4)
    back = shuffled.class_order()
    np.testing.assert_array_equal(back.output_indices, np.tile(np.arange(4), (3, 1)))
    np.testing.assert_array_equal(back.values, small_explanation.values)


def test_save_load_bit_exact(small_explanation, tmp_path):
    path = small_explanation.top_k(3).save(tmp_path / "expl")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as f:  # no object arrays inside
        assert all(f[k].dtype != object for k in f.files)
    loaded = Explanation.load(path)
    original = small_explanation.top_k(3)
    for name in (
        "values",
        "data",
        "base_values",
        "output_indices",
        "predictions",
        "probabilities",
        "labels",
    ):
        a, b = getattr(original, name), getattr(loaded, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    assert loaded.class_names == original.class_names
    assert loaded.method == "test" and loaded.params == {"alpha": 0.5, "name": "x"}


def test_plot_draws_a_grid(small_explanation):
    import matplotlib.pyplot as plt

    fig = small_explanation.top_k(2).plot()
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 3 * 3  # 3 rows x (image + 2 outputs)
    titles = [ax.get_title() for ax in image_axes]
    assert any(t.startswith("true: zero") for t in titles)
    assert any(t.endswith(f"{small_explanation.probabilities.max():.2f}") for t in titles)
    # attribution maps are drawn symmetric around zero
    clim = image_axes[1].images[-1].get_clim()
    assert clim[1] > 0 and clim[0] == -clim[1]
    plt.close(fig)


def test_png_fallback_is_a_png(small_explanation):
    png = small_explanation.to_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_per_image_params_follow_the_images(rng):
    # Partition / Permutation record the model evaluations spent per image
    e = Explanation(
        values=rng.normal(size=(3, 4, 4, 1, 2)).astype(np.float32),
        data=rng.random((3, 4, 4, 1)).astype(np.float32),
        params={"evaluations": [10, 20, 30], "max_evals": 30},
    )
    assert e[1:].params["evaluations"] == [20, 30]
    assert e[[2, 0]].params["evaluations"] == [30, 10]
    assert e[1].params["evaluations"] == [20]
    assert e[np.array([True, False, True])].params["evaluations"] == [10, 30]
    assert e[:, ..., :1].params == e.params  # outputs only: every image kept
    assert e[1:].params["max_evals"] == 30
    assert e.params["evaluations"] == [10, 20, 30]  # the original is unchanged
