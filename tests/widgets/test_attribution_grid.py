"""AttributionGrid on the Python side: traits, binary buffers, errors, from_explanation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import traitlets
from ipywidgets.embed import dependency_state, embed_data

from xaiwidgets.widgets import AttributionGrid, MissingBundleError, XaiWidget
from xaiwidgets.widgets import _base as base_module
from xaiwidgets.widgets._ndarray_trait import array_from_json, array_to_json

XSS = '<img src=x onerror="window.__xss=1">'


def _grid(rng, n=2, h=5, w=4, c=1, o=3, **kw):
    return AttributionGrid(
        images=rng.random((n, h, w, c)),
        values=rng.normal(size=(n, h, w, o)),
        output_labels=[[f"c{j}" for j in range(o)] for _ in range(n)],
        **kw,
    )


def test_traits_hold_float32_arrays_and_defaults(rng):
    g = _grid(rng)
    assert g.images.dtype == np.float32 and g.images.shape == (2, 5, 4, 1)
    assert g.values.dtype == np.float32 and g.values.shape == (2, 5, 4, 3)
    assert g.images.flags.c_contiguous
    assert g.output_probabilities is None
    # cell_size 0: the view picks it from the image size and the output width
    assert (g.scale_mode, g.cell_size, g.invert_image, g.show_colorbar) == ("grid", 0, False, True)
    assert (g.true_columns, g.wrong_rows, g.predicted_names) == ([], [], [])
    assert g.error == "" and g.progress == -1.0
    assert g._esm and "render" in str(g._esm)


def test_state_sends_binary_buffers_not_lists(rng):
    g = _grid(rng, output_probabilities=rng.random((2, 3)))
    state = g.get_state()
    for name in ("images", "values", "output_probabilities"):
        entry = state[name]
        assert isinstance(entry["view"], memoryview), name
        assert entry["dtype"] == "float32"
    assert state["values"]["shape"] == [2, 5, 4, 3]
    back = np.frombuffer(state["values"]["view"], np.float32).reshape(2, 5, 4, 3)
    np.testing.assert_array_equal(back, g.values)
    # the comm message splits them off as binary parts: JSON state has no numbers lists
    from ipywidgets.widgets.widget import _remove_buffers

    json_state, paths, buffers = _remove_buffers(state)
    assert ["images", "view"] in paths and ["values", "view"] in paths
    assert all(isinstance(b, memoryview) for b in buffers)
    text = json.dumps({k: v for k, v in json_state.items() if k != "_esm"})
    assert len(text) < 2000  # a 120-value array as JSON would show up here


def test_repr_mimebundle_is_a_widget_view(rng):
    g = _grid(rng)
    bundle = g._repr_mimebundle_()
    assert isinstance(bundle, dict)  # a dict that Explanation can merge its PNG into
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == g.model_id
    assert bundle["text/plain"] == "AttributionGrid(images=(2, 5, 4, 1), outputs=3)"


def test_explanation_bundle_is_the_widget_without_png(small_explanation):
    bundle = small_explanation._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "image/png" not in bundle  # only on request (tests/test_display.py)


def test_embed_state_carries_arrays_as_base64_buffers(rng):
    g = _grid(rng)
    data = embed_data(views=[g], state=dependency_state(g, drop_defaults=False))
    model = data["manager_state"]["state"][g.model_id]
    paths = [b["path"] for b in model["buffers"]]
    assert ["images", "view"] in paths and ["values", "view"] in paths
    assert model["state"]["values"]["shape"] == [2, 5, 4, 3]


def test_array_codec_round_trip_and_narrowing():
    a = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]  # not contiguous, float64
    enc = array_to_json(a)
    assert enc["dtype"] == "float32" and enc["shape"] == [3, 2]
    np.testing.assert_array_equal(array_from_json(enc), a.astype(np.float32))
    assert array_to_json(np.array([1, 2], np.int64))["dtype"] == "int32"
    assert array_to_json(None) is None
    with pytest.raises(TypeError, match="complex"):
        array_to_json(np.zeros(2, np.complex64))


def test_shape_conveniences(rng):
    g = AttributionGrid(
        images=rng.random((2, 5, 4)),  # (n, h, w): grey
        values=rng.normal(size=(2, 5, 4, 3, 2)),  # (n, h, w, c, o): summed over c
        output_labels=[["a", "b"]] * 2,
    )
    assert g.images.shape == (2, 5, 4, 1)
    assert g.values.shape == (2, 5, 4, 2)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"values": np.zeros((2, 5, 5, 3))}, r"values: expected shape \(2, 5, 4, outputs\)"),
        ({"output_labels": [["a"]] * 2}, r"output_labels: expected 2 rows of 3 names"),
        (
            {"output_probabilities": np.zeros((2, 2))},
            r"output_probabilities: expected shape \(2, 3\)",
        ),
        ({"row_titles": ["x"]}, r"row_titles: expected 2 strings, got 1"),
        ({"true_columns": [0]}, r"true_columns: expected 2 entries \(one per image\), got 1"),
        ({"true_columns": [0, 3]}, r"true_columns: expected output columns in -1\.\.2, got 3"),
        ({"wrong_rows": [True] * 3}, r"wrong_rows: expected 2 entries"),
        ({"predicted_names": ["a"]}, r"predicted_names: expected 2 entries"),
    ],
)
def test_inconsistent_input_raises_value_error(rng, kw, match):
    state = {
        "images": rng.random((2, 5, 4, 1)),
        "values": rng.normal(size=(2, 5, 4, 3)),
        "output_labels": [["a", "b", "c"]] * 2,
    }
    state.update(kw)
    with pytest.raises(ValueError, match=match):
        AttributionGrid(**state)


def test_bad_trait_values(rng):
    with pytest.raises(traitlets.TraitError, match=r"images: expected \(n, h, w, c\)"):
        AttributionGrid(images=np.zeros((2, 5, 4, 2)))
    with pytest.raises(traitlets.TraitError, match="scale_mode"):
        _grid(rng, scale_mode="column")
    with pytest.raises(traitlets.TraitError, match="expected an array of numbers"):
        AttributionGrid(images="not an array")


def test_unknown_keyword_is_a_helpful_type_error(rng):
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'cell_width'.*'cell_size'"):
        _grid(rng, cell_width=100)


def test_later_mismatch_shows_in_widget_then_clears(rng):
    g = _grid(rng)
    g.values = np.zeros((2, 5, 4, 2), np.float32)
    assert g.error.startswith("output_labels:")
    g.output_labels = [["a", "b"]] * 2
    assert g.error == ""


def test_report_errors_shows_message_in_place(rng):
    g = _grid(rng)
    with g.report_errors():
        raise ValueError("bad masker 'blurr'")
    assert g.error == "ValueError: bad masker 'blurr'"
    with g.report_errors():
        pass
    assert g.error == ""


def test_from_explanation_top_k_ranks_labels(small_explanation):
    e = small_explanation
    e.class_names[1] = XSS
    g = AttributionGrid.from_explanation(e, top_k=2, cell_size=100)
    assert g.cell_size == 100
    assert g.values.shape == (3, 6, 5, 2)
    probs = e.probabilities
    for i in range(3):
        order = np.argsort(-probs[i])[:2]
        assert g.output_labels[i] == [e.class_names[j] for j in order]
        np.testing.assert_allclose(g.output_probabilities[i], probs[i, order], rtol=1e-6)
        np.testing.assert_allclose(
            g.values[i], e.values[i][..., order].sum(axis=2), rtol=1e-5, atol=1e-6
        )
    assert g.row_titles == ["label: zero", f"label: {XSS}", "label: two"]


def test_from_explanation_marks_true_columns_and_wrong_predictions(small_explanation):
    e = small_explanation
    e.probabilities = np.array(
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4], [0.05, 0.15, 0.3, 0.5]], np.float32
    )
    e.predictions = np.log(e.probabilities)
    # labels [0, 1, 2]: row 0 right; rows 1 and 2 predicted "three", wrong
    g = AttributionGrid.from_explanation(e, top_k=2)
    # row 0: top-2 (0, x) holds class 0 at column 0; row 1: top-2 (3, 2) misses class 1;
    # row 2: top-2 (3, 2) holds class 2 at column 1
    assert g.true_columns == [0, -1, 1]
    assert g.wrong_rows == [False, True, True]
    assert g.predicted_names == ["zero", "three", "three"]
    assert g.output_labels[1] == ["three", "two"]
    # all outputs: every true class is a column (class order)
    assert AttributionGrid.from_explanation(e).true_columns == [0, 1, 2]
    # no labels: nothing marked
    e.labels = None
    g = AttributionGrid.from_explanation(e)
    assert (g.true_columns, g.wrong_rows) == ([], [])
    assert g.predicted_names == ["zero", "three", "three"]


def test_include_true_column_is_marked_in_the_grid():
    from xaiwidgets.explainers import Explainer

    class Constant(Explainer):
        method = "constant"

        def _explain(self, x, outputs, model_outputs, ctl):
            values = (
                np.ones((*x.shape, outputs.shape[1]), np.float32) * outputs[:, None, None, None]
            )
            return values, np.zeros(outputs.shape, np.float32)

    probs = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]], np.float32)
    expl = Constant(lambda x: np.log(probs[: len(x)]), class_names=["a", "b", "c"])
    e = expl(np.zeros((2, 3, 3, 1), np.float32), top_k=1, labels=[0, 2], include_true=True)
    g = AttributionGrid.from_explanation(e)
    assert g.output_labels == [["a", "b"], ["a", "c"]]
    assert g.true_columns == [0, 1] and g.wrong_rows == [False, True]
    np.testing.assert_allclose(g.values[1, ..., 1], 2.0)  # class c's own attributions


def test_from_explanation_all_outputs_and_widget_method(small_explanation):
    g = small_explanation.widget()
    assert isinstance(g, AttributionGrid)
    assert g.output_labels[0] == ["zero", "one", "two", "three"]
    np.testing.assert_allclose(g.values, small_explanation.values.sum(axis=3), rtol=1e-6)


def test_html_labels_are_kept_as_plain_data(rng):
    g = AttributionGrid(
        images=rng.random((1, 3, 3, 3)),
        values=rng.normal(size=(1, 3, 3, 1)),
        output_labels=[[XSS]],
        row_titles=["<b>bold</b>"],
        title="<script>alert(1)</script>",
    )
    state = g.get_state()
    assert state["output_labels"] == [[XSS]]
    assert state["row_titles"] == ["<b>bold</b>"]
    assert state["title"] == "<script>alert(1)</script>"


def test_missing_bundle_says_run_npm_build(monkeypatch, tmp_path):
    monkeypatch.setattr(base_module, "STATIC_DIR", tmp_path)

    class Unbuilt(XaiWidget):
        _bundle = "does_not_exist"

    with pytest.raises(MissingBundleError, match="npm run build"):
        Unbuilt()
    assert not issubclass(MissingBundleError, FileNotFoundError)
