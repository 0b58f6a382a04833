"""`Explanation`: the result of every attribution explainer, and what the views draw.

Shapes (n images of h x w x c, o explained outputs per image, k model outputs):

- ``values``         ``(n, h, w, c, o)`` float32 attributions, outputs in the order asked for
                     (``c = 1``: one map for all channels, e.g. class activation maps)
- ``data``           ``(n, h, w, c)`` float32 images that were explained
- ``base_values``    ``(n, o)`` model output with every feature hidden (the reference f(x'))
- ``output_indices`` ``(n, o)`` int64 class index of each explained output, per image
- ``class_names``    ``k`` names of the model's outputs (or ``None``: the index is the name)
- ``predictions``    ``(n, k)`` the model's own outputs (logits or probabilities) or ``None``
- ``probabilities``  ``(n, k)`` softmax of the model's outputs (for label rows) or ``None``
- ``labels``         ``(n,)`` true labels, when known, or ``None``
- ``method``/``params`` the explainer and its parameters (JSON-serialisable)
- ``standard_errors`` ``(n, h, w, c, o)`` float32 Monte-Carlo standard error of each value
                     (expected gradients), or ``None`` for a method that is not a sampled
                     estimate

For additive methods, ``values[i, ..., j].sum() + base_values[i, j]`` equals the model's
output ``j`` on image ``i`` (efficiency / completeness).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ._arrays import as_labels, check_class_names, check_int, check_labels_range, to_numpy
from ._result import Result

_ARRAYS = (
    "values",
    "data",
    "base_values",
    "output_indices",
    "predictions",
    "probabilities",
    "labels",
    "standard_errors",
)


@dataclass(eq=False)
class Explanation(Result):
    """Attributions for a batch of images. See the module docstring for shapes.

    Keeps the result protocol (:class:`~xaiwidgets._result.Result`): ``params``,
    ``save``/``load``, ``widget()``, ``_repr_mimebundle_``."""

    _arrays: ClassVar[tuple[str, ...]] = _ARRAYS
    _required: ClassVar[tuple[str, ...]] = ("values", "data")
    _meta: ClassVar[tuple[str, ...]] = ("class_names", "method", "params")
    _legacy_header: ClassVar[bool] = True  # files of 0.1 carry no "result" in the header

    values: np.ndarray
    data: np.ndarray
    base_values: np.ndarray | None = None
    output_indices: np.ndarray | None = None
    class_names: list[str] | None = None
    predictions: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    labels: np.ndarray | None = None
    method: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    standard_errors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.values = _floats(self.values, "values")
        self.data = _floats(self.data, "data")
        if self.values.ndim == 4:
            self.values = self.values[..., None]
        if self.values.ndim != 5:
            raise ValueError(
                f"values: expected (n, h, w, c, outputs), got shape {self.values.shape}"
            )
        n, h, w, c, o = self.values.shape
        # one map shared by every channel (c = 1: CAM, occlusion) or one per channel
        same_pixels = self.data.ndim == 4 and self.data.shape[:3] == (n, h, w)
        if not same_pixels or c not in (1, self.data.shape[3]):
            raise ValueError(
                f"data: expected shape {(n, h, w, c)} (or (n, h, w, any c) for values with "
                f"one channel) to match values {self.values.shape}, got {self.data.shape}"
            )
        _check_finite(self.values, "values")
        _check_finite(self.data, "data")
        if self.standard_errors is not None:
            se = _check(
                _floats(self.standard_errors, "standard_errors"), self.values.shape,
                "standard_errors", np.float32,
            )  # fmt: skip
            _check_finite(se, "standard_errors")
            if any((row < 0).any() for row in se):  # image by image: a small temporary
                raise ValueError("standard_errors: expected values >= 0, got a negative one")
            self.standard_errors = se
        if self.base_values is None:
            self.base_values = np.zeros((n, o), np.float32)
        self.base_values = _check(
            _floats(self.base_values, "base_values"), (n, o), "base_values", np.float32
        )
        _check_finite(self.base_values, "base_values")
        if self.output_indices is None:
            self.output_indices = np.tile(np.arange(o, dtype=np.int64), (n, 1))
        elif not np.issubdtype(np.asarray(self.output_indices).dtype, np.integer):
            raise TypeError(
                "output_indices: expected integer class indices, got dtype "
                f"{np.asarray(self.output_indices).dtype}"
            )
        self.output_indices = _check(self.output_indices, (n, o), "output_indices", np.int64)
        k = None
        for name in ("predictions", "probabilities"):
            arr = getattr(self, name)
            if arr is not None:
                arr = _floats(arr, name)
                if arr.ndim != 2 or arr.shape[0] != n:
                    raise ValueError(f"{name}: expected (n={n}, k), got shape {arr.shape}")
                _check_finite(arr, name)
                k = arr.shape[1]
                setattr(self, name, arr)
        self.class_names = check_class_names(self.class_names, k)
        if self.labels is not None:
            self.labels = _check(as_labels(self.labels, name="labels"), (n,), "labels", np.int64)
            if k is not None:
                check_labels_range(self.labels, k)
        if not isinstance(self.method, str):
            raise TypeError(f"method: expected a string, got {type(self.method).__name__}")
        if not isinstance(self.params, dict):
            raise TypeError(f"params: expected a dict, got {type(self.params).__name__}")
        self.params = dict(self.params)

    # ------------------------------------------------------------------ shape helpers
    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.values.shape[-1]

    @property
    def output_names(self) -> list[list[str]]:
        """``(n, o)`` nested list with the name of each explained output."""
        names = self.class_names
        return [
            [names[j] if names is not None and 0 <= j < len(names) else str(j) for j in row]
            for row in self.output_indices.tolist()
        ]

    @property
    def output_probabilities(self) -> np.ndarray | None:
        """``(n, o)`` probability of each explained output, or ``None``."""
        if self.probabilities is None:
            return None
        return np.take_along_axis(self.probabilities, self.output_indices, axis=1)

    @property
    def predicted(self) -> np.ndarray | None:
        """``(n,)`` predicted class (argmax of the model outputs), or ``None``."""
        src = self.probabilities if self.probabilities is not None else self.predictions
        return None if src is None else src.argmax(axis=1)

    # ------------------------------------------------------------------ selection
    def __getitem__(self, key: Any) -> Explanation:
        """Select images and/or outputs: ``e[:2]``, ``e[[0, 3]]``, ``e[:, :5]``,
        ``e[:, ..., :5]``, ``e[1, ..., [0, 2]]``. An integer keeps its axis (``e[0]`` is one
        image). Spatial axes cannot be sliced."""
        if not isinstance(key, tuple):
            key = (key,)
        if len(key) > 2 and any(k is Ellipsis for k in key):
            key = (key[0], key[-1])
        key = tuple(slice(None) if k is Ellipsis else k for k in key)
        if len(key) > 2:
            raise IndexError("index images and outputs only: e[images] or e[images, ..., outputs]")
        img = _as_index(key[0], len(self))
        out = _as_index(key[1], self.n_outputs) if len(key) == 2 else slice(None)
        return self._select(img, out)

    def _select(self, img: Any, out: Any) -> Explanation:
        def rows(a):
            return None if a is None else a[img]

        per_image = isinstance(out, np.ndarray) and out.ndim == 2  # per-image output order

        def outputs_of(a):  # values-shaped (n, h, w, c, o) arrays
            if a is None:
                return None
            if per_image:
                return np.take_along_axis(a[img], out[:, None, None, None, :], axis=-1)
            return a[img][..., out]

        values = outputs_of(self.values)
        if per_image:
            base = np.take_along_axis(self.base_values[img], out, axis=1)
            idx = np.take_along_axis(self.output_indices[img], out, axis=1)
        else:
            base = self.base_values[img][:, out]
            idx = self.output_indices[img][:, out]
        if values.shape[0] == 0 or values.shape[-1] == 0:
            raise ValueError("empty selection: at least one image and one output are needed")
        return replace(
            self,
            values=values,
            data=self.data[img],
            base_values=base,
            output_indices=idx,
            predictions=rows(self.predictions),
            probabilities=rows(self.probabilities),
            labels=rows(self.labels),
            standard_errors=outputs_of(self.standard_errors),
            params=_params_of_images(self.params, img, len(self)),
        )

    def top_k(self, k: int) -> Explanation:
        """Keep, per image, the ``k`` explained outputs with the highest predicted probability,
        in decreasing order (the ranked label rows of ``shap.image_plot``)."""
        probs = self.output_probabilities
        if probs is None:
            probs = (
                None
                if self.predictions is None
                else np.take_along_axis(self.predictions, self.output_indices, axis=1)
            )
        if probs is None:
            raise ValueError("top_k needs probabilities or predictions in the Explanation")
        k = check_int(k, "k", 1, self.n_outputs)
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return self._select(slice(None), order)

    def class_order(self) -> Explanation:
        """Outputs sorted by class index per image (the 0..9 grid of the DeepExplainer seed)."""
        order = np.argsort(self.output_indices, axis=1, kind="stable")
        return self._select(slice(None), order)

    # ------------------------------------------------------------------ persistence
    # save(path) / Explanation.load(path): see xaiwidgets._result (npz + JSON header, no
    # pickle; a forged file is refused before anything large is allocated)

    # ------------------------------------------------------------------ display
    def plot(self, **kwargs: Any):
        """Static matplotlib grid (like ``shap.image_plot``). See :func:`xaiwidgets.plotting.plot_grid`."""
        from .plotting import plot_grid

        return plot_grid(self, **kwargs)

    def widget(self, **kwargs: Any):
        """The interactive :class:`~xaiwidgets.widgets.AttributionGrid` of this explanation."""
        from .widgets.attribution_grid import AttributionGrid

        return AttributionGrid.from_explanation(self, **kwargs)

    def to_png(self, dpi: int = 80, **plot_kwargs: Any) -> bytes:
        """PNG bytes of the :meth:`plot` grid (``plot_kwargs`` as :meth:`plot` takes them).

        Drawn on an explicit ``Figure`` with an Agg canvas: pyplot is not imported, and the
        matplotlib backend, the open figures and ``rcParams`` stay as they were.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        from .plotting import plot_grid

        fig = Figure()
        FigureCanvasAgg(fig)
        plot_grid(self, figure=fig, **plot_kwargs)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()

    def to_html(self, path: str | Path, *, title: str | None = None, **widget_kwargs: Any) -> Path:
        """Write a self-contained HTML page of :meth:`widget` that draws offline (no CDN, no
        server). See :func:`xaiwidgets.export_html`. Returns the path written."""
        from .export import export_html

        title = title if title is not None else f"xaiwidgets: {self.method or 'explanation'}"
        return export_html(self.widget(**widget_kwargs), path, title=title)

    #: Put a PNG of :meth:`plot` beside the widget in every display, for notebooks read where no
    #: widget manager runs (GitHub, nbviewer without widget state). Off by default: a PNG of a
    #: large grid costs seconds and megabytes. ``display(e, include=["image/png"])`` asks for
    #: one picture; a PNG is also sent when the widget cannot be made.
    png_fallback: ClassVar[bool] = False

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """The :class:`~xaiwidgets.widgets.AttributionGrid` view; a PNG only when asked for
        (``include``/:attr:`png_fallback`) or when the widget is unavailable."""
        include, exclude = set(include or ()), set(exclude or ())
        bundle: dict[str, Any] = {}
        text = repr(self)
        unavailable = False
        if not include or "application/vnd.jupyter.widget-view+json" in include:
            try:
                bundle.update(
                    self.widget()._repr_mimebundle_(include=include, exclude=exclude) or {}
                )
            except Exception as exc:  # no widget bundle: still show the static picture
                unavailable = True
                text = f"{text} (widget unavailable: {exc})"
        png = unavailable or self.png_fallback or "image/png" in include
        if png and "image/png" not in exclude:
            bundle["image/png"] = base64.b64encode(self.to_png()).decode("ascii")
        bundle["text/plain"] = text
        return bundle

    def __repr__(self) -> str:
        n, h, w, c, o = self.values.shape
        return (
            f"Explanation(method={self.method!r}, images={n}, image_shape={(h, w, c)}, outputs={o})"
        )


def _floats(arr: Any, name: str) -> np.ndarray:
    """``arr`` (NumPy, a framework tensor, nested lists) as float32; ``TypeError`` for
    anything that is not real numbers."""
    a = to_numpy(arr)
    if np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {a.dtype}")
    return np.asarray(a, dtype=np.float32)


def _check_finite(arr: np.ndarray, name: str) -> None:
    """``ValueError`` when ``arr`` holds NaN or infinite values (checked image by image, so
    the temporary stays one image's size)."""
    for i, row in enumerate(arr):
        if not np.isfinite(row).all():
            raise ValueError(
                f"{name}: image {i} holds NaN or infinite values; expected finite numbers"
            )


def _check(arr: Any, shape: tuple[int, ...], name: str, dtype: Any) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {arr.shape}")
    return arr.astype(dtype, copy=False)


def _as_index(k: Any, size: int) -> Any:
    if isinstance(k, (int, np.integer)):
        if not -size <= k < size:
            raise IndexError(f"index {k} out of range for {size}")
        k = int(k) % size
        return slice(k, k + 1)
    if isinstance(k, slice):
        return k
    arr = np.asarray(k)
    if arr.dtype == bool:
        if arr.shape != (size,):
            raise IndexError(f"boolean index: expected shape ({size},), got {arr.shape}")
        arr = np.flatnonzero(arr)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise IndexError(f"expected an int, slice, list of ints or boolean mask, got {k!r}")
    return arr


#: ``params`` entries that hold one value per image (Partition's and Permutation's model
#: evaluations): indexing an Explanation selects them with the images.
PER_IMAGE_PARAMS = ("evaluations",)


def _params_of_images(params: dict[str, Any], img: Any, n: int) -> dict[str, Any]:
    """``params`` with its per-image entries (:data:`PER_IMAGE_PARAMS`) indexed by ``img``."""
    out = dict(params)
    for key in PER_IMAGE_PARAMS:
        value = out.get(key)
        if isinstance(value, list) and len(value) == n:
            out[key] = np.asarray(value)[img].tolist()
    return out
