"""Brute-force oracles and test models of the coalition explainers (Partition, Permutation):
a fixed nonlinear MLP, digit images, a 3-output game on 2 x 2 images, the game of a model on
an image whose hidden pixels are 0, Shapley and Owen values by enumeration, and the efficiency
check ``sum of values == f(x) - base`` per image and output."""

from __future__ import annotations

import functools
import itertools
from math import factorial

import numpy as np


class MLP:
    """A fixed random tanh MLP on flattened images: nonlinear, so regions interact."""

    def __init__(self, d=784, k=10, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = (rng.normal(size=(d, 32)) / np.sqrt(d) * 3).astype(np.float32)
        self.W2 = rng.normal(size=(32, k)).astype(np.float32)
        self.calls = []

    def __call__(self, x):
        self.calls.append(len(x))
        return np.tanh(x.reshape(len(x), -1) @ self.W1) @ self.W2


@functools.lru_cache(maxsize=1)
def _digits28():
    """sklearn's 8 x 8 digits (fast to load) scaled up to 28 x 28, values 0..1."""
    import cv2
    from sklearn.datasets import load_digits

    small = load_digits().images[:16].astype(np.float32) / 16.0
    return np.stack([cv2.resize(im, (28, 28), interpolation=cv2.INTER_LINEAR) for im in small])


def digits(n):
    """``n`` digit images ``(n, 28, 28, 1)`` in 0..1."""
    return np.ascontiguousarray(_digits28()[:n, :, :, None])


def game_2x2(x):
    """Three outputs of a 2 x 2 grey image with interactions of order up to 4."""
    p = x.reshape(len(x), 4)
    return np.stack(
        [
            p[:, 0] * p[:, 1] * p[:, 2] + p[:, 3],
            p[:, 0] + 2 * p[:, 1] * p[:, 3],
            np.sin(p.sum(1)) * p[:, 2],
        ],
        axis=1,
    )


def grey_game(f, image):
    """The region game of ``f`` on a grey ``image`` with pixels hidden as 0."""
    flat = image.reshape(-1)

    def v(s):
        z = np.zeros_like(flat)
        idx = list(s)
        z[idx] = flat[idx]
        return f(z.reshape((1,) + image.shape))[0].astype(np.float64)

    return v


def shapley(v, m):
    """Brute-force Shapley values of ``m`` players."""
    phi = np.zeros((m,) + np.shape(v(frozenset())))
    for i in range(m):
        rest = [j for j in range(m) if j != i]
        for r in range(m):
            for s in itertools.combinations(rest, r):
                wgt = factorial(r) * factorial(m - r - 1) / factorial(m)
                phi[i] += wgt * (v(frozenset(s) | {i}) - v(frozenset(s)))
    return phi


def owen_2x2(v):
    """Brute-force Owen values of 4 players with unions {0, 1} (top row) and {2, 3}."""
    unions = [(0, 1), (2, 3)]
    phi = np.zeros((4,) + np.shape(v(frozenset())))
    for u, members in enumerate(unions):
        other = unions[1 - u]
        for i in members:
            partner = [j for j in members if j != i]
            for outer in ((), other):  # the other union absent or present, weight 1/2 each
                for inner in ((), tuple(partner)):  # the partner absent or present, 1/2 each
                    s = frozenset(outer) | frozenset(inner)
                    phi[i] += 0.25 * (v(s | {i}) - v(s))
    return phi


def check_efficiency(e, model_outputs, atol=1e-5):
    total = e.values.sum(axis=(1, 2, 3), dtype=np.float64)
    expected = (
        np.take_along_axis(np.asarray(model_outputs, np.float64), e.output_indices, 1)
        - e.base_values
    )
    np.testing.assert_allclose(total, expected, rtol=0, atol=atol)
