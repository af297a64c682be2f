"""The relativistic Bose gas at nonzero chemical potential on a 0+1 dimensional lattice: the
lattice model with a sign problem (Aarts, arXiv 0810.2089, in d = 1).

A complex scalar field phi = (phi_1 + i phi_2)/sqrt 2 on N_t sites (periodic), written with
two real components phi_{t,a}:

    S = sum_t [ (2 + m^2)/2 phi_t.phi_t + lam/4 (phi_t.phi_t)^2
                - cosh(mu) phi_t.phi_{t+1} + i sinh(mu) eps_ab phi_{t,a} phi_{t+1,b} ],

eps_12 = -eps_21 = 1.  For mu != 0 the action is complex (a sign problem); complex Langevin
complexifies phi_{t,a} -> x + i y, 4 N_t real coordinates.  Drift K = -dS/dphi:

    K_{t,c} = -(2 + m^2 + lam phi_t.phi_t) phi_{t,c} + cosh(mu) (phi_{t+1,c} + phi_{t-1,c})
              - i sinh(mu) eps_cb (phi_{t+1,b} - phi_{t-1,b}).

Holomorphic observables (per site): phi^2 = (1/N_t) sum_t phi_t.phi_t and the density
n = (1/N_t) d ln Z / d mu = -(1/N_t) <dS/dmu>,
    n = (1/N_t) sum_t [ sinh(mu) phi_t.phi_{t+1} - i cosh(mu) eps_ab phi_{t,a} phi_{t+1,b} ].

Exact reference (``BoseGas.exact_observable``).  In polar coordinates phi_t = r_t (cos th_t,
sin th_t) the hopping term is r r' cos(th' - th + i mu), and
e^{r r' cos(D + i mu)} = sum_n I_n(r r') e^{-n mu} e^{i n D}: the angular integrals force one
common angular momentum n (the charge) on every link, so

    Z = (2 pi)^N_t sum_n e^{-n N_t mu} Tr A_n^{N_t},
    A_n(r, r') = sqrt(w r) e^{-V(r)/2} I_n(r r') e^{-V(r')/2} sqrt(w' r'),   V = (2+m^2) r^2/2 + lam r^4/4,

a real symmetric transfer matrix per charge sector on a Gauss-Legendre radial grid (weights
w).  <phi^2> inserts r^2 at one site; the density is -sum_n n (weight of sector n) / N_t.
Z is real and positive (A_n = A_{-n}): the sign problem lives only in the phi representation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..errors import CampaignError

OBSERVABLES = ("phi^2", "n")

# exact reference: radial grid and charge sectors (checked: the results change by < 1e-12
# when either is enlarged, tests/test_cl_bose_gas.py)
RADIAL_POINTS = 96
CHARGE_MAX = 60


def _eps(v: torch.Tensor) -> torch.Tensor:
    """eps_ab v_b for the last axis (a = 1, 2): (v_2, -v_1)."""
    return torch.stack([v[..., 1], -v[..., 0]], dim=-1)


@dataclass
class BoseGas:
    n_t: int = 4
    m: float = 1.0
    lam: float = 1.0
    mu: float = 0.5
    name = "bose-gas"

    def __post_init__(self):
        if int(self.n_t) != self.n_t or self.n_t < 2:
            raise CampaignError(f"n_t (lattice sites) must be an integer >= 2, got {self.n_t!r}")
        self.n_t = int(self.n_t)
        for name in ("m", "lam", "mu"):
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise CampaignError(f"{name} must be a real number, got {value!r}") from None
            if not math.isfinite(value):
                raise CampaignError(f"{name} must be finite, got {value!r}")
            setattr(self, name, value)
        if self.lam <= 0:
            raise CampaignError(f"the Bose gas needs lam > 0 (a bounded action), got lam = {self.lam}")

    @property
    def field_shape(self) -> tuple:
        return (self.n_t, 2)

    def params(self) -> dict:
        return {"model": self.name, "n_t": self.n_t, "m": self.m, "lam": self.lam, "mu": self.mu}

    def action(self, phi: torch.Tensor) -> torch.Tensor:
        """S of fields (..., n_t, 2), complex or real."""
        nxt = torch.roll(phi, -1, dims=-2)
        p2 = (phi * phi).sum(-1)
        hop = (phi * nxt).sum(-1)
        cross = (phi * _eps(nxt)).sum(-1)  # eps_ab phi_a phi'_b = phi_1 phi'_2 - phi_2 phi'_1
        s = 0.5 * (2 + self.m ** 2) * p2 + 0.25 * self.lam * p2 * p2 - math.cosh(self.mu) * hop \
            + 1j * math.sinh(self.mu) * cross
        return s.sum(-1)

    def drift(self, phi: torch.Tensor) -> torch.Tensor:
        nxt, prv = torch.roll(phi, -1, dims=-2), torch.roll(phi, 1, dims=-2)
        p2 = (phi * phi).sum(-1, keepdim=True)
        return (-(2 + self.m ** 2 + self.lam * p2) * phi + math.cosh(self.mu) * (nxt + prv)
                - 1j * math.sinh(self.mu) * _eps(nxt - prv))

    def observables(self, phi, orders=None) -> dict:
        """{"phi^2", "n"}: per-site holomorphic observables of fields (..., n_t, 2) (``orders`` unused)."""
        phi = torch.as_tensor(np.asarray(phi))
        nxt = torch.roll(phi, -1, dims=-2)
        hop = (phi * nxt).sum(-1)
        cross = (phi * _eps(nxt)).sum(-1)
        density = math.sinh(self.mu) * hop - 1j * math.cosh(self.mu) * cross
        return {"phi^2": (phi * phi).sum(-1).mean(-1).numpy(), "n": density.mean(-1).numpy()}

    def exact_observable(self, name) -> complex:
        if name not in OBSERVABLES:
            raise CampaignError(f"the Bose gas has the observables {', '.join(OBSERVABLES)}, not {name!r}")
        return complex(_exact(self.n_t, self.m, self.lam, self.mu)[OBSERVABLES.index(name)])

    def log_z(self, mu: float | None = None) -> float:
        """ln Z / (2 pi)^N_t (tests: d ln Z / d mu by finite differences = N_t <n>)."""
        return _exact(self.n_t, self.m, self.lam, self.mu if mu is None else float(mu))[2]


@lru_cache(maxsize=64)
def _exact(n_t: int, m: float, lam: float, mu: float, points: int = RADIAL_POINTS,
           charge_max: int = CHARGE_MAX) -> tuple[float, float, float]:
    """(<phi^2>, <n>, ln Z/(2 pi)^N_t) from the charge-sector transfer matrices (module docstring)."""
    from scipy.special import ive

    # the weight e^{-V(r)} r I_n(r^2) ~ e^{-(m^2 + 2 - 2) r^2/2 - lam r^4/4}: below 1e-40 beyond r_max
    r_max = 1.0
    while (0.5 * m * m * r_max ** 2 + 0.25 * lam * r_max ** 4) < 100:
        r_max *= 1.2
    u, w = np.polynomial.legendre.leggauss(points)
    r = 0.5 * r_max * (u + 1)
    w = 0.5 * r_max * w
    v = 0.5 * (2 + m * m) * r * r + 0.25 * lam * r ** 4
    rr = np.outer(r, r)
    # I_n(x) = ive(n, x) e^x: fold e^x into the exponent so nothing overflows
    expo = -0.5 * v[:, None] - 0.5 * v[None, :] + rr
    sq = np.sqrt(w * r)
    log_terms, phi2_terms, charges = [], [], []
    # A_n = A_{-n}: one eigendecomposition serves the sectors +n and -n; stop once a sector's
    # largest eigenvalue power, boosted by e^{|n| N_t |mu|}, is 1e-18 of the leading sector's
    for n in range(charge_max + 1):
        a = sq[:, None] * ive(n, rr) * np.exp(expo) * sq[None, :]
        lam_k, vec = np.linalg.eigh(a)
        lam_k = np.clip(lam_k, 1e-300, None)  # round-off negatives of a positive kernel
        r2 = ((vec ** 2) * (r * r)[:, None]).sum(0)
        for charge in ((0,) if n == 0 else (n, -n)):
            log_pow = n_t * np.log(lam_k) - charge * n_t * mu  # log of each eigenvalue's contribution
            top = log_pow.max()
            weights = np.exp(log_pow - top)
            log_terms.append(top + math.log(weights.sum()))
            phi2_terms.append(float((weights * r2).sum() / weights.sum()))
            charges.append(charge)
        if n >= 2 and max(log_terms[-2:]) < max(log_terms) - 42:
            break
    else:
        raise CampaignError(f"the exact Bose gas needs more than {charge_max} charge sectors at mu = {mu}")
    log_terms = np.array(log_terms)
    p = np.exp(log_terms - log_terms.max())
    p /= p.sum()
    log_z = float(log_terms.max() + math.log(np.exp(log_terms - log_terms.max()).sum()))
    return float(p @ np.array(phi2_terms)), float(-(p @ np.array(charges))), log_z
