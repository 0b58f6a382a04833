"""What :class:`~xaiwidgets.backends.torch_backend.TorchBackend` reads from and switches on a
torch model: its device and dtype, the class-score tensor of its output, and eval mode with
frozen parameters (shared by overlapping calls, restored by the last).

Imported by ``torch_backend`` (after torch).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def module_device(model: Any) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a parameterless model."""
    for getter in ("parameters", "buffers"):
        for tensor in getattr(model, getter, lambda: ())():
            return tensor.device
    return torch.device("cpu")


def module_dtype(model: Any) -> torch.dtype:
    """The dtype of the model's first floating parameter; float32 when it has none."""
    for p in getattr(model, "parameters", lambda: ())():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


class _EvalSwitch:
    """Eval mode and frozen parameters for one model, with what to restore."""

    def __init__(self, model: Any):
        self.users = 0
        modules = list(model.modules()) if hasattr(model, "modules") else []
        self.params = [
            p for m in modules for p in vars(m).get("_parameters", {}).values() if p is not None
        ]
        self.modules = modules
        self.flags = [m.training for m in modules]
        self.needs = [p.requires_grad for p in self.params]
        for m in modules:
            _set_training(m, False)
        for p in self.params:
            p.requires_grad_(False)

    def restore(self) -> None:
        for m, flag in zip(self.modules, self.flags):
            _set_training(m, flag)
        for p, need in zip(self.params, self.needs):
            p.requires_grad_(need)


_EVAL_LOCK = threading.Lock()
_EVAL_STATE: dict[int, _EvalSwitch] = {}


def _set_training(module: Any, flag: bool) -> None:
    """``module.training = flag``; a plain attribute write for ordinary modules
    (``Module.__setattr__`` costs more than the rest of a small CEM step), the module's own
    ``__setattr__`` for the others (TorchScript keeps the flag in C++)."""
    if type(module).__setattr__ is torch.nn.Module.__setattr__:
        vars(module)["training"] = flag
    else:
        module.training = flag


def output_tensor(out: Any) -> torch.Tensor:
    """The class-score tensor of a model output: a tensor, the first entry of a tuple/list, or
    the ``logits`` of a dict / output object (as Hugging Face models return)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if isinstance(out, dict) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    if isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    raise TypeError(
        f"the torch model returned a {type(out).__name__}; expected a tensor (n, k) of class "
        "scores (or a tuple / dict / output object holding one as its first entry or 'logits')"
    )


@contextmanager
def model_eval_mode(model: Any) -> Iterator[None]:
    """``model`` read-only within the block: every module in eval mode and every parameter
    with ``requires_grad=False``; each module's flag and each parameter's ``requires_grad``
    are restored on exit, also when the model raises. Blocks overlapping on one model (nested,
    or on several threads) share one switch: the first to enter saves and sets the flags, the
    last to leave restores them."""
    key = id(model)
    with _EVAL_LOCK:
        state = _EVAL_STATE.get(key)
        if state is None:
            state = _EVAL_STATE[key] = _EvalSwitch(model)
        state.users += 1
    try:
        yield
    finally:
        with _EVAL_LOCK:
            state.users -= 1
            if state.users == 0:
                state.restore()
                del _EVAL_STATE[key]
