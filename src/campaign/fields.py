"""Representations of a batch of gauge fields for molecular dynamics.

HMC only needs the action, the force, the drift q -> exp(eps p) q, momenta and kinetic
energy; how the links are stored is free.  ``MatrixField`` works for every group with
complex N x N matrices; ``U1AngleField`` stores U(1) links as angles, where the drift is
an addition and the force two sines, several times faster and free of unitarity drift.
All tensors carry the chain axis first: q has shape (chains, 2, L, L, ...).
"""

from __future__ import annotations

import math

import torch

from .actions import force_from_plaquettes, plaquette_action_density
from .groups import U1, Group, complex_dtype, matmul, trace
from .lattice import plaquettes


class LinkField:
    name = "abstract"

    def __init__(self, group: Group, dtype=torch.float64, device=None):
        self.group = group
        self.real_dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def broadcast(self, mask: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return mask.reshape(mask.shape + (1,) * (q.ndim - mask.ndim))


class MatrixField(LinkField):
    """Links as complex matrices, momenta as algebra matrices."""

    name = "matrix"

    def cold_start(self, chains: int, L: int | None = None) -> torch.Tensor:
        return self.group.identity((chains, 2, L, L), dtype=self.real_dtype, device=self.device)

    def action(self, q, beta):
        return beta * plaquette_action_density(plaquettes(q)).sum((-1, -2))

    def force(self, q, beta):
        return force_from_plaquettes(self.group, q, plaquettes(q), beta)

    def drift(self, q, p, eps):
        return matmul(self.group.exp(eps * p), q)

    def momenta(self, q, generator):
        return self.group.random_algebra(q.shape[:-2], generator=generator, dtype=self.real_dtype, device=q.device)

    def kinetic(self, p):
        return 0.5 * self.group.algebra_norm2(p).sum((-1, -2, -3))

    def normalise(self, q):
        return self.group.reunitarize(q)

    def to_links(self, q):
        return q

    def from_links(self, U):
        return U.to(device=self.device, dtype=complex_dtype(self.real_dtype))

    def mean_plaquette(self, q):
        return (trace(plaquettes(q)).real / self.group.N).mean((-1, -2))


class U1AngleField(LinkField):
    """U(1) links U = exp(i theta), momenta real; theta_P = theta_0(x) + theta_1(x+0)
    - theta_0(x+1) - theta_1(x)."""

    name = "u1-angles"

    def __init__(self, dtype=torch.float64, device=None):
        super().__init__(U1, dtype, device)

    def cold_start(self, chains: int, L: int | None = None) -> torch.Tensor:
        return torch.zeros((chains, 2, L, L), dtype=self.real_dtype, device=self.device)

    @staticmethod
    def plaquette_angles(q):
        t0, t1 = q[:, 0], q[:, 1]
        return t0 + torch.roll(t1, -1, -2) - torch.roll(t0, -1, -1) - t1

    def action(self, q, beta):
        return beta * (1 - torch.cos(self.plaquette_angles(q))).sum((-1, -2))

    def force(self, q, beta):
        s = torch.sin(self.plaquette_angles(q))
        f0 = s - torch.roll(s, 1, -1)
        f1 = torch.roll(s, 1, -2) - s
        return beta * torch.stack((f0, f1), 1)

    def drift(self, q, p, eps):
        return q + eps * p

    def momenta(self, q, generator):
        return torch.randn(q.shape, generator=generator, dtype=q.dtype, device=q.device)

    def kinetic(self, p):
        return 0.5 * (p * p).sum((-1, -2, -3))

    def normalise(self, q):
        return torch.remainder(q + math.pi, 2 * math.pi) - math.pi

    def to_links(self, q):
        return torch.polar(torch.ones_like(q), q)[..., None, None]

    def from_links(self, U):
        return torch.angle(U[..., 0, 0]).to(device=self.device, dtype=self.real_dtype)

    def mean_plaquette(self, q):
        return torch.cos(self.plaquette_angles(q)).mean((-1, -2))


def field_for(group: Group, dtype=torch.float64, device=None) -> LinkField:
    """The fastest exact representation available for the group."""
    if group.name == "u1":
        return U1AngleField(dtype, device)
    return MatrixField(group, dtype, device)
