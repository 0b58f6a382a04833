"""DeepLIFT/DeepSHAP and expected gradients against shap and captum, and against the floor.

Seed models (random weights; timing does not depend on training): the torch CNN of seed 003
(ending in ``nn.Softmax``), the Keras CNN of seed 002 and the Flax CNN of seed 001. Workload
as in the issue: 4 MNIST images, 100 background images, all 10 classes.

- ``deep_torch``: ``DeepExplainer`` vs ``shap.DeepExplainer`` and captum's ``DeepLiftShap``;
- ``deep_keras``: ``DeepExplainer`` vs ``shap.DeepExplainer``;
- ``deep_flax``: ``DeepExplainer`` (no peer);
- ``expected_gradients_torch``: ``GradientExplainer`` (200 samples) vs shap's.

Two floors, both the model evaluations alone in the framework (no DeepLIFT rules):
``floor`` is the issue's, the work shap's method needs: one forward + backward pass of 200
rows (an image repeated 100 times and the background; 200 samples for expected gradients)
per image and class, 40 in all; ``floor_same_batches`` is plain autograd on exactly the
batches we run (one forward pass over the 400 image x background pairs, one backward pass per
class), so ``ours / floor_same_batches`` is the cost of the DeepLIFT rules themselves.
Goals: ``peer / ours >= 5`` and ``ours / floor <= 1.5``.

Timings are best-of-``repeats`` wall seconds, each method interleaved with the others so that
load from other processes hits all alike; process CPU seconds are reported too.

    python bench/deep.py [--quick] [--repeats 5] [--parts deep_torch,deep_keras,...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.backends import models  # noqa: E402
from xaiwidgets.explainers import DeepExplainer, GradientExplainer  # noqa: E402

N_IMAGES, N_BACKGROUND, N_CLASSES, N_SAMPLES = 4, 100, 10, 200


def _timed(fns: dict[str, Callable], repeats: int) -> dict:
    """Best-of-``repeats`` wall and CPU seconds per function, interleaved; one warm-up call
    each (traces, compiles, caches)."""
    for f in fns.values():
        f()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            f()
            wall[k].append(time.perf_counter() - w0)
            cpu[k].append(time.process_time() - c0)
    return {k: {"wall_s": round(min(wall[k]), 4), "cpu_s": round(min(cpu[k]), 4)} for k in fns}


def _ratios(t: dict, peers: tuple[str, ...], floors: tuple[str, ...]) -> dict:
    ours = t["ours"]["wall_s"]
    out = {f"{p}_over_ours": round(t[p]["wall_s"] / ours, 2) for p in peers}
    out.update({f"ours_over_{f}": round(ours / t[f]["wall_s"], 2) for f in floors})
    return out


def _data() -> tuple[np.ndarray, np.ndarray]:
    x, _ = models.mnist_images(N_BACKGROUND + N_IMAGES)
    return x[:N_BACKGROUND], x[N_BACKGROUND:]


def _completeness(ex) -> float:
    return float(ex.params["max_completeness_error"])


def _nchw(a: np.ndarray):
    """NHWC images ``a`` as a contiguous NCHW torch tensor (what the peers take)."""
    import torch

    return torch.from_numpy(a.transpose(0, 3, 1, 2).copy()).clone(
        memory_format=torch.contiguous_format
    )


def bench_deep_torch(bg: np.ndarray, x: np.ndarray, repeats: int) -> dict:
    import shap
    import torch
    from captum.attr import DeepLiftShap

    net = models.torch_cnn()

    bt, xt = _nchw(bg), _nchw(x)
    ours = DeepExplainer(net, bg, background_size=None)
    shap_explainer = shap.DeepExplainer(net, bt)
    captum_explainer = DeepLiftShap(net)

    def run_captum():
        return [captum_explainer.attribute(xt, baselines=bt, target=j) for j in range(N_CLASSES)]

    def floor():  # one f+b pass of 200 rows per image and class, as shap runs them
        for i in range(N_IMAGES):
            batch = torch.cat([xt[i : i + 1].repeat(N_BACKGROUND, 1, 1, 1), bt])
            for j in range(N_CLASSES):
                z = batch.clone().requires_grad_(True)
                torch.autograd.grad(net(z)[:, j].sum(), z)

    pairs = xt.repeat_interleave(N_BACKGROUND, 0)

    def floor_same_batches():
        z = pairs.clone().requires_grad_(True)
        out = net(z)
        for j in range(N_CLASSES):
            torch.autograd.grad(out[:, j].sum(), z, retain_graph=j < N_CLASSES - 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = _timed(
            {
                "ours": lambda: ours(x),
                "shap": lambda: shap_explainer.shap_values(xt),
                "captum": run_captum,
                "floor": floor,
                "floor_same_batches": floor_same_batches,
            },
            repeats,
        )
        ex = ours(x)
        theirs = np.asarray(shap_explainer.shap_values(xt)).transpose(0, 2, 3, 1, 4)
        cap = torch.stack(run_captum(), -1).detach().numpy().transpose(0, 2, 3, 1, 4)
    diag = DeepExplainer(net, bg, background_size=None, softmax="diagonal")(x).values
    fx_gap = ex.predictions - ex.base_values
    return {
        "times": t,
        "ratios": _ratios(t, ("shap", "captum"), ("floor", "floor_same_batches")),
        "max_completeness_error": {
            "ours": _completeness(ex),
            "shap": float(np.abs(theirs.reshape(4, -1, 10).sum(1) - fx_gap).max()),
            "captum": float(np.abs(cap.reshape(4, -1, 10).sum(1) - fx_gap).max()),
        },
        "max_abs_diff_vs_shap_diagonal_rule": float(np.abs(diag - theirs).max()),
    }


def bench_deep_keras(bg: np.ndarray, x: np.ndarray, repeats: int) -> dict:
    import shap
    import tensorflow as tf

    model = models.keras_cnn()
    ours = DeepExplainer(model, bg, background_size=None)
    shap_explainer = shap.DeepExplainer(model, bg)
    spec = tf.TensorSpec((2 * N_BACKGROUND,) + x.shape[1:], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec((), tf.int32)])
    def pass_200(z, j):
        with tf.GradientTape() as tape:
            tape.watch(z)
            out = model(z, training=False)[:, j]
        return tape.gradient(out, z)

    batches = [
        tf.constant(np.concatenate([np.repeat(x[i : i + 1], N_BACKGROUND, 0), bg]))
        for i in range(N_IMAGES)
    ]

    def floor():
        for i in range(N_IMAGES):
            for j in range(N_CLASSES):
                pass_200(batches[i], tf.constant(j)).numpy()

    pairs = tf.constant(np.repeat(x, N_BACKGROUND, 0))

    @tf.function
    def same_batches(z):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            outs = tf.unstack(model(z, training=False), axis=1)
        return [tape.gradient(outs[j], z) for j in range(N_CLASSES)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = _timed(
            {
                "ours": lambda: ours(x),
                "shap": lambda: shap_explainer.shap_values(x),
                "floor": floor,
                "floor_same_batches": lambda: [g.numpy() for g in same_batches(pairs)],
            },
            repeats,
        )
        ex = ours(x)
        theirs = np.asarray(shap_explainer.shap_values(x))
    return {
        "times": t,
        "ratios": _ratios(t, ("shap",), ("floor", "floor_same_batches")),
        "max_completeness_error": {"ours": _completeness(ex)},
        "max_abs_diff_vs_shap": float(np.abs(ex.values - theirs).max()),
    }


def bench_deep_flax(bg: np.ndarray, x: np.ndarray, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    module, params = models.flax_cnn()
    ours = DeepExplainer((module, params), bg, background_size=None)

    @jax.jit
    def pass_200(z, j):
        return jax.grad(lambda u: module.apply(params, u)[:, j].sum())(z)

    batches = [
        jnp.asarray(np.concatenate([np.repeat(x[i : i + 1], N_BACKGROUND, 0), bg]))
        for i in range(N_IMAGES)
    ]

    def floor():
        for i in range(N_IMAGES):
            for j in range(N_CLASSES):
                pass_200(batches[i], j).block_until_ready()

    @jax.jit
    def same_batches(z):
        out, pull = jax.vjp(lambda u: module.apply(params, u), z)
        return jax.vmap(pull)(
            jnp.broadcast_to(jnp.eye(N_CLASSES)[:, None], (N_CLASSES,) + out.shape)
        )

    pairs = jnp.asarray(np.repeat(x, N_BACKGROUND, 0))
    t = _timed(
        {
            "ours": lambda: ours(x),
            "floor": floor,
            "floor_same_batches": lambda: same_batches(pairs)[0].block_until_ready(),
        },
        repeats,
    )
    return {
        "times": t,
        "ratios": _ratios(t, (), ("floor", "floor_same_batches")),
        "max_completeness_error": {"ours": _completeness(ours(x))},
    }


def bench_expected_gradients_torch(bg: np.ndarray, x: np.ndarray, repeats: int) -> dict:
    import shap
    import torch

    net = models.torch_cnn()

    bt, xt = _nchw(bg), _nchw(x)
    ours = GradientExplainer(net, bg, nsamples=N_SAMPLES)
    shap_explainer = shap.GradientExplainer(net, bt)
    rng = np.random.default_rng(0)
    pts = _nchw(rng.random((N_SAMPLES,) + x.shape[1:], dtype=np.float32))

    def floor():  # 200 samples per image and class, as shap runs them
        for _ in range(N_IMAGES):
            for j in range(N_CLASSES):
                z = pts.clone().requires_grad_(True)
                torch.autograd.grad(net(z)[:, j].sum(), z)

    every = pts.repeat(N_IMAGES, 1, 1, 1)

    def floor_same_batches():
        z = every.clone().requires_grad_(True)
        out = net(z)
        for j in range(N_CLASSES):
            torch.autograd.grad(out[:, j].sum(), z, retain_graph=j < N_CLASSES - 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = _timed(
            {
                "ours": lambda: ours(x),
                "shap": lambda: shap_explainer.shap_values(xt, nsamples=N_SAMPLES, rseed=0),
                "floor": floor,
                "floor_same_batches": floor_same_batches,
            },
            repeats,
        )
    return {"times": t, "ratios": _ratios(t, ("shap",), ("floor", "floor_same_batches"))}


PARTS = {
    "deep_torch": bench_deep_torch,
    "deep_keras": bench_deep_keras,
    "deep_flax": bench_deep_flax,
    "expected_gradients_torch": bench_expected_gradients_torch,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    bg, x = _data()
    result = {
        "workload": {
            "images": N_IMAGES,
            "background": N_BACKGROUND,
            "classes": N_CLASSES,
            "expected_gradient_samples": N_SAMPLES,
            "repeats": repeats,
            "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
        },
        "goals": {"peer_over_ours": ">= 5", "ours_over_floor": "<= 1.5"},
    }
    for name in args.parts.split(","):
        result[name] = PARTS[name](bg, x, repeats)
        print(f"# {name}: {json.dumps(result[name]['ratios'])}", file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
