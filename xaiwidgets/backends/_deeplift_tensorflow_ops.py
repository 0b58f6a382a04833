"""Per-op DeepLIFT rules for TensorFlow graphs: which op types are linear, which get a rule,
and the rules themselves (registered TensorFlow gradient functions).

Each rule turns the op's two sides, the *pair* op (image rows, ``c * b`` of them) and the
matching op of the *reference* call (``b`` rows, tiled to the pair rows), into multipliers
applied to the incoming gradient (:mod:`._deeplift_rules`); every rule satisfies
``Δy = Σ_inputs m_i Δu_i`` exactly, so multipliers chained through the graph sum to
``F(x) - F(x')``:

- elementwise one-input nonlinearities (``Relu``, ``Sigmoid``, ``Rsqrt``, ``Erfc``, ...):
  rescale ``m = Δy / Δu`` (secant; the derivative at the midpoint where ``|Δu| < 1e-6``);
- products of two varying inputs (``Mul``, ``MatMul``, ``BatchMatMulV2``, ``Einsum``): the
  Shapley split ``Δ(ab) = ½ Δa (b + b') + ½ (a + a') Δb``, i.e. each input's gradient taken
  at the midpoint of the other (gates, LayerNorm's ``x * rsqrt(var)``, attention's ``QKᵀ``
  and ``·V``);
- ``RealDiv``: ``a * (1/b)`` with the reciprocal's rescale ``Δ(1/b) / Δb = -1/(b b')`` and the
  product split;
- other elementwise two-input ops (``Maximum``, ``Minimum``, ``SquaredDifference``, ``Pow``):
  the Shapley split of :func:`._deeplift_rules.shapley_pair`;
- ``StopGradient`` and the ``IdentityN`` of ``tf.custom_gradient`` (``tf.nn.silu``): identity,
  so that the rules see the forward ops the value was computed by;
- ``MaxPool``, ``Softmax``, ``LogSoftmax``: shap's rules, in :mod:`._deeplift_keras`.

The state the rules read (the pair → reference op mapping, the number of images per pass, the
set of input-dependent tensors, a per-trace coefficient cache) is set by
:mod:`._deeplift_keras` around its ``tf.gradients`` calls.
"""

from __future__ import annotations

import threading
from typing import Any

import tensorflow as tf

from . import _deeplift_rules as rules
from ._compiled_tensorflow import ARRAY_OPS

PREFIX = "XaiwidgetsDeepLift"
STATE = threading.local()


OPS = ARRAY_OPS  # the array namespace :mod:`._deeplift_rules` computes with

#: Elementwise one-input op types and how to evaluate them from an op's attributes.
ELEMENTWISE = {
    "Relu": lambda op: tf.nn.relu,
    "Relu6": lambda op: tf.nn.relu6,
    "Elu": lambda op: tf.nn.elu,
    "Selu": lambda op: tf.nn.selu,
    "Sigmoid": lambda op: tf.sigmoid,
    "Tanh": lambda op: tf.tanh,
    "Softplus": lambda op: tf.nn.softplus,
    "Softsign": lambda op: tf.nn.softsign,
    "Exp": lambda op: tf.exp,
    "Expm1": lambda op: tf.math.expm1,
    "Log": lambda op: tf.math.log,
    "Log1p": lambda op: tf.math.log1p,
    "Sqrt": lambda op: tf.sqrt,
    "Rsqrt": lambda op: tf.math.rsqrt,
    "Reciprocal": lambda op: tf.math.reciprocal,
    "Inv": lambda op: tf.math.reciprocal,
    "Square": lambda op: tf.square,
    "Erf": lambda op: tf.math.erf,
    "Erfc": lambda op: tf.math.erfc,
    "Abs": lambda op: tf.abs,
    "Sin": lambda op: tf.sin,
    "Cos": lambda op: tf.cos,
    "LeakyRelu": lambda op: lambda t: tf.nn.leaky_relu(t, alpha=op.get_attr("alpha")),
    "ClipByValue": lambda op: lambda t: tf.clip_by_value(t, op.inputs[1], op.inputs[2]),
}
#: Elementwise two-input nonlinear op types (with broadcasting): the Shapley split.
BINARY = {
    "Maximum": tf.maximum,
    "Minimum": tf.minimum,
    "SquaredDifference": tf.math.squared_difference,
    "Pow": tf.pow,
}
#: Products, bilinear in their two inputs.
BILINEAR = ("Mul", "MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
DIVISION = ("RealDiv", "Div", "DivNoNan")
IDENTITY = ("StopGradient", "IdentityN")
#: Op types that are linear (affine) in their input-dependent inputs: TensorFlow's own gradient.
LINEAR = frozenset(
    """Identity Snapshot AddV2 Add AddN Sub Neg BiasAdd Conv2D Conv3D Conv1D
    DepthwiseConv2dNative Conv2DBackpropInput Conv3DBackpropInputV2 Mean Sum Reshape Transpose
    ConcatV2 Concat Pad PadV2 MirrorPad StridedSlice Slice Split SplitV Pack Unpack Squeeze
    ExpandDims AvgPool AvgPool3D Cast Tile GatherV2 Gather BroadcastTo ResizeBilinear
    ResizeNearestNeighbor DepthToSpace SpaceToDepth SpaceToBatchND BatchToSpaceND Cumsum
    ReverseV2 Roll FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 Shape ShapeN Size Rank
    ZerosLike OnesLike EnsureShape CheckNumerics PlaceholderWithDefault Select SelectV2""".split()
)
#: Op types of a nested function's body that may be crossed with its own gradient.
NESTED_OK = LINEAR | {"Placeholder", "ReadVariableOp", "Const", "NoOp", "VarHandleOp"}
CALLS = ("PartitionedCall", "StatefulPartitionedCall")


def varies(t: Any) -> bool:
    """Whether tensor ``t`` of the pair call depends on the images."""
    return t.ref() in STATE.varying


def ref_side(op: Any, t: Any, ref_t: Any) -> Any:
    """The reference side of pair tensor ``t`` (``ref_t``, its counterpart in the reference
    call), tiled to the pair rows: images are repeated ``b`` times and references tiled ``c``
    times along the one axis where the pair side has ``c`` times the rows (the batch axis)."""
    c = STATE.lead[0]
    ps, rs = t.shape.as_list(), ref_t.shape.as_list()
    if c == 1 or not varies(t) or ps == rs:
        return ref_t
    for a in range(len(rs)):
        if (
            len(ps) == len(rs)
            and ps[a] == c * rs[a]
            and ps[:a] + ps[a + 1 :] == rs[:a] + rs[a + 1 :]
        ):
            reps = [1] * len(rs)
            reps[a] = c
            return tf.tile(ref_t, reps)
    raise NotImplementedError(
        f"DeepLIFT: no batch axis in TensorFlow op {op.type} ({op.name}) "
        f"(shapes {ps} of the images and {rs} of the references)"
    )


def sides(op: Any, i: int = 0, which: str = "inputs") -> tuple[Any, Any]:
    """Pair side and tiled reference side of ``op``'s ``i``-th input (or output)."""
    ref = STATE.mapping[op.name]
    pair = getattr(op, which)[i]
    return pair, ref_side(op, pair, getattr(ref, which)[i])


def cached(op: Any, make: Any) -> Any:
    """Coefficients of ``op``, computed once per trace (each output's ``tf.gradients`` call
    asks again)."""
    cache = STATE.cache
    if op.name not in cache:
        cache[op.name] = make()
    return cache[op.name]


def unbroadcast(g: Any, t: Any) -> Any:
    """Sum ``g`` (the broadcast shape of an elementwise op) down to the shape of input ``t``."""
    if g.shape == t.shape:
        return g
    gs, ts = tf.shape(g), tf.shape(t)
    axes, _ = tf.raw_ops.BroadcastGradientArgs(s0=ts, s1=gs)
    return tf.reshape(tf.reduce_sum(g, axis=axes), ts)


def derivative(f: Any, u: Any) -> Any:
    """``f'(u)`` of an elementwise ``f`` by TensorFlow's own gradient (exact, and defined
    wherever ``f`` is: a central difference would step out of the domain of ``rsqrt`` or
    ``log`` near zero)."""
    u = tf.identity(u)
    return tf.gradients(f(u), u)[0]


def elementwise_grad(op: Any, grad: Any) -> Any:
    f = ELEMENTWISE[op.type](op)

    def make() -> Any:
        (u_p, u_r), (y_p, y_r) = sides(op), sides(op, 0, "outputs")
        slope = derivative(f, 0.5 * (u_p + u_r))
        return rules.safe_div(OPS, y_p - y_r, u_p - u_r, rules.EPS_RESCALE, slope)

    out = grad * cached(op, make)
    return [out] + [None] * (len(op.inputs) - 1)


def binary_grad(op: Any, grad: Any) -> list:
    """Shapley split of an elementwise two-input op (either input may be constant)."""
    f = BINARY[op.type]

    def make() -> Any:
        (a_p, a_r), (b_p, b_r) = sides(op, 0), sides(op, 1)
        return rules.shapley_pair(OPS, f, a_p, a_r, b_p, b_r)

    m_a, m_b = cached(op, make)
    a, b = op.inputs[0], op.inputs[1]
    return [
        unbroadcast(grad * m_a, a) if varies(a) else None,
        unbroadcast(grad * m_b, b) if varies(b) else None,
    ]


def _remake(op: Any, a: Any, b: Any) -> Any:
    """``op``'s function applied to new inputs (a bilinear op made again)."""
    if op.type == "Mul":
        return a * b
    if op.type == "Einsum":
        return tf.einsum(op.get_attr("equation").decode(), a, b)
    if op.type == "MatMul":
        return tf.linalg.matmul(
            a, b, transpose_a=op.get_attr("transpose_a"), transpose_b=op.get_attr("transpose_b")
        )
    return tf.linalg.matmul(a, b, adjoint_a=op.get_attr("adj_x"), adjoint_b=op.get_attr("adj_y"))


def bilinear_grad(op: Any, grad: Any) -> list:
    """Each input's gradient taken at the midpoint of the other input: the Shapley split
    ``Δ(ab) = ½ Δa (b + b') + ½ (a + a') Δb``, exact for any bilinear op."""

    def make() -> Any:
        (a_p, a_r), (b_p, b_r) = sides(op, 0), sides(op, 1)
        return 0.5 * (a_p + a_r), 0.5 * (b_p + b_r)

    a_mid, b_mid = cached(op, make)
    a, b = op.inputs[0], op.inputs[1]
    if op.type == "Mul":
        return [unbroadcast(grad * b_mid, a), unbroadcast(grad * a_mid, b)]
    da = tf.gradients(_remake(op, a, tf.stop_gradient(b_mid)), a, grad_ys=grad)[0]
    db = tf.gradients(_remake(op, tf.stop_gradient(a_mid), b), b, grad_ys=grad)[0]
    return [da, db]


def division_grad(op: Any, grad: Any) -> list:
    """``a / b = a * r`` with ``r = 1/b``: the product split, and ``Δr / Δb = -1/(b b')``."""

    def make() -> Any:
        (a_p, a_r), (b_p, b_r) = sides(op, 0), sides(op, 1)
        inv_p, inv_r = tf.math.divide_no_nan(1.0, b_p), tf.math.divide_no_nan(1.0, b_r)
        return 0.5 * (a_p + a_r), 0.5 * (inv_p + inv_r), -inv_p * inv_r

    a_mid, inv_mid, m_inv = cached(op, make)
    a, b = op.inputs[0], op.inputs[1]
    return [
        unbroadcast(grad * inv_mid, a) if varies(a) else None,
        unbroadcast(grad * a_mid * m_inv, b) if varies(b) else None,
    ]


def identity_grad(op: Any, *grads: Any) -> list:
    """Pass the gradient through (``StopGradient``, a custom gradient's ``IdentityN``)."""
    return list(grads) + [None] * (len(op.inputs) - len(grads))


def register(extra: dict) -> None:
    """Register the rules (and ``extra``, name → function) as TensorFlow gradients."""
    table = {
        "Elementwise": elementwise_grad,
        "Binary": binary_grad,
        "Bilinear": bilinear_grad,
        "Division": division_grad,
        "Identity": identity_grad,
        **extra,
    }
    for name, fn in table.items():
        try:
            tf.RegisterGradient(PREFIX + name)(fn)
        except KeyError:  # already registered (module reloaded)
            pass


def rule_of(op: Any) -> str | None:
    """The name of the rule for pair op ``op`` (``None``: TensorFlow's own gradient), or
    ``"?"`` for an op type without a rule."""
    t = op.type
    n_vary = sum(varies(u) for u in op.inputs)
    if t in ELEMENTWISE:
        if any(varies(u) for u in op.inputs[1:]):
            return "?"
        return "Elementwise"
    if t in BINARY:
        return "Binary"
    if t in BILINEAR:
        return "Bilinear" if n_vary == 2 else None
    if t in DIVISION:
        return "Division" if varies(op.inputs[1]) else None
    if t == "StopGradient":
        return "Identity"
    if t == "IdentityN":
        custom = "_gradient_op_type" in op.node_def.attr
        return "Identity" if custom else None
    if t in ("MaxPool", "Softmax", "LogSoftmax"):
        return t
    if t in LINEAR:
        if t in ("Select", "SelectV2") and varies(op.inputs[0]):
            return "?"
        return None
    return "?"
