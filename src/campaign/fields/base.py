"""The interface every link representation offers HMC, and the generic one: links as
complex matrices (``MatrixField``), for any group; the reference the fast fields are
tested against."""

from __future__ import annotations

import torch

from ..actions import force_from_plaquettes, plaquette_action_density
from ..groups import Group, complex_dtype, matmul, trace
from ..lattice import plaquettes
from .momenta import gaussian_momenta


class LinkField:
    name = "abstract"
    # link force evaluations the run will make (links x chains x force evaluations per
    # trajectory x trajectories), when known: whether compiling pays (``plan``)
    expected_work: float | None = None

    def __init__(self, group: Group, dtype=torch.float64, device=None):
        self.group = group
        self.real_dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def broadcast(self, mask: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return mask.reshape(mask.shape + (1,) * (q.ndim - mask.ndim))

    def plan(self, link_force_evaluations: float) -> None:
        """Tell the field how long the run will be: under CAMPAIGN_COMPILE=auto, a run too
        short for compilation to pay for itself runs eagerly (``compile.compile_pays``)."""
        self.expected_work = float(link_force_evaluations)

    def compiles(self, q: torch.Tensor) -> bool:
        """Whether the molecular-dynamics kernels for a state like q run compiled."""
        return False

    def kick(self, p, q, beta, c):
        """Momentum update p - c * force(q, beta).  The fast fields fuse it into the
        force kernel: no force tensor and no temporary are written and read back, one
        kernel launch instead of three."""
        return p - c * self.force(q, beta)

    def drift_kick(self, q, p, h, beta, c):
        """A drift by h followed by a kick with c at the new links: (q', p - c F(q')).
        The integrators' steps come in this pair; the fast U(1) field runs it as one
        kernel.  SU(2) and U(2) keep two: fused, inductor recomputed the drift inside the
        plaquette loops and took longer than the two kernels together (their times:
        benchmarks/hmc_kernels.py)."""
        q = self.drift(q, p, h)
        return q, self.kick(p, q, beta, c)

    def hamiltonian(self, q, p, beta):
        """Per chain: kinetic energy of the momenta p plus the action of the links q."""
        return self.kinetic(p) + self.action(q, beta)

    def drift_kicks(self, q, p, h, beta, kicks):
        """(drift by h, kick with c) for each c in kicks, in order: the integrators after
        their first half kick.  The fast U(1) field runs up to four pairs per kernel."""
        for c in kicks:
            q, p = self.drift_kick(q, p, h, beta, c)
        return q, p


class MatrixField(LinkField):
    """Links as complex matrices, momenta as algebra matrices."""

    name = "matrix"

    def cold_start(self, chains: int, L: int | None = None) -> torch.Tensor:
        return self.group.identity((chains, 2, L, L), dtype=self.real_dtype, device=self.device)

    def action(self, q, beta):
        return beta * plaquette_action_density(plaquettes(q)).sum((-1, -2), dtype=torch.float64)

    def force(self, q, beta):
        return force_from_plaquettes(self.group, q, plaquettes(q), beta)

    def drift(self, q, p, eps):
        return matmul(self.group.exp(eps * p), q)

    def momenta(self, q, generator):
        chains, _, L1, L2 = q.shape[:-2]
        shape = (chains, L1, L2, self.group.algebra_dim)
        eta = gaussian_momenta(generator, shape, self.real_dtype, q.device).permute(4, 0, 2, 3, 1)
        return self.group.from_coords(eta)

    def kinetic(self, p):
        return 0.5 * self.group.algebra_norm2(p).sum((-1, -2, -3), dtype=torch.float64)

    def normalise(self, q):
        return self.group.reunitarize(q)

    def to_links(self, q):
        return q

    def from_links(self, U):
        return U.to(device=self.device, dtype=complex_dtype(self.real_dtype))

    def mean_plaquette(self, q):
        return (trace(plaquettes(q)).real / self.group.N).mean((-1, -2))
