"""A Keras 3 model as it travels to an executor's workers: its ``.keras`` file (``model.save``),
read back with ``keras.saving.load_model``. Used by
:mod:`xaiwidgets.dataset_explanation.transport`."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np


def pack_keras(model: Any) -> bytes:
    """The bytes of ``model``'s ``.keras`` file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def unpack_keras(data: bytes) -> Any:
    """The model of a ``.keras`` file's bytes (not compiled: explaining needs no optimizer)."""
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        with open(path, "wb") as f:
            f.write(data)
        return keras.saving.load_model(path, compile=False)


def keras_weights(model: Any) -> list[np.ndarray]:
    """The model's weights as NumPy arrays (for a fingerprint)."""
    return [np.asarray(w) for w in model.get_weights()]
