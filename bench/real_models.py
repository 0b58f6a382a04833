"""Real architectures at real size: every explainer against shap and captum, the floor, peak
memory and DeepLIFT completeness, architecture by architecture.

Models (random weights: timing and completeness do not depend on training): torchvision
``resnet18``, ``mobilenet_v3_small``, ``efficientnet_b0``, timm ``deit_tiny_patch16_224``;
keras.applications ``ResNet50``, ``MobileNetV3Small``, ``EfficientNetB0``, ``ConvNeXtTiny``.
Inputs: ``--images`` RGB 224 x 224 images (``--quick``: 2 images at 64 x 64 where the
architecture allows it), ``--background`` background images, ``--outputs`` top-k outputs.

Per (architecture, method) one JSON line:

- ``ours_s`` / peers' seconds (best of ``--repeats``, the calls interleaved) and
  ``<peer>_over_ours``;
- ``floor_s``: the model passes the method needs, batched, in the framework alone (DeepSHAP:
  one forward over the image x background pairs and one backward per output; IG and expected
  gradients: one forward + backward per output over all path/sample points; Partition: the
  forward passes of its evaluations), and ``ours_over_floor``;
- ``peak_mb``: peak resident memory during our call minus before it (sampled every 5 ms);
  with ``--peak-images N`` also ``peak_mb_N`` and ``seconds_N``, one call of ours on ``N``
  images (the issue's goal: at most 1.5 GB beyond model and result for 64 images);
- ``relative_completeness`` for the methods that promise it: max |sum(phi) - (f(x) - f(baseline))|
  over max |f(x) - f(baseline)| (``output_change``; None when the outputs do not move).

Ours runs with its defaults (``batch_size=None``: rows per call from the 1 GiB memory budget)
unless ``--ours-batch`` is given; the floor and the peers use ``--batch`` rows per call.
``--table results.jsonl`` prints the JSON lines of a run as the README's markdown table.

A peer that raises on an architecture is reported with its error, not hidden.

    python bench/real_models.py [--quick] [--models resnet18,ResNet50] [--methods deep,ig]
    python bench/real_models.py --table results.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TORCH_MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "deit_tiny_patch16_224")
KERAS_MODELS = ("ResNet50", "MobileNetV3Small", "EfficientNetB0", "ConvNeXtTiny")
# deep last: shap's Keras DeepExplainer spoils the process for later gradients (see `late`)
METHODS = ("ig", "expected_gradients", "partition", "deep")

from real_models_setup import (  # noqa: E402
    best_of,
    keras_floor,
    keras_model,
    peak_memory,
    torch_floor,
    torch_model,
)


# ---------------------------------------------------------------------------- one case
def case(framework: str, name: str, method: str, args) -> dict:
    from xaiwidgets.explainers import (
        DeepExplainer,
        GradientExplainer,
        IntegratedGradients,
        PartitionExplainer,
    )

    size = args.size
    rng = np.random.default_rng(0)
    x = rng.random((args.images, size, size, 3), dtype=np.float32)
    bg = rng.random((args.background, size, size, 3), dtype=np.float32)
    net = torch_model(name, size) if framework == "torch" else keras_model(name, size)
    floor_of = torch_floor if framework == "torch" else keras_floor
    # peers hook into the model (and shap leaves its hooks behind when it fails): give them
    # a copy, so that a peer's failure cannot change what we and the floor run
    peer_net = copy.deepcopy(net) if framework == "torch" else net
    k, batch, ours_batch = args.outputs, args.batch, args.ours_batch
    row: dict = {
        "framework": framework,
        "model": name,
        "method": method,
        "images": len(x),
        "size": size,
        "outputs": k,
    }
    fns: dict[str, Callable] = {}
    late: dict[str, Callable] = {}  # peers that must run after the others
    complete = None

    if method == "deep":
        ours = DeepExplainer(net, bg, background_size=None, batch_size=ours_batch)
        fns["ours"] = lambda: ours(x, top_k=k)
        pairs = np.repeat(x, len(bg), axis=0)
        fns["floor"] = floor_of(net, pairs, k, batch)
        complete = "deep"
        if framework == "torch":
            import captum.attr
            import shap
            import torch

            xt, bt = (
                torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                torch.from_numpy(bg.transpose(0, 3, 1, 2).copy()),
            )
            fns["shap"] = lambda: shap.DeepExplainer(peer_net, bt).shap_values(
                xt, ranked_outputs=k, check_additivity=False
            )
            top = np.argsort(-ours.backend.probabilities(x), axis=1)[:, :k]
            dls = captum.attr.DeepLiftShap(peer_net)

            def captum_deep():  # the same k outputs per image: one call per output rank
                for j in range(k):
                    dls.attribute(xt, baselines=bt, target=torch.from_numpy(top[:, j]))

            fns["captum"] = captum_deep
        else:
            import shap

            # shap's TF DeepExplainer leaves functions traced under its gradient overrides
            # ("shap_Reshape"...) in Keras' shared tf.function caches: every later gradient
            # through them fails once shap removes the overrides. It runs after ours and the
            # floor (one architecture per process gives clean numbers for the next).
            late["shap"] = lambda: shap.DeepExplainer(net, bg).shap_values(
                x, ranked_outputs=k, check_additivity=False
            )
    elif method == "ig":
        steps = args.steps
        ours = IntegratedGradients(net, baseline=0.0, steps=steps, batch_size=ours_batch)
        fns["ours"] = lambda: ours(x, top_k=k)
        path = np.repeat(x, steps + 1, axis=0)
        fns["floor"] = floor_of(net, path, k, batch)
        complete = "ig"
        if framework == "torch":
            import captum.attr
            import torch

            xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
            top = np.argsort(-ours.backend.probabilities(x), axis=1)[:, :k]
            ig = captum.attr.IntegratedGradients(peer_net)

            def captum_ig():  # the same k outputs per image: one call per output rank
                for j in range(k):
                    ig.attribute(
                        xt,
                        target=torch.from_numpy(top[:, j]),
                        n_steps=steps + 1,
                        internal_batch_size=batch,
                    )

            fns["captum"] = captum_ig
    elif method == "expected_gradients":
        ns = args.samples
        ours = GradientExplainer(net, bg, nsamples=ns, batch_size=ours_batch)
        fns["ours"] = lambda: ours(x, top_k=k)
        fns["floor"] = floor_of(net, np.repeat(x, ns, axis=0), k, batch)
        import shap

        if framework == "torch":
            import torch

            xt, bt = (
                torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                torch.from_numpy(bg.transpose(0, 3, 1, 2).copy()),
            )
            fns["shap"] = lambda: shap.GradientExplainer(peer_net, bt).shap_values(
                xt, nsamples=ns, ranked_outputs=k
            )
        else:
            fns["shap"] = lambda: shap.GradientExplainer(net, bg).shap_values(
                x, nsamples=ns, ranked_outputs=k
            )
    elif method == "partition":
        evals = args.evals
        ours = PartitionExplainer(
            net, f"blur({size // 2},{size // 2})", max_evals=evals, batch_size=ours_batch
        )
        fns["ours"] = lambda: ours(x, top_k=k)
        fns["floor"] = floor_of(net, np.repeat(x, evals, axis=0), 0, batch)
        import shap

        if framework == "torch":
            import torch

            def f(batch_nhwc):
                with torch.no_grad():
                    xb = torch.from_numpy(
                        np.ascontiguousarray(
                            np.asarray(batch_nhwc, np.float32).transpose(0, 3, 1, 2)
                        )
                    )
                    return net(xb).numpy()
        else:

            def f(batch_nhwc):
                return np.asarray(net(np.asarray(batch_nhwc, np.float32), training=False))

        masker = shap.maskers.Image(f"blur({size // 2},{size // 2})", x[0].shape)
        fns["shap"] = lambda: shap.PartitionExplainer(f, masker)(
            x, max_evals=evals, outputs=shap.Explanation.argsort.flip[:k], silent=True
        )
    else:
        raise ValueError(f"unknown method {method!r}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expl, row["peak_mb"] = peak_memory(fns["ours"])
        times = best_of(fns, args.repeats)
        if args.peak_images:
            many = np.resize(x, (args.peak_images,) + x.shape[1:])
            t0 = time.perf_counter()
            _, row[f"peak_mb_{len(many)}"] = peak_memory(lambda: ours(many, top_k=k))
            row[f"seconds_{len(many)}"] = round(time.perf_counter() - t0, 2)
        times.update(best_of(late, args.repeats))
    row.update({f"{key}_s": v for key, v in times.items()})
    ours_s = times["ours"]
    for key, v in times.items():
        if key != "ours" and isinstance(v, float):
            ratio = v / ours_s if key != "floor" else ours_s / v
            row["ours_over_floor" if key == "floor" else f"{key}_over_ours"] = round(ratio, 2)
    if complete is not None:
        fx = np.take_along_axis(expl.predictions, expl.output_indices, axis=1)
        gap = fx - expl.base_values - expl.values.reshape(len(x), -1, k).sum(1)
        change = float(np.abs(fx - expl.base_values).max())
        row["output_change"] = change  # max |f(x) - f(baseline)|: what completeness divides
        # a random-weight model whose outputs do not move tells nothing about completeness
        row["relative_completeness"] = float(np.abs(gap).max()) / change if change > 1e-6 else None
    return row


def markdown(rows: list[dict]) -> str:
    """The README table: one line per (architecture, method)."""

    def num(v, unit=""):
        if isinstance(v, str):  # a peer that raised
            return "fails"
        return f"{v:.3g}{unit}" if isinstance(v, (int, float)) else "-"

    out = [
        "| model | method | ours | / floor | shap / ours | captum / ours | peak | completeness |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            first = r["error"].splitlines()[0][:60].replace("|", "/")
            out.append(f"| {r['model']} | {r['method']} | error: {first} |||||")
            continue
        peaks = [f"{num(r['peak_mb'])} MB ({r['images']} img)"]
        peaks += [
            f"{num(v)} MB ({k.split('_')[-1]} img)" for k, v in r.items() if k[:8] == "peak_mb_"
        ]
        peer = {p: r.get(f"{p}_over_ours", r.get(f"{p}_s")) for p in ("shap", "captum")}
        out.append(
            f"| {r['model']} | {r['method']} | {num(r.get('ours_s'), ' s')} | "
            f"{num(r.get('ours_over_floor'))} | {num(peer['shap'])} | "
            f"{num(peer['captum'])} | {', '.join(peaks)} | "
            f"{num(r.get('relative_completeness'))} |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 images at 64x64, few steps")
    p.add_argument("--models", default=",".join(TORCH_MODELS + KERAS_MODELS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--background", type=int, default=10)
    p.add_argument("--outputs", type=int, default=3)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--evals", type=int, default=300)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=32, help="rows per call of floor and peers")
    p.add_argument("--ours-batch", type=int, default=None, help="default: the memory budget")
    p.add_argument("--peak-images", type=int, default=0, help="also one call on N images")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--table", help="print the JSON lines of this file as a markdown table")
    args = p.parse_args()
    if args.table:
        with open(args.table) as f:
            print(markdown([json.loads(line) for line in f if line.startswith("{")]))
        return
    if args.quick:
        args.images, args.background, args.size, args.steps = 2, 2, 64, 4
        args.samples, args.evals, args.repeats = 4, 40, 1
        if args.models == p.get_default("models"):
            args.models = "resnet18"
        if args.methods == p.get_default("methods"):
            args.methods = "deep,ig"
    for name in args.models.split(","):
        framework = "torch" if name in TORCH_MODELS else "keras"
        if framework == "keras" and name not in KERAS_MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {TORCH_MODELS + KERAS_MODELS}")
        for method in args.methods.split(","):
            try:
                row = case(framework, name, method, args)
            except Exception as e:  # report and go on: one architecture must not hide others
                row = {
                    "framework": framework,
                    "model": name,
                    "method": method,
                    "error": f"{type(e).__name__}: {str(e)[:200]}",
                }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
