"""`show()`: draw attributions users already have (shap's arrays and objects) as a grid,
without importing shap."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import as_images, as_labels, to_numpy
from ._deprecation import warn_renamed
from .explanation import Explanation


def _values_nhwco(
    values: Any,
    image_shape: tuple[int, int, int] | None,
    given: tuple[tuple[int, ...], str] | None = None,
) -> np.ndarray:
    """Attributions as ``(n, h, w, c, o)`` from a list of per-output arrays or one array,
    in NHWC or NCHW (torch) layout. ``given``: the shape and ``layout=`` of the images as the
    user gave them (per-output arrays of that shape are read in that layout)."""
    if isinstance(values, (list, tuple)):
        per_output = [
            as_images(v, name="values", layout=_layout(to_numpy(v), image_shape, given))
            for v in values
        ]
        if len({v.shape for v in per_output}) != 1:
            raise ValueError(
                "values: every per-output array must have the same shape, got "
                f"{[v.shape for v in per_output]}"
            )
        return np.stack(per_output, axis=-1)
    arr = to_numpy(values)
    if np.iscomplexobj(arr) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"values: expected real numbers, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 5:
        if image_shape is not None and arr.shape[1:4] != image_shape:
            h, w, c = image_shape
            if arr.shape[1:4] == (c, h, w):
                arr = arr.transpose(0, 2, 3, 1, 4)
        return arr
    if arr.ndim == 4 and image_shape is not None and arr.shape[1:4] == image_shape:
        return arr[..., None]
    if arr.ndim in (3, 4):
        return as_images(arr, name="values", layout=_layout(arr, image_shape, given))[..., None]
    raise ValueError(
        "values: expected a list of (n, h, w, c) arrays (one per output, as shap returns), an "
        f"(n, h, w, c, outputs) array or a shap-like object with .values, got shape {arr.shape}"
    )


def _layout(
    arr: np.ndarray,
    image_shape: tuple[int, int, int] | None,
    given: tuple[tuple[int, ...], str] | None = None,
) -> str:
    """The layout of a values array: the images' own ``layout=`` when it has their shape as
    given, else whichever of NHWC / NCHW / grey ``(n, h, w)`` matches the images' shape,
    else ``"auto"``."""
    if given is not None and given[1] != "auto" and arr.shape == given[0]:
        return given[1]
    if image_shape is not None and arr.ndim == 4:
        h, w, c = image_shape
        if arr.shape[1:] == (c, h, w) and arr.shape[1:] != (h, w, c):
            return "nchw"
        if arr.shape[1:] == (h, w, c):
            return "nhwc"
    if image_shape is not None and arr.ndim == 3 and image_shape[2] == 1:
        if arr.shape[1:] == image_shape[:2]:
            return "nhw"
    return "auto"


def _names_to_indices(labels: Any, n: int, o: int) -> tuple[np.ndarray, list[str]]:
    """``(o,)`` or ``(n, o)`` output names -> ``(n, o)`` indices into a list of unique names."""
    arr = np.asarray(labels, dtype=object)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (n, arr.shape[0]))
    if arr.shape != (n, o):
        raise ValueError(
            f"output_names: expected {o} names or an ({n}, {o}) array of names, got shape {arr.shape}"
        )
    names: list[str] = []
    lookup: dict[str, int] = {}
    idx = np.empty((n, o), np.int64)
    for (i, j), name in np.ndenumerate(arr):
        key = str(name)
        if key not in lookup:
            lookup[key] = len(names)
            names.append(key)
        idx[i, j] = lookup[key]
    return idx, names


def to_explanation(
    values: Any,
    images: Any = None,
    output_names: Any = None,
    *,
    base_values: Any = None,
    true_labels: Any = None,
    layout: str = "auto",
    **deprecated: Any,
) -> Explanation:
    """An :class:`Explanation` from shap-style inputs.

    Parameters
    ----------
    values : list of ``(n, h, w, c)`` arrays (``shap_values``, one per output), an
        ``(n, h, w, c, o)`` array, an :class:`Explanation`, or a shap-like object with
        ``.values`` / ``.data`` / ``.output_names`` / ``.base_values``. NCHW (torch) arrays are
        accepted and transposed to match ``images``.
    images : ``(n, h, w, c)`` images (any accepted form); taken from ``values.data`` when omitted.
    output_names : ``(o,)`` or ``(n, o)`` names of the explained outputs (what
        ``shap.image_plot`` calls ``labels``; ``labels=`` here is deprecated: in xaiwidgets
        ``labels`` are the true classes, as in every explainer).
    true_labels : ``(n,)`` true class of each image (shown as the row title), optional.
    layout : the axes of ``images`` (``"nhwc"``, ``"nchw"``..., see
        :func:`~xaiwidgets._arrays.as_images`); values of the same shape are read the same way.
    """
    output_names = _output_names_keyword(output_names, deprecated, "to_explanation()")
    if isinstance(values, Explanation):
        return values
    if (
        hasattr(values, "values")
        and not isinstance(values, np.ndarray)
        and not callable(values.values)
    ):
        obj = values
        values = obj.values
        if images is None and getattr(obj, "data", None) is not None:
            images = obj.data
        if output_names is None and getattr(obj, "output_names", None) is not None:
            output_names = obj.output_names
        if base_values is None and getattr(obj, "base_values", None) is not None:
            base_values = obj.base_values
    if images is None:
        raise ValueError("images: expected the (n, h, w, c) images that were explained, got None")
    x = as_images(images, layout=layout)
    v = _values_nhwco(values, x.shape[1:], (np.shape(to_numpy(images)), layout))
    if v.shape[:4] != x.shape:
        raise ValueError(f"values {v.shape[:4]} (n, h, w, c) do not match images {x.shape}")
    n, o = v.shape[0], v.shape[-1]
    idx, names = (None, None) if output_names is None else _names_to_indices(output_names, n, o)
    if base_values is not None:
        base = to_numpy(base_values)
        if np.iscomplexobj(base) or not np.issubdtype(base.dtype, np.number):
            raise TypeError(f"base_values: expected numbers, got dtype {base.dtype}")
        try:
            base_values = np.broadcast_to(
                np.asarray(base, np.float32).reshape((n, -1) if base.size >= n else (1, -1)),
                (n, o),
            )
        except ValueError:
            raise ValueError(
                f"base_values: expected one value, {o} (one per output), {n} (one per image) "
                f"or ({n}, {o}), got shape {base.shape}"
            ) from None
    y = None if true_labels is None else as_labels(true_labels, n=n, name="true_labels")
    return Explanation(
        values=v,
        data=x,
        base_values=base_values,
        output_indices=idx,
        class_names=names,
        labels=y,
        method="external",
    )


def show(values: Any, images: Any = None, output_names: Any = None, **widget_kwargs: Any):
    """Draw attributions users already have as an interactive
    :class:`~xaiwidgets.widgets.AttributionGrid` (see :func:`to_explanation` for the inputs;
    ``true_labels=``, ``base_values=`` and ``layout=`` are accepted too; ``labels=`` is the
    deprecated spelling of ``output_names=``). Widget options (``cell_size``, ``scale_mode``,
    ``invert_image``...) pass through."""
    keys = ("base_values", "true_labels", "layout")
    conv = {k: widget_kwargs.pop(k) for k in keys if k in widget_kwargs}
    old = {"labels": widget_kwargs.pop("labels")} if "labels" in widget_kwargs else {}
    output_names = _output_names_keyword(output_names, old, "show()")
    return to_explanation(values, images, output_names, **conv).widget(**widget_kwargs)


def _output_names_keyword(output_names: Any, deprecated: dict[str, Any], where: str) -> Any:
    """``output_names``, or the deprecated ``labels=`` (with a warning naming the new one)."""
    extra = set(deprecated) - {"labels"}
    if extra:
        raise TypeError(f"{where} got an unexpected keyword argument {sorted(extra)[0]!r}")
    if "labels" not in deprecated:
        return output_names
    if output_names is not None:
        raise TypeError(f"{where}: got both labels= (deprecated) and output_names=")
    warn_renamed(where, "labels= (the names of the outputs)", "output_names=")
    return deprecated["labels"]
