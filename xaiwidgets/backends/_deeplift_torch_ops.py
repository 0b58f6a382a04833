"""Which DeepLIFT rule each aten op takes (tables for :mod:`._deeplift_torch_interp`).

An op is looked up by its overload packet's name (``aten.relu.default`` -> ``"relu"``). The
tables say which arguments may differ between an image and its reference (vary) for the op
to be crossed by a given rule; any other combination, and any op in no table, is crossed by
its ordinary derivative and reported by name (an op with no rule is never crossed silently).
"""

from __future__ import annotations

from typing import Any

import torch

ALL = None  # every tensor argument

#: Linear (affine) in the listed arguments, the others constant: autograd's own derivative is
#: the DeepLIFT multiplier. ``None``: in every tensor argument jointly.
LINEAR: dict[str, Any] = {
    **dict.fromkeys(
        (
            "add sub rsub neg sum mean cumsum view _unsafe_view reshape expand expand_as permute "
            "transpose t unsqueeze squeeze flatten unflatten clone contiguous alias select slice "
            "narrow split split_with_sizes unbind chunk tensor_split flip roll repeat tile "
            "constant_pad_nd pad reflection_pad1d reflection_pad2d reflection_pad3d "
            "replication_pad1d replication_pad2d replication_pad3d avg_pool1d avg_pool2d "
            "avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d "
            "_adaptive_avg_pool2d _adaptive_avg_pool3d upsample_nearest1d upsample_nearest2d "
            "upsample_nearest3d _upsample_nearest_exact2d upsample_linear1d upsample_bilinear2d "
            "upsample_trilinear3d upsample_bicubic2d _upsample_bilinear2d_aa pixel_shuffle "
            "pixel_unshuffle channel_shuffle native_channel_shuffle diagonal diag_embed tril triu "
            "cat stack hstack vstack concat concatenate movedim swapaxes as_strided unfold im2col "
            "col2im copy _to_copy to type_as lift_fresh_copy view_as real imag trace "
            "select_scatter slice_scatter diagonal_scatter as_strided_scatter squeeze_copy "
            "unsqueeze_copy view_copy permute_copy expand_copy t_copy transpose_copy alias_copy "
            "slice_copy select_copy split_copy unbind_copy _reshape_alias unsafe_split"
        ).split(),
        ALL,
    ),
    "index": {"self"},
    "index_select": {"self"},
    "gather": {"self"},
    "take_along_dim": {"self"},
    "embedding": {"weight"},
    "index_put": {"self", "values"},
    "index_add": {"self", "source"},
    "index_copy": {"self", "source"},
    "scatter": {"self", "src"},
    "scatter_add": {"self", "src"},
    "masked_fill": {"self", "value"},
    "where": {"self", "other"},
    "_native_batch_norm_legit_no_training": {"input"},
    "native_batch_norm": {"input"},  # eval mode (training=False), checked by the interpreter
    "batch_norm": {"input"},
    "_native_batch_norm_legit": {"input"},
}
#: Batch norms: affine only with statistics not taken from the batch (their ``training``
#: argument False, as in eval mode); otherwise they have no rule.
BATCH_NORMS = {"native_batch_norm", "batch_norm", "_native_batch_norm_legit"}
#: Linear in their first argument when the second is constant (``x / c``).
LINEAR_IN_SELF = {"div", "true_divide"}

#: Affine in each listed argument separately and of degree at most two in them jointly
#: (products): one varying argument is linear; two are crossed by the Shapley split of the
#: product, ``Δ(ab) = ½ Δa (b + b') + ½ (a + a') Δb``, exact (``MAX_VARYING`` caps how many).
BILINEAR: dict[str, set[str]] = {
    "mul": {"self", "other"},
    "mm": {"self", "mat2"},
    "bmm": {"self", "mat2"},
    "matmul": {"self", "other"},
    "mv": {"self", "vec"},
    "dot": {"self", "tensor"},
    "vdot": {"self", "other"},
    "outer": {"self", "vec2"},
    "ger": {"self", "vec2"},
    "addmm": {"self", "mat1", "mat2"},
    "addmv": {"self", "mat", "vec"},
    "baddbmm": {"self", "batch1", "batch2"},
    "addbmm": {"self", "batch1", "batch2"},
    "linear": {"input", "weight", "bias"},
    "convolution": {"input", "weight", "bias"},
    "conv1d": {"input", "weight", "bias"},
    "conv2d": {"input", "weight", "bias"},
    "conv3d": {"input", "weight", "bias"},
    "_convolution": {"input", "weight", "bias"},
    "einsum": {"tensors"},
    "bilinear": {"input1", "input2", "bias"},
}
#: At most this many varying arguments keep the product rule exact (einsum of 3 factors is not).
MAX_VARYING = {"einsum": 2, "bilinear": 2}

#: Elementwise nonlinearities: one varying argument by the rescale rule ``Δy / Δu`` (the
#: derivative where ``|Δu| < 1e-6``), two by their Shapley split (``div``: ``a * (1/b)`` with
#: ``1/b`` rescaled and the product split, which is the same multipliers).
ELEMENTWISE = set(
    (
        "relu relu6 hardtanh leaky_relu elu selu celu gelu silu mish softplus hardsigmoid "
        "hardswish sigmoid tanh exp exp2 expm1 log log1p log2 log10 sqrt rsqrt reciprocal erf "
        "erfc erfinv sin cos tan asin acos atan sinh cosh asinh acosh atanh abs sign sgn floor "
        "ceil round trunc frac pow square clamp clamp_min clamp_max clip threshold logit "
        "softshrink hardshrink _prelu_kernel prelu nan_to_num maximum minimum fmax fmin atan2 "
        "div true_divide floor_divide remainder fmod xlogy special_xlog1py lgamma digamma "
        "special_erfcx sinc logaddexp logaddexp2 hypot copysign heaviside"
    ).split()
)

#: Max reductions crossed by shap's max rule (the difference routed to both argmaxes).
POOLS = {
    "max_pool1d_with_indices": 1,
    "max_pool2d_with_indices": 2,
    "max_pool3d_with_indices": 3,
    "adaptive_max_pool1d": 1,
    "adaptive_max_pool2d": 2,
    "adaptive_max_pool3d": 3,
}
REDUCE_MAX = {"amax": +1, "amin": -1, "max": +1, "min": -1}
SOFTMAX = {"_softmax": False, "_safe_softmax": False, "_log_softmax": True}

#: The value depends only on the shape, dtype or device of the varying input.
SHAPE_ONLY = set(
    (
        "zeros_like ones_like empty_like full_like rand_like randn_like new_zeros new_ones "
        "new_full new_empty new_empty_strided sym_size sym_stride sym_numel sym_storage_offset "
        "size stride numel dim"
    ).split()
)
#: Identity for DeepLIFT: the value passes, and so does its difference (``detach`` in a
#: model stops a gradient, not a difference).
IDENTITY = {"detach", "alias", "lift_fresh", "dropout", "feature_dropout", "alpha_dropout"}


def op_name(op: Any) -> str:
    """``"relu"`` for ``aten.relu.default``, a function's ``__name__`` otherwise."""
    packet = getattr(op, "overloadpacket", None)
    if packet is not None:
        return packet.__name__
    return getattr(op, "__name__", str(op))


def full_name(op: Any) -> str:
    """``"aten.relu"`` for ``aten.relu.default``."""
    packet = getattr(op, "overloadpacket", None)
    if packet is not None:
        return str(packet).replace("::", ".")
    return getattr(op, "__name__", str(op))


def argument_names(op: Any, n_args: int) -> list[str]:
    """The schema names of an op's first ``n_args`` positional arguments."""
    schema = getattr(op, "_schema", None)
    if schema is None:
        return [str(i) for i in range(n_args)]
    names = [a.name for a in schema.arguments]
    return [names[i] if i < len(names) else str(i) for i in range(n_args)]


def is_discrete(t: Any) -> bool:
    """A tensor of integers or booleans (no difference to propagate through it)."""
    return isinstance(t, torch.Tensor) and not (t.is_floating_point() or t.is_complex())
