"""The optimisation problem of the Contrastive Explanation Method and its FISTA solver.

Dhurandhar et al. (2018), "Explanations based on the Missing: Towards Contrastive
Explanations with Pertinent Negatives", https://arxiv.org/abs/1802.07623, eqs. 1-7.

Every array here is a batch of *rows*: one row per (image, setting, attack weight c), all
stepped together so that one call of the model serves every row. Images stay ``(rows, h, w,
c)``; per-row scalars are ``(rows, 1, 1, 1)``.

For a row with original ``x0``, target class ``t`` (the class of ``x0``) and iterate ``a``:

- model input  ``m(a) = a`` (PN) or ``x0 - a`` (PP: the kept part delta)
- attack loss  ``f = max(0, s_t - max_{j!=t} s_j + kappa)`` (PN) or
  ``max(0, max_{j!=t} s_j - s_t + kappa)`` (PP) on the class scores ``s`` of ``m(a)``
- objective    ``c f + ||x0 - a||^2 + beta ||x0 - a||_1 + gamma ||AE(m(a)) - m(a)||^2``

FISTA (Beck & Teboulle 2009) minimises the smooth part by gradient steps taken at the
extrapolated point ``y``, handles ``beta ||.||_1`` by shrinkage-thresholding towards ``x0``
(eq. 7), and projects onto the feature range and onto the sign constraint (eq. 5): a PN only
moves pixels away from the no-information value, a PP only towards it. As in the authors' code
and alibi, the shrinkage threshold is ``beta`` itself, not ``learning_rate * beta``: a pixel
moves only where one gradient step takes it more than ``beta`` from ``x0``, which is why large
attack weights ``c`` (and the clip) matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._arrays import softmax
from ..backends import wrap
from ._fista_compiled import compiled_step


def shrink(y: Any, x0: Any, beta: Any, lo: Any, hi: Any, xp: Any = np) -> Any:
    """Element-wise shrinkage-thresholding of ``y`` towards ``x0`` by ``beta``, clipped to
    ``[lo, hi]`` on the side it moves to (eq. 7). ``xp``: the array namespace (NumPy, or the
    compiled step's, :mod:`._fista_compiled`)."""
    d = y - x0
    up = xp.minimum(y - beta, hi)
    down = xp.maximum(y + beta, lo)
    return xp.where(d > beta, up, xp.where(d < -beta, down, x0))


def project_sign(a: Any, x0: Any, no_info: Any, is_pp: Any, xp: Any = np) -> Any:
    """Keep ``a`` where it respects the sign constraint, else fall back to ``x0`` (eq. 5).

    PN rows may only move away from the no-information value (``|a - v| > |x0 - v|``), PP rows
    only towards it (``|a - v| <= |x0 - v|``). ``is_pp`` is ``(rows, 1, 1, 1)`` bool; ``xp`` as
    in :func:`shrink`.
    """
    farther = xp.abs(a - no_info) > xp.abs(x0 - no_info)
    return xp.where(farther != is_pp, a, x0)


def polynomial_decay(lr0: float, step: int, total: int, power: float = 0.5) -> float:
    """``lr0 * (1 - step / total) ** power`` (decaying to 0 at ``total``)."""
    return float(lr0) * (1.0 - min(step, total) / total) ** power


def vjp_with(
    backend: Any,
    x: np.ndarray,
    cot_fn: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``(rows, k)`` of ``backend`` at ``x`` and the input gradient of
    ``<outputs, cot_fn(outputs)>``.

    The cotangent depends on the outputs (hinge and argmax of the attack loss), so it is made
    between the forward and the backward pass: by the backend's ``vjp`` with the callable when
    ``x`` fits one of its batches (the callable sees all rows at once); else ``predict`` first
    and ``vjp`` after.
    """
    if len(x) <= backend.batch_size:
        out, g = backend.vjp(x, cot_fn)
        return np.asarray(out, np.float32), np.asarray(g, np.float32)
    out = backend.predict(x)
    return out, np.asarray(backend.vjp(x, cot_fn(out))[1], np.float32)


class ImageModel:
    """An image-to-image model (the autoencoder) seen through a backend: ``forward(z)`` and
    ``vjp(z, cot_fn)`` on NHWC images ``(rows, h, w, c)``.

    The model is wrapped as the backends know it (``backend``); its backend's
    ``flat_outputs()`` (``flat``) gives the same model with its images flattened to ``(n, d)``
    in NHWC order, the shape the protocol's ``predict``/``vjp`` accept.
    """

    def __init__(self, model: Any):
        self.backend = wrap(model)
        try:
            self.flat = self.backend.flat_outputs()
        except NotImplementedError as exc:
            raise TypeError(f"ae_model: cannot take gradients through it: {exc}") from None

    def _to_nhwc(self, out: np.ndarray, z: np.ndarray) -> np.ndarray:
        if out.size != z.size:
            raise ValueError(
                f"ae_model: expected an autoencoder that returns images of the input's "
                f"shape {z.shape[1:]}, got outputs of shape {out.shape[1:]}"
            )
        return out.reshape(z.shape)

    def forward(self, z: np.ndarray) -> np.ndarray:
        """The autoencoder's images ``AE(z)``, ``(rows, h, w, c)``."""
        return self._to_nhwc(np.asarray(self.flat.predict(z), np.float32), z)

    def vjp(
        self,
        z: np.ndarray,
        cot_fn: Callable[[np.ndarray], np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Images ``AE(z)`` and the gradient of ``<AE(z), cot_fn(AE(z))>`` with respect to
        ``z``: one forward and one backward pass where ``z`` fits a batch."""
        held: dict[str, np.ndarray] = {}

        def flat_cot(flat_out: np.ndarray) -> np.ndarray:
            held["out"] = self._to_nhwc(flat_out, z)
            cot = cot_fn(held["out"])
            return np.ascontiguousarray(cot.reshape(len(cot), -1), np.float32)

        try:
            _, g = vjp_with(self.flat, z, flat_cot)
        except NotImplementedError as exc:
            raise ValueError(f"ae_model: {exc}") from None
        return held["out"], g


class CEMProblem:
    """The CEM objective for a batch of rows (see the module docstring).

    Parameters
    ----------
    model : the classifier's backend; ``ae`` an :class:`ImageModel` or ``None``.
    x0 : ``(rows, h, w, c)`` originals; ``target`` ``(rows,)`` their classes.
    c, kappa, beta, gamma : ``(rows,)`` per-row weights; ``is_pp`` ``(rows,)`` bool.
    scores : ``"probabilities"`` (softmax of the outputs unless the model already ends in a
        softmax) or ``"outputs"`` (the model's outputs as they are).
    """

    def __init__(
        self,
        model: Any,
        ae: Any,
        x0: np.ndarray,
        target: np.ndarray,
        c: np.ndarray,
        kappa: np.ndarray,
        beta: np.ndarray,
        gamma: np.ndarray,
        is_pp: np.ndarray,
        scores: str = "probabilities",
    ):
        col = (-1,) + (1,) * (x0.ndim - 1)
        self.model, self.ae, self.x0 = model, ae, x0
        self.target = np.asarray(target, np.int64)
        self.c = np.asarray(c, np.float32)
        self.kappa = np.asarray(kappa, np.float32)
        self.beta = np.asarray(beta, np.float32).reshape(col)
        self.gamma = np.asarray(gamma, np.float32).reshape(col)
        self.is_pp = np.asarray(is_pp, bool).reshape(col)
        self.sign = np.where(self.is_pp, -1.0, 1.0).astype(np.float32)  # d m(a) / d a
        self.scores = scores
        self.rows = np.arange(len(x0))
        self.use_ae = ae is not None and bool(np.any(self.gamma > 0))

    def model_input(self, a: np.ndarray) -> np.ndarray:
        """What the classifier and the autoencoder see: ``a`` (PN) or ``x0 - a`` (PP)."""
        return np.where(self.is_pp, self.x0 - a, a).astype(np.float32)

    def to_scores(self, out: np.ndarray) -> tuple[np.ndarray, bool]:
        """Class scores from model outputs, and whether a softmax was applied."""
        if self.scores == "probabilities" and not self.model.outputs_are_probabilities(out):
            return softmax(out), True
        return out, False

    def margin(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``s_t - max_{j!=t} s_j`` per row and the argmax over the other classes."""
        other = s.copy()
        other[self.rows, self.target] = -np.inf
        j = other.argmax(axis=1)
        return s[self.rows, self.target] - other[self.rows, j], j

    def condition(self, s: np.ndarray) -> np.ndarray:
        """Whether each row is a PN (another class wins once ``kappa`` is added to the
        target's score) or a PP (the target still wins with ``kappa`` taken off)."""
        shifted = s.copy()
        shifted[self.rows, self.target] += np.where(self.is_pp.ravel(), -self.kappa, self.kappa)
        same = shifted.argmax(axis=1) == self.target
        return np.where(self.is_pp.ravel(), same, ~same)

    def distance(self, a: np.ndarray) -> np.ndarray:
        """Elastic-net size ``||x0 - a||^2 + beta ||x0 - a||_1`` per row."""
        d = (self.x0 - a).reshape(len(a), -1)
        return (d * d).sum(1) + self.beta.ravel() * np.abs(d).sum(1)

    def loss_and_grad(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row objective (with the L1 term) at ``y`` and the gradient of its smooth part."""
        z = self.model_input(y)
        held: dict[str, np.ndarray] = {}

        def attack_cot(out: np.ndarray) -> np.ndarray:
            s, soft = self.to_scores(out)
            m, j = self.margin(s)
            pp = self.is_pp.ravel()
            hinge = np.where(pp, -m, m) + self.kappa
            held["attack"] = np.maximum(hinge, 0.0)
            w = np.where(hinge > 0, self.c, 0.0) * np.where(pp, -1.0, 1.0)
            cot = np.zeros_like(s)
            cot[self.rows, self.target] += w
            cot[self.rows, j] -= w
            if soft:  # chain through the softmax: J^T v = s * (v - <s, v>)
                cot = s * (cot - (s * cot).sum(1, keepdims=True))
            return cot.astype(np.float32)

        _, g_model = vjp_with(self.model, z, attack_cot)
        d = y - self.x0
        flat = d.reshape(len(d), -1)
        grad = self.sign * g_model + 2.0 * d
        loss = (
            self.c * held["attack"] + (flat * flat).sum(1) + self.beta.ravel() * np.abs(flat).sum(1)
        )
        if self.use_ae:

            def ae_cot(out: np.ndarray) -> np.ndarray:
                held["res"] = out - z
                return (2.0 * self.gamma * held["res"]).astype(np.float32)

            _, g_ae = self.ae.vjp(z, ae_cot)
            r = held["res"]
            grad = grad + self.sign * (g_ae - 2.0 * self.gamma * r)
            loss = loss + self.gamma.ravel() * (r * r).reshape(len(r), -1).sum(1)
        return loss.astype(np.float32), grad.astype(np.float32)

    def evaluate(
        self, a: np.ndarray, scores: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores at ``m(a)`` (computed unless given), whether each row meets its PN/PP
        condition, and its distance."""
        s = self.to_scores(self.model.predict(self.model_input(a)))[0] if scores is None else scores
        return s, self.condition(s), self.distance(a)


def fista(
    problem: CEMProblem,
    *,
    lo: Any,
    hi: Any,
    no_info: Any,
    max_iterations: int,
    learning_rate_init: float,
    clip: tuple[float, float],
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]:
    """Run FISTA from ``a = y = x0``; yield ``(k, a_k, loss at y_{k-1}, scores)`` after every
    step, ``scores`` being the class scores at ``m(a_k)`` where the step computed them (the
    compiled JAX or TensorFlow step, :mod:`._fista_compiled`) and ``None`` otherwise.

    Step k (k = 0, 1, ...): ``g = clip(grad(y))``, ``lr = polynomial_decay(k)``,
    ``a' = P(S_beta(y - lr g))``, ``y = P(a' + k'/(k'+3) (a' - a))`` with ``k' = k + 1``,
    ``S`` the shrinkage (:func:`shrink`) and ``P`` the sign projection (:func:`project_sign`).
    """
    x0, beta, is_pp = problem.x0, problem.beta, problem.is_pp
    step = compiled_step(problem, lo, hi, no_info, clip)
    if step is not None:
        a_j = y_j = x0
        for k in range(max_iterations):
            lr = polynomial_decay(learning_rate_init, k, max_iterations)
            a_j, y_j, loss, s = step(a_j, y_j, lr, (k + 1) / (k + 4))
            yield k, np.asarray(a_j), np.asarray(loss), np.asarray(s)
        return
    a = x0.copy()
    y = x0.copy()
    for k in range(max_iterations):
        loss, g = problem.loss_and_grad(y)
        np.clip(g, clip[0], clip[1], out=g)
        step_to = y - polynomial_decay(learning_rate_init, k, max_iterations) * g
        a_new = project_sign(shrink(step_to, x0, beta, lo, hi), x0, no_info, is_pp)
        zt = (k + 1) / (k + 4)
        y = project_sign(a_new + zt * (a_new - a), x0, no_info, is_pp).astype(np.float32)
        a = a_new.astype(np.float32)
        yield k, a, loss, None
