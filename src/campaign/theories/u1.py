"""U(1) lattice gauge theory: S = beta sum_P (1 - cos theta_P), charge Q = (1/2pi) sum_P arg U_P.

Character expansion (docs/conventions.md): representations n in Z, d_n = 1,
c_n = e^-beta I_n(beta), rho_n = I_n(beta) / I_0(beta).  Theta term: mu_n = n,
G(sigma) = e^(beta (cos sigma - 1))."""

from __future__ import annotations

import operator

import numpy as np

from .base import Representations, Theory, ThetaExpansion, bessel


def coefficient(beta: float, rep) -> float:
    return float(bessel(operator.index(rep), beta))


def rho(beta: float, labels: np.ndarray) -> np.ndarray:
    return bessel(labels, beta) / bessel(0, beta)


def representations(beta: float, K: int) -> Representations:
    n = np.arange(-K, K + 1)
    ups = n[:, None] + 1
    return Representations(n, np.abs(n), np.ones(n.shape), rho(beta, n), rho(beta, ups), np.ones(ups.shape))


def _theta_labels(labels: np.ndarray):
    return labels.astype(float), np.zeros(labels.shape, dtype=int)


def _theta_weight(beta: float, sigma: np.ndarray, k_values: np.ndarray) -> np.ndarray:
    return np.exp(beta * (np.cos(sigma) - 1))[None, :]


THEORY = Theory(
    name="u1", label="U(1)", N=1, special=False, has_topology=True, trivial=0, fundamental=1,
    coefficient=coefficient, rho=rho, representations=representations, count=lambda K: 2 * K + 1,
    theta=ThetaExpansion(_theta_labels, _theta_weight, table_size=lambda K: (2 * K + 1, 1)),
)
