"""torch's array namespace: :data:`ARRAY_OPS`, the :class:`~._array_ops.ArrayOps` that
framework-free formulas (the DeepLIFT rules) compute with on torch tensors. Importing this
module imports torch.
"""

from __future__ import annotations

import torch

from ._array_ops import ArrayOps

#: torch's array functions under the shared names (:mod:`._array_ops`).
ARRAY_OPS = ArrayOps(
    "torch",
    where=torch.where,
    abs=torch.abs,
    square=torch.square,
    exp=torch.exp,
    log=torch.log,
    minimum=torch.minimum,
    maximum=torch.maximum,
    clip=torch.clamp,
    reshape=torch.reshape,
    transpose=torch.permute,
    sum=lambda t, axis, keepdims: t.sum(axis, keepdim=keepdims),
    max=lambda t, axis, keepdims: t.amax(axis, keepdim=keepdims),
    softmax=lambda t: torch.softmax(t, -1),
    one_hot=lambda idx, k: torch.nn.functional.one_hot(idx.long(), k).bool(),
)
