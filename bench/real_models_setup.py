"""What ``bench/real_models.py`` measures with: the models (random weights), the floors (the
model passes a method needs, batched, in the framework alone), interleaved best-of timing and
peak resident memory (sampled every 5 ms from ``/proc/self/statm``, Linux only)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_memory(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn``; return its result and the peak RSS above the RSS before it, in MB."""
    start, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out = fn()
    finally:
        done.set()
        t.join()
    return out, max(0.0, max(peak[0], _rss_mb()) - start)


def best_of(fns: dict[str, Callable], repeats: int) -> dict[str, float | str]:
    """Best wall seconds per function, interleaved, after one warm-up call each; a function
    that raises is reported as its error."""
    out: dict[str, float | str] = {}
    live = {}
    for k, f in fns.items():
        try:
            f()
            live[k] = f
        except Exception as e:  # a peer that cannot run this architecture
            out[k] = f"error: {type(e).__name__}: {str(e)[:120]}"
    times: dict[str, list[float]] = {k: [] for k in live}
    for _ in range(repeats):
        for k, f in live.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    out.update({k: round(min(v), 4) for k, v in times.items()})
    return out


# ---------------------------------------------------------------------------- models
def torch_model(name: str, size: int):
    import timm
    import torch
    import torchvision

    torch.manual_seed(0)
    if name.startswith("deit"):
        net = timm.create_model(name, pretrained=False, num_classes=1000, img_size=size)
    else:
        net = getattr(torchvision.models, name)(weights=None)
    return net.eval()


def keras_model(name: str, size: int):
    import keras

    keras.utils.set_random_seed(0)
    return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3))


# ---------------------------------------------------------------------------- floors
def torch_floor(net, x_rows: np.ndarray, n_backward: int, batch: int) -> Callable:
    import torch

    def run():
        for s in range(0, len(x_rows), batch):
            xb = torch.from_numpy(x_rows[s : s + batch].transpose(0, 3, 1, 2).copy())
            xb.requires_grad_(n_backward > 0)
            with torch.set_grad_enabled(n_backward > 0):
                out = net(xb)
                for j in range(n_backward):
                    torch.autograd.grad(out[:, j].sum(), xb, retain_graph=j < n_backward - 1)

    return run


def keras_floor(net, x_rows: np.ndarray, n_backward: int, batch: int) -> Callable:
    import tensorflow as tf

    def run():
        for s in range(0, len(x_rows), batch):
            xb = tf.constant(x_rows[s : s + batch])
            if n_backward == 0:
                net(xb, training=False)
                continue
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(xb)
                out = net(xb, training=False)
                cols = [tf.reduce_sum(out[:, j]) for j in range(n_backward)]
            for c in cols:
                tape.gradient(c, xb)
            del tape

    return run
