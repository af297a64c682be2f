"""The closed-form CL distribution of the Gaussian model S = sigma z^2/2 (docs/complex_langevin.md).

With real noise, dx = -(a x - b y) dt + sqrt(2) dW, dy = -(b x + a y) dt (sigma = a + i b) is a
linear (Ornstein-Uhlenbeck) SDE dX = -A X dt + B dW.  For a > 0 its stationary distribution
is Gaussian with mean 0 and the covariance C solving the Lyapunov equation
A C + C A^T = B B^T = diag(2, 0):
    C_xx = (2 a^2 + b^2) / (2 a |sigma|^2),   C_xy = -b / (2 |sigma|^2),   C_yy = b^2 / (2 a |sigma|^2).
Check: <z^2> = C_xx - C_yy + 2 i C_xy = (a - i b)/|sigma|^2 = 1/sigma.
"""

from __future__ import annotations

import math

import numpy as np


def gaussian_covariance(sigma: complex) -> np.ndarray:
    """Stationary covariance [[C_xx, C_xy], [C_xy, C_yy]] of CL for S = sigma z^2/2."""
    a, b = float(sigma.real), float(sigma.imag)
    if a <= 0:
        raise ValueError(f"no stationary CL distribution for Re sigma <= 0 (sigma = {sigma})")
    s2 = a * a + b * b
    return np.array([[(2 * a * a + b * b) / (2 * a * s2), -b / (2 * s2)],
                     [-b / (2 * s2), b * b / (2 * a * s2)]])


def gaussian_covariance_lyapunov(sigma: complex) -> np.ndarray:
    """The same covariance from a numerical Lyapunov solve (a cross-check of the formula)."""
    from scipy.linalg import solve_continuous_lyapunov

    a, b = float(sigma.real), float(sigma.imag)
    drift = np.array([[a, -b], [b, a]])
    return solve_continuous_lyapunov(drift, np.diag([2.0, 0.0]))


def gaussian_density(sigma: complex, x, y) -> np.ndarray:
    """P(x, y) of the Gaussian model (a normalised 2D Gaussian; degenerate, a line y = 0, for Im sigma = 0)."""
    c = gaussian_covariance(sigma)
    det = float(np.linalg.det(c))
    if det <= 0:
        raise ValueError("P(x, y) is concentrated on the real axis for real sigma: no 2D density")
    ci = np.linalg.inv(c)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    q = ci[0, 0] * x * x + 2 * ci[0, 1] * x * y + ci[1, 1] * y * y
    return np.exp(-0.5 * q) / (2 * math.pi * math.sqrt(det))


def gaussian_score(sigma: complex, xy: np.ndarray) -> np.ndarray:
    """grad log P at points xy (..., 2): -C^{-1} (x, y)."""
    ci = np.linalg.inv(gaussian_covariance(sigma))
    return -np.asarray(xy, dtype=float) @ ci.T


def gaussian_cell_probabilities(sigma: complex, x_edges, y_edges, n_sub: int = 8) -> np.ndarray:
    """Probability of each histogram cell, by the midpoint rule on n_sub^2 points per cell."""
    x_edges, y_edges = np.asarray(x_edges, float), np.asarray(y_edges, float)
    probs = np.zeros((len(x_edges) - 1, len(y_edges) - 1))
    u = (np.arange(n_sub) + 0.5) / n_sub
    for i in range(len(x_edges) - 1):
        xs = x_edges[i] + u * (x_edges[i + 1] - x_edges[i])
        for j in range(len(y_edges) - 1):
            ys = y_edges[j] + u * (y_edges[j + 1] - y_edges[j])
            X, Y = np.meshgrid(xs, ys, indexing="ij")
            area = (x_edges[i + 1] - x_edges[i]) * (y_edges[j + 1] - y_edges[j])
            probs[i, j] = gaussian_density(sigma, X, Y).mean() * area
    return probs
