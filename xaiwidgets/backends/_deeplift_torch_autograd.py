"""The torch pieces both DeepLIFT paths share (the aten-graph interpreter
:mod:`._deeplift_torch_interp` and the eager fallback :mod:`._deeplift_torch_eager`): the array
namespace of :mod:`._deeplift_rules`, the ``autograd.Function`` s whose forward returns an op's
ordinary value and whose backward applies a DeepLIFT multiplier instead of the derivative, and
the backward passes that turn the pair rows' output into attributions.

Attributions of ``c`` images against ``b`` references from the pair rows ``inp`` (image ``i``
with reference ``k`` at row ``i * b + k``): one backward pass per requested output ``j`` with
the one-hot cotangent of ``outputs[i, j]``, then ``mean_k m_ik * (x_i - r_k)``
(:func:`attributions`), shape ``(o, c, ...)`` in the model's layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from . import _deeplift_rules as rules
from ._array_ops_torch import ARRAY_OPS

#: the array namespace :mod:`._deeplift_rules` computes with on torch tensors
OPS = ARRAY_OPS


class Scale(torch.autograd.Function):
    """Value ``y``; backward: the incoming gradient times the multiplier ``m``."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> Any:
        ctx.save_for_backward(m)
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        (m,) = ctx.saved_tensors
        return g * m, None, None


class Softmax(torch.autograd.Function):
    """Value ``y``; backward: the softmax (or log-softmax) rule along ``dim``
    (``info = (dim, rule, log)``, ``coef`` from :func:`._deeplift_rules.softmax_coefficients`
    or :func:`~._deeplift_rules.log_softmax_coefficients`)."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, y: torch.Tensor, coef: tuple, info: tuple) -> Any:
        ctx.coef, ctx.info = coef, info
        return y.view_as(y)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        dim, rule, log = ctx.info
        gl = g.movedim(dim, -1)
        if log:
            m = rules.log_softmax_apply(OPS, ctx.coef, gl)
        else:
            m = rules.softmax_apply(OPS, ctx.coef, gl, rule)
        return m.movedim(-1, dim), None, None, None


def input_multipliers(
    out: torch.Tensor,
    inp: torch.Tensor,
    idx: np.ndarray,
    n_ref: int,
    before: Callable[[int], Any] | None = None,
) -> torch.Tensor:
    """``(o, rows, ...)`` multipliers of the pair rows ``inp`` for each requested output: one
    backward pass of ``out`` ``(rows, k)`` per column of ``idx`` ``(c, o)`` (the cotangent of
    row ``i * n_ref + k`` is one-hot at ``idx[i, j]``). ``before(j)`` is called before the
    backward pass of output ``j`` (it may raise to stop: a cancel between backward passes)."""
    o = idx.shape[1]
    cot = torch.zeros((o,) + tuple(out.shape), dtype=out.dtype, device=out.device)
    cols = torch.from_numpy(np.repeat(idx, n_ref, axis=0).T.copy()).to(out.device)
    cot.scatter_(2, cols[:, :, None], 1.0)
    grads = []
    for j in range(o):
        if before is not None:
            before(j)
        grads.append(torch.autograd.grad(out, inp, cot[j], retain_graph=j < o - 1)[0])
    return torch.stack(grads)


def attributions(grads: torch.Tensor, xt: torch.Tensor, rt: torch.Tensor) -> torch.Tensor:
    """``(o, c, ...)``: ``mean_k grads[:, i * b + k] * (x_i - r_k)`` for images ``xt`` ``(c,
    ...)`` and references ``rt`` ``(b, ...)``."""
    c, b = len(xt), len(rt)
    delta = (xt[:, None] - rt[None]).reshape((c * b,) + tuple(xt.shape[1:]))
    return (grads * delta).reshape((grads.shape[0], c, b) + tuple(xt.shape[1:])).mean(2)
