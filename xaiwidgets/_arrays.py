"""Turning what users hand us into the arrays the library computes on.

Everything public takes images "as users have them": NumPy arrays, torch tensors, TensorFlow
tensors, JAX arrays, lists; uint8 or float; a batch or a single image. :func:`as_images` turns
all of them into ``float32`` ``(n, h, w, c)`` without importing any framework (duck typing on
the object's module name), and says what it expected when it cannot.

The layout of a framework tensor is its framework's (torch: channels first, NCHW / CHW;
TensorFlow and JAX: channels last, NHWC / HWC), never guessed from its shape. A NumPy array's
layout is read from its shape only where the shape leaves no doubt; otherwise ``layout=`` must
say it (see :func:`as_images`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CHANNEL_SIZES = (1, 3, 4)
#: an image side longer than this cannot be a channel axis (channels are 1, 3 or 4)
_MAX_CHANNELS = max(_CHANNEL_SIZES)
#: ``layout=`` values: the names of the given array's axes
LAYOUTS = ("auto", "nhwc", "nchw", "nhw", "hwc", "chw", "hw")
_LAYOUT_NDIM = {"nhwc": 4, "nchw": 4, "nhw": 3, "hwc": 3, "chw": 3, "hw": 2}
_FRAMEWORK_LAYOUT = {"torch": "nchw", "tensorflow": "nhwc", "jax": "nhwc"}


def framework_of(obj: Any) -> str | None:
    """Name of the framework an array-like comes from (``"torch"``, ``"tensorflow"``,
    ``"jax"``) judged by its type's module, or ``None`` for NumPy and plain Python."""
    module = type(obj).__module__ or ""
    root = module.split(".")[0]
    if root == "torch":
        return "torch"
    if root in ("tensorflow", "tf_keras") or module.startswith("keras"):
        return "tensorflow"
    if root in ("jax", "jaxlib"):
        return "jax"
    return None


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy view or copy of ``x`` (NumPy, torch tensor on any device, tf tensor, jax array,
    nested lists). Gradients are detached; nothing is cast."""
    if isinstance(x, np.ndarray):
        return x
    fw = framework_of(x)
    if fw == "torch":
        return x.detach().cpu().numpy()
    if fw == "tensorflow" and hasattr(x, "numpy"):
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # ragged lists and exotic objects
        raise TypeError(
            f"expected an array (NumPy, torch, TensorFlow or JAX), got {type(x).__name__} "
            f"that NumPy cannot read as one array ({exc})"
        ) from exc


def _framework_layout(framework: str, shape: tuple[int, ...]) -> str:
    """The layout a tensor of ``framework`` has: its framework's convention. A 3-D tensor is
    one image (``chw`` for torch, ``hwc`` otherwise) when its channel axis has 1, 3 or 4
    entries, else a batch of grey images ``(n, h, w)``."""
    convention = _FRAMEWORK_LAYOUT[framework]
    if len(shape) == 4:
        return convention
    if len(shape) == 3:
        if convention == "nchw":
            return "chw" if shape[0] in _CHANNEL_SIZES else "nhw"
        return "hwc" if shape[-1] in _CHANNEL_SIZES else "nhw"
    return "hw"


def _numpy_layout(shape: tuple[int, ...], name: str) -> str:
    """The layout of a NumPy array of ``shape`` where its shape leaves no doubt, else a
    ``ValueError`` asking for ``layout=``. A channel axis has 1, 3 or 4 entries and the image
    sides are longer — the one convention that separates them."""
    if len(shape) == 2:
        return "hw"
    cs, big = _CHANNEL_SIZES, _MAX_CHANNELS
    if len(shape) == 3:
        a, b, c = shape
        if c in cs and a > big and b > big:
            return "hwc"  # one image, e.g. (28, 28, 3)
        if a in (3, 4) and b > big and c > big:
            raise ValueError(
                f"{name}: an array of shape {shape} could be {a} grey images of {b}x{c} "
                f"pixels or one channels-first image with {a} channels; say which with "
                "layout='nhw' (a batch of grey images) or layout='chw' (one image)"
            )
        return "nhw"  # grey images, e.g. (5, 28, 28); (1, h, w) reads the same either way
    _, a, b, c = shape
    # a reading is plausible when its channel axis has 1, 3 or 4 entries and the image is at
    # least as tall and as wide as it has channels: (n, 4, 4, 1) is four 4x4 grey images, not
    # 4-channel images of 4x1 pixels; (n, 3, 3, 3) and (n, 3, 4, 3) fit both readings
    last = c in cs and min(a, b) >= c
    first = a in cs and min(b, c) >= a
    if last != first:
        return "nhwc" if last else "nchw"
    raise ValueError(
        f"{name}: cannot tell the channel axis of an array of shape {shape} (channels first "
        f"(n, c, h, w) or last (n, h, w, c)); say which with layout='nchw' or layout='nhwc'"
    )


def as_images(x: Any, *, name: str = "images", layout: str = "auto") -> np.ndarray:
    """Normalise images to ``float32`` NHWC.

    Parameters
    ----------
    x : array-like
        A batch ``(n, h, w, c)``, ``(n, c, h, w)`` or ``(n, h, w)`` (grey), or one image
        ``(h, w, c)``, ``(c, h, w)`` or ``(h, w)``: NumPy, a torch / TensorFlow / JAX tensor, or
        nested lists. Real numbers (bool, int, float); complex arrays are refused.
    layout : {"auto", "nhwc", "nchw", "nhw", "hwc", "chw", "hw"}
        The names of ``x``'s axes. ``"nhwc"`` / ``"nchw"`` given for a 3-D array mean one image
        in that convention (``hwc`` / ``chw``). ``"auto"`` (default):

        - a torch tensor is channels first (``(n, c, h, w)``; 3-D: one ``(c, h, w)`` image when
          its first axis has 1, 3 or 4 entries, else ``(n, h, w)`` grey images); a TensorFlow
          tensor or JAX array is channels last (``(n, h, w, c)``; 3-D: one ``(h, w, c)`` image
          when its last axis has 1, 3 or 4 entries, else ``(n, h, w)``), whatever its shape;
        - a NumPy array's layout is read from its shape where that is unambiguous: a channel
          axis has 1, 3 or 4 entries; a 4-D image is at least as tall and as wide as it has
          channels; a 3-D one image has sides of more than 4 pixels. So ``(n, 28, 28)`` are
          grey images, ``(28, 28, 3)`` one image, ``(n, 28, 28, 1)`` / ``(n, 32, 32, 3)`` /
          ``(n, 4, 4, 1)`` channels last, ``(n, 1, 28, 28)`` / ``(n, 3, 32, 32)`` channels
          first. A shape that fits two layouts (``(n, 3, 3, 3)``, ``(3, 28, 28)``: three grey
          images or one channels-first RGB image?) or none (``(n, 28, 28, 5)``) raises
          ``ValueError`` asking for ``layout=``.

    Returns
    -------
    numpy.ndarray, float32, shape ``(n, h, w, c)``. Values keep their range: uint8 images stay
    0..255 (cast, not rescaled), so they mean what the model was trained on. NaN, infinite
    values and finite values beyond float32's range raise ``ValueError``.
    """
    if not isinstance(layout, str) or layout.lower() not in LAYOUTS:
        raise ValueError(
            f"layout: expected one of {', '.join(repr(v) for v in LAYOUTS)}, got {layout!r}"
        )
    layout = layout.lower()
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name}: expected an array of images, got a {type(x).__name__} {x!r}")
    fw = framework_of(x)
    arr = to_numpy(x)
    if np.iscomplexobj(arr):
        raise TypeError(f"{name}: expected real numbers, got complex dtype {arr.dtype}")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    shape = arr.shape
    if arr.ndim not in (2, 3, 4):
        raise ValueError(
            f"{name}: expected (n, h, w), (n, h, w, c), (n, c, h, w), (h, w, c), (c, h, w) or "
            f"(h, w), got an array of shape {shape}"
        )
    if 0 in shape:
        raise ValueError(f"{name}: got an empty array of shape {shape}")
    if layout == "auto":
        layout = _numpy_layout(shape, name) if fw is None else _framework_layout(fw, shape)
    elif arr.ndim == 3 and layout in ("nhwc", "nchw"):
        layout = layout[1:]
    elif arr.ndim == 2 and layout in ("nhwc", "nchw", "hwc", "chw"):
        layout = "hw"
    if _LAYOUT_NDIM[layout] != arr.ndim:
        raise ValueError(
            f"{name}: layout={layout!r} names {_LAYOUT_NDIM[layout]} axes but the array has "
            f"shape {shape}"
        )
    if layout == "nchw":
        arr = np.transpose(arr, (0, 2, 3, 1))
    elif layout == "nhw":
        arr = arr[..., None]
    elif layout == "hwc":
        arr = arr[None]
    elif layout == "chw":
        arr = np.transpose(arr, (1, 2, 0))[None]
    elif layout == "hw":
        arr = arr[None, :, :, None]
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        _raise_not_finite(arr, name)
    return out


def as_image_batch(x: Any, *, name: str = "images") -> np.ndarray:
    """Images at the backend protocol and inside explainers: like :func:`as_images`, except
    that a 4-D NumPy array (or nested list) is NHWC, the protocol's layout, whatever its shape
    (the arrays explainers pass on were normalised already, maybe with an explicit
    ``layout=``). Framework tensors keep their framework's layout; 3-D and 2-D arrays are read
    as :func:`as_images` reads them."""
    if framework_of(x) is not None or isinstance(x, (str, bytes)):
        return as_images(x, name=name)
    arr = to_numpy(x)
    return as_images(arr, name=name, layout="nhwc" if arr.ndim == 4 else "auto")


def _raise_not_finite(arr: np.ndarray, name: str) -> None:
    """The ``ValueError`` for images that are not finite float32: NaN/inf in the input, or
    finite values too large for float32 (which overflow to inf when cast)."""
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = int((~finite).sum())
            raise ValueError(f"{name}: contains NaN or infinite values ({bad} entries)")
    biggest = float(np.max(np.abs(arr.astype(np.float64))))
    limit = float(np.finfo(np.float32).max)
    raise ValueError(
        f"{name}: values overflow float32 (largest magnitude {biggest:.3g}, float32 holds up to "
        f"{limit:.3g}); rescale the images"
    )


def as_labels(y: Any, *, n: int | None = None, name: str = "y") -> np.ndarray:
    """Class labels ``(n,)`` int64 from labels ``(n,)`` or one-hot / probability rows ``(n, k)``
    (argmax)."""
    arr = to_numpy(y)
    if arr.ndim == 2:
        arr = arr.argmax(axis=1)
    elif arr.ndim != 1:
        raise ValueError(
            f"{name}: expected labels (n,) or one-hot rows (n, k), got shape {arr.shape}"
        )
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} entries, got {arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name}: labels must be whole numbers")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax."""
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def looks_like_probabilities(outputs: np.ndarray, atol: float = 1e-3) -> bool:
    """True when every row is non-negative and sums to 1 (a softmax output)."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2 or outputs.size == 0:
        return False
    return bool(np.all(outputs >= -atol) and np.allclose(outputs.sum(axis=1), 1.0, atol=atol))


def batches(n: int, batch_size: int):
    """Yield ``slice`` objects covering ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def check_class_names(class_names: Any, k: int | None = None, *, name: str = "class_names"):
    """``class_names`` as a list of ``str`` (``None`` stays ``None``).

    A sequence of names, one per class (list, tuple, 1-D array, ``range``...). One string or a
    number raises ``TypeError`` (a string would otherwise be split into its characters); with
    ``k`` a number of names other than ``k`` raises ``ValueError``."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)):
        raise TypeError(
            f"{name}: expected a sequence of names (one per class), got the single string "
            f"{class_names!r}; wrap it in a list for one class"
        )
    if isinstance(class_names, (set, frozenset, dict)) or not hasattr(class_names, "__len__"):
        raise TypeError(
            f"{name}: expected a sequence of names (one per class, in class order), got "
            f"{type(class_names).__name__} {class_names!r}"
        )
    if isinstance(class_names, np.ndarray) and class_names.ndim != 1:
        raise TypeError(f"{name}: expected a 1-D sequence of names, got shape {class_names.shape}")
    names = [str(c) for c in class_names]
    if not names:
        raise ValueError(f"{name}: expected at least one name, got an empty sequence")
    if k is not None and len(names) != k:
        raise ValueError(f"{name}: expected {k} names (one per model output), got {len(names)}")
    return names


def check_int(
    value: Any, name: str, minimum: int = 1, maximum: int | None = None, hint: str = ""
) -> int:
    """``value`` as an ``int`` in ``minimum..maximum``: a Python or NumPy integer, not a bool,
    a float or a string (``TypeError``); out of range raises ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name}: expected an integer >= {minimum}, got {type(value).__name__} {value!r}{hint}"
        )
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f"an integer >= {minimum}"
        raise ValueError(f"{name}: expected {bound}, got {value}")
    return value


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``):
    ``TypeError`` for a non-number (bools and strings included), ``ValueError`` for NaN,
    infinities and values out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    too_low = low is not None and (out <= low if low_open else out < low)
    if too_low or (high is not None and out > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ValueError(
            f"{name}: expected a number in {'(' if low_open else '['}{lo}, {hi}], got {out:g}"
        )
    return out


def check_labels_range(labels: np.ndarray, k: int, name: str = "labels") -> np.ndarray:
    """``labels`` unchanged when every entry is a class index ``0..k-1``, else ``ValueError``."""
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        bad = labels[(labels < 0) | (labels >= k)]
        raise ValueError(
            f"{name}: expected class indices in 0..{k - 1} ({k} model outputs), got "
            f"{bad[:5].tolist()}{'...' if bad.size > 5 else ''}"
        )
    return labels


def check_baseline(baseline: Any, name: str = "baseline") -> Any:
    """A reference input given as a finite number or as numeric image(s), returned as given
    (a number as ``float``); a string, NaN, infinities or a non-numeric array raise
    ``TypeError`` / ``ValueError`` when the explainer is built, not half-way through a run."""
    if isinstance(baseline, (str, bytes)):
        raise TypeError(
            f"{name}: expected a number (e.g. 0.0 for black in 0..1 images) or an array of "
            f"images, got the string {baseline!r}"
        )
    arr = to_numpy(baseline)
    if arr.ndim == 0:
        return check_number(arr.item() if arr.dtype != object else baseline, name)
    if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if arr.size == 0 or not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite numbers (no NaN or infinity), got {arr.shape}")
    return baseline


def check_seed(seed: Any, *, allow_none: bool = True) -> int | None:
    """A random seed: a non-negative ``int`` (or ``None`` where allowed), else ``TypeError`` /
    ``ValueError`` (NumPy would otherwise fail inside ``default_rng`` at the first call)."""
    if seed is None and allow_none:
        return None
    return check_int(seed, "seed", 0)
