"""What the Keras tests share: a ``keras.applications`` network re-initialised so that its
outputs differ between images (:func:`application`), and a script run in a fresh interpreter
on another Keras backend (:func:`run_on_keras_backend`: the Keras backend is fixed per
process, by ``KERAS_BACKEND`` before ``import keras``; the tests on the JAX Keras backend share
one interpreter instead: ``tests/keras_jobs.py``).

Keras' default initialisers let the signal of deep random networks vanish (MobileNetV3's
outputs then differ by 1e-11 between images), which would make completeness trivially true:
:func:`reinitialise` redraws the kernels variance-preserving (He normal) and scales the
classifier's kernel so that the outputs differ by O(1) between images.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_on_keras_backend(
    code: str, keras_backend: str, *args: str, timeout: float = 600, stderr_tail: int = 3000
) -> str:
    """Run ``code`` (dedented) with ``python -c`` and ``args`` in a fresh interpreter with
    ``KERAS_BACKEND=keras_backend`` and the repository root on ``PYTHONPATH``; assert that it
    exits 0 (the message: the last ``stderr_tail`` characters of its stderr) and return its
    stdout."""
    env = dict(os.environ, KERAS_BACKEND=keras_backend, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-stderr_tail:]
    return proc.stdout


def application(
    name: str, size: int = 32, images: int = 1, references: int = 2
) -> tuple[object, np.ndarray, np.ndarray]:
    """``(model, x, bg)``: ``keras.applications.<name>`` without weights at ``size x size x 3``
    with 10 classes and no classifier activation (seed 0), ``images`` and ``references`` images
    uniform in [0, 255) (in that order from ``default_rng(0)``), and the model
    :func:`reinitialise`-d on them all."""
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(
        weights=None, classes=10, input_shape=(size, size, 3), classifier_activation=None
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(images, size, size, 3)).astype(np.float32)
    bg = rng.uniform(0, 255, size=(references, size, size, 3)).astype(np.float32)
    reinitialise(model, np.concatenate([x, bg]))
    return model, x, bg


def reinitialise(model, images: np.ndarray, seed: int = 0) -> None:
    """Redraw every kernel with variance 2 / fan_in (depthwise: the kernel window), then scale
    the last kernel so that the outputs on ``images`` spread over about 1."""
    import keras

    rng = np.random.default_rng(seed)
    last = None
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(kernel.shape)
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        fan_in = int(np.prod(shape[:2] if depthwise else shape[:-1]))
        kernel.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32))
        last = kernel
    spread = float(np.ptp(model.predict(images, verbose=0), axis=0).max())
    last.assign(keras.ops.convert_to_numpy(last) / spread)
