"""U(2) lattice gauge theory: S = beta sum_P (1 - (1/2) Re tr U_P), charge Q = (1/2pi) sum_P
arg det U_P.

Character expansion (docs/conventions.md): (l1 >= l2) in Z^2, d = l1 - l2 + 1, at x = beta/2
c = e^-beta [I_l1(x) I_l2(x) - I_{l1+1}(x) I_{l2-1}(x)] (the U(N) Bessel determinant).
Theta term: mu = (l1 + l2)/2, G_k(sigma) = e^-beta [I_{k-1}(y) - I_{k+1}(y)],
y = beta cos(sigma/2), k = l1 - l2 + 1."""

from __future__ import annotations

import operator

import numpy as np

from .base import Representations, Theory, ThetaExpansion, bessel


def _coefficient(l1, l2, x) -> np.ndarray:
    """c_(l1,l2) at x = beta/2, including e^-beta = e^-2x; >= 0 (clipped against rounding far
    out in the tail)."""
    c = bessel(l1, x) * bessel(l2, x) - bessel(l1 + 1, x) * bessel(l2 - 1, x)
    return np.maximum(c, 0.0)


def coefficient(beta: float, rep) -> float:
    l1, l2 = (operator.index(v) for v in rep)
    if l1 < l2:
        raise ValueError(f"U(2) representation needs l1 >= l2, got ({l1}, {l2})")
    return float(_coefficient(l1, l2, beta / 2))


def rho(beta: float, labels: np.ndarray) -> np.ndarray:
    l1, l2 = labels[..., 0], labels[..., 1]
    x = beta / 2
    return _coefficient(l1, l2, x) / (l1 - l2 + 1) / _coefficient(0, 0, x)


def representations(beta: float, K: int) -> Representations:
    l1, l2 = np.meshgrid(np.arange(-K, K + 1), np.arange(-K, K + 1), indexing="ij")
    keep = l1 >= l2
    lab = np.stack((l1[keep], l2[keep]), -1)
    ups = np.stack((lab + [1, 0], lab + [0, 1]), 1)  # (n, 2, 2)
    allowed = ups[..., 0] >= ups[..., 1]
    up_dim = np.where(allowed, ups[..., 0] - ups[..., 1] + 1, 0).astype(float)
    up_rho = np.where(allowed, rho(beta, np.where(allowed[..., None], ups, 0)), 0.0)
    return Representations(lab, np.abs(lab).max(-1), (lab[:, 0] - lab[:, 1] + 1).astype(float),
                           rho(beta, lab), up_rho, up_dim)


def _theta_labels(labels: np.ndarray):
    return (labels[:, 0] + labels[:, 1]) / 2, labels[:, 0] - labels[:, 1] + 1


def _theta_weight(beta: float, sigma: np.ndarray, k_values: np.ndarray) -> np.ndarray:
    y = beta * np.cos(sigma / 2)
    kk = k_values[:, None]
    return np.exp(y - beta) * (bessel(kk - 1, y) - bessel(kk + 1, y))


THEORY = Theory(
    name="u2", label="U(2)", N=2, special=False, has_topology=True, trivial=(0, 0), fundamental=(1, 0),
    coefficient=coefficient, rho=rho, representations=representations, count=lambda K: (2 * K + 1) ** 2,
    theta=ThetaExpansion(_theta_labels, _theta_weight, table_size=lambda K: (4 * K + 1, 2 * K + 2)),
)
