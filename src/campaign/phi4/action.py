"""The lattice phi^4 action in (kappa, lambda) hopping form and its molecular-dynamics field.

    S[phi] = sum_x [ -2 kappa sum_mu phi_x phi_{x+mu} + phi_x^2 + lambda (phi_x^2 - 1)^2 ]

The sum over mu runs over the d forward directions of a periodic lattice, so every
nearest-neighbour pair appears once.  The force (the gradient HMC uses) is

    dS/dphi_x = -2 kappa sum_mu (phi_{x+mu} + phi_{x-mu}) + 2 phi_x + 4 lambda phi_x (phi_x^2 - 1).

``Phi4Field`` gives ``campaign.hmc.trajectory`` / ``integrate`` what a gauge field gives
them (action, force, drift, momenta, kinetic energy, normalise), so phi^4 runs through the
same leapfrog and Omelyan integrators and the same Metropolis step as the gauge theories;
the couplings travel in the place of beta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import CampaignError
from ..fields import LinkField


@dataclass(frozen=True)
class Phi4Couplings:
    """(kappa, lambda) of the hopping form.  kappa >= 0 (ferromagnetic hopping);
    lambda >= 0 (the action must be bounded below)."""

    kappa: float
    lam: float

    def __post_init__(self):
        if not (math.isfinite(self.kappa) and self.kappa >= 0):
            raise CampaignError(f"kappa must be finite and >= 0, got {self.kappa}")
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise CampaignError(f"lambda must be finite and >= 0, got {self.lam}")


def lattice_dims(phi: torch.Tensor) -> tuple[int, ...]:
    """The lattice axes of a batch ``(chains, *lattice)``."""
    return tuple(range(1, phi.ndim))


def site_sum(t: torch.Tensor) -> torch.Tensor:
    """Per chain: sum over the lattice in float64 (an empty lattice, 0D, is one site).
    Actions and H are extensive sums whose differences matter: float64 whatever t is."""
    return t.reshape(t.shape[0], -1).sum(1, dtype=torch.float64)


def hopping(phi: torch.Tensor) -> torch.Tensor:
    """sum_mu phi_{x+mu} per site (forward neighbours only)."""
    out = torch.zeros_like(phi)
    for axis in lattice_dims(phi):
        out = out + torch.roll(phi, shifts=-1, dims=axis)
    return out


def action(phi: torch.Tensor, c: Phi4Couplings) -> torch.Tensor:
    """S[phi] per chain, float64, for phi of shape (chains, *lattice)."""
    phi2 = phi * phi
    density = -2.0 * c.kappa * phi * hopping(phi) + phi2 + c.lam * (phi2 - 1.0) ** 2
    return site_sum(density)


def force(phi: torch.Tensor, c: Phi4Couplings) -> torch.Tensor:
    """dS/dphi_x, shape of phi."""
    neighbours = torch.zeros_like(phi)
    for axis in lattice_dims(phi):
        neighbours = neighbours + torch.roll(phi, -1, axis) + torch.roll(phi, 1, axis)
    return -2.0 * c.kappa * neighbours + 2.0 * phi + 4.0 * c.lam * phi * (phi * phi - 1.0)


class Phi4Field(LinkField):
    """The molecular-dynamics interface of ``campaign.hmc`` for a real scalar field:
    flat phase space, drift q + eps p, unit-mass Gaussian momenta from the run's
    generator.  ``beta`` in the inherited methods is a ``Phi4Couplings``."""

    name = "phi4"

    def __init__(self, dtype=torch.float64, device=None):
        super().__init__(group=None, dtype=dtype, device=device)

    def action(self, q, couplings):
        return action(q, couplings)

    def force(self, q, couplings):
        return force(q, couplings)

    def drift(self, q, p, eps):
        return q + eps * p

    def momenta(self, q, generator):
        return torch.randn(q.shape, generator=generator, dtype=q.dtype, device=q.device)

    def kinetic(self, p):
        return 0.5 * site_sum(p * p)

    def normalise(self, q):
        return q  # flat field space: nothing drifts off a manifold


def to_mass_form(c: Phi4Couplings, d: int) -> tuple[float, float]:
    """(m0^2, g) of S = sum_x [ 1/2 sum_mu (varphi_{x+mu} - varphi_x)^2 + m0^2/2 varphi^2
    + g/4! varphi^4 ] with varphi = sqrt(2 kappa) phi (lattice spacing 1), up to the
    constant lambda V:  m0^2 = (1 - 2 lambda)/kappa - 2d,  g = 6 lambda / kappa^2."""
    if c.kappa <= 0:
        raise CampaignError("the mass form needs kappa > 0")
    return (1.0 - 2.0 * c.lam) / c.kappa - 2.0 * d, 6.0 * c.lam / c.kappa**2


def from_mass_form(m2: float, g: float, d: int) -> Phi4Couplings:
    """Inverse of ``to_mass_form``: kappa solves 6 lambda = g kappa^2 with
    (2d + m0^2) kappa = 1 - 2 lambda, i.e.  (g/3) kappa^2 + (2d + m0^2) kappa - 1 = 0."""
    a, b = g / 3.0, 2.0 * d + m2
    if a == 0:
        if b <= 0:
            raise CampaignError(f"no positive kappa for m0^2 = {m2}, g = 0 in d = {d}")
        kappa = 1.0 / b
    else:
        kappa = (-b + math.sqrt(b * b + 4.0 * a)) / (2.0 * a)
    return Phi4Couplings(kappa=kappa, lam=g * kappa**2 / 6.0)
