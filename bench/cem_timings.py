"""What bench/cem.py times: our CEM (a run, its summary, the slider-sized re-runs), alibi's CEM
in its own venv, the floor of model passes in torch, and ``callable_backends`` (a torch backend
variant with the protocol ideas not adopted)."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ALIBI_PY = HERE / ".venv-alibi" / "bin" / "python"


def callable_backends(tc, ta):
    """TorchBackends whose ``vjp(x, cot_fn)`` runs the model directly (no eval-mode switching,
    no thin-convolution gradient) and whose autoencoder backend returns its NHWC images
    flattened without a transpose in torch (``image_outputs``; it is its own
    ``flat_outputs()``)."""
    import torch

    from xaiwidgets.backends.torch_backend import TorchBackend

    class CallableTorchBackend(TorchBackend):
        vjp_accepts_callable = True

        def __init__(self, model, image_outputs=False):
            super().__init__(model)
            self.image_outputs = image_outputs

        def _call(self, xt):
            return self.model(xt)

        def _out(self, out):
            if self.image_outputs:  # NHWC images, flattened as flat_outputs() promises
                return self.from_framework_grad(out).reshape(len(out), -1)
            return out.numpy()

        def flat_outputs(self):
            return self if self.image_outputs else super().flat_outputs()

        def predict(self, x):
            with torch.no_grad():
                return self._out(self._call(self.to_framework(x)))

        def vjp(self, x, cot):
            xt = self.to_framework(x).requires_grad_(True)
            with torch.enable_grad():
                out = self._call(xt)
                o = self._out(out.detach())
                c = np.asarray(cot(o) if callable(cot) else cot, np.float32)
                if self.image_outputs:
                    n, ch, h, w = out.shape
                    c = c.reshape(n, h, w, ch).transpose(0, 3, 1, 2)
                (g,) = torch.autograd.grad(out, xt, torch.from_numpy(np.ascontiguousarray(c)))
            return o, self.from_framework_grad(g)

    return CallableTorchBackend(tc), CallableTorchBackend(ta, image_outputs=True)


def floor(tc, ta, rows: int, steps: int) -> float:
    """Seconds for ``steps`` x (classifier fwd+bwd, autoencoder fwd+bwd, classifier fwd) on
    ``rows`` images, in torch, nothing else."""
    import torch

    x = torch.rand(rows, 1, 28, 28) - 0.5
    t0 = time.perf_counter()
    for _ in range(steps):
        xt = x.clone().requires_grad_(True)
        out = tc(xt)
        torch.autograd.grad(out, xt, torch.ones_like(out))
        r = ta(xt)
        torch.autograd.grad(r, xt, r.detach())
        with torch.no_grad():
            tc(x)
    return time.perf_counter() - t0


def run_ours(model, ae, x, mode, search, cfg):
    """Wall time, the result, and the streamed (seconds, best distance) pairs."""
    from xaiwidgets.explainers import CEMExplainer

    cem = CEMExplainer(model, mode, ae_model=ae, search=search, update_every=5, **cfg)
    trace = []
    t0 = time.perf_counter()

    def seen(r):
        if r.found[0]:
            trace.append((time.perf_counter() - t0, float(r.distance[0])))

    r = cem(x, on_update=seen)
    return time.perf_counter() - t0, r, trace


def summary(r, t, trace, target=None):
    """A result's numbers; with ``target`` (alibi's distance) also the time our best-so-far
    first got at least as close."""
    out = {
        "s": round(t, 3),
        "found": bool(r.found[0]),
        "class": int(r.image_class[0]),
        "distance": round(float(r.distance[0]), 4),
        "c": float(r.c[0]),
    }
    if target is not None:
        hit = [s for s, d in trace if d <= target * (1 + 1e-6)]
        out["s_to_alibi_distance"] = round(hit[0], 3) if hit else None
    return out


def distance(x, image, mode, beta):
    """alibi's elastic-net size of an answer: of ``image - x`` (PN) or of ``image`` (PP)."""
    d = (image - x if mode == "PN" else image).ravel().astype(np.float64)
    return float(d @ d + beta * np.abs(d).sum())


def run_alibi(weights, x, mode, cfg, threads):
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x[0])
        c = {
            **cfg,
            "mode": mode,
            "feature_range": list(cfg["feature_range"]),
            "clip": list(cfg["clip"]),
        }
        proc = subprocess.run(
            [
                str(ALIBI_PY),
                str(HERE / "cem_alibi.py"),
                "--weights",
                str(weights),
                "--image",
                f"{tmp}/x.npy",
                "--config",
                json.dumps(c),
                "--out",
                f"{tmp}/r.npz",
                "--threads",
                str(threads),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["image"] = np.load(f"{tmp}/r.npz")["image"].reshape(x.shape)
        return out


def slider(model, ae, x, cfg):
    """Time to the first streamed image and total, for 8 slider settings."""
    from xaiwidgets.explainers import CEMExplainer

    cem = CEMExplainer(model, ae_model=ae, **{**cfg, "max_iterations": 100, "c_steps": 3})
    rows = []
    for mode in ("PN", "PP"):
        for kappa in (0.0, 0.2):
            for beta in (0.1, 0.5):
                t0, first = time.perf_counter(), []

                def seen(r, t0=t0, first=first):
                    if not first and r.found.any():
                        first.append(time.perf_counter() - t0)

                r = cem(x, mode=mode, kappa=kappa, beta=beta, on_update=seen)
                total = time.perf_counter() - t0
                rows.append(
                    {
                        "mode": mode,
                        "kappa": kappa,
                        "beta": beta,
                        "found": bool(r.found[0]),
                        "first_s": round(first[0], 3) if first else None,
                        "total_s": round(total, 3),
                    }
                )
    firsts = [r["first_s"] for r in rows if r["first_s"] is not None]
    return {
        "runs": rows,
        "first_image_max_s": max(firsts) if firsts else None,
        "total_max_s": max(r["total_s"] for r in rows),
        "found": sum(r["found"] for r in rows),
    }
