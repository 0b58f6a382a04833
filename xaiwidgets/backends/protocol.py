"""The backend protocol: the one interface every explainer is written against.

A backend wraps one model of one framework. NumPy in, NumPy out; the work happens on the
framework's own device, in batches. Images are ``float32`` ``(n, h, w, c)``; a backend converts
to the layout its model needs. Explainers (``xaiwidgets/explainers/``, ``faithfulness/``)
use a backend through these methods only, never a framework or a backend's private module
(``tests/test_layering.py`` enforces it).

:class:`Backend` (every backend):

- ``framework``: ``"numpy"``, ``"torch"``, ``"tensorflow"`` or ``"jax"``.
- ``batch_size``, ``memory_budget``, ``grad_rows(image_shape, outputs)``: rows per model call
  and the working-memory budget the explainers chunk their own arrays within;
  ``batch_size_given`` (optional, default False): the user's ``batch_size`` is kept as is
  (the explainers then do not pace their model calls by time).
- ``predict(x) -> (n, k)``: the model's own outputs (logits or probabilities), batched.
- ``probabilities(x) -> (n, k)``: softmax probabilities (the model's outputs when it already
  ends in a softmax, detected from its outputs); ``outputs_are_probabilities(outputs)`` (that
  detection) and ``to_probabilities(outputs)`` (the same conversion of outputs in hand).
- ``vjp(x, cotangent) -> (outputs (n, k), x_grad (n, h, w, c))``: outputs and the gradient of
  ``sum(outputs * cotangent)`` with respect to ``x``. ``cotangent`` is ``(n, k)``, or a
  callable ``outputs (m, k) -> (m, k)`` applied to each batch's outputs between the forward
  and the backward pass (losses whose weights depend on the outputs, as CEM's attack loss).
- ``grad(x, outputs) -> (n, h, w, c, o)``: gradient of output ``outputs[i, j]`` of image ``i``
  for every requested output; ``outputs`` is ``(o,)`` (same for all images) or ``(n, o)``.
- ``deeplift(x, baselines, outputs, *, softmax="shapley", max_rows=None, fallbacks=None,
  progress=None) -> (n, h, w, c, o)``: DeepLIFT (rescale rule) attributions of ``x`` against
  every baseline in ``baselines`` ``(b, h, w, c)``, averaged over the baselines (DeepSHAP). For
  each image and output they sum to ``f(x) - mean_b f(baseline_b)``. The backend plans the
  passes (images x baselines per pass, padding for compiled frameworks) within its memory
  budget; ``softmax`` names the softmax rule, ``max_rows`` caps the pair rows of a pass,
  ``fallbacks`` (a list) receives the ops crossed without a rule instead of a warning, and
  ``progress(fraction)`` is called before every pass (it may raise to cancel the run).
- ``flat_outputs() -> Backend``: the same model with its outputs flattened to ``(n, d)`` in
  NHWC order, so that an image-to-image model (CEM's autoencoder) fits ``predict``/``vjp``.
- ``compile_step(program, constants, image_model=None)``: ``program`` (framework-free code on
  an :class:`~._array_ops.ArrayOps` namespace, e.g. one FISTA step of CEM) as one compiled
  call of the framework, or ``None`` where the backend does not compile (torch, NumPy).

Optional capabilities (a backend without them lacks the attribute):

- :class:`LayerAccess` ``layer(x, layer, outputs, reshape=None)``: a layer's activations and
  their gradients (torch, Keras, Flax/JAX): the CAM family.
- :class:`WeightRandomization` ``parameter_layers()``, ``randomized(layers, seed)``: redraw
  weights within a block (torch, Keras): the model-randomisation check.
- :class:`InputLayout` ``input_layout``, ``predict_in_layout(x)``: ``predict`` on images
  already in the model's layout (torch): the masking explainers' model calls.

Every backend checks what the model gives back: NaN or infinite outputs (of
``predict``, ``vjp``) or gradients (``vjp``, ``grad``, ``deeplift``) raise
:class:`NonFiniteOutputError` (a ``ValueError``) naming the images concerned, instead of
attributions that are silently all NaN (the checks live in :mod:`._checks`, re-exported by
:mod:`.base`).

:class:`~.base.BaseBackend` implements the shared part (rows per call, batching, output-space
detection) that the framework backends build on.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "InputLayout", "LayerAccess", "WeightRandomization"]


@runtime_checkable
class Backend(Protocol):
    """What explainers rely on. See the module docstring for the contract."""

    framework: str
    batch_size: int
    memory_budget: int

    def grad_rows(self, image_shape: tuple[int, ...], outputs: int = 1) -> int: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def probabilities(self, x: np.ndarray) -> np.ndarray: ...

    def outputs_are_probabilities(self, outputs: np.ndarray | None = None) -> bool: ...

    def to_probabilities(self, outputs: np.ndarray) -> np.ndarray: ...

    def vjp(self, x: np.ndarray, cotangent: Any) -> tuple[np.ndarray, np.ndarray]: ...

    def grad(self, x: np.ndarray, outputs: Any) -> np.ndarray: ...

    def deeplift(
        self,
        x: np.ndarray,
        baselines: np.ndarray,
        outputs: Any,
        *,
        softmax: str = "shapley",
        max_rows: int | None = None,
        fallbacks: list | None = None,
        progress: Callable[[float], Any] | None = None,
    ) -> np.ndarray: ...

    def flat_outputs(self) -> Backend: ...

    def compile_step(
        self, program: Callable, constants: Any, image_model: Backend | None = None
    ) -> Callable | None: ...


@runtime_checkable
class LayerAccess(Protocol):
    """A backend that reads a layer: ``layer(x, layer, outputs, reshape=None)`` gives the
    layer's activations ``(n, h', w', d)``, the gradients of ``outputs`` with respect to them
    ``(n, h', w', d, o)`` and the layer's name."""

    def layer(self, x: np.ndarray, layer: Any, outputs: Any, *, reshape: Any = None) -> Any: ...


@runtime_checkable
class WeightRandomization(Protocol):
    """A backend that can redraw its model's weights: ``parameter_layers()`` names the layers
    with weights of their own (forward order); within ``randomized(layers, seed)`` those
    layers' weights are redrawn, restored on exit."""

    def parameter_layers(self) -> list[str]: ...

    def randomized(self, layers: list[str], seed: int = 0) -> AbstractContextManager[None]: ...


@runtime_checkable
class InputLayout(Protocol):
    """A backend that takes images in its model's own layout: ``input_layout`` (``"nchw"`` or
    ``"nhwc"``) and ``predict_in_layout(x)``, :meth:`Backend.predict` on float32 images
    already in that layout and finite (not checked again). The masking explainers build their
    masked images so (:meth:`xaiwidgets.maskers.BoundMasker.in_layout`), sparing a transposed
    copy of every masked image per model call (torch)."""

    input_layout: str

    def predict_in_layout(self, x: np.ndarray) -> np.ndarray: ...
