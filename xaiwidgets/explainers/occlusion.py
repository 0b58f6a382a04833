"""`Occlusion`: slide a window over the image, hide what is under it, record the output drop.

Zeiler & Fergus, "Visualizing and understanding convolutional networks" (ECCV 2014). For
window positions ``P`` (``window`` = ``(wh, ww)`` pixels, every channel, moved by
``strides``), the attribution of pixel ``p`` to output ``c`` is the mean drop over the
windows that cover it,

    phi_p = (1 / |{w in P : p in w}|) sum_{w in P, p in w} f(x)_c - f(x with w := baseline)_c

(0 for a pixel no window covers; with ``strides`` dividing ``h - wh`` and ``w - ww`` every
pixel is covered). This is captum's ``Occlusion`` with a window over all channels. Values are
``(n, h, w, 1, o)``; ``base_values`` are the outputs on the all-baseline image.

Cost: ``|P|`` forward passes per image, batched across images and positions in batches of the
backend's rows per forward-only call (``batch_size`` when given, else by the memory a forward
pass keeps; memory: one batch of occluded images at a time); cancel and progress between
batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._progress import RunControl
from ._coalitions import forward_rows
from .base import Explainer


def _pair(value: Any, name: str) -> tuple[int, int]:
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or not all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 1 for a in v
    ):
        raise ValueError(f"{name}: expected a positive int or (rows, cols), got {value!r}")
    return int(v[0]), int(v[1])


def window_positions(h: int, w: int, window: tuple[int, int], strides: tuple[int, int]):
    """Top-left corners ``(m, 2)`` of every window position inside an ``h x w`` image."""
    wh, ww = window
    if wh > h or ww > w:
        raise ValueError(f"window: {window} is larger than the images ({h}, {w})")
    ys = np.arange(0, h - wh + 1, strides[0])
    xs = np.arange(0, w - ww + 1, strides[1])
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


class Occlusion(Explainer):
    """Occlusion attributions (see the module docstring).

    Parameters
    ----------
    model : any model :func:`~xaiwidgets.backends.wrap` accepts (no gradients needed).
    window : int or (rows, cols)
        Size of the hidden patch (default 8 pixels square).
    strides : int or (rows, cols), optional
        Step between window positions (default: half the window, at least 1).
    baseline : float or image ``(h, w, c)``
        What replaces the hidden pixels (default 0.0).
    class_names, backend_kwargs : as :class:`~xaiwidgets.explainers.base.Explainer`.
    """

    method = "occlusion"

    def __init__(
        self,
        model: Any,
        *,
        window: Any = 8,
        strides: Any = None,
        baseline: Any = 0.0,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        self.window = _pair(window, "window")
        self.strides = (
            tuple(max(1, s // 2) for s in self.window)
            if strides is None
            else _pair(strides, "strides")
        )
        base = np.asarray(baseline, dtype=np.float64)
        if not np.all(np.isfinite(base)):
            raise ValueError(f"baseline: expected finite values, got {baseline!r}")
        if base.ndim not in (0, 3):
            raise ValueError(
                f"baseline: expected a number or an image (h, w, c), got shape {base.shape}"
            )
        self.baseline = base.astype(np.float32)

    def params(self) -> dict[str, Any]:
        base = self.baseline
        return {
            "window": list(self.window),
            "strides": list(self.strides),
            "baseline": float(base) if base.ndim == 0 else "image",
        }

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray]:
        n, h, w, c = x.shape
        if self.baseline.ndim and self.baseline.shape != x.shape[1:]:
            raise ValueError(
                f"baseline: expected an image of shape {x.shape[1:]}, got {self.baseline.shape}"
            )
        fill = np.broadcast_to(self.baseline, x.shape[1:])
        corners = window_positions(h, w, self.window, self.strides)
        wh, ww = self.window
        count = np.zeros((h, w), np.float32)
        for y, x0 in corners:
            count[y : y + wh, x0 : x0 + ww] += 1
        fx = np.take_along_axis(model_outputs, outputs, axis=1)  # (n, o)
        total = np.zeros((n, h, w, outputs.shape[1]), np.float64)
        pairs = len(corners) * n
        per_batch = max(1, forward_rows(self.backend, x.shape[1:]))
        for start in range(0, pairs, per_batch):
            ctl.check()
            rows = np.arange(start, min(start + per_batch, pairs))
            img, pos = rows // len(corners), rows % len(corners)
            batch = x[img].copy()
            for r, (y, x0) in enumerate(corners[pos]):
                batch[r, y : y + wh, x0 : x0 + ww] = fill[y : y + wh, x0 : x0 + ww]
            out = self.backend.predict(batch)
            drop = fx[img] - np.take_along_axis(out, outputs[img], axis=1)  # (b, o)
            for r, (y, x0) in enumerate(corners[pos]):
                total[img[r], y : y + wh, x0 : x0 + ww] += drop[r]
            ctl.step(rows[-1] / pairs)
        values = (total / np.maximum(count, 1)[None, :, :, None]).astype(np.float32)
        base = np.take_along_axis(self.backend.predict(fill[None])[[0] * n], outputs, axis=1)
        return values[:, :, :, None, :], base.astype(np.float32)
