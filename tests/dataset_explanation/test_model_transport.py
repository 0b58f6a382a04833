"""How a model travels to an executor's workers (ExplainerRecipe): in its framework's own
format where there is one (torch state dict + class, Keras .keras file, Flax msgpack), by
pickle otherwise; the rebuilt explainer gives the same attributions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tests.dataset_explanation.models import linear_backend
from xaiwidgets import Saliency
from xaiwidgets.dataset_explanation.transport import ExplainerRecipe, model_fingerprint

X = np.random.default_rng(0).normal(size=(6, 8, 8, 1)).astype(np.float32)


def _travel(explainer):
    """The recipe after a round trip through pickle (as an executor sends it), built."""
    recipe = ExplainerRecipe(explainer)
    return recipe, pickle.loads(pickle.dumps(recipe)).build()


def test_torch_module_travels_as_state_dict_with_its_class():
    torch = pytest.importorskip("torch")
    from tests.dataset_explanation.models import TinyNet

    torch.manual_seed(0)
    explainer = Saliency(TinyNet().eval())
    recipe, built = _travel(explainer)
    assert recipe.transport == "torch-state-dict"
    assert b"TinyNet" not in recipe.payload["model"]["state"]  # weights only
    assert recipe.payload["model"]["class"] == "tests.dataset_explanation.models:TinyNet"
    assert built.backend.model is not explainer.backend.model
    assert not built.backend.model.training
    np.testing.assert_array_equal(built(X).values, explainer(X).values)
    assert model_fingerprint(built.backend) == model_fingerprint(explainer.backend)


def test_torch_module_with_constructor_arguments_falls_back_to_pickle():
    torch = pytest.importorskip("torch")
    from tests.dataset_explanation.models import WideNet

    torch.manual_seed(0)
    explainer = Saliency(WideNet(3).eval())
    recipe, built = _travel(explainer)
    assert recipe.transport == "pickle"
    np.testing.assert_array_equal(built(X).values, explainer(X).values)


def test_numpy_callable_falls_back_to_pickle_and_weights_change_the_fingerprint():
    explainer = Saliency(linear_backend())
    recipe, built = _travel(explainer)
    assert recipe.transport == "pickle"
    np.testing.assert_array_equal(built(X).values, explainer(X).values)
    other = linear_backend()
    assert model_fingerprint(other) == model_fingerprint(explainer.backend)
    other.fn.W[0, 0] += 1
    assert model_fingerprint(other) != model_fingerprint(explainer.backend)


def test_keras_model_travels_as_a_keras_file():
    pytest.importorskip("keras")
    from tests.backends.models import keras_cnn, random_images

    x = random_images(3)
    model = keras_cnn()
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32")
                       for w in model.get_weights()])  # fmt: skip
    explainer = Saliency(model)
    recipe, built = _travel(explainer)
    assert recipe.transport == "keras-file"
    assert recipe.payload["model"][:2] == b"PK"  # the .keras zip
    np.testing.assert_allclose(built(x).values, explainer(x).values, rtol=1e-5, atol=1e-7)
    assert model_fingerprint(built.backend) == model_fingerprint(explainer.backend)


def test_flax_linen_module_travels_as_msgpack_variables():
    jax = pytest.importorskip("jax")
    from tests.dataset_explanation.models import FlaxMLP

    module = FlaxMLP(hidden=8)
    variables = module.init(jax.random.PRNGKey(0), X[:1])
    explainer = Saliency((module, variables))
    recipe, built = _travel(explainer)
    assert recipe.transport == "flax-msgpack"
    assert built.backend.module.hidden == 8
    np.testing.assert_array_equal(built(X).values, explainer(X).values)


def test_a_class_defined_in_a_notebook_travels_by_value():
    torch = pytest.importorskip("torch")
    from torch import nn

    class NotebookNet(nn.Module):  # like a class defined in a notebook: not importable
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 4)

        def forward(self, x):
            return self.fc(x.flatten(1))

    torch.manual_seed(0)
    explainer = Saliency(NotebookNet().eval())
    recipe, built = _travel(explainer)
    assert recipe.transport == "pickle" and recipe.payload["kind"] == "model"
    np.testing.assert_array_equal(built(X).values, explainer(X).values)

    w = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
    local = Saliency(
        _wrap(lambda v: v.reshape(len(v), -1) @ w, lambda v, c: (c @ w.T).reshape(v.shape))
    )
    recipe, built = _travel(local)
    assert recipe.payload["kind"] == "numpy"
    np.testing.assert_array_equal(built(X).values, local(X).values)


def _wrap(fn, grad_fn):
    from xaiwidgets import wrap

    return wrap(fn, grad_fn=grad_fn)
