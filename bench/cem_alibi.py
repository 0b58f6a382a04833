"""alibi's CEM on the seed models, for bench/cem.py: run inside bench/.venv-alibi.

    bench/.venv-alibi/bin/python bench/cem_alibi.py --weights W.npz --image X.npy \
        --config '{"mode": "PN", ...}' --out result.npz

Builds the seed CNN and autoencoder with tf.keras (TF 2.14, graph mode as alibi 0.9.6 needs),
loads the weights bench/cem.py trained, explains the image and prints one JSON line: wall time,
the original/PN/PP classes. The PN/PP image goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import tensorflow as tf

    tf.get_logger().setLevel(40)
    tf.compat.v1.disable_v2_behavior()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from alibi.explainers import CEM
    from cem_models import build_ae, build_cnn  # the seed architectures, as bench/cem.py

    cfg = json.loads(args.config)
    w = np.load(args.weights)
    cnn, ae = build_cnn(tf.keras), build_ae(tf.keras)
    cnn.set_weights([w[f"cnn_{i}"] for i in range(len(cnn.get_weights()))])
    ae.set_weights([w[f"ae_{i}"] for i in range(len(ae.get_weights()))])
    x = np.load(args.image)[None].astype(np.float32)
    t0 = time.perf_counter()
    cem = CEM(
        cnn,
        cfg["mode"],
        x.shape,
        kappa=cfg["kappa"],
        beta=cfg["beta"],
        feature_range=tuple(cfg["feature_range"]),
        gamma=cfg["gamma"],
        ae_model=ae,
        max_iterations=cfg["max_iterations"],
        c_init=cfg["c_init"],
        c_steps=cfg["c_steps"],
        learning_rate_init=cfg["learning_rate_init"],
        clip=tuple(cfg["clip"]),
        no_info_val=cfg["no_info_val"],
    )
    t1 = time.perf_counter()
    exp = cem.explain(x, verbose=False)
    t2 = time.perf_counter()
    image = exp.data.get(cfg["mode"])
    found = image is not None
    np.savez(args.out, image=np.zeros_like(x) if image is None else np.asarray(image))
    print(
        json.dumps(
            {
                "setup_s": round(t1 - t0, 3),
                "explain_s": round(t2 - t1, 3),
                "found": found,
                "original_class": int(exp.data["X_pred"]),
                "image_class": int(exp.data[cfg["mode"] + "_pred"]) if found else -1,
            }
        )
    )


if __name__ == "__main__":
    main()
