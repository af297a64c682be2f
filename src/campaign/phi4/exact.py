"""Exact references for phi^4 (hopping form, docs/conventions-phi4.md).

Free field (lambda = 0): S = 1/2 phi.K.phi with, in momentum space on the periodic
lattice (p_mu = 2 pi n_mu / L_mu),

    K(p) = 2 - 4 kappa sum_mu cos p_mu,

so <phi_x phi_y> = (1/V) sum_p exp(i p (x - y)) / K(p)  (stable for kappa < 1/(2d)).
The magnetisation M = (1/V) sum_x phi_x is Gaussian with variance s^2 = 1/(V K(0)), hence
<M^2> = s^2, <|M|> = s sqrt(2/pi), chi = V(<M^2> - <|M|>^2) = (1 - 2/pi)/K(0), Binder U = 0,
kappa_2(M) = s^2 and kappa_n(M) = 0 for n >= 3.

One-site (0D) theory: Z = int dphi exp(-phi^2 - lambda (phi^2 - 1)^2); moments by quadrature.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CampaignError


def free_kernel(kappa: float, shape: tuple[int, ...]) -> np.ndarray:
    """K(p) on the momentum grid of the lattice (numpy FFT order)."""
    d = len(shape)
    if d == 0:
        raise CampaignError("the free-field propagator needs a lattice of dimension >= 1")
    if not 0 <= kappa < 1.0 / (2 * d):
        raise CampaignError(f"the free field needs 0 <= kappa < 1/(2d) = {1 / (2 * d):g}, got {kappa}")
    grids = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(n) for n in shape], indexing="ij")
    return 2.0 - 4.0 * kappa * sum(np.cos(p) for p in grids)


def free_propagator(kappa: float, shape: tuple[int, ...]) -> np.ndarray:
    """G(x) = <phi_0 phi_x>, an array of the lattice's shape."""
    return np.fft.ifftn(1.0 / free_kernel(kappa, shape)).real


def free_phi2(kappa: float, shape: tuple[int, ...]) -> float:
    """<phi_x^2> = G(0)."""
    return float(np.mean(1.0 / free_kernel(kappa, shape)))


def free_zero_momentum_correlator(kappa: float, shape: tuple[int, ...]) -> np.ndarray:
    """G(t) = sum_{x_spatial} <phi_(0,0) phi_(x,t)> with t along the last lattice axis,
    t = 0 .. L_t - 1 (the convention of ``campaign.phi4.observables.zero_momentum_correlator``)."""
    g = free_propagator(kappa, shape)
    return g.reshape(-1, shape[-1]).sum(0)


def free_magnetisation(kappa: float, shape: tuple[int, ...]) -> dict:
    """Exact <M^2>, <|M|>, chi = V(<M^2> - <|M|>^2), chi_full = V <M^2>, Binder U and the
    cumulants kappa_2..6 of M for the free field on the torus."""
    k0 = float(free_kernel(kappa, shape).flat[0])
    V = math.prod(shape)
    s2 = 1.0 / (V * k0)
    out = {"M2": s2, "absM": math.sqrt(2.0 * s2 / math.pi), "chi": (1.0 - 2.0 / math.pi) / k0,
           "chi_full": 1.0 / k0, "binder": 0.0, "kappa_2": s2}
    out.update({f"kappa_{n}": 0.0 for n in range(3, 7)})
    return out


def one_site_moments(lam: float, n_max: int = 6) -> np.ndarray:
    """<phi^k>, k = 0..n_max, of the one-site weight exp(-phi^2 - lambda (phi^2 - 1)^2)."""
    from scipy import integrate

    if not (math.isfinite(lam) and lam >= 0):
        raise CampaignError(f"lambda must be finite and >= 0, got {lam}")

    def weight(x):
        return math.exp(-x * x - lam * (x * x - 1.0) ** 2 + lam)  # + lam: the weight at 0 is 1

    # the weight is below e^-60 beyond |phi| = 8 for every lambda >= 0; it is even, so
    # integrate over phi >= 0 and set the odd moments (zero by Z2) exactly
    z = integrate.quad(weight, 0.0, 8.0, epsabs=0, epsrel=1e-13, limit=200)[0]
    moments = np.zeros(n_max + 1)
    for k in range(0, n_max + 1, 2):
        moments[k] = integrate.quad(lambda x, k=k: x**k * weight(x), 0.0, 8.0, epsabs=0,
                                    epsrel=1e-12, limit=200)[0] / z
    return moments
