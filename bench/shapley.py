"""Benchmark of the seed-001 workflow: Partition (blur, inpaint_telea, inpaint_ns) and
Permutation explainers against shap, in the same run, on the same model and images.

Setting (seed 001): the Flax CNN of the seed (Conv32-Conv16-Dense10, logits), 4 MNIST digits,
top-5 outputs, Partition ``max_evals=500`` with each masker, Permutation ``max_evals=1600`` with
``blur(28,28)``. Both libraries call the model through the same compiled backend
(``xaiwidgets.backends.wrap``). Printed as JSON, per setting:

- ``ours_cold_s`` / ``shap_cold_s``: the first call (a fresh backend: model compilation, and for
  shap its numba functions, included);
- ``ours_warm_s`` / ``shap_warm_s``: best of ``--repeat`` further calls (the machine may be
  shared: the minimum is the least disturbed);
- ``floor_s``: one batched forward pass over as many images as our run evaluated (best of 3+);
- ``speedup_warm``/``speedup_cold`` (shap / ours) and ``ours_over_floor``.

Usage: ``python bench/shapley.py [--quick] [--model flax|torch|numpy] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SETTINGS = [
    ("partition", "blur(28,28)", 500),
    ("partition", "inpaint_telea", 500),
    ("partition", "inpaint_ns", 500),
    ("permutation", "blur(28,28)", 1600),
]


def make_model(kind: str):
    """A fresh model object of the requested kind (a new backend compiles anew)."""
    from tests.backends import models

    if kind == "flax":
        return models.flax_cnn()
    if kind == "torch":
        return models.torch_cnn()
    return models.numpy_softmax_regression()


def timed(fn, *args):
    """``(seconds, fn(*args))``."""
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def ours(kind, backend, masker, max_evals, x, k):
    from xaiwidgets.explainers import PartitionExplainer, PermutationExplainer

    cls = PartitionExplainer if kind == "partition" else PermutationExplainer
    ex = cls(backend, masker, max_evals=max_evals)
    e = ex(x, top_k=k)
    return e, int(sum(e.params["evaluations"]))


def theirs(kind, backend, masker, max_evals, x, k):
    import shap

    m = shap.maskers.Image(masker, x[0].shape)
    cls = shap.PartitionExplainer if kind == "partition" else shap.PermutationExplainer
    return cls(backend.predict, m)(
        x, max_evals=max_evals, outputs=shap.Explanation.argsort.flip[:k], silent=True
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 images, 1 warm repeat")
    ap.add_argument(
        "--model",
        choices=["flax", "torch", "numpy"],
        default=None,
        help="default: flax when jax is installed, else torch, else numpy",
    )
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--no-shap", action="store_true", help="skip the shap baseline")
    args = ap.parse_args()
    if args.quick:
        args.images, args.repeat = min(args.images, 2), 1
    if args.model is None:
        import importlib.util

        args.model = next(
            (
                m
                for m, mod in (("flax", "jax"), ("torch", "torch"))
                if importlib.util.find_spec(mod)
            ),
            "numpy",
        )
    from tests.backends.models import mnist_images
    from xaiwidgets.backends import wrap

    x, _ = mnist_images(args.images)
    k = args.top_k
    rows = []
    for kind, masker, max_evals in SETTINGS:
        row = {"explainer": kind, "masker": masker, "max_evals": max_evals}
        fresh = wrap(make_model(args.model))
        cold, (e, evals) = timed(ours, kind, fresh, masker, max_evals, x, k)
        backend = wrap(make_model(args.model))
        ours(kind, backend, masker, max_evals, x, k)
        warm = [timed(ours, kind, backend, masker, max_evals, x, k)[0] for _ in range(args.repeat)]
        batch = np.repeat(x, evals // len(x) + 1, axis=0)[:evals]
        floor = [timed(backend.predict, batch)[0] for _ in range(max(3, args.repeat))]
        row.update(
            evaluations=evals,
            ours_cold_s=cold,
            ours_warm_s=min(warm),
            floor_s=min(floor),
        )
        row["ours_over_floor"] = row["ours_warm_s"] / row["floor_s"]
        if not args.no_shap:
            fresh = wrap(make_model(args.model))
            shap_cold, ref = timed(theirs, kind, fresh, masker, max_evals, x, k)
            shap_warm = [
                timed(theirs, kind, backend, masker, max_evals, x, k)[0] for _ in range(args.repeat)
            ]
            row.update(shap_cold_s=shap_cold, shap_warm_s=min(shap_warm))
            row["speedup_warm"] = row["shap_warm_s"] / row["ours_warm_s"]
            row["speedup_cold"] = row["shap_cold_s"] / row["ours_cold_s"]
            if kind == "partition":  # same algorithm: how close are the values?
                r = [
                    np.corrcoef(ref.values[i, ..., j].ravel(), e.values[i, ..., j].ravel())[0, 1]
                    for i in range(len(x))
                    for j in range(k)
                ]
                row["min_correlation_with_shap"] = float(np.nanmin(r))
        rows.append({key: round(v, 4) if isinstance(v, float) else v for key, v in row.items()})
        print(json.dumps(rows[-1]), file=sys.stderr)
    out = {
        "benchmark": "shapley",
        "model": f"{args.model} seed-001 CNN" if args.model == "flax" else args.model,
        "images": len(x),
        "top_k": k,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "results": rows,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
