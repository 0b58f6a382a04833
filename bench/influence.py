"""Benchmark: dataset-level influence maps (entropic variable projection), ours vs ethik.

Influence maps for 10 classes over N synthetic MNIST-like 28x28 images (N = 1,000 / 10,000 /
100,000 by default): wall time (best of a few runs), peak Python memory (tracemalloc, one
separate run) and the floor (one pass of the tilt weights, exp over n x 784 in float64, plus
the (784, n) @ (n, 10) product: any method computing the maps pays at least this, twice).
Where ethik installs in its own venv (``bench/.venv-ethik``: ``python -m venv
bench/.venv-ethik && bench/.venv-ethik/bin/pip install ethik 'pandas<2' 'numpy<2'``) it runs
in a subprocess on the same images and probabilities, and the two maps are compared.

    python bench/influence.py            # full run
    python bench/influence.py --quick    # N = 1,000 and 10,000; ethik at 1,000 only

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from xaiwidgets.explainers import influence_maps

HERE = Path(__file__).resolve().parent
ETHIK_PYTHON = HERE / ".venv-ethik" / "bin" / "python"
K = 10

ETHIK_SCRIPT = r"""
import sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
import ethik

data = np.load(sys.argv[1])
images, probs = data["images"], data["probs"]
explainer = ethik.ImageClassificationExplainer(verbose=False, memoize=False, tol=float(sys.argv[3]))
t0 = time.perf_counter()
df = explainer.explain_influence(images, pd.DataFrame(probs))
seconds = time.perf_counter() - t0
h, w = images.shape[1:]
maps = np.zeros((probs.shape[1], h, w))
conv = np.zeros((2, h, w), dtype=bool)
for (feature, label), g in df.groupby(["feature", "label"]):
    r, c = feature
    maps[label, r, c] = g.loc[g.tau == 1, "influence"].iloc[0] - g.loc[g.tau == -1, "influence"].iloc[0]
    conv[0, r, c] = bool(g.loc[g.tau == -1, "converged"].iloc[0])
    conv[1, r, c] = bool(g.loc[g.tau == 1, "converged"].iloc[0])
np.savez(sys.argv[2], maps=maps, converged=conv, seconds=seconds)
"""


def synthetic_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-like images (mostly 0, strokes of bumps, values in k/255) and the probabilities
    of a fixed random 'model' (softmax of templates . image), made in chunks of 10,000."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    centres = rng.uniform(8, 20, size=(K, 2))
    templates = np.exp(
        -((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 18.0
    )
    templates = (templates - templates.mean(axis=(1, 2), keepdims=True)).reshape(K, -1)
    images = np.empty((n, 28, 28), dtype=np.float32)
    probs = np.empty((n, K))
    for s in range(0, n, 10_000):
        m = min(10_000, n - s)
        img = np.zeros((m, 28, 28), dtype=np.float32)
        for _ in range(4):
            cy, cx = rng.uniform(5, 23, size=(2, m, 1, 1)).astype(np.float32)
            sig = rng.uniform(1.2, 2.5, size=(m, 1, 1)).astype(np.float32)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sig**2))
        img = np.clip(img, 0, 1)
        img[img < 0.15] = 0
        images[s : s + m] = np.round(img * 255) / 255
        logits = 0.15 * images[s : s + m].reshape(m, -1) @ templates.T + rng.normal(0, 0.5, (m, K))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs[s : s + m] = e / e.sum(axis=1, keepdims=True)
    return images, probs


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def floor_seconds(images: np.ndarray, probs: np.ndarray) -> float:
    """One pass of tilt weights over every pixel (exp in float64, normalised) and their product
    with the probabilities, on pixel-major data transposed beforehand, chunked like ours, on
    one BLAS thread."""
    from threadpoolctl import threadpool_limits

    n = len(images)
    feats = np.ascontiguousarray(images.reshape(n, -1).T)  # (784, n) float32, not timed
    step = max(1, 320_000 // n)

    def run():
        with threadpool_limits(limits=1, user_api="blas"):
            for j in range(0, feats.shape[0], step):
                w = np.exp(feats[j : j + step].astype(np.float64))
                w /= w.sum(axis=1, keepdims=True)
                w @ probs

    return best_time(run, 3)


def run_ethik(images: np.ndarray, probs: np.ndarray, timeout: float, tol: float = 1e-4) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out, script = (os.path.join(tmp, f) for f in ("in.npz", "out.npz", "run.py"))
        np.savez(inp, images=images.astype(np.float64), probs=probs)
        Path(script).write_text(ETHIK_SCRIPT)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [str(ETHIK_PYTHON), script, inp, out, repr(tol)],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
        res = np.load(out)
        return {
            "seconds": float(res["seconds"]),
            "wall_with_import_s": wall,
            "maps": res["maps"],
            "converged": res["converged"],
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated N")
    ap.add_argument("--ethik-sizes", default="1000", help="N at which ethik also runs")
    ap.add_argument("--ethik-timeout", type=float, default=600.0)
    ap.add_argument("--no-ethik", action="store_true")
    ap.add_argument("--quick", action="store_true", help="N = 1,000 and 10,000")
    args = ap.parse_args()
    sizes = [1000, 10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    ethik_sizes = {int(s) for s in args.ethik_sizes.split(",") if s}
    have_ethik = ETHIK_PYTHON.exists() and not args.no_ethik

    rows = []
    for n in sizes:
        images, probs = synthetic_mnist(n)
        repeats = 3 if n <= 10_000 else 1
        ours = best_time(lambda: influence_maps(images, probs), repeats)  # noqa: B023
        tracemalloc.start()
        res = influence_maps(images, probs)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        row = {
            "n": n,
            "ours_s": round(ours, 4),
            "ours_us_per_image": round(1e6 * ours / n, 2),
            "peak_mb": round(peak / 1e6, 2),
            "inputs_mb": round((images.nbytes + probs.nbytes) / 1e6, 2),
            "n_x_pixels_x_classes_float64_mb": round(n * 784 * K * 8 / 1e6, 1),
            "floor_s": round(floor_seconds(images, probs), 4),
            "boundary_tilts": int(np.isinf(res.lambdas).sum()),
            "all_converged": bool(res.converged.all()),
        }
        row["ratio_to_floor"] = round(ours / row["floor_s"], 2)
        if have_ethik and n in ethik_sizes:
            eth = run_ethik(images, probs, args.ethik_timeout)
            if "error" in eth:
                row["ethik_error"] = eth["error"]
            else:
                diff = np.abs(eth["maps"] - res.maps)
                both = eth["converged"].all(axis=0)
                interior = np.isfinite(res.lambdas).all(axis=0) & (res.taus[0] != res.taus[1])
                row.update(
                    {
                        "ethik_s": round(eth["seconds"], 3),
                        "ethik_to_ours": round(eth["seconds"] / ours, 1),
                        "max_abs_diff": float(diff.max()),
                        "max_abs_diff_where_ethik_converged": float(diff[:, both].max())
                        if both.any()
                        else None,
                        "ethik_converged_pixels": int(both.sum()),
                        # pixels whose two targets are inside (min, max): finite tilts for both
                        "interior_pixels": int(interior.sum()),
                        "max_abs_diff_interior": float(diff[:, interior].max())
                        if interior.any()
                        else None,
                        "max_abs_diff_boundary": float(
                            diff[:, ~np.isfinite(res.lambdas).all(axis=0)].max()
                        ),
                        "correlation": float(
                            np.corrcoef(eth["maps"].ravel(), res.maps.ravel())[0, 1]
                        ),
                        "max_abs_map": float(np.abs(res.maps).max()),
                    }
                )
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    continuous = None
    if have_ethik and not args.quick:
        # every pixel continuous (no value at its min/max quantile): finite tilts everywhere,
        # the case where both libraries solve the same equation to their own tolerance
        rng = np.random.default_rng(1)
        images = rng.gamma(2.0, 0.5, size=(1000, 14, 14)).astype(np.float32)
        w = rng.normal(size=(196, K)) * 0.3
        logits = images.reshape(1000, -1) @ w
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        ours = best_time(lambda: influence_maps(images, probs), 3)
        res = influence_maps(images, probs)
        eth = run_ethik(images, probs, args.ethik_timeout)
        continuous = {"n": 1000, "shape": [14, 14], "ours_s": round(ours, 4)}
        if "error" in eth:
            continuous["ethik_error"] = eth["error"]
        else:
            diff = np.abs(eth["maps"] - res.maps)
            continuous.update(
                {
                    "ethik_s": round(eth["seconds"], 3),
                    "ethik_to_ours": round(eth["seconds"] / ours, 1),
                    "max_abs_diff": float(diff.max()),
                    "max_abs_map": float(np.abs(res.maps).max()),
                    "correlation": float(np.corrcoef(eth["maps"].ravel(), res.maps.ravel())[0, 1]),
                }
            )
            # ethik's default tol (1e-4 on the squared gap of standardised means) explains the
            # gap: at a tighter tol (1e-10) they agree to ~1e-5
            tight = run_ethik(images, probs, args.ethik_timeout, tol=1e-10)
            if "error" not in tight:
                continuous["ethik_tol_1e-10_s"] = round(tight["seconds"], 3)
                continuous["max_abs_diff_ethik_tol_1e-10"] = float(
                    np.abs(tight["maps"] - res.maps).max()
                )
        print(json.dumps(continuous), file=sys.stderr)

    out = {
        "benchmark": "influence maps, 10 classes, 28x28 synthetic MNIST-like images",
        "cpu_cores": os.cpu_count(),
        "goal": "10,000 images < 2 s",
        "rows": rows,
        "ethik_continuous_14x14": continuous,
        "ethik": "ran"
        if any("ethik_s" in r for r in [*rows, continuous or {}])
        else ("not installed" if not have_ethik else "not run or failed"),
    }
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        out["time_growth_vs_n_growth"] = round((b["ours_s"] / a["ours_s"]) / (b["n"] / a["n"]), 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
