"""Maskers: parsing, blur once per image, inpainting on any value range with the visible pixels
untouched, constant fills."""

import cv2
import numpy as np
import pytest

from xaiwidgets.maskers import BlurMasker, ConstantMasker, InpaintMasker, Masker


def smooth_images(n=2, h=16, w=12, c=1, lo=0.0, hi=1.0, seed=0):
    """Smooth random images spanning ``lo..hi`` (so inpainting has something to recover)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    imgs = []
    for _ in range(n * c):
        a, b, p = rng.uniform(1, 4, size=3)
        imgs.append(np.sin(a * yy + p) * np.cos(b * xx))
    x = np.stack(imgs).reshape(n, c, h, w).transpose(0, 2, 3, 1)
    x = (x - x.min()) / (x.max() - x.min())
    return (lo + (hi - lo) * x).astype(np.float32)


def centre_hidden(n, h, w):
    keep = np.ones((n, h, w), bool)
    keep[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = False
    return keep


@pytest.mark.parametrize(
    "spec, cls, canonical",
    [
        ("blur(28,28)", BlurMasker, "blur(28,28)"),
        (" Blur( 5 , 3 ) ", BlurMasker, "blur(5,3)"),
        ("inpaint_telea", InpaintMasker, "inpaint_telea"),
        ("inpaint_ns", InpaintMasker, "inpaint_ns"),
        ("constant(0.5)", ConstantMasker, "constant(0.5)"),
        ("constant(-1e-1,0,.25)", ConstantMasker, "constant(-0.1,0,0.25)"),
    ],
)
def test_parse_accepts_the_known_strings(spec, cls, canonical):
    m = Masker.parse(spec)
    assert type(m) is cls
    assert m.spec == canonical
    assert Masker.parse(m.spec) == m
    assert Masker.parse(m) is m


@pytest.mark.parametrize(
    "bad", ["blur", "blur(28)", "blur(0,3)", "inpaint", "inpaint_fast", "constant()", "zeros"]
)
def test_parse_error_lists_the_valid_forms(bad):
    with pytest.raises(ValueError) as err:
        Masker.parse(bad)
    msg = str(err.value)
    for form in ("blur(28,28)", "inpaint_telea", "inpaint_ns", "constant(0.5)"):
        assert form in msg
    assert repr(bad) in msg


def test_parse_rejects_non_strings_with_a_type_error():
    with pytest.raises(TypeError, match="Masker or a string"):
        Masker.parse(["blur(3,3)"])
    assert Masker.parse(0.25) == ConstantMasker(0.25)


def test_blur_matches_opencv_and_keeps_visible_pixels():
    x = smooth_images(n=3, h=20, w=14, c=3)
    keep = centre_hidden(3, 20, 14)
    out = Masker.parse("blur(5,3)")(x, keep)
    for i in range(3):
        blurred = cv2.blur(x[i], (5, 3))
        np.testing.assert_array_equal(out[i][~keep[i]], blurred[~keep[i]])
        np.testing.assert_array_equal(out[i][keep[i]], x[i][keep[i]])


def test_blur_is_computed_once_per_image(monkeypatch):
    calls = []
    real = cv2.blur
    monkeypatch.setattr(cv2, "blur", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = smooth_images(n=2)
    bound = BlurMasker((3, 3)).bind(x)
    rng = np.random.default_rng(0)
    for _ in range(5):
        bound(np.array([0, 1, 1]), rng.random((3, 16, 12)) < 0.5)
    assert len(calls) == 2


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_inpaint_on_unit_range_images_keeps_visible_pixels_bit_exact(method):
    x = smooth_images(n=2, lo=0.0, hi=1.0) * 0.999 + 1e-4  # values no 8-bit grid holds
    keep = centre_hidden(2, 16, 12)
    out = InpaintMasker(method)(x, keep)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[keep], x[keep])
    hidden = out[~keep]
    # filled in from the surroundings, in the image's own range (shap's uint8 cast gives zeros)
    assert hidden.min() >= x.min() - 1e-6 and hidden.max() <= x.max() + 1e-6
    assert np.abs(hidden - x[~keep]).mean() < 0.1
    assert hidden.std() > 0


@pytest.mark.parametrize("lo, hi", [(0.0, 255.0), (-0.5, 0.5), (-3.0, 7.0)])
def test_inpaint_is_equivariant_to_the_value_range(lo, hi):
    unit = smooth_images(n=2, c=3)
    keep = centre_hidden(2, 16, 12)
    masker = InpaintMasker("telea")
    ref = masker(unit, keep)
    out = masker(lo + (hi - lo) * unit, keep)
    np.testing.assert_allclose((out - lo) / (hi - lo), ref, atol=1e-5)


def test_inpaint_of_8bit_images_is_opencvs():
    x = np.rint(smooth_images(n=1, c=1) * 255)
    keep = centre_hidden(1, 16, 12)
    out = InpaintMasker("ns")(x, keep)
    expected = cv2.inpaint(
        x[0, ..., 0].astype(np.uint8), (~keep[0]).astype(np.uint8), 3, cv2.INPAINT_NS
    )
    np.testing.assert_array_equal(out[0, ..., 0], expected.astype(np.float32))


def test_inpaint_edge_cases_and_channel_counts():
    x = smooth_images(n=1, c=2, lo=-1, hi=1)
    masker = InpaintMasker("telea")
    np.testing.assert_array_equal(masker(x, np.ones((1, 16, 12), bool)), x)
    everything = masker(x, np.zeros((1, 16, 12), bool))
    np.testing.assert_allclose(
        everything[0], np.broadcast_to(x[0].mean(axis=(0, 1)), x[0].shape), rtol=1e-6
    )
    two = masker(x, centre_hidden(1, 16, 12))  # two channels: inpainted one at a time
    assert two.shape == x.shape and np.isfinite(two).all()
    flat = np.full((1, 6, 6, 1), 0.3, np.float32)  # no range at all
    np.testing.assert_array_equal(masker(flat, centre_hidden(1, 6, 6)), flat)


def test_constant_fills_per_channel_and_checks_the_count():
    x = smooth_images(n=2, c=3)
    keep = centre_hidden(2, 16, 12)
    out = ConstantMasker([0.1, 0.2, 0.3])(x, keep)
    np.testing.assert_array_equal(
        out[~keep], np.tile(np.float32([0.1, 0.2, 0.3]), ((~keep).sum(), 1))
    )
    np.testing.assert_array_equal(out[keep], x[keep])
    with pytest.raises(ValueError, match="one per channel"):
        ConstantMasker([0.0, 1.0])(x, keep)


def test_bound_masker_checks_mask_shapes():
    bound = Masker.parse("constant(0)").bind(smooth_images(n=2))
    with pytest.raises(ValueError, match=r"expected \(1, 16, 12\) bool masks"):
        bound([0], np.ones((1, 12, 16), bool))
    with pytest.raises(ValueError, match="image indices"):
        bound([2], np.ones((1, 16, 12), bool))


def test_threaded_inpainting_equals_serial(monkeypatch):
    import xaiwidgets.maskers as maskers

    x = smooth_images(n=2, c=3, lo=-1, hi=2)
    rng = np.random.default_rng(5)
    keep = rng.random((40, 16, 12)) < 0.6
    index = np.repeat([0, 1], 20)
    bound = InpaintMasker("telea").bind(x)
    monkeypatch.setattr(maskers.os, "cpu_count", lambda: 1)
    serial = bound(index, keep)
    monkeypatch.setattr(maskers.os, "cpu_count", lambda: 8)
    np.testing.assert_array_equal(bound(index, keep), serial)


@pytest.mark.parametrize("spec", ["blur(5,3)", "constant(0.1,0.2,0.3)", "inpaint_telea"])
def test_masked_images_channels_first_are_the_channels_last_ones_transposed(spec):
    x = smooth_images(n=2, c=3, lo=-1, hi=2)
    rng = np.random.default_rng(3)
    keep = rng.random((5, 16, 12)) < 0.5
    index = np.array([0, 0, 1, 1, 1])
    bound = Masker.parse(spec).bind(x)
    nhwc = bound(index, keep)
    nchw = bound.in_layout(index, keep, "nchw")
    assert nchw.dtype == np.float32 and nchw.flags.c_contiguous
    np.testing.assert_array_equal(nchw, nhwc.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(bound.in_layout(index, keep, "nhwc"), nhwc)
    with pytest.raises(ValueError, match="layout: expected 'nhwc' or 'nchw'"):
        bound.in_layout(index, keep, "hwc")


def test_fill_maskers_select_bit_exact_values_in_any_row_order():
    """Visible pixels are the image's float32 values bit for bit (signed zeros, subnormals,
    huge values), hidden ones the fill's, rows of several images in any order; no rows: none."""
    x = smooth_images(n=3, c=3, lo=-1, hi=2)
    x[0, 0, 0] = [-0.0, 1e-42, 3e38]
    rng = np.random.default_rng(4)
    keep = rng.random((6, 16, 12)) < 0.5
    keep[0, 0, 0] = True
    index = np.array([0, 2, 2, 1, 0, 0])
    for spec, fill in [("constant(-0.0)", np.full_like(x, -0.0)), ("blur(3,3)", None)]:
        bound = Masker.parse(spec).bind(x)
        if fill is None:
            fill = bound.fills
        for layout in ("nhwc", "nchw"):
            out = bound.in_layout(index, keep, layout)
            if layout == "nchw":
                out = out.transpose(0, 2, 3, 1)
            want = np.where(keep[..., None], x[index], fill[index])
            np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
        assert bound.in_layout([], np.zeros((0, 16, 12), bool), "nchw").shape == (0, 3, 16, 12)
