"""DeepLIFT rescale-rule multipliers, written once for every framework.

DeepLIFT (Shrikumar et al., 2017, "Learning Important Features Through Propagating Activation
Differences") replaces each nonlinearity's derivative by a *multiplier* computed from the
difference between an input and a reference: for ``y = f(u)``, ``m = (f(u) - f(u')) / (u - u')``.
Back-propagating multipliers through the (unchanged) linear layers and multiplying by
``x - x'`` gives attributions that sum to ``F(x) - F(x')`` (completeness). DeepSHAP averages
them over a background set of references (Lundberg & Lee, 2017).

The backends evaluate the model on a *pair batch* of ``P = c * b`` rows, each of ``c`` images
repeated ``b`` times, and on the ``b`` references. At every nonlinearity the image side of the
pairs (its input reshaped ``(c, b, ...)``) meets the reference side (``(1, b, ...)``, broadcast);
the functions here turn the two into multipliers, which the backward rule applies to the
incoming gradient in place of the derivative.

Every function takes ``ops``, a namespace with ``where``, ``abs``, ``maximum``, ``exp``,
``log``, ``sum_last`` and ``max_last`` (reductions over the last axis, keeping it), so the same
formulas serve torch, TensorFlow and JAX. Rules follow shap's DeepExplainer:

- elementwise nonlinearities (ReLU, ELU, sigmoid, tanh, softplus, ...): ``Δy / Δu``, and the
  derivative where ``|Δu| < 1e-6``;
- max pooling: the output difference ``Δy`` is split as ``(max(y, y') - y') + (y - max(y, y'))``,
  the first part routed to the image's argmax and the second to the reference's, then divided
  by ``Δu`` (zero where ``|Δu| < 1e-7``);
- softmax, rule ``"shapley"`` (shap's TensorFlow rule): ``p = e / S`` with ``e = exp(z - max z)``
  and ``S = sum e``; the division's two inputs get the Shapley split of ``Δp``
  (``½[Δ_e p(·, S) + Δ_e p(·, S')]`` and the same for ``S``), ``exp`` its rescale, and the
  shift by the row maximum is absorbed by rescaling with ``Δ(z - max z) / Δz`` (with
  ``exact_shift``, where ``|Δz_j| < 1e-6`` the shift's change ``-Δ max z`` is routed through
  the max rule instead of dropped: complete when a logit stays while its row maximum moves);
- softmax, rule ``"diagonal"`` (shap's PyTorch rule): ``Δp_j / Δz_j`` per class (the Jacobian
  where ``|Δz_j| < 1e-6``).

Both softmax rules make the attributions of each probability sum to its change ``Δp_j``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_images
from .base import output_matrix

#: Below this ``|Δu|`` an elementwise rule uses the derivative instead of ``Δy / Δu``.
EPS_RESCALE = 1e-6
#: Below this ``|Δu|`` routed (max pool) and split (divide) multipliers are zero.
EPS_ROUTE = 1e-7
#: Step of the central difference that stands in for the derivative of an elementwise function.
SECANT_STEP = 1e-3
#: Softmax rules.
SOFTMAX_RULES = ("shapley", "diagonal")


def check_softmax_rule(rule: str) -> str:
    """Validate the name of a softmax rule."""
    if rule not in SOFTMAX_RULES:
        raise ValueError(f"softmax: expected one of {SOFTMAX_RULES}, got {rule!r}")
    return rule


def prepare_inputs(
    x: Any, baselines: Any, outputs: Any, softmax: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The checks every framework's DeepLIFT starts with: images ``x`` and ``baselines`` as
    float32 NHWC of the same image shape, ``outputs`` as an ``(n, o)`` index matrix, and a known
    softmax rule. Returns ``(x, refs, idx)``."""
    x = as_images(x, layout="nhwc")
    refs = as_images(baselines, name="baselines", layout="nhwc")
    if refs.shape[1:] != x.shape[1:]:
        raise ValueError(f"baselines: expected images of shape {x.shape[1:]}, got {refs.shape[1:]}")
    idx = output_matrix(outputs, len(x))
    check_softmax_rule(softmax)
    return x, refs, idx


def images_per_pass(n_ref: int, max_rows: int) -> int:
    """How many images share one pass of ``images * n_ref`` pair rows, so that it stays within
    ``max_rows`` rows (at least one image)."""
    return max(1, int(max_rows) // max(1, int(n_ref)))


#: Working set of one DeepLIFT pass, in bytes, beyond the model and the result (default 1 GiB).
MEMORY_BUDGET = 1 << 30
#: Bytes one pair row keeps in a pass, in units of the model's activation bytes per image (as
#: counted by the backends: every op's output, which overcounts what XLA keeps). Measured on
#: Keras ConvNeXtTiny on JAX at 96x96, 8 rows: 1.3 (95 MB a row for 73 MB counted).
ROW_COPIES = 2


def plan_passes(
    n_ref: int, max_rows: int, row_bytes: int | None = None, budget: int = MEMORY_BUDGET
) -> tuple[int, int]:
    """``(images, references)`` per pass: at most ``max_rows`` pair rows, and (given
    ``row_bytes``, the bytes of the model's activations for one image) at most ``budget``
    bytes of ``ROW_COPIES * row_bytes`` per row. When one image's ``n_ref`` rows do not fit,
    the references are split into chunks (the attributions are the chunks' weighted mean)."""
    rows = max(1, int(max_rows))
    if row_bytes:
        rows = min(rows, max(1, int(budget) // (ROW_COPIES * int(row_bytes))))
    refs = min(max(1, int(n_ref)), rows)
    return max(1, rows // refs), refs


def reference_chunks(n_ref: int, refs_per: int) -> list[slice]:
    """The references ``0..n_ref`` in as few chunks of at most ``refs_per`` as possible, of
    equal sizes (within one): a compiled or traced pass then sees one or two shapes."""
    count = -(-max(1, int(n_ref)) // max(1, int(refs_per)))
    bounds = np.linspace(0, int(n_ref), count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def safe_div(ops: Any, num: Any, den: Any, eps: float, fill: Any) -> Any:
    """``num / den``, and ``fill`` where ``|den| < eps`` (no inf/NaN either way)."""
    small = ops.abs(den) < eps
    return ops.where(small, fill, num / ops.where(small, 1.0, den))


def secant_derivative(f: Any, u: Any, h: float = SECANT_STEP) -> Any:
    """``f'(u)`` of an elementwise ``f`` by central difference."""
    return (f(u + h) - f(u - h)) * (0.5 / h)


def rescale(ops: Any, f: Any, u_p: Any, u_r: Any, y_p: Any, y_r: Any) -> Any:
    """Multiplier ``(y - y') / (u - u')`` of an elementwise ``y = f(u)``, with the derivative at
    the midpoint where ``|u - u'| < EPS_RESCALE``."""
    return safe_div(ops, y_p - y_r, u_p - u_r, EPS_RESCALE, secant_derivative(f, 0.5 * (u_p + u_r)))


def max_split(ops: Any, y_p: Any, y_r: Any) -> tuple[Any, Any]:
    """The two parts of a max-pool output difference: ``(max(y, y') - y', y - max(y, y'))``,
    routed back through the image's and the reference's argmax respectively."""
    cross = ops.maximum(y_p, y_r)
    return cross - y_r, y_p - cross


def routed_multiplier(ops: Any, routed: Any, u_p: Any, u_r: Any) -> Any:
    """Multiplier of a max-pool input: the routed output differences over ``Δu``."""
    return safe_div(ops, routed, u_p - u_r, EPS_ROUTE, 0.0)


def shapley_pair(ops: Any, f: Any, a_p: Any, a_r: Any, b_p: Any, b_r: Any) -> tuple[Any, Any]:
    """Multipliers of an elementwise two-input nonlinearity ``y = f(a, b)`` when both inputs
    vary: each input gets the average of its two possible marginal contributions (the Shapley
    value of a two-player game), divided by its own difference."""
    y11, y00 = f(a_p, b_p), f(a_r, b_r)
    y10, y01 = f(a_p, b_r), f(a_r, b_p)
    m_a = safe_div(ops, 0.5 * (y11 - y01 + y10 - y00), a_p - a_r, EPS_ROUTE, 0.0)
    m_b = safe_div(ops, 0.5 * (y11 - y10 + y01 - y00), b_p - b_r, EPS_ROUTE, 0.0)
    return m_a, m_b


def _shift_route(ops: Any, z_p: Any, z_r: Any) -> tuple[Any, Any]:
    """For the exact shift: the 0/1 mask of ``|Δz| < EPS_RESCALE`` (where ``Δ(z - max z) / Δz``
    cannot absorb the shift) and the max rule's multipliers of ``max z`` over the last axis
    (``Δ max z = sum(route * Δz)``, the split routed to the tied argmaxes of each side)."""
    y_p, y_r = ops.max_last(z_p), ops.max_last(z_r)
    to_x, to_r = max_split(ops, y_p, y_r)
    at_p = ops.where(z_p == y_p, 1.0, 0.0)
    at_r = ops.where(z_r == y_r, 1.0, 0.0)
    routed = at_p * (to_x / ops.sum_last(at_p)) + at_r * (to_r / ops.sum_last(at_r))
    dz = z_p - z_r
    small = ops.where(ops.abs(dz) < EPS_RESCALE, 1.0, 0.0)
    return small, safe_div(ops, routed, dz, EPS_ROUTE, 0.0)


def softmax_coefficients(
    ops: Any, z_p: Any, z_r: Any, rule: str, exact_shift: bool = False
) -> tuple[Any, ...]:
    """Coefficients ``(a, b, c)`` of the softmax backward rule over the last axis.

    ``"shapley"``: multiplier ``m_z = (g * a + sum(g * b)) * c``;
    ``"diagonal"``: ``m_z = g * a + c * (p' * (g - sum(p' * g)))`` with ``b = p'`` (the
    reference's probabilities) and ``c`` the 0/1 mask of the Jacobian fallback.
    Apply them with :func:`softmax_apply`.

    ``exact_shift`` (``"shapley"``): two more coefficients ``(small * exp', route)`` so that
    where ``|Δz_j| < 1e-6`` the shift's change ``-Δ max z`` (which ``Δ(z - max z) / Δz`` cannot
    carry) goes through the max rule to the argmaxes; elsewhere nothing changes.
    """
    c_p = z_p - ops.max_last(z_p)
    c_r = z_r - ops.max_last(z_r)
    e_p, e_r = ops.exp(c_p), ops.exp(c_r)
    s_p, s_r = ops.sum_last(e_p), ops.sum_last(e_r)
    if rule == "diagonal":
        p_p, p_r = e_p / s_p, e_r / s_r
        dz = z_p - z_r
        small = ops.abs(dz) < EPS_RESCALE
        delta = ops.where(small, 0.0, (p_p - p_r) / ops.where(small, 1.0, dz))
        return delta, p_r, ops.where(small, 1.0, 0.0)
    out11, out00 = e_p / s_p, e_r / s_r
    out10, out01 = e_p / s_r, e_r / s_p
    a = safe_div(ops, 0.5 * (out11 - out01 + out10 - out00), e_p - e_r, EPS_ROUTE, 0.0)
    b = safe_div(ops, 0.5 * (out11 - out10 + out01 - out00), s_p - s_r, EPS_ROUTE, 0.0)
    exp_factor = safe_div(ops, e_p - e_r, c_p - c_r, EPS_RESCALE, e_r)
    shift_factor = safe_div(ops, c_p - c_r, z_p - z_r, EPS_RESCALE, 1.0)
    if exact_shift:
        small, route = _shift_route(ops, z_p, z_r)
        return a, b, exp_factor * shift_factor, small * exp_factor, route
    return a, b, exp_factor * shift_factor


def softmax_apply(ops: Any, coef: tuple[Any, ...], g: Any, rule: str) -> Any:
    """Multiplier of the softmax input for the incoming multiplier ``g`` of its output."""
    a, b, c = coef[:3]
    if rule == "diagonal":
        return g * a + c * (b * (g - ops.sum_last(b * g)))
    m_e = g * a + ops.sum_last(g * b)
    if len(coef) == 5:  # exact_shift
        return m_e * c - ops.sum_last(m_e * coef[3]) * coef[4]
    return m_e * c


def log_softmax_coefficients(
    ops: Any, z_p: Any, z_r: Any, exact_shift: bool = False
) -> tuple[Any, ...]:
    """Coefficients of the log-softmax backward rule over the last axis.

    ``log p = c - log S`` with ``c = z - max z``, ``S = sum exp(c)``: ``exp`` and ``log`` by
    their rescale, the shift absorbed as in the softmax rule (``exact_shift``: as there). Apply
    with :func:`log_softmax_apply`.
    """
    c_p = z_p - ops.max_last(z_p)
    c_r = z_r - ops.max_last(z_r)
    e_p, e_r = ops.exp(c_p), ops.exp(c_r)
    s_p, s_r = ops.sum_last(e_p), ops.sum_last(e_r)
    log_factor = safe_div(ops, ops.log(s_p) - ops.log(s_r), s_p - s_r, EPS_RESCALE, 1.0 / s_r)
    exp_factor = safe_div(ops, e_p - e_r, c_p - c_r, EPS_RESCALE, e_r)
    shift_factor = safe_div(ops, c_p - c_r, z_p - z_r, EPS_RESCALE, 1.0)
    if exact_shift:
        return (exp_factor, log_factor, shift_factor) + _shift_route(ops, z_p, z_r)
    return exp_factor, log_factor, shift_factor


def log_softmax_apply(ops: Any, coef: tuple[Any, ...], g: Any) -> Any:
    """Multiplier of the log-softmax input for the incoming multiplier ``g`` of its output."""
    exp_factor, log_factor, shift_factor = coef[:3]
    m_c = g - ops.sum_last(g) * log_factor * exp_factor
    if len(coef) == 5:  # exact_shift
        return m_c * shift_factor - ops.sum_last(m_c * coef[3]) * coef[4]
    return m_c * shift_factor
