"""Class activation maps over a layer: Grad-CAM and its family, Eigen-CAM and Score-CAM.

Each map is computed at the layer's resolution from its activations ``A`` ``(h', w', d)``
and, for the gradient methods, the gradients ``G = ∂y_c / ∂A`` of the explained output ``y_c``
(one batched backend pass for all images and outputs: ``backend.layer``), then upsampled
bilinearly to the image. Values are ``(n, h, w, 1, o)``; ``base_values`` are zero (a map has
no reference output). Maps are not normalised: compare them within one image, or use the
grid's per-row colour scale.

- Grad-CAM (Selvaraju et al., ICCV 2017): ``relu(sum_k mean_ij(G_ijk) A_ijk)``.
- Grad-CAM++ (Chattopadhyay et al., WACV 2018): ``relu(sum_k w_k A_ijk)`` with
  ``w_k = sum_ij a_ijk relu(G_ijk)`` and
  ``a_ijk = G² / (2 G² + sum_ab(A_abk) G³)`` (0 where ``G = 0``), the closed form for an
  exponential output.
- HiResCAM (Draelos & Carin, 2020): ``relu(sum_k G_ijk A_ijk)`` (element-wise, so the map is
  faithful to the layer's gradient, unlike Grad-CAM's spatial average).
- LayerCAM (Jiang et al., IEEE TIP 2021): ``relu(sum_k relu(G_ijk) A_ijk)``.
- Eigen-CAM (Muhammad & Yeasin, IJCNN 2020): the projection of ``A`` (positions x channels,
  centred over positions) on its first right singular vector; gradient-free and the same for
  every output; the sign is chosen so the map correlates positively with ``sum_k A_ijk``,
  then ``relu`` as for the other maps.
- Score-CAM (Wang et al., CVPR-W 2020): each channel, upsampled and min-max scaled to
  ``[0, 1]``, masks the image; ``relu(sum_k s_k A_k)`` with ``s_k`` the probability of the
  explained class on ``x * M_k`` (the paper's softmax). ``d`` masked forward passes per image,
  batched (:class:`ScoreCAM`).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .._progress import RunControl
from ..backends.base import check_finite
from ._coalitions import rows_per_call
from ._paced import Pacer, paced
from .base import CallResult, Explainer, OutputChoice

_EPS = 1e-7


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of maps ``(n, h', w', o)`` to ``(n, h, w, o)`` (OpenCV, pixel centres
    aligned as in ``cv2.resize``)."""
    h, w = size
    n, _, _, o = maps.shape
    out = np.empty((n, h, w, o), np.float32)
    for i in range(n):
        for j in range(o):
            out[i, ..., j] = cv2.resize(maps[i, ..., j], (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def gradcam_weights(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM channel weights ``(n, d, o)``: the spatial mean of the gradients."""
    return grads.mean(axis=(1, 2))


def gradcam_plus_plus_weights(acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ channel weights ``(n, d, o)`` (see the module docstring)."""
    g2 = grads**2
    g3 = g2 * grads
    total = acts.sum(axis=(1, 2))[:, None, None, :, None]  # (n, 1, 1, d, 1)
    a = g2 / (2 * g2 + total * g3 + _EPS)
    a = np.where(grads != 0, a, 0.0)
    return (a * np.maximum(grads, 0)).sum(axis=(1, 2))


def weighted_map(acts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``relu(sum_k w_k A_ijk)``: acts ``(n, h', w', d)``, weights ``(n, d, o)`` ->
    ``(n, h', w', o)``."""
    return np.maximum(np.einsum("nhwd,ndo->nhwo", acts, weights), 0)


def eigen_map(acts: np.ndarray) -> np.ndarray:
    """Eigen-CAM ``(n, h', w')``: relu of the first principal component of each image's
    activations (positions x channels, centred), signed to agree with the activations' sum."""
    n, h, w, d = acts.shape
    out = np.empty((n, h, w), np.float32)
    for i in range(n):
        a = acts[i].reshape(-1, d).astype(np.float64)
        centred = a - a.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        proj = centred @ vt[0]
        if np.dot(proj, a.sum(axis=1) - a.sum(axis=1).mean()) < 0:
            proj = -proj
        out[i] = np.maximum(proj, 0).reshape(h, w)
    return out


class _LayerCAM(Explainer):
    """Base of the layer explainers: ``layer`` (name, layer object or ``None`` = the last
    spatial layer, see the backend's ``layer``), ``reshape`` for token layers. The layer a
    call resolved is its Explanation's ``params["layer"]``."""

    method = "cam"

    def __init__(
        self,
        model: Any,
        layer: Any = None,
        *,
        reshape: Any = None,
        class_names: Any = None,
        **backend_kwargs: Any,
    ):
        super().__init__(model, class_names=class_names, **backend_kwargs)
        if getattr(self.backend, "layer", None) is None:
            raise TypeError(
                f"{type(self).__name__} needs a model with layers (torch, Keras or Flax); "
                f"{type(self.backend).__name__} has none"
            )
        self.layer = layer
        self.reshape = reshape

    def params(self) -> dict[str, Any]:
        return {"layer": _describe(self.layer)}

    def _layer(self, x: np.ndarray, outputs: Any) -> Any:
        """``backend.layer``'s result: activations, gradients, the layer's name (and, for a
        callable ``outputs``, the model's outputs and the chosen indices)."""
        return self.backend.layer(x, self.layer, outputs, reshape=self.reshape)

    def _maps(self, x, outputs, ctl) -> tuple[np.ndarray, str]:
        """``(n, h', w', o)`` maps and the name of the layer they were read from."""
        raise NotImplementedError

    def _explain(
        self, x: np.ndarray, outputs: np.ndarray, model_outputs: np.ndarray, ctl: RunControl
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        maps, name = self._maps(x, outputs, ctl)
        return _upsampled(maps, x), np.zeros(outputs.shape, np.float32), {"layer": name}


def _upsampled(maps: np.ndarray, x: np.ndarray) -> np.ndarray:
    return upsample(maps.astype(np.float32), x.shape[1:3])[:, :, :, None, :]


def _describe(layer: Any) -> str | None:
    return layer if layer is None or isinstance(layer, str) else type(layer).__name__


class _GradientCAM(_LayerCAM):
    """A map from the activations and the gradients of every explained output. Where the
    backend can choose the outputs from its layer pass (torch, Keras on TensorFlow), that
    pass's forward pass is the call's only one: one forward and ``o`` partial backward passes
    per batch, the floor of the method."""

    def _combine(self, acts: np.ndarray, grads: np.ndarray) -> np.ndarray:
        """``(n, h', w', o)`` maps from ``acts`` ``(n, h', w', d)``, ``grads`` ``(..., o)``."""
        raise NotImplementedError

    def _maps(self, x, outputs, ctl):
        res = self._layer(x, outputs)
        ctl.check()
        return self._combine(res.activations, res.gradients), res.name

    def _run(self, x: np.ndarray, choice: OutputChoice, ctl: RunControl) -> CallResult:
        if not getattr(self.backend, "layer_chooses_outputs", False):
            return super()._run(x, choice, ctl)

        def choose(rows: slice, outputs: np.ndarray) -> np.ndarray:
            ctl.check()
            return choice(rows, outputs, self.backend.to_probabilities(outputs))

        res = self._layer(x, choose)
        model_outputs = check_finite(res.outputs)
        idx = choice.finish(res.indices)
        ctl.check()
        maps = self._combine(res.activations, res.gradients[..., : idx.shape[1]])
        values = _upsampled(maps, x)
        base = np.zeros(idx.shape, np.float32)
        return CallResult(values, base, model_outputs, idx, {"layer": res.name})


class GradCAM(_GradientCAM):
    """Grad-CAM: ``relu(sum_k mean_ij(∂y_c/∂A_ijk) A_ijk)``, upsampled to the image.

    ``GradCAM(model, layer=None)(images, outputs=None | "top3" | [...])`` ->
    Explanation ``(n, h, w, 1, o)``. ``layer``: a torch module path or module, a Keras layer
    name or layer, a Flax module path; ``None`` picks the last spatial layer that still moves
    the output. ``reshape`` lays out token layers (see :mod:`xaiwidgets.backends._layer_grid`).
    """

    method = "gradcam"

    def _combine(self, acts, grads):
        return weighted_map(acts, gradcam_weights(acts, grads))


class GradCAMPlusPlus(_GradientCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018); arguments as :class:`GradCAM`."""

    method = "gradcam++"

    def _combine(self, acts, grads):
        return weighted_map(acts, gradcam_plus_plus_weights(acts, grads))


class HiResCAM(_GradientCAM):
    """HiResCAM: ``relu(sum_k G_ijk A_ijk)``; arguments as :class:`GradCAM`."""

    method = "hirescam"

    def _combine(self, acts, grads):
        return np.maximum(np.einsum("nhwd,nhwdo->nhwo", acts, grads), 0)


class LayerCAM(_GradientCAM):
    """LayerCAM: ``relu(sum_k relu(G_ijk) A_ijk)``; arguments as :class:`GradCAM`."""

    method = "layercam"

    def _combine(self, acts, grads):
        return np.maximum(np.einsum("nhwd,nhwdo->nhwo", acts, np.maximum(grads, 0)), 0)


class EigenCAM(_LayerCAM):
    """Eigen-CAM: the first principal component of the layer's activations (no gradients;
    every output gets the same map); arguments as :class:`GradCAM`."""

    method = "eigencam"

    def _maps(self, x, outputs, ctl):
        res = self._layer(x, outputs[:, :1])
        m = eigen_map(res.activations)
        return np.repeat(m[..., None], outputs.shape[1], axis=-1), res.name


class ScoreCAM(_LayerCAM):
    """Score-CAM (Wang et al. 2020): channel maps as masks, weighted by the explained class's
    probability on the masked image.

    Parameters as :class:`GradCAM`, plus ``max_channels`` (default ``None``: all ``d``
    channels): the ``max_channels`` channels of largest mean activation per image, for layers
    with thousands of channels. Cost: one forward pass per channel and image, in model calls
    of at most the backend's forward rows (``forward_rows``: ``batch_size`` when given, else
    what the memory budget holds) and of :data:`~._coalitions.WORK_BYTES` of masked images,
    paced to about half a second each (:class:`~._paced.Pacer`; exactly ``batch_size`` when
    given; a cancel is checked before every call). Memory: one call's masked images at a time.
    """

    method = "scorecam"

    def __init__(
        self, model: Any, layer: Any = None, *, max_channels: int | None = None, **kwargs: Any
    ):
        super().__init__(model, layer, **kwargs)
        if max_channels is not None and (
            isinstance(max_channels, bool)
            or not isinstance(max_channels, (int, np.integer))
            or max_channels < 1
        ):
            raise ValueError(f"max_channels: expected a positive integer, got {max_channels!r}")
        self.max_channels = max_channels

    def params(self) -> dict[str, Any]:
        return {**super().params(), "max_channels": self.max_channels}

    def _maps(self, x, outputs, ctl):
        res = self._layer(x, outputs[:, :1])
        acts = res.activations
        n, h, w, d = acts.shape
        keep = d if self.max_channels is None else min(d, self.max_channels)
        maps = np.empty((n, h, w, outputs.shape[1]), np.float32)
        # masked images per call: within the backend's forward rows and the working memory of
        # one call, and paced to about half a second (a cancel is seen within about that)
        pacer = Pacer(rows_per_call(self.backend, *x.shape[1:]), fixed=not paced(self.backend))
        for i in range(n):
            order = np.argsort(-acts[i].mean(axis=(0, 1)), kind="stable")[:keep]
            up = upsample(acts[i][None][..., order], x.shape[1:3])[0]  # (h, w, keep)
            lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
            masks = (up - lo) / np.where(hi > lo, hi - lo, 1.0)
            scores = np.empty((keep, outputs.shape[1]), np.float32)
            for s in pacer.slices(keep):
                ctl.check()
                m = masks[..., s].transpose(2, 0, 1)[..., None]  # (b, h, w, 1)
                probs = self.backend.probabilities(x[i][None] * m)
                scores[s] = probs[:, outputs[i]]
                ctl.step((i + s.stop / keep) / n)
            maps[i] = np.maximum(np.einsum("hwd,do->hwo", acts[i][..., order], scores), 0)
        return maps, res.name
