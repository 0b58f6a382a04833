"""wrap(): dispatch that imports nothing the model does not need, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from xaiwidgets.backends import NumpyBackend, wrap


def test_plain_callables_and_existing_backends():
    b = wrap(lambda x: x.reshape(len(x), -1)[:, :3], batch_size=7)
    assert isinstance(b, NumpyBackend) and b.batch_size == 7
    assert wrap(b) is b
    with pytest.raises(TypeError, match="keyword arguments"):
        wrap(b, batch_size=3)
    assert isinstance(wrap(lambda x: x[:, 0, 0], framework="numpy"), NumpyBackend)


@pytest.mark.parametrize("obj", [42, "model.h5", (1, 2), np.zeros(3), None])
def test_unknown_objects_are_a_type_error_listing_what_is_accepted(obj):
    with pytest.raises(TypeError, match=r"torch\.nn\.Module, a Keras 3 model.*jax function"):
        wrap(obj)


def test_unknown_framework_names_are_a_value_error():
    with pytest.raises(ValueError, match="'torch', 'keras', 'tensorflow', 'jax' or 'numpy'"):
        wrap(lambda x: x, framework="mxnet")
