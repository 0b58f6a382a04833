"""The backend contract suite's fixtures: one :class:`Case` per framework (and Flax NNX beside linen), built once per
session (TensorFlow alone takes seconds to import), on the seed architectures of
:mod:`tests.backends.models`.

A case carries the backend under test, a second one with a tiny ``batch_size`` (to check that
batching and padding change nothing), the framework's own forward pass in float32 and in
float64 (the finite-difference oracle), and a converter to the framework's native array type.
Frameworks that are not installed are skipped.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # plain `pytest` (not `python -m pytest`): make `tests.` importable
    sys.path.insert(0, ROOT)

from tests.backends import models  # noqa: E402

SMALL_BATCH = 5


@dataclass
class Case:
    name: str
    backend: Any
    small: Any  # the same model with batch_size=SMALL_BATCH
    reference: Callable[[np.ndarray], np.ndarray]  # framework forward, float32 NHWC in
    reference64: Callable[[np.ndarray], np.ndarray]  # framework forward in float64
    native: Callable[[np.ndarray], Any]  # NHWC float32 -> the framework's own array type
    probabilities: bool  # whether the model ends in a softmax

    def __repr__(self) -> str:
        return f"Case({self.name})"


def _numpy_case() -> Case:
    from xaiwidgets.backends import NumpyBackend

    model = models.numpy_softmax_regression()
    return Case(
        name="numpy",
        backend=NumpyBackend(model, grad_fn=model.vjp),
        small=NumpyBackend(model, grad_fn=model.vjp, batch_size=SMALL_BATCH),
        reference=model,
        reference64=model,
        native=lambda x: x.tolist(),
        probabilities=False,
    )


def _torch_case() -> Case:
    torch = pytest.importorskip("torch")
    from xaiwidgets.backends.torch_backend import TorchBackend

    model = models.torch_cnn()
    model64 = copy.deepcopy(model).double()

    def run(m: Any, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return m(torch.from_numpy(np.moveaxis(x, -1, 1).copy())).numpy()

    return Case(
        name="torch",
        backend=TorchBackend(model),
        small=TorchBackend(model, batch_size=SMALL_BATCH),
        reference=lambda x: run(model, x),
        reference64=lambda x: run(model64, x),
        native=lambda x: torch.from_numpy(np.moveaxis(x, -1, 1).copy()),  # NCHW
        probabilities=True,
    )


def _keras_case() -> Case:
    tf = pytest.importorskip("tensorflow")
    pytest.importorskip("keras")
    from xaiwidgets.backends.keras_backend import KerasBackend

    model = models.keras_cnn()
    model64 = models.keras_float64_copy(model)
    return Case(
        name="keras",
        backend=KerasBackend(model),
        small=KerasBackend(model, batch_size=SMALL_BATCH),
        reference=lambda x: model(x, training=False).numpy(),
        reference64=lambda x: model64(x, training=False).numpy(),
        native=tf.constant,
        probabilities=True,
    )


def _jax_case() -> Case:
    jax = pytest.importorskip("jax")
    pytest.importorskip("flax")
    import jax.numpy as jnp

    from xaiwidgets.backends.jax_backend import JaxBackend

    module, variables = models.flax_cnn()

    def reference64(x: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            v64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables)
            return np.asarray(module.apply(v64, jnp.asarray(x, jnp.float64)))

    return Case(
        name="jax",
        backend=JaxBackend(module, params=variables),
        small=JaxBackend(module, params=variables, batch_size=SMALL_BATCH),
        reference=lambda x: np.asarray(module.apply(variables, jnp.asarray(x))),
        reference64=reference64,
        native=jnp.asarray,
        probabilities=False,
    )


def _nnx_case() -> Case:
    jax = pytest.importorskip("jax")
    nnx = pytest.importorskip("flax.nnx")
    import jax.numpy as jnp

    from xaiwidgets.backends.jax_backend import JaxBackend

    model = models.flax_nnx_cnn()
    graphdef, state = nnx.split(model)

    def reference64(x: np.ndarray) -> np.ndarray:
        with jax.enable_x64(True):
            s64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), state)
            return np.asarray(nnx.merge(graphdef, s64)(jnp.asarray(x, jnp.float64)))

    return Case(
        name="nnx",
        backend=JaxBackend(model),
        small=JaxBackend(model, batch_size=SMALL_BATCH),
        reference=lambda x: np.asarray(model(jnp.asarray(x))),
        reference64=reference64,
        native=jnp.asarray,
        probabilities=False,
    )


_BUILDERS = {
    "numpy": _numpy_case,
    "torch": _torch_case,
    "keras": _keras_case,
    "jax": _jax_case,
    "nnx": _nnx_case,
}
_CASES: dict[str, Case] = {}


@pytest.fixture(params=list(_BUILDERS), scope="session")
def case(request: pytest.FixtureRequest) -> Case:
    """Every backend of the contract suite, built once per session."""
    name = request.param
    if name not in _CASES:
        _CASES[name] = _BUILDERS[name]()
    return _CASES[name]


@pytest.fixture(scope="session")
def keras_case() -> Case:
    if "keras" not in _CASES:
        _CASES["keras"] = _keras_case()
    return _CASES["keras"]


@pytest.fixture(scope="session")
def torch_case() -> Case:
    if "torch" not in _CASES:
        _CASES["torch"] = _torch_case()
    return _CASES["torch"]


@pytest.fixture(scope="session")
def jax_case() -> Case:
    if "jax" not in _CASES:
        _CASES["jax"] = _jax_case()
    return _CASES["jax"]
