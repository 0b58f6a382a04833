"""Subprocess probe of tests/explainers/test_gradients_memory.py: peak resident memory of one
gradient explainer on 224 x 224 x 3 images of a small torch conv net, for growing numbers of
images. Prints one JSON line: {"start": MB before any explaining, "base": MB after a one-image
warm-up, "peaks": [MB after each run], "rows": rows per model call}; ``ru_maxrss`` is the
process's peak, so each run's peak is read after it (runs go from fewest to most images)."""

from __future__ import annotations

import json
import resource
import sys
import warnings

import numpy as np
import torch

from xaiwidgets.explainers import GradientExplainer, IntegratedGradients, SmoothGrad


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main(kind: str, budget: int, counts: list[int], steps: int) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 10),
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(max(counts), 224, 224, 3)).astype(np.float32)
    background = rng.uniform(size=(8, 224, 224, 3)).astype(np.float32)
    if kind == "ig":
        ex = IntegratedGradients(net, steps=steps, memory_budget=budget)
    elif kind == "eg":
        ex = GradientExplainer(net, background, nsamples=steps, memory_budget=budget)
    else:
        ex = SmoothGrad(net, nsamples=steps, memory_budget=budget)
    warnings.simplefilter("ignore")
    start = peak_mb()
    ex(images[:1], outputs=[0, 1])  # warm-up: torch's allocator, the row measure
    base = peak_mb()
    peaks = []
    for n in counts:
        ex(images[:n], outputs=[0, 1])
        peaks.append(peak_mb())
    print(json.dumps({"start": start, "base": base, "peaks": peaks, "rows": ex.backend.batch_size}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [int(c) for c in sys.argv[3].split(",")], int(sys.argv[4]))
