"""SU(2) lattice gauge theory: S = beta sum_P (1 - (1/2) Re tr U_P); no 2D topological charge.

Character expansion (docs/conventions.md): k = 2j + 1 >= 1, d_k = k,
c_k = e^-beta [I_{k-1}(beta) - I_{k+1}(beta)] = e^-beta 2 k I_k(beta) / beta,
rho_k = I_k(beta) / I_1(beta)."""

from __future__ import annotations

import operator

import numpy as np

from .base import Representations, Theory, bessel


def coefficient(beta: float, rep) -> float:
    try:
        k = operator.index(rep) if not isinstance(rep, bool) else None
    except TypeError:
        k = None
    if k is None or k < 1:
        raise ValueError(f"SU(2) representation k = 2j+1 must be an integer >= 1, got {rep!r}")
    return float(bessel(k - 1, beta) - bessel(k + 1, beta))


def rho(beta: float, labels: np.ndarray) -> np.ndarray:
    norm = bessel(1, beta)
    if norm == 0.0:  # beta = 0: only the trivial representation survives
        return (labels == 1).astype(float)
    return bessel(labels, beta) / norm


def representations(beta: float, K: int) -> Representations:
    k = np.arange(1, K + 2)  # shells 0..K
    ups = np.stack((k + 1, k - 1), -1)
    up_rho = np.where(ups >= 1, rho(beta, np.maximum(ups, 1)), 0.0)
    return Representations(k, k - 1, k.astype(float), rho(beta, k), up_rho, np.maximum(ups, 0).astype(float))


THEORY = Theory(
    name="su2", label="SU(2)", N=2, special=True, has_topology=False, trivial=1, fundamental=2,
    coefficient=coefficient, rho=rho, representations=representations, count=lambda K: K + 1,
)
