"""Class activation maps and occlusion computed from scratch, for the tests: from a layer's
activations ``A`` ``(n, h', w', d)`` and the gradients ``G`` ``(n, h', w', d, o)`` a test took
itself (its own hook, sub-model or split network), written from the papers' formulas without
xaiwidgets' code; the maps are upsampled with OpenCV (as pytorch-grad-cam does)."""

from __future__ import annotations

import cv2
import numpy as np


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(n, h', w', o)`` -> ``(n, h, w, o)``, bilinear (``cv2.resize``)."""
    n, _, _, o = maps.shape
    out = np.zeros((n,) + tuple(size) + (o,), np.float32)
    for i in range(n):
        for j in range(o):
            out[i, :, :, j] = cv2.resize(
                np.ascontiguousarray(maps[i, :, :, j], np.float32), (size[1], size[0])
            )
    return out


def gradient_maps(method: str, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """``(n, h', w', o)`` maps of a gradient CAM method, one output at a time."""
    acts = acts.astype(np.float64)
    out = np.zeros(acts.shape[:3] + (grads.shape[-1],))
    for j in range(grads.shape[-1]):
        g = grads[..., j].astype(np.float64)
        if method == "gradcam":
            cam = (g.mean(axis=(1, 2), keepdims=True) * acts).sum(-1)
        elif method == "gradcam++":
            total = acts.sum(axis=(1, 2), keepdims=True)
            den = 2 * g**2 + total * g**3
            alpha = np.where(g != 0, g**2 / (den + 1e-7), 0.0)
            w = (alpha * np.maximum(g, 0)).sum(axis=(1, 2), keepdims=True)
            cam = (w * acts).sum(-1)
        elif method == "hirescam":
            cam = (g * acts).sum(-1)
        elif method == "layercam":
            cam = (np.maximum(g, 0) * acts).sum(-1)
        else:
            raise ValueError(method)
        out[..., j] = np.maximum(cam, 0)
    return out


def eigen_maps(acts: np.ndarray) -> np.ndarray:
    """``(n, h', w')`` first principal component of each image's centred activations, signed
    to correlate with the channel sum, then relu."""
    n, h, w, d = acts.shape
    out = np.zeros((n, h, w))
    for i in range(n):
        a = acts[i].reshape(h * w, d).astype(np.float64)
        c = a - a.mean(0)
        _, _, vt = np.linalg.svd(c, full_matrices=False)
        p = c @ vt[0]
        s = a.sum(1)
        if np.dot(p, s - s.mean()) < 0:
            p = -p
        out[i] = np.maximum(p, 0).reshape(h, w)
    return out


def score_maps(predict_proba, x: np.ndarray, acts: np.ndarray, outputs: np.ndarray, keep: int):
    """Score-CAM ``(n, h', w', o)``: the ``keep`` channels of largest mean activation, each
    min-max scaled and upsampled as a mask, weighted by the class probability on the masked
    image. ``predict_proba(images) -> (m, k)``."""
    n, h, w, d = acts.shape
    out = np.zeros((n, h, w, outputs.shape[1]))
    for i in range(n):
        order = np.argsort(-acts[i].mean(axis=(0, 1)), kind="stable")[:keep]
        up = upsample(acts[i][None][..., order], x.shape[1:3])[0]
        lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
        masks = (up - lo) / np.where(hi > lo, hi - lo, 1.0)
        probs = predict_proba(np.stack([x[i] * masks[..., k, None] for k in range(keep)]))
        weights = probs[:, outputs[i]]  # (keep, o)
        out[i] = np.maximum(np.einsum("hwd,do->hwo", acts[i][..., order], weights), 0)
    return out


def occlusion(predict, x: np.ndarray, outputs: np.ndarray, window: int, stride: int):
    """``(n, h, w, o)`` mean output drop over the windows (zero baseline) covering each pixel."""
    n, h, w, _ = x.shape
    f = predict(x)
    total = np.zeros((n, h, w, outputs.shape[1]))
    count = np.zeros((h, w))
    for y in range(0, h - window + 1, stride):
        for x0 in range(0, w - window + 1, stride):
            hidden = x.copy()
            hidden[:, y : y + window, x0 : x0 + window] = 0
            drop = np.take_along_axis(f - predict(hidden), outputs, axis=1)
            total[:, y : y + window, x0 : x0 + window] += drop[:, None, None, :]
            count[y : y + window, x0 : x0 + window] += 1
    return total / np.maximum(count, 1)[None, :, :, None]


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
