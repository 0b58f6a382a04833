"""Minimum-KL exponential tilts of a sample, solved for many features at once.

Entropic variable projection (Bachoc, Gamboa, Loubes, Risser, "Entropic variable projection
for explainability and interpretability", 2018): to ask "what would the data look like if
feature ``x_j`` had mean ``tau``", reweight the ``n`` samples with the distribution closest to
the uniform one in Kullback-Leibler divergence whose mean of ``x_j`` is ``tau``. Its weights
are the exponential tilt

    w_i(lambda) = exp(lambda * x_ij) / sum_l exp(lambda * x_lj),

with ``lambda`` the root of ``m(lambda) = sum_i w_i(lambda) x_ij = tau``. ``m`` is increasing
(``m'(lambda) = Var_w[x_j] >= 0``), so the root is unique when ``min x_j < tau < max x_j``.
At the boundary (``tau == min x_j`` or ``max x_j``) no finite ``lambda`` exists; the
minimum-KL distribution is then the uniform one on the samples where ``x_j`` equals that
extreme (the limit ``lambda -> -inf`` / ``+inf``), which is what :func:`tilt_weights` returns
for ``lambda = -inf`` / ``+inf``.

:func:`solve_tilts` finds ``lambda`` for many (feature, target) problems at once with a
safeguarded Newton iteration: every step is vectorised over all unconverged problems, a
bracket ``[lo, hi]`` of the root is kept and a step that leaves it is replaced by bisection
(or by bracket expansion while one side is unbounded), for at most ``max_iterations`` steps,
stopping each problem when ``|m(lambda) - tau| <= tol * std(x_j)``.

Exponents are shifted so that they are never positive (``exp(lambda * (x - max))`` for
``lambda > 0``, ``exp(lambda * (x - min))`` for ``lambda < 0``): no overflow, and the sample at
the extreme always keeps weight 1 before normalisation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deprecation import _user_stacklevel
from .._progress import RunControl

#: Elements of one (chunk, n) float64 work array (about 2.5 MB: cache-friendly).
CHUNK_ELEMENTS = 320_000
#: Elements of one transposed block of the input (16 MB in float32).
BLOCK_ELEMENTS = 4_000_000
#: Relative distance (to the feature's range) under which a target counts as the boundary.
BOUNDARY_RTOL = 1e-12


@dataclass
class TiltSolution:
    """Solved tilts for ``q`` problems (feature ``rows[i]``, target ``targets[i]``).

    ``lambdas`` (q,) float64, ``+inf`` / ``-inf`` at the upper / lower boundary and ``0``
    where the target is the feature's mean; ``shifts`` (q,) the extreme each exponent is
    shifted by; ``converged`` (q,) bool; ``iterations`` the Newton steps taken.
    """

    lambdas: np.ndarray
    shifts: np.ndarray
    converged: np.ndarray
    iterations: int


def _shift(lam: np.ndarray, xmin: np.ndarray, xmax: np.ndarray) -> np.ndarray:
    return np.where(lam >= 0, xmax, xmin)


def tilt_moments(
    x: np.ndarray, lam: np.ndarray, shifts: np.ndarray, counts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shifted moments ``s_m = sum_i c_i exp(lambda (x_i - s)) (x_i - s)^m``, ``m = 0, 1, 2``.

    ``x`` (a, n) float64 (one problem per row, overwritten), ``lam`` / ``shifts`` (a,),
    ``counts`` (a, n) the multiplicity ``c_i`` of each value (default 1: samples; a histogram
    gives its bin counts).
    Sums over samples add: the moments of a dataset are the sums of its chunks' moments, which
    is how :mod:`._tilt_stream` takes a Newton step over data that does not fit in memory.
    """
    x -= shifts[:, None]  # <= 0 where lam >= 0, >= 0 where lam < 0
    e = np.exp(x * lam[:, None])
    if counts is not None:
        e *= counts
    s0 = e.sum(axis=1)
    e *= x
    s1 = e.sum(axis=1)
    e *= x
    s2 = e.sum(axis=1)
    return s0, s1, s2


class TiltNewton:
    """The safeguarded Newton iteration of ``q`` tilt problems, one step per call of
    :meth:`step` with the moments of the active problems (however they were summed).

    Parameters: per problem its target ``targets``, its feature's ``xmin``, ``xmax``, ``mean``
    and ``std`` (all (q,) float64), and the tolerance ``tol`` (see :func:`solve_tilts`).
    """

    def __init__(self, targets, xmin, xmax, mean, std, tol: float):
        self.xmin, self.xmax, self.std, self.tol = xmin, xmax, std, tol
        span = xmax - xmin
        self.targets = t = np.clip(targets, xmin, xmax)
        q = t.shape[0]
        self.lam = np.zeros(q)
        at_low = t <= xmin + BOUNDARY_RTOL * span
        at_high = t >= xmax - BOUNDARY_RTOL * span
        at_mean = (np.abs(t - mean) <= tol * std) | (span == 0)
        self.lam[at_low & ~at_mean] = -np.inf
        self.lam[at_high & ~at_mean] = np.inf
        self.converged = at_low | at_high | at_mean
        self.lo = np.full(q, -np.inf)
        self.hi = np.full(q, np.inf)
        self.unit = 1.0 / np.where(std > 0, std, 1.0)  # a step of one std in lambda
        self.iterations = 0

    def warm_start(self, lam: np.ndarray) -> None:
        """Start the unconverged problems from ``lam`` (q,) where it is finite (an
        approximate solution, e.g. of a histogram of the data) instead of 0."""
        use = ~self.converged & np.isfinite(lam)
        self.lam[use] = lam[use]

    def active(self) -> np.ndarray:
        """Indices of the problems not yet converged."""
        return np.flatnonzero(~self.converged)

    def shifts(self, act: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The extreme each problem's exponent is shifted by (max for lambda >= 0, else min)."""
        return _shift(self.lam[act], self.xmin[act], self.xmax[act])

    def step(self, act: np.ndarray, s0: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
        """One Newton step of the problems ``act`` from their moments (:func:`tilt_moments`
        at the current ``lam[act]`` and ``shifts(act)``)."""
        self.iterations += 1
        la, a_min, a_max, t = self.lam[act], self.xmin[act], self.xmax[act], self.targets[act]
        s = _shift(la, a_min, a_max)
        m1 = s1 / s0
        var = s2 / s0 - m1 * m1
        m = s + m1
        f = m - t
        done = np.abs(f) <= self.tol * self.std[act]
        self.converged[act[done]] = True
        a_lo = self.lo[act] = np.where(f < 0, la, self.lo[act])
        a_hi = self.hi[act] = np.where(f > 0, la, self.hi[act])
        # Newton on the log-odds h = log(m - min) - log(max - m) of the mean rather than on m:
        # h is exactly linear in lambda for a two-point feature and nearly so for skewed ones
        # (a pixel that is mostly 0), where Newton on m itself crawls.
        up, down = m - a_min, a_max - m
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.log(up / down) - np.log((t - a_min) / (a_max - t))
            step = la - h / (var * (1.0 / up + 1.0 / down))
            ok = np.isfinite(step) & (step > a_lo) & (step < a_hi)
            grow = np.maximum(np.abs(la), self.unit[act])
            fallback = np.where(  # (a problem with f == 0 exactly has both ends infinite)
                np.isfinite(a_lo) & np.isfinite(a_hi),
                0.5 * (a_lo + a_hi),
                np.where(np.isfinite(a_lo), la + grow, la - grow),
            )
        self.lam[act] = np.where(done, la, np.where(ok, step, fallback))

    def solution(self) -> TiltSolution:
        return TiltSolution(
            lambdas=self.lam,
            shifts=self.shifts(),
            converged=self.converged,
            iterations=self.iterations,
        )


def solve_tilts(
    x: np.ndarray,
    targets: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    max_iterations: int = 30,
    tol: float = 1e-9,
) -> TiltSolution:
    """Solve ``E_{w(lambda_i)}[x[rows[i]]] = targets[i]`` for every problem ``i``.

    Parameters
    ----------
    x : (p, n) float64 array, feature-major: row ``j`` holds feature ``j`` of the ``n``
        samples (this layout keeps every reduction contiguous).
    targets : (q,) target means, clipped to ``[min, max]`` of their feature.
    rows : (q,) int feature of each problem; default ``arange(p)`` (then ``q == p``).
    max_iterations : maximum number of vectorised Newton steps (default 30; problems away from
        the boundary take 4 to 10).
    tol : convergence when ``|E_w[x_j] - tau| <= tol * std(x_j)`` (default 1e-9).

    Returns
    -------
    :class:`TiltSolution`.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected (p, n) features by samples, got shape {x.shape}")
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)
    if targets.shape != rows.shape:
        raise ValueError(f"targets: expected {rows.shape[0]} values, got {targets.shape[0]}")
    newton = TiltNewton(
        targets,
        x.min(axis=1)[rows],
        x.max(axis=1)[rows],
        x.mean(axis=1)[rows],
        x.std(axis=1)[rows],
        tol,
    )
    while newton.iterations < max_iterations:
        act = newton.active()
        if act.size == 0:
            break
        newton.step(act, *tilt_moments(x[rows[act]], newton.lam[act], newton.shifts(act)))
    return newton.solution()


def tilt_weights(
    x: np.ndarray, solution: TiltSolution, rows: np.ndarray | None = None, *, normalise: bool = True
) -> np.ndarray:
    """Weights ``(q, n)`` of the solved tilts of ``x`` ``(p, n)`` (rows sum to 1 when
    ``normalise``).

    ``lambda = +inf`` / ``-inf`` gives the uniform weights on the samples at the maximum /
    minimum of the feature (the minimum-KL distribution at the boundary).
    """
    x = np.asarray(x, dtype=np.float64)
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    w = raw_tilt_weights(x[rows], solution.lambdas, solution.shifts)
    if normalise:
        w /= w.sum(axis=1, keepdims=True)
    return w


def raw_tilt_weights(x: np.ndarray, lam: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Unnormalised weights ``exp(lambda (x - s))`` of the rows of ``x`` (q, n) float64
    (overwritten and returned); a row with ``lambda = ±inf`` gets 1 where ``x`` equals its
    shift (the extreme) and 0 elsewhere. Sums over samples add across chunks."""
    inf = np.isinf(lam)
    x -= shifts[:, None]
    edge = x[inf] == 0.0 if inf.any() else None
    x *= np.where(inf, 0.0, lam)[:, None]
    np.exp(x, out=x)
    if edge is not None:
        x[inf] = edge
    return x


def quantiles(x: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``alpha`` and ``1 - alpha`` quantiles of every row of ``x`` (p, n), in float64,
    exactly as ``np.quantile(x.astype(float64), [alpha, 1 - alpha], axis=1)`` (its default
    "linear" method) but from one partial sort of ``x`` in its own dtype."""
    lo, hi, g = quantile_ranks(x.shape[1], alpha)
    part = np.partition(x, np.unique(np.concatenate([lo, hi])), axis=1)
    q = lerp_order_statistics(part[:, lo], part[:, hi], g)
    return q[:, 0], q[:, 1]


def quantile_ranks(n: int, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order statistics behind the ``alpha`` and ``1 - alpha`` quantiles of ``n`` values:
    ranks ``lo`` and ``hi`` (2,) (0-based) and the fractions ``g`` (2,) between them."""
    pos = (n - 1) * np.array([alpha, 1.0 - alpha])
    lo = np.floor(pos).astype(np.int64)
    return lo, np.minimum(lo + 1, n - 1), pos - lo


def lerp_order_statistics(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> np.ndarray:
    """NumPy's "linear" quantile between order statistics ``a`` and ``b`` (..., 2), float64."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diff = b - a
    return np.where(g >= 0.5, b - diff * (1.0 - g), a + diff * g)  # numpy's _lerp


@contextmanager
def _one_blas_thread():
    """Small ``(chunk, n) @ (n, k)`` products run fastest on one BLAS thread (several threads
    spin and contend, 5x slower on a busy 2-core machine); threadpoolctl comes with sklearn."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - sklearn brings it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def tilt_features(
    feats: np.ndarray,
    alpha: float,
    n_out: int,
    reduce: Callable[[np.ndarray], np.ndarray],
    *,
    max_iterations: int = 30,
    tol: float = 1e-9,
    chunk_size: int | None = None,
    progress: Any = None,
    cancel: Any = None,
    desc: str = "influence",
) -> tuple[np.ndarray, ...]:
    """Tilt every feature of ``feats`` (n, p) down and up, chunk by chunk.

    The targets are ``tau- = mean - max(mean - q_alpha, 0)`` and
    ``tau+ = mean + max(q_{1-alpha} - mean, 0)`` (linear-interpolated quantiles). For each chunk
    of ``pc`` features (default ``CHUNK_ELEMENTS // n``), ``reduce(w)`` maps the weights
    ``w`` (2 * pc, n) (rows ``[:pc]`` the ``tau-`` tilts, ``[pc:]`` the ``tau+`` ones, each
    summing to 1) to an ``(2 * pc, n_out)`` array. Progress is reported per chunk.

    Returns ``(maps, plus, minus, taus, lambdas, converged)``: ``plus``/``minus`` (n_out, p)
    the reduced ``tau+``/``tau-`` values, ``maps = plus - minus`` (0 where ``tau- == tau+``),
    ``taus``/``lambdas``/``converged`` (2, p) for ``[tau-, tau+]``. Warns (RuntimeWarning)
    when a tilt did not converge.
    """
    n, p = feats.shape
    if chunk_size is None:
        step = max(1, CHUNK_ELEMENTS // max(n, 1))
    elif int(chunk_size) < 1:
        raise ValueError(f"chunk_size: expected a positive number of pixels, got {chunk_size}")
    else:
        step = int(chunk_size)
    block = step * max(1, BLOCK_ELEMENTS // max(n * step, 1))
    plus, minus = np.empty((n_out, p)), np.empty((n_out, p))
    taus, lambdas = np.empty((2, p)), np.empty((2, p))
    converged = np.empty((2, p), dtype=bool)
    with RunControl(progress, cancel, desc=desc) as ctl, _one_blas_thread():
        for b0 in range(0, p, block):
            # transposing a block at once in the input's dtype is ~3x faster than per chunk
            xb = np.ascontiguousarray(feats[:, b0 : b0 + block].T)  # (B, n)
            q_lo, q_hi = quantiles(xb, alpha)
            for c0 in range(0, xb.shape[0], step):
                j0, j1 = b0 + c0, min(b0 + c0 + step, p)
                pc = j1 - j0
                x = xb[c0 : c0 + pc].astype(np.float64)  # (pc, n)
                mean = x.mean(axis=1)
                lo, hi = q_lo[c0 : c0 + pc], q_hi[c0 : c0 + pc]
                t = tilt_targets(mean, lo, hi)
                rows = np.concatenate([np.arange(pc), np.arange(pc)])
                sol = solve_tilts(x, t.reshape(-1), rows, max_iterations=max_iterations, tol=tol)
                out = reduce(tilt_weights(x, sol, rows))  # (2 * pc, n_out)
                minus[:, j0:j1], plus[:, j0:j1] = out[:pc].T, out[pc:].T
                taus[:, j0:j1] = t
                lambdas[:, j0:j1] = sol.lambdas.reshape(2, pc)
                converged[:, j0:j1] = sol.converged.reshape(2, pc)
                ctl.step(j1 / p)
    return finish_maps(plus, minus, taus, lambdas, converged, desc, tol, max_iterations)


def tilt_targets(mean: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray) -> np.ndarray:
    """The targets ``[tau-, tau+]`` (2, p): ``mean - max(mean - q_lo, 0)`` and
    ``mean + max(q_hi - mean, 0)``."""
    return np.stack([mean - np.maximum(mean - q_lo, 0.0), mean + np.maximum(q_hi - mean, 0.0)])


def finish_maps(
    plus: np.ndarray,
    minus: np.ndarray,
    taus: np.ndarray,
    lambdas: np.ndarray,
    converged: np.ndarray,
    desc: str,
    tol: float,
    max_iterations: int,
) -> tuple[np.ndarray, ...]:
    """``(maps, plus, minus, taus, lambdas, converged)`` with ``maps = plus - minus`` (0 where
    ``tau- == tau+``); warns (RuntimeWarning) when a tilt did not converge."""
    maps = plus - minus
    maps[:, taus[0] == taus[1]] = 0.0  # quantiles equal to the mean: no tilt either way
    if not converged.all():
        warnings.warn(
            f"{desc}: {int((~converged).sum())} of {converged.size} tilts did not reach "
            f"tol={tol} in max_iterations={max_iterations} Newton steps; raise max_iterations",
            RuntimeWarning,
            stacklevel=_user_stacklevel(),  # the user's call, however deep the path
        )
    return maps, plus, minus, taus, lambdas, converged
