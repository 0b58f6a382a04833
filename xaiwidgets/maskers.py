"""Maskers: how the hidden part of an image is filled when a coalition of regions is shown.

A coalition is a boolean ``keep`` mask ``(h, w)`` per image: ``True`` where the image stays
visible, ``False`` where the masker hides it (all channels of a pixel together). Visible pixels
are always returned bit-exact; only hidden ones are replaced.

=======================  ==============================================================
``"blur(kw,kh)"``        :class:`BlurMasker`: hidden pixels take the values of the box-blurred
                         image, ``cv2.blur(image, ksize=(kw, kh))`` (OpenCV orders the kernel
                         size width first, and so do the strings shap users know, so
                         ``"blur(28,28)"`` means what it meant there). The blurred image is
                         computed once per image, not once per coalition.
``"inpaint_telea"``      :class:`InpaintMasker` with ``cv2.INPAINT_TELEA`` (Telea 2004)
``"inpaint_ns"``         :class:`InpaintMasker` with ``cv2.INPAINT_NS`` (Navier-Stokes,
                         Bertalmio et al. 2001)
``"constant(v)"``        :class:`ConstantMasker`: hidden pixels set to ``v`` (one value, or one
                         per channel: ``"constant(0.1,0.2,0.3)"``)
=======================  ==============================================================

Every masker works on images of any value range (0..1, 0..255, -0.5..0.5, ...): inpainting maps
the image linearly to 8 bits only for OpenCV and maps the filled-in values back, writing them only
inside the hidden region.

Use: ``bound = masker.bind(images)`` (per-image work, once), then
``bound(index (r,), keep (r, h, w)) -> (r, h, w, c)`` float32 masked images; or simply
``masker(images, keep)`` with ``keep`` ``(n, h, w)``. ``bound.in_layout(index, keep, "nchw")``
gives them channels first, ``(r, c, h, w)``, as a channels-first model takes them (the blur and
constant maskers build them so directly, without a transposed copy of every masked image).
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

import numpy as np

from ._arrays import as_image_batch, check_int, check_number

_FORMS = (
    '"blur(kw,kh)" (e.g. "blur(28,28)"), "inpaint_telea", "inpaint_ns", '
    '"constant(v)" (e.g. "constant(0.5)", or one value per channel "constant(0,0.5,1)")'
)
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
#: the largest blur kernel side: OpenCV's box filter costs time in proportion to it
MAX_BLUR = 10_000


class Masker:
    """Base class. A subclass implements :meth:`bind` (or :meth:`fill` for maskers whose
    hidden value does not depend on the coalition) and :attr:`spec`."""

    #: the string form, as accepted by :meth:`parse` (recorded in Explanation params)
    spec: str = ""

    def fill(self, images: np.ndarray) -> np.ndarray:
        """``(n, h, w, c)`` image with every pixel hidden, for maskers whose fill does not
        depend on the coalition."""
        raise NotImplementedError

    def bind(self, images: Any) -> BoundMasker:
        """Prepare the per-image work (blurred image, 8-bit copy...) for ``images``."""
        x = as_image_batch(images)
        return _FillBound(x, self.fill(x))

    def __call__(self, images: Any, keep: Any) -> np.ndarray:
        """Mask ``images`` ``(n, h, w, c)`` with ``keep`` ``(n, h, w)`` (or one ``(h, w)``
        mask for all): ``(n, h, w, c)`` float32."""
        x = as_image_batch(images)
        keep = np.asarray(keep, dtype=bool)
        if keep.shape == x.shape[1:3]:
            keep = np.broadcast_to(keep, (len(x),) + keep.shape)
        return self.bind(x)(np.arange(len(x)), keep)

    @staticmethod
    def parse(spec: Any) -> Masker:
        """A masker from its string form (or a :class:`Masker`, returned as is, or a number,
        a :class:`ConstantMasker`). A string that is none of the forms raises ``ValueError``
        listing them."""
        if isinstance(spec, Masker):
            return spec
        if isinstance(spec, (int, float, np.number)) and not isinstance(spec, bool):
            return ConstantMasker(float(spec))
        if not isinstance(spec, str):
            raise TypeError(
                f"masker: expected a Masker or a string, one of {_FORMS}; got {type(spec).__name__}"
            )
        s = spec.strip().lower().replace(" ", "")
        if s in ("inpaint_telea", "inpaint_ns"):
            return InpaintMasker(s[len("inpaint_") :])
        m = re.fullmatch(r"blur\((\d+),(\d+)\)", s)
        if m and min(int(m.group(1)), int(m.group(2))) >= 1:
            return BlurMasker((int(m.group(1)), int(m.group(2))))  # checks the bounds
        m = re.fullmatch(rf"constant\(({_NUM}(?:,{_NUM})*)\)", s)
        if m:
            vals = [float(v) for v in m.group(1).split(",")]
            return ConstantMasker(vals[0] if len(vals) == 1 else vals)
        raise ValueError(f"masker: expected one of {_FORMS} (blur sizes at least 1); got {spec!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Masker) and type(other) is type(self) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.spec))


class BoundMasker:
    """A masker prepared for a batch of images ``(n, h, w, c)``.

    ``bound(index, keep)``: ``index`` ``(r,)`` which image each row masks, ``keep`` ``(r, h, w)``
    bool, -> ``(r, h, w, c)`` float32.
    """

    def __init__(self, images: np.ndarray):
        self.images = images
        self.n, self.height, self.width, self.channels = images.shape

    def _check(self, index: Any, keep: Any) -> tuple[np.ndarray, np.ndarray]:
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(index), self.height, self.width):
            raise ValueError(
                f"keep: expected ({len(index)}, {self.height}, {self.width}) bool masks, got shape {keep.shape}"
            )
        if index.size and (index.min() < 0 or index.max() >= self.n):
            raise ValueError(f"index: expected image indices in 0..{self.n - 1}")
        return index, keep

    def __call__(self, index: Any, keep: Any) -> np.ndarray:
        raise NotImplementedError

    def in_layout(self, index: Any, keep: Any, layout: str = "nhwc") -> np.ndarray:
        """The masked images of :meth:`__call__` in ``layout``: ``"nhwc"`` ``(r, h, w, c)`` or
        ``"nchw"`` ``(r, c, h, w)``, C-ordered float32 either way."""
        _check_layout(layout)
        out = self(index, keep)
        return out if layout == "nhwc" else out.transpose(0, 3, 1, 2).copy(order="C")


def _check_layout(layout: Any) -> None:
    if layout not in ("nhwc", "nchw"):
        raise ValueError(f"layout: expected 'nhwc' or 'nchw', got {layout!r}")


class _FillBound(BoundMasker):
    """A fill that does not depend on the coalition: each masked image is the image where it
    is visible and the fill where it is hidden, bit-exact, selected on the float32 bit
    patterns: ``out = fill ^ ((image ^ fill) & m)`` with ``m`` all ones where visible and 0
    where hidden (two passes over the output; several times faster than ``np.copyto(...,
    where=)``, whose mask is broadcast over the channels). ``image ^ fill`` and ``fill`` are
    kept per layout used, made once per bound batch."""

    def __init__(self, images: np.ndarray, fill: np.ndarray):
        super().__init__(images)
        self.fills = np.ascontiguousarray(fill, dtype=np.float32)
        self._bits: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # layout -> (flip, fill)

    def __call__(self, index: Any, keep: Any) -> np.ndarray:
        return self.in_layout(index, keep, "nhwc")

    def _layout_bits(self, layout: str) -> tuple[np.ndarray, np.ndarray]:
        """``(image ^ fill, fill)`` as uint32 ``(n, h, w, c)`` or ``(n, c, h, w)``."""
        if layout not in self._bits:
            images, fills = self.images, self.fills
            if layout == "nchw":
                images, fills = (a.transpose(0, 3, 1, 2).copy(order="C") for a in (images, fills))
            fill = np.ascontiguousarray(fills).view(np.uint32)
            flip = np.ascontiguousarray(images, dtype=np.float32).view(np.uint32) ^ fill
            self._bits[layout] = (flip, fill)
        return self._bits[layout]

    def in_layout(self, index: Any, keep: Any, layout: str = "nhwc") -> np.ndarray:
        _check_layout(layout)
        index, keep = self._check(index, keep)
        flip, fill = self._layout_bits(layout)
        ones = keep.astype(np.int32)
        np.negative(ones, out=ones)  # True -> -1: all 32 bits set
        ones = ones.view(np.uint32)
        ones = ones[:, None] if layout == "nchw" else ones[..., None]
        out = np.empty((len(index),) + flip.shape[1:], np.float32)
        bits = out.view(np.uint32)
        # rows come grouped by image: broadcast each image's planes, no gathered copies
        bounds = np.flatnonzero(np.diff(index)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(index)]) if len(index) else ():
            i = index[lo]
            np.bitwise_and(flip[i], ones[lo:hi], out=bits[lo:hi])
            np.bitwise_xor(bits[lo:hi], fill[i], out=bits[lo:hi])
        return out


class BlurMasker(Masker):
    """Hidden pixels take the box-blurred image's values: ``cv2.blur(image, ksize=kernel)``
    (mean over a ``kernel[1]`` rows x ``kernel[0]`` columns window, borders reflected as OpenCV's
    ``BORDER_REFLECT_101``), computed once per image.

    Parameters
    ----------
    kernel : (int, int)
        OpenCV ``ksize``, width then height, as in ``"blur(28,28)"``.
    """

    def __init__(self, kernel: tuple[int, int] = (28, 28)):
        if isinstance(kernel, (str, bytes)) or not hasattr(kernel, "__len__") or len(kernel) != 2:
            raise TypeError(
                f"kernel: expected two positive integers (width, height), got {kernel!r}"
            )
        kernel = tuple(check_int(k, "blur kernel size", 1, MAX_BLUR) for k in kernel)
        self.kernel = kernel
        self.spec = f"blur({kernel[0]},{kernel[1]})"

    def fill(self, images: np.ndarray) -> np.ndarray:
        import cv2

        x = as_image_batch(images)
        out = np.empty_like(x)
        for i, img in enumerate(x):
            if img.shape[-1] <= 4:
                out[i] = cv2.blur(img, self.kernel).reshape(img.shape)
            else:  # OpenCV's channel limit for this path: one channel at a time
                for ch in range(img.shape[-1]):
                    out[i, ..., ch] = cv2.blur(img[..., ch], self.kernel)
        return out


class ConstantMasker(Masker):
    """Hidden pixels set to ``value`` (a number, or one per channel)."""

    def __init__(self, value: Any = 0.0):
        arr = np.asarray(value, dtype=np.float32).reshape(-1)
        if arr.size == 0 or not np.isfinite(arr).all():
            raise ValueError(f"value: expected finite number(s), got {value!r}")
        self.value = arr
        self.spec = "constant(" + ",".join(f"{float(v):g}" for v in arr) + ")"

    def fill(self, images: np.ndarray) -> np.ndarray:
        x = as_image_batch(images)
        if self.value.size not in (1, x.shape[-1]):
            raise ValueError(
                f"constant masker: expected 1 or {x.shape[-1]} values (one per channel), got {self.value.size}"
            )
        return np.broadcast_to(self.value, x.shape).astype(np.float32)


class InpaintMasker(Masker):
    """Hidden pixels filled by OpenCV inpainting from the visible ones.

    Each image is mapped linearly to 8 bits, ``u8 = round(255 * (x - lo) / (hi - lo))`` with
    ``lo, hi`` its min and max, inpainted with ``cv2.inpaint(u8, hidden, radius, flag)``, and
    the result mapped back, ``lo + u8 * (hi - lo) / 255``, *only inside the hidden region*:
    visible pixels are the original floats, bit-exact. One- and three-channel images are
    inpainted as they are, other channel counts one channel at a time. When every pixel is hidden
    there is nothing to inpaint from, and the image becomes its per-channel mean (as shap's Image
    masker does).

    Parameters
    ----------
    method : "telea" (Telea 2004, ``cv2.INPAINT_TELEA``) or "ns" (Navier-Stokes, ``cv2.INPAINT_NS``).
    radius : float
        ``inpaintRadius`` (default 3, as shap).
    """

    def __init__(self, method: str = "telea", radius: float = 3.0):
        method = str(method).lower().removeprefix("inpaint_")
        if method not in ("telea", "ns"):
            raise ValueError(f"method: expected 'telea' or 'ns', got {method!r}")
        self.method = method
        self.radius = check_number(radius, "radius", low=0.0, high=1000.0, low_open=True)
        self.spec = f"inpaint_{method}"

    def bind(self, images: Any) -> BoundMasker:
        return _InpaintBound(as_image_batch(images), self.method, self.radius)


class _InpaintBound(BoundMasker):
    def __init__(self, images: np.ndarray, method: str, radius: float):
        import cv2

        super().__init__(images)
        self._cv2 = cv2
        self.flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        self.radius = radius
        flat = images.reshape(self.n, -1).astype(np.float64)
        self.lo = flat.min(axis=1)
        span = flat.max(axis=1) - self.lo
        self.scale = np.where(span > 0, span / 255.0, 1.0)  # value per 8-bit step
        u8 = np.rint((images - self.lo[:, None, None, None]) / self.scale[:, None, None, None])
        self.u8 = np.clip(u8, 0, 255).astype(np.uint8)
        self.means = images.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)

    def _inpaint(self, i: int, hidden: np.ndarray) -> np.ndarray:
        """8-bit inpainted image ``(h, w, c)`` of image ``i``."""
        cv2 = self._cv2
        img = self.u8[i]
        c = img.shape[-1]
        if c in (1, 3):
            src = img[..., 0] if c == 1 else img
            return cv2.inpaint(src, hidden, self.radius, self.flag).reshape(img.shape)
        return np.stack(
            [
                cv2.inpaint(np.ascontiguousarray(img[..., ch]), hidden, self.radius, self.flag)
                for ch in range(c)
            ],
            axis=-1,
        )

    def _fill_row(self, out: np.ndarray, row: int, i: int, k: np.ndarray) -> None:
        hidden = ~k
        if not hidden.any():
            return
        if not k.any():
            out[row] = self.means[i]
            return
        filled = self._inpaint(i, hidden.astype(np.uint8))
        values = self.lo[i] + filled[hidden].astype(np.float64) * self.scale[i]
        out[row][hidden] = values.astype(np.float32)

    def __call__(self, index: Any, keep: Any) -> np.ndarray:
        index, keep = self._check(index, keep)
        out = self.images[index]
        rows = range(len(index))
        if len(index) >= 16 and (os.cpu_count() or 1) >= 2:  # OpenCV releases the GIL
            list(_thread_pool().map(lambda r: self._fill_row(out, r, int(index[r]), keep[r]), rows))
        else:
            for r in rows:
                self._fill_row(out, r, int(index[r]), keep[r])
        return out


@functools.lru_cache(maxsize=1)
def _thread_pool():
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(
        # masks are filled before the model runs on them: every core may inpaint
        max_workers=min(8, os.cpu_count() or 2),
        thread_name_prefix="xaiwidgets-inpaint",
    )
