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


class _Delegating:
    """A backend of its own class (not a BaseBackend): every protocol member, by delegation."""

    def __init__(self, inner):
        self._inner = inner
        self.framework = inner.framework
        self.batch_size = inner.batch_size
        self.memory_budget = inner.memory_budget

    def __getattr__(self, name):
        if name in (
            "grad_rows",
            "predict",
            "probabilities",
            "outputs_are_probabilities",
            "to_probabilities",
            "vjp",
            "grad",
            "deeplift",
            "flat_outputs",
            "compile_step",
        ):
            return getattr(self._inner, name)
        raise AttributeError(name)


def test_any_object_with_the_protocol_is_a_backend():
    from xaiwidgets.backends import Backend

    inner = wrap(lambda x: x.reshape(len(x), -1)[:, :3])
    duck = _Delegating(inner)
    assert isinstance(duck, Backend)
    assert wrap(duck) is duck
    with pytest.raises(TypeError, match="keyword arguments"):
        wrap(duck, batch_size=3)


def test_an_object_missing_part_of_the_protocol_is_not_a_backend():
    from xaiwidgets.backends import Backend

    class PredictOnly:  # e.g. a scikit-learn-like model: a callable, not a backend
        framework = "numpy"
        batch_size = 8

        def predict(self, x):
            return x.reshape(len(x), -1)[:, :3]

        def __call__(self, x):
            return self.predict(x)

    model = PredictOnly()
    assert not isinstance(model, Backend)
    b = wrap(model)
    assert isinstance(b, NumpyBackend) and b.fn is model
