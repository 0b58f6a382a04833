"""Grad-CAM, Grad-CAM++ and Score-CAM against pytorch-grad-cam, and against the floor; the
faithfulness metrics against Quantus.

Workload (the issue's): torchvision ``resnet18`` (random weights) on ``--images`` RGB 224 x
224 images, ``--outputs`` explained classes per image (top-k), layer ``layer4``; a Keras
``ResNet50`` the same (no peer runs Keras 3). pytorch-grad-cam is called once per output
rank (its targets are one class per image), batched over the images, as its README does.

- ``floor``: the model passes the method needs, in torch alone: one forward pass of the
  images and one backward pass per output (Grad-CAM, Grad-CAM++); the masked forward passes
  (Score-CAM: ``channels x images``).
- Score-CAM at equal masked forwards: both use every channel of the layer; we score all
  outputs from the same masked forward pass, pytorch-grad-cam repeats it per output.
- metrics: MuFidelity (``FaithfulnessCorrelation``) and sparseness, ours vs Quantus on the
  same explanation, images and subsets count; the deletion curve (48 steps, on the
  one-convolution model) vs Quantus's ``PixelFlipping``, its analogue.

Goals (issue): Grad-CAM <= 1.2x its floor and >= 3x pytorch-grad-cam; Score-CAM >= 3x;
metrics >= 10x Quantus. Best of ``--repeats``, interleaved.

    python bench/cam.py [--quick] [--images 16] [--outputs 3] [--parts torch,scorecam,keras,metrics]
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


def best_of(fns: dict[str, Callable], repeats: int) -> dict[str, float]:
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: round(min(v), 4) for k, v in times.items()}


def report(name: str, t: dict[str, float], **extra) -> None:
    row = {"case": name, **{f"{k}_s": v for k, v in t.items()}, **extra}
    ours = t["ours"]
    for k, v in t.items():
        if k == "floor":
            row["ours_over_floor"] = round(ours / v, 2)
        elif k != "ours":
            row[f"{k}_over_ours"] = round(v / ours, 2)
    print(json.dumps(row), flush=True)


def torch_cases(args) -> None:
    import pytorch_grad_cam
    import torch
    import torchvision
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from xaiwidgets.explainers import GradCAM, GradCAMPlusPlus

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    x = np.random.default_rng(0).random((args.images, args.size, args.size, 3), np.float32)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    k = args.outputs
    with torch.no_grad():
        top = torch.argsort(net(xt), dim=1, descending=True)[:, :k].numpy()

    def floor_grad():
        xg = xt.clone().requires_grad_(True)
        feats = {}
        h = net.layer4.register_forward_hook(lambda m, i, o: feats.setdefault("a", o))
        try:
            out = net(xg)
        finally:
            h.remove()
        for j in range(k):
            torch.autograd.grad(
                out[torch.arange(len(x)), top[:, j]].sum(), feats["a"], retain_graph=j < k - 1
            )

    for name, ours_cls, theirs_cls in [
        ("gradcam_resnet18", GradCAM, pytorch_grad_cam.GradCAM),
        ("gradcam++_resnet18", GradCAMPlusPlus, pytorch_grad_cam.GradCAMPlusPlus),
    ]:
        ours = ours_cls(net, "layer4", batch_size=args.batch)
        oracle = theirs_cls(model=net, target_layers=[net.layer4])

        def theirs(oracle=oracle):
            for j in range(k):
                oracle(input_tensor=xt, targets=[ClassifierOutputTarget(int(c)) for c in top[:, j]])

        t = best_of(
            {
                "ours": lambda ours=ours: ours(x, outputs=top),
                "pytorch_grad_cam": theirs,
                "floor": floor_grad,
            },
            args.repeats,
        )
        report(name, t, images=len(x), outputs=k, size=args.size)


def scorecam_cases(args) -> None:
    import pytorch_grad_cam
    import torch
    import torchvision
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from xaiwidgets.explainers import ScoreCAM

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    x = np.random.default_rng(0).random((args.images, args.size, args.size, 3), np.float32)
    k = args.outputs
    with torch.no_grad():
        xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
        top = torch.argsort(net(xt), dim=1, descending=True)[:, :k].numpy()
    n_sc = min(len(x), args.scorecam_images)
    xs, ts = x[:n_sc], top[:n_sc]
    channels = 512
    ours_sc = ScoreCAM(net, "layer4", batch_size=args.batch)
    oracle_sc = pytorch_grad_cam.ScoreCAM(model=net, target_layers=[net.layer4])
    oracle_sc.batch_size = args.batch

    def floor_sc():
        with torch.no_grad():
            rows = torch.from_numpy(np.repeat(xs, channels, 0).transpose(0, 3, 1, 2).copy())
            for s in range(0, len(rows), args.batch):
                net(rows[s : s + args.batch])

    def theirs_sc():
        xst = torch.from_numpy(xs.transpose(0, 3, 1, 2).copy())
        for j in range(k):
            oracle_sc(input_tensor=xst, targets=[ClassifierOutputTarget(int(c)) for c in ts[:, j]])

    t = best_of(
        {"ours": lambda: ours_sc(xs, outputs=ts), "pytorch_grad_cam": theirs_sc, "floor": floor_sc},
        1,
    )
    report(
        "scorecam_resnet18",
        t,
        images=n_sc,
        outputs=k,
        size=args.size,
        masked_forwards=n_sc * channels,
    )


def keras_cases(args) -> None:
    import keras
    import tensorflow as tf

    from xaiwidgets.explainers import GradCAM

    keras.utils.set_random_seed(0)
    net = keras.applications.ResNet50(weights=None, input_shape=(args.size, args.size, 3))
    x = np.random.default_rng(0).random((args.images, args.size, args.size, 3), np.float32)
    k = args.outputs
    top = np.argsort(-np.asarray(net(x, training=False)), axis=1)[:, :k]
    sub = keras.Model(net.inputs, [net.get_layer("conv5_block3_out").output, net.outputs[0]])

    def floor():
        for s in range(0, len(x), args.batch):
            with tf.GradientTape(persistent=True) as tape:
                a, out = sub(x[s : s + args.batch], training=False)
                cols = [
                    tf.reduce_sum(tf.gather(out, top[s : s + args.batch, j], axis=1, batch_dims=1))
                    for j in range(k)
                ]
            for c in cols:
                tape.gradient(c, a)

    ours = GradCAM(net, "conv5_block3_out", batch_size=args.batch)
    t = best_of({"ours": lambda: ours(x, outputs=top), "floor": floor}, args.repeats)
    report("gradcam_keras_resnet50", t, images=len(x), outputs=k, size=args.size)


def metric_cases(args) -> None:
    import quantus
    import torch
    import torchvision

    from xaiwidgets.explainers import GradCAM
    from xaiwidgets.faithfulness import deletion_curve, mufidelity, sparseness

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    n = min(args.images, 8)
    x = np.random.default_rng(1).random((n, args.size, args.size, 3), np.float32)
    e = GradCAM(net, "layer4")(x, top_k=1)
    y = e.output_indices[:, 0]
    a = e.values[..., 0, 0][:, None]  # (n, 1, h, w)
    xt = x.transpose(0, 3, 1, 2).copy()
    runs, size = args.runs, args.subset
    mu_q = quantus.FaithfulnessCorrelation(
        nr_runs=runs, subset_size=size, disable_warnings=True, return_aggregate=False
    )
    sp_q = quantus.Sparseness(disable_warnings=True, return_aggregate=False)

    def floor(model):
        """The model's forward passes on the ``runs x n`` perturbed images, nothing else."""
        rows = torch.from_numpy(np.repeat(xt, min(runs, max(1, args.batch // n)), axis=0))
        with torch.no_grad():
            for _ in range(0, runs, max(1, args.batch // n)):
                model(rows)

    t = best_of(
        {
            "ours": lambda: mufidelity(e, net, runs=runs, subset_size=size, score="output"),
            "quantus": lambda: mu_q(
                model=net, x_batch=xt, y_batch=y, a_batch=a, device="cpu", softmax=False
            ),
            "floor": lambda: floor(net),
        },
        1,
    )
    report("mufidelity_resnet18", t, images=n, runs=runs, subset_size=size)
    # the metric's own work, where the model costs little: a one-convolution model, 1000 outputs
    tiny = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 16, stride=16),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * (args.size // 16) ** 2, 1000),
    ).eval()
    t = best_of(
        {
            "ours": lambda: mufidelity(e, tiny, runs=runs, subset_size=size, score="output"),
            "quantus": lambda: mu_q(
                model=tiny, x_batch=xt, y_batch=y, a_batch=a, device="cpu", softmax=False
            ),
            "floor": lambda: floor(tiny),
        },
        args.repeats,
    )
    report("mufidelity_tiny_model", t, images=n, runs=runs, subset_size=size)
    # deletion curve: Quantus's analogue is PixelFlipping (its features are channel-pixels,
    # flipped cumulatively, one model call of the n images a step; its step must divide h * w
    # and it flips channel-pixels, so h * w / 16 a step is 48 steps of RGB); ours 48 steps
    steps = 48
    pf_q = quantus.PixelFlipping(
        features_in_step=args.size * args.size // 16,
        perturb_baseline="black",
        disable_warnings=True,
        return_aggregate=False,
    )

    def floor_deletion(model):
        """The model's forward passes on the ``n x steps`` masked images, nothing else."""
        rows = torch.from_numpy(np.repeat(xt, max(1, args.batch // n), axis=0))
        with torch.no_grad():
            for _ in range(0, n * steps, len(rows)):
                model(rows)

    t = best_of(
        {
            "ours": lambda: deletion_curve(e, tiny, "constant(0)", steps=steps, score="output"),
            "quantus": lambda: pf_q(
                model=tiny, x_batch=xt, y_batch=y, a_batch=a, device="cpu", softmax=False
            ),
            "floor": lambda: floor_deletion(tiny),
        },
        args.repeats,
    )
    report("deletion_tiny_model", t, images=n, steps=steps)
    t = best_of(
        {
            "ours": lambda: sparseness(e),
            "quantus": lambda: sp_q(model=net, x_batch=xt, y_batch=y, a_batch=a, device="cpu"),
        },
        args.repeats,
    )
    report("sparseness", t, images=n)
    # the sanity check's similarity of two maps per image (Quantus's model-parameter
    # randomisation test calls its Spearman function once per image and layer)
    from quantus.functions.similarity_func import correlation_spearman

    from xaiwidgets.faithfulness.randomisation import _spearman

    other = np.abs(GradCAM(net, "layer3")(x, outputs=e.output_indices).values)
    ref = np.abs(e.values).reshape(n, -1, 1)
    red = other.reshape(n, -1, 1)
    t = best_of(
        {
            "ours": lambda: _spearman(ref, red),
            "quantus": lambda: [correlation_spearman(ref[i, :, 0], red[i, :, 0]) for i in range(n)],
        },
        args.repeats,
    )
    report("sanity_similarity", t, images=n)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 images at 64x64")
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--outputs", type=int, default=3)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--scorecam-images", type=int, default=2)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--subset", type=int, default=224)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--parts", default="torch,scorecam,keras,metrics")
    args = p.parse_args()
    if args.quick:
        args.images, args.size, args.repeats, args.runs, args.subset = 2, 64, 1, 10, 50
        args.scorecam_images = 1
    warnings.simplefilter("ignore")
    parts = {
        "torch": torch_cases,
        "scorecam": scorecam_cases,
        "keras": keras_cases,
        "metrics": metric_cases,
    }
    for part in args.parts.split(","):
        parts[part](args)


if __name__ == "__main__":
    main()
