"""Static matplotlib pictures of an :class:`~xaiwidgets.Explanation` (the equivalent of
``shap.image_plot``), used by ``Explanation.plot()`` and as the PNG fallback of the widget.

Every string drawn here (class names, labels, titles) is text, never mathtext or LaTeX: each
``Text`` gets :data:`TEXT` (``parse_math=False, usetex=False``), so ``"$5-$10"`` draws as
typed and ``"$x_$"`` draws instead of failing, whatever ``rcParams["text.usetex"]`` says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._deprecation import renamed_kwargs

#: keyword arguments of every ``Text`` that shows a user string: drawn literally
TEXT: dict[str, Any] = {"parse_math": False, "usetex": False}

if TYPE_CHECKING:  # pragma: no cover
    from .explanation import Explanation


def palette() -> dict[str, tuple[float, float, float]]:
    """The widgets' colours (``xaiwidgets/palette.json``, shared with the JS colour map) as 0..1 RGB."""
    raw = json.loads((Path(__file__).parent / "palette.json").read_text())
    return {k: tuple(c / 255 for c in raw[k]) for k in ("positive", "negative")}


def diverging_cmap():
    """Red (positive) / blue (negative) colour map, transparent around 0: the widgets' colours,
    alpha growing linearly with ``|value| / max|value|`` as in ``js/src/lib/colormap.ts``."""
    from matplotlib.colors import LinearSegmentedColormap

    colours = palette()
    blue, red = colours["negative"], colours["positive"]
    colors = [(*blue, 1.0), (*blue, 0.0), (*red, 0.0), (*red, 1.0)]
    return LinearSegmentedColormap.from_list(
        "xai_red_transparent_blue", list(zip([0.0, 0.4999, 0.5001, 1.0], colors))
    )


def grey(image: np.ndarray) -> np.ndarray:
    """``(h, w)`` grey version of an ``(h, w, c)`` image, scaled to 0..1."""
    g = image.mean(axis=-1) if image.shape[-1] != 1 else image[..., 0]
    lo, hi = float(g.min()), float(g.max())
    return (g - lo) / (hi - lo) if hi > lo else np.zeros_like(g)


def display_image(image: np.ndarray) -> np.ndarray:
    """An ``(h, w, c)`` image scaled to 0..1 for ``imshow`` (grey images as ``(h, w)``)."""
    lo, hi = float(image.min()), float(image.max())
    img = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return img[..., 0] if img.shape[-1] == 1 else img[..., :3]


@renamed_kwargs(scale="scale_mode", invert="invert_image")
def plot_grid(
    expl: Explanation,
    *,
    max_images: int | None = 8,
    scale_mode: str = "grid",
    invert_image: bool = False,
    cell_size: float = 1.6,
    show_labels: bool = True,
    figure: Any = None,
) -> Any:
    """Rows = images; first column the image, then one column per explained output.

    The attribution (summed over channels) is drawn with a red/blue map symmetric around 0 over
    a faint grey copy of the image; each column has its label above it (class name and
    probability); one colour bar is shared by the grid (``scale_mode="grid"``) or each row has
    its own scale (``scale_mode="row"``), as in the widget. ``invert_image=True`` draws ``-x``
    (white digits on black look black on white); ``scale=``/``invert=`` are the deprecated
    spellings. Names and labels are drawn as text (:data:`TEXT`), never as math.

    ``figure``: a ``matplotlib.figure.Figure`` to draw into (its size is set here); by default
    a new pyplot figure, which the user's backend shows. ``Explanation.to_png`` passes a
    Figure on an Agg canvas so that no pyplot state or backend is touched. Returns the Figure.
    """
    if scale_mode not in ("grid", "row"):
        raise ValueError(f"scale_mode: expected 'grid' or 'row', got {scale_mode!r}")
    e = expl if max_images is None or len(expl) <= max_images else expl[:max_images]
    n, h, w, _, o = e.values.shape
    attr = e.values.sum(axis=3)  # (n, h, w, o)
    # small images (MNIST) are drawn as crisp pixels: exact values, and a PNG a quarter of the
    # size of a smoothed one; large ones (224 x 224 photos) keep matplotlib's antialiasing
    interp = "nearest" if max(h, w) <= 64 else None
    names = e.output_names
    probs = e.output_probabilities
    cmap = diverging_cmap()
    grid_max = float(np.abs(attr).max()) or 1.0
    figsize = (cell_size * (o + 1) + 0.8, cell_size * n + 0.5)
    if figure is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize)
    else:
        fig = figure
        fig.set_size_inches(*figsize)
    axes = fig.subplots(n, o + 1, squeeze=False)
    im = None
    # titles get y=1.0: a fixed place above the (axis-less) cell, which spares matplotlib the
    # title-above-tick-labels layout pass that took most of a PNG's time
    for i in range(n):
        data = -e.data[i] if invert_image else e.data[i]
        ax = axes[i, 0]
        ax.imshow(display_image(data), cmap="gray", interpolation=interp)
        title = ""
        if e.labels is not None:
            title = f"true: {_name(e, int(e.labels[i]))}"
        ax.set_title(title, fontsize=8, y=1.0, **TEXT)
        vmax = grid_max if scale_mode == "grid" else (float(np.abs(attr[i]).max()) or 1.0)
        g = grey(data)
        for j in range(o):
            ax = axes[i, j + 1]
            ax.imshow(g, cmap="gray", alpha=0.15, interpolation=interp)
            im = ax.imshow(attr[i, ..., j], cmap=cmap, vmin=-vmax, vmax=vmax, interpolation=interp)
            if show_labels:
                label = names[i][j]
                if probs is not None:
                    label = f"{label} {probs[i, j]:.2f}"
                ax.set_title(label, fontsize=8, y=1.0, **TEXT)
        for ax in axes[i]:
            ax.axis("off")
    if im is not None:
        cb = fig.colorbar(
            im,
            ax=axes.ravel().tolist(),
            orientation="horizontal",
            aspect=60,
            pad=0.02,
            fraction=0.04,
        )
        cb.set_label(
            "attribution" + (" (scale of the last row)" if scale_mode == "row" else ""),
            fontsize=8,
            **TEXT,
        )
        cb.outline.set_visible(False)
    return fig


def _name(e: Explanation, idx: int) -> str:
    if e.class_names is not None and 0 <= idx < len(e.class_names):
        return e.class_names[idx]
    return str(idx)
