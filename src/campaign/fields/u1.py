"""U(1) links as angles: the drift is an addition, the force one sine per plaquette."""

from __future__ import annotations

import torch

from ..groups import U1
from .compile import _Kernel
from .fast import _FastField, _kinetic
from .layout import _down, _phys, _up, chains_last
from .trig import _cos, _sin, _wrap_angle


def _u1_plaquette_angles(t):
    """theta_P from angles laid out (2, x, y, chains)."""
    t0, t1 = t[0], t[1]
    return t0 + _up(t1, 0) - _up(t0, 1) - t1


def _u1_force_halves(q, beta):
    """Force on the links in direction 0 and in direction 1, each laid out (x, y, chains)."""
    s = beta * _sin(_u1_plaquette_angles(_phys(q)))
    return s - _down(s, 1), _down(s, 0) - s


def _u1_force(q, beta):
    return torch.stack(_u1_force_halves(q, beta)).movedim(-1, 0)


def _u1_density_sum(q):
    return (1 - _cos(_u1_plaquette_angles(_phys(q)))).sum((0, 1), dtype=torch.float64)


# The kick and drift+kick kernels of each group are spelled out rather than made by a
# closure factory: dynamo keeps its compiled variants per code object (8 at most), and
# closures share one code object across groups, shapes and dtypes.
def _u1_kick(q, p, cbeta):
    # p - force, one direction at a time: inductor then writes each half of the new
    # momenta straight from the sines (3 passes over memory instead of 5)
    (f0, f1), (p0, p1) = _u1_force_halves(q, cbeta), _phys(p)
    return torch.stack((p0 - f0, p1 - f1)).movedim(-1, 0)


def _u1_drift_kick(q, p, h, cbeta):
    q1 = q + h * p
    return q1, _u1_kick(q1, p, cbeta)


# Several pairs in one kernel: a U(1) pair is short enough that the per-call cost and the
# memory passes between calls count, up to the size where recomputing sines inside the
# fused kernel costs more (fast.FUSE_MAX_BYTES; per-pair times of 1, 2 and 4 pairs per
# call: benchmarks/hmc_kernels.py).  SU(2) and U(2) run drift and kick as two kernels
# (see LinkField.drift_kick).
def _u1_drift_kick_2(q, p, h, cbeta1, cbeta2):
    q, p = _u1_drift_kick(q, p, h, cbeta1)
    return _u1_drift_kick(q, p, h, cbeta2)


def _u1_drift_kick_4(q, p, h, cbeta1, cbeta2, cbeta3, cbeta4):
    q, p = _u1_drift_kick_2(q, p, h, cbeta1, cbeta2)
    return _u1_drift_kick_2(q, p, h, cbeta3, cbeta4)


def _u1_normalise(q):
    return _wrap_angle(q)


# H = p^2 / 2 + S in one call: one kernel launch and one dynamo call fewer, twice a
# trajectory -- for small float32 U(1) lattices these calls were a sizeable share
def _u1_hamiltonian(q, p, beta):
    return _kinetic(p) + beta * _u1_density_sum(q)


_U1_FORCE = _Kernel(_u1_force)
_U1_DRIFT_KICKS = {4: _Kernel(_u1_drift_kick_4), 2: _Kernel(_u1_drift_kick_2)}
_U1_KICK = _Kernel(_u1_kick)
_U1_DRIFT_KICK = _Kernel(_u1_drift_kick)
_U1_DENSITY = _Kernel(_u1_density_sum)
_U1_NORMALISE = _Kernel(_u1_normalise)
_U1_HAMILTONIAN = _Kernel(_u1_hamiltonian)


class U1AngleField(_FastField):
    """U(1) links U = exp(i theta), momenta real; theta_P = theta_0(x) + theta_1(x+0)
    - theta_0(x+1) - theta_1(x)."""

    name = "u1-angles"
    _force_kernel, _density_kernel, _kick_kernel = _U1_FORCE, _U1_DENSITY, _U1_KICK
    _drift_kick_kernel, _fused_drift_kicks = _U1_DRIFT_KICK, _U1_DRIFT_KICKS
    _normalise_kernel, _hamiltonian_kernel = _U1_NORMALISE, _U1_HAMILTONIAN

    def __init__(self, dtype=torch.float64, device=None):
        super().__init__(U1, dtype, device)

    @staticmethod
    def plaquette_angles(q):
        return _u1_plaquette_angles(_phys(q)).movedim(-1, 0)

    def drift(self, q, p, eps):
        return torch.add(q, p, alpha=eps)

    def to_links(self, q):
        return torch.polar(torch.ones_like(q), q)[..., None, None].contiguous()

    def from_links(self, U):
        return chains_last(torch.angle(U[..., 0, 0]).to(device=self.device, dtype=self.real_dtype))
