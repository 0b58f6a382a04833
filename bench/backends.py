"""Backend overhead: each framework's model through its xaiwidgets backend vs. the framework
called directly, on the same model, in the same run.

For torch (seed-003 CNN), Keras/TF (seed-002 CNN) and JAX/Flax (seed-001 CNN), at batch 256:

- ``forward``: ``backend.predict(x)`` (NumPy NHWC in, NumPy out) vs. the model on a tensor
  already in the framework's layout (torch ``no_grad``, a ``tf.function``, a ``jax.jit``);
- ``forward_backward``: ``backend.vjp(x, cot)`` vs. the framework's own forward + backward
  (autograd, ``GradientTape`` in a ``tf.function``, jitted ``jax.vjp``);
- ``grad_all_outputs``: ``backend.grad(x, range(10))`` vs. the framework's Jacobian tool
  (``torch.func.vmap(jacrev)``, ``batch_jacobian``, ``jax.vmap(jax.jacrev)``).

The direct timings are the floor (the model evaluations alone). Prints JSON with the best-of-N
wall times, images per second, ``ratio = backend / direct`` (goal: <= 1.10), and the same
ratio from median wall times and from process CPU times (steadier on a shared machine).

    python bench/backends.py [--quick] [--batch 256] [--repeats 15] [--frameworks torch,keras,jax]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.backends import models  # noqa: E402
from xaiwidgets.backends import wrap  # noqa: E402

GOAL = 1.10


def _timed(pairs: dict[str, tuple[Callable, Callable]], repeats: int) -> dict:
    """Best-of-``repeats`` wall and CPU seconds of backend and direct calls, interleaved so
    that load from other processes affects both alike (noise only adds time, so the minimum
    is the estimate; the median wall time is reported too)."""
    out = {}
    for name, (ours, direct) in pairs.items():
        for f in (ours, direct):  # warm-up: traces, compiles, allocator
            f()
            f()
        wall: dict[str, list[float]] = {"ours": [], "direct": []}
        cpu: dict[str, list[float]] = {"ours": [], "direct": []}
        for _ in range(repeats):
            for key, f in (("ours", ours), ("direct", direct)):
                w0, c0 = time.perf_counter(), time.process_time()
                f()
                wall[key].append(time.perf_counter() - w0)
                cpu[key].append(time.process_time() - c0)
        a, b = min(wall["ours"]), min(wall["direct"])
        out[name] = {
            "backend_s": round(a, 5),
            "direct_s": round(b, 5),
            "ratio": round(a / b, 3),
            "ratio_median": round(
                statistics.median(wall["ours"]) / statistics.median(wall["direct"]), 3
            ),
            "ratio_cpu": round(min(cpu["ours"]) / min(cpu["direct"]), 3),
        }
    return out


def bench_torch(x: np.ndarray, cot: np.ndarray, repeats: int) -> dict:
    import torch

    model = models.torch_cnn()
    b = wrap(model)
    xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    ct = torch.from_numpy(cot)

    def forward():
        with torch.no_grad():
            return model(xt).numpy()

    def forward_backward():
        xg = xt.detach().requires_grad_(True)
        out = model(xg)
        (g,) = torch.autograd.grad(out, xg, ct)
        return out.detach().numpy(), g.numpy()

    jac = torch.func.vmap(torch.func.jacrev(lambda z: model(z[None])[0]))

    def jacobian():
        return jac(xt).detach().numpy()

    return _timed(
        {
            "forward": (lambda: b.predict(x), forward),
            "forward_backward": (lambda: b.vjp(x, cot), forward_backward),
            "grad_all_outputs": (lambda: b.grad(x, np.arange(10)), jacobian),
        },
        repeats,
    )


def bench_keras(x: np.ndarray, cot: np.ndarray, repeats: int) -> dict:
    import tensorflow as tf

    model = models.keras_cnn()
    b = wrap(model)
    xt, ct = tf.constant(x), tf.constant(cot)
    spec = tf.TensorSpec((None,) + x.shape[1:], tf.float32)

    @tf.function(input_signature=[spec])
    def fwd(z):
        return model(z, training=False)

    @tf.function(input_signature=[spec, tf.TensorSpec((None, 10), tf.float32)])
    def vjp(z, c):
        with tf.GradientTape() as tape:
            tape.watch(z)
            out = model(z, training=False)
        return out, tape.gradient(out, z, output_gradients=c)

    @tf.function(input_signature=[spec])
    def jacobian(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            out = model(z, training=False)
        return tape.batch_jacobian(out, z)

    return _timed(
        {
            "forward": (lambda: b.predict(x), lambda: fwd(xt).numpy()),
            "forward_backward": (
                lambda: b.vjp(x, cot),
                lambda: [t.numpy() for t in vjp(xt, ct)],
            ),
            "grad_all_outputs": (lambda: b.grad(x, np.arange(10)), lambda: jacobian(xt).numpy()),
        },
        repeats,
    )


def bench_jax(x: np.ndarray, cot: np.ndarray, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    module, variables = models.flax_cnn()
    b = wrap(module, params=variables)
    xj, cj = jnp.asarray(x), jnp.asarray(cot)
    fwd = jax.jit(lambda v, z: module.apply(v, z))

    @jax.jit
    def vjp(v, z, c):
        out, pull = jax.vjp(lambda zz: module.apply(v, zz), z)
        return out, pull(c)[0]

    jac = jax.jit(lambda v, z: jax.vmap(jax.jacrev(lambda zz: module.apply(v, zz[None])[0]))(z))

    def run(f, *args):
        return jax.tree_util.tree_map(np.asarray, f(variables, *args))

    return _timed(
        {
            "forward": (lambda: b.predict(x), lambda: run(fwd, xj)),
            "forward_backward": (lambda: b.vjp(x, cot), lambda: run(vjp, xj, cj)),
            "grad_all_outputs": (lambda: b.grad(x, np.arange(10)), lambda: run(jac, xj)),
        },
        repeats,
    )


BENCHES = {"torch": bench_torch, "keras": bench_keras, "jax": bench_jax}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 repeats instead of 15")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--frameworks", default="torch,keras,jax")
    args = ap.parse_args()
    repeats = 5 if args.quick else args.repeats
    x = models.random_images(args.batch, seed=0)
    cot = np.random.default_rng(1).normal(size=(args.batch, 10)).astype(np.float32)
    report: dict = {"batch": args.batch, "repeats": repeats, "goal_ratio": GOAL, "results": {}}
    for name in args.frameworks.split(","):
        try:
            res = BENCHES[name](x, cot, repeats)
        except ImportError as exc:
            report["results"][name] = {"skipped": str(exc)}
            continue
        for r in res.values():
            r["backend_images_per_s"] = round(args.batch / r["backend_s"], 1)
            r["direct_images_per_s"] = round(args.batch / r["direct_s"], 1)
        report["results"][name] = res
    ratios = [
        r["ratio"]
        for fw in report["results"].values()
        for key, r in fw.items()
        if key in ("forward", "forward_backward")
    ]
    report["max_ratio_forward_and_backward"] = max(ratios) if ratios else None
    report["meets_goal"] = bool(ratios) and max(ratios) <= GOAL
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
