"""`KerasBackend`: a Keras model (Keras 3 on the TensorFlow backend, or ``tf_keras``) behind
the backend protocol, as :class:`~xaiwidgets.backends.tensorflow_backend.TensorFlowBackend`
with the Keras call, lazy building, layers and weight randomisation.

Imported lazily by :func:`xaiwidgets.backends.wrap`; importing this module imports
TensorFlow. Keras 3 models on the JAX or torch Keras backends do not come here: ``wrap`` routes
them to :class:`~xaiwidgets.backends.jax_backend.JaxBackend` /
:class:`~xaiwidgets.backends.torch_backend.TorchBackend`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._arrays import as_image_batch
from .base import output_matrix

try:
    import tensorflow as tf
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "KerasBackend needs TensorFlow; install it with: pip install 'xaiwidgets[tensorflow]'"
    ) from exc

from .tensorflow_backend import TensorFlowBackend  # noqa: E402


class KerasBackend(TensorFlowBackend):
    """A Keras model (Keras 3 on the TensorFlow backend, or ``tf_keras``): Sequential,
    functional or subclassed. Called as ``model(x, training=False)`` (Dropout off, BatchNorm on
    its moving statistics) inside the compiled functions of :class:`TensorFlowBackend`; a
    model not built yet is built by one eager call on the first image shape it sees.

    Parameters and attributes as :class:`TensorFlowBackend`, plus

    layers : list, the model's layers (``model.layers``), in order.
    """

    def __init__(
        self,
        model: Any,
        *,
        batch_size: int | None = None,
        memory_budget: int | None = None,
        channels_first: bool = False,
    ):
        from . import keras_backend_of

        keras_backend = keras_backend_of(model)
        if keras_backend != "tensorflow":
            raise ValueError(
                f"KerasBackend runs Keras models on TensorFlow; this model runs on the "
                f"{keras_backend!r} Keras backend: use xaiwidgets.backends.wrap(model), which "
                "routes it to the matching backend"
            )
        super().__init__(
            model, batch_size=batch_size, memory_budget=memory_budget, channels_first=channels_first
        )

    @property
    def layers(self) -> list:
        """The model's layers, in order (``model.layers``)."""
        return list(getattr(self.model, "layers", []))

    def _forward(self, x: Any) -> Any:
        return self.model(x, training=False)

    def _ensure_built(self, shape: tuple[int, ...]) -> None:
        if not getattr(self.model, "built", True):
            self.model(tf.zeros((1,) + shape, tf.float32), training=False)

    def parameter_layers(self) -> list[str]:
        """Paths (``outer/inner`` in nested models) of the layers that hold trainable weights
        of their own, in the model's order."""
        from ._layer_keras import walk_layers

        return [
            path
            for path, layer in walk_layers(self.model)
            if layer.trainable_weights and not getattr(layer, "layers", None)
        ]

    @contextlib.contextmanager
    def randomized(self, layers: list[str], seed: int = 0) -> Iterator[None]:
        """Within the block, the trainable weights of ``layers`` are redrawn from a normal
        distribution with each variable's own mean and standard deviation (0.01 where it is
        constant); the originals are restored on exit, also on error."""
        from ._layer_keras import walk_layers

        found = dict(walk_layers(self.model))
        rng = np.random.default_rng(seed)
        saved = []
        try:
            for name in layers:
                if name not in found:
                    raise ValueError(f"layers: the model has no layer {name!r}")
                for v in found[name].trainable_weights:
                    value = np.asarray(v.numpy())
                    saved.append((v, value))
                    std = float(value.std()) if value.size > 1 else 0.0
                    draw = rng.normal(value.mean(), std or 0.01, value.shape)
                    v.assign(draw.astype(value.dtype))
            yield
        finally:
            for v, value in saved:
                v.assign(value)

    def layer(self, x: Any, layer: Any, outputs: Any, *, reshape: Any = None) -> Any:
        """A layer's activations ``(n, h', w', d)`` and the gradients of ``outputs`` w.r.t.
        them ``(n, h', w', d, o)``, with the layer's name. ``outputs`` may be a callable
        ``choose(rows, model_outputs)`` that picks them batch by batch from the layer pass's
        own forward pass (:attr:`layer_chooses_outputs`); see :mod:`._layer_keras`."""
        from ._layer_keras import layer_keras

        x = as_image_batch(x)
        self._ensure_built(tuple(self.to_framework(x[:1]).shape[1:]))
        idx = outputs if callable(outputs) else output_matrix(outputs, len(x))
        return layer_keras(self, x, layer, idx, reshape)
