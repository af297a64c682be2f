"""SU(2) links as unit quaternions and U(2) links as a phase times a unit quaternion:
products, daggers, the projection to the algebra and the exponential are a few real
multiply-adds on component planes."""

from __future__ import annotations

import math

import torch

from ..groups import SU2, U2, complex_dtype, quaternion_to_su2
from .compile import _Kernel
from .fast import _FastField, _kinetic
from .layout import _down, _phys, _up, chains_last
from .trig import _cos, _cos_sinc, _sin, _wrap_angle

SQRT1_2 = 1.0 / math.sqrt(2.0)


# A quaternion is a tuple (a0, a1, a2, a3) of equally shaped real tensors standing for
# a0 1 + i (a1 sigma_1 + a2 sigma_2 + a3 sigma_3).  Then
#   (a0, a)(b0, b) = (a0 b0 - a.b, a0 b + b0 a - a x b),   dagger (a0, a) = (a0, -a).
def _qmul(a, b):
    a0, a1, a2, a3 = a
    b0, b1, b2, b3 = b
    return (
        a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
        a0 * b1 + b0 * a1 - a2 * b3 + a3 * b2,
        a0 * b2 + b0 * a2 - a3 * b1 + a1 * b3,
        a0 * b3 + b0 * a3 - a1 * b2 + a2 * b1,
    )


def _qmul_dagger(a, b):
    """a b^dagger"""
    a0, a1, a2, a3 = a
    b0, b1, b2, b3 = b
    return (
        a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3,
        b0 * a1 - a0 * b1 + a2 * b3 - a3 * b2,
        b0 * a2 - a0 * b2 + a3 * b1 - a1 * b3,
        b0 * a3 - a0 * b3 + a1 * b2 - a2 * b1,
    )


def _conjugate_vector(v, p):
    """Vector part of v^dagger (0, p) v for a unit quaternion v and a 3-vector p: the
    adjoint action V^dagger X V on the su(2) element X = i p.sigma."""
    v0, v1, v2, v3 = v
    p1, p2, p3 = p
    # t = (0, p) v
    t0 = -(p1 * v1 + p2 * v2 + p3 * v3)
    t1 = v0 * p1 - p2 * v3 + p3 * v2
    t2 = v0 * p2 - p3 * v1 + p1 * v3
    t3 = v0 * p3 - p1 * v2 + p2 * v1
    # v^dagger t, vector part: v0 t - t0 v + v x t
    return (
        v0 * t1 - t0 * v1 + v2 * t3 - v3 * t2,
        v0 * t2 - t0 * v2 + v3 * t1 - v1 * t3,
        v0 * t3 - t0 * v3 + v1 * t2 - v2 * t1,
    )


def _qexp(p, h):
    """exp(h i p.sigma) = (cos t, sin(t)/t h p) with t = h |p|; p a 3-tuple."""
    p1, p2, p3 = p
    t = h * torch.sqrt(p1 * p1 + p2 * p2 + p3 * p3)
    cos, sinc = _cos_sinc(t)
    s = h * sinc
    return cos, s * p1, s * p2, s * p3


def _quaternion_plaquette(u):
    """Plaquette quaternion from links laid out (2, C >= 4, x, y, chains)."""
    u0, u1 = u[0, :4], u[1, :4]
    a = _qmul(u0.unbind(0), _up(u1, 0).unbind(0))
    b = _qmul(u1.unbind(0), _up(u0, 1).unbind(0))
    return _qmul_dagger(a, b)


def _plaquette_force(u, g, p=None):
    """Force on both link directions, (2, C, x, y, chains), from g (3 or 4, x, y, chains),
    the algebra coordinates of beta/N times the projected plaquette at each site; with
    momenta p (2, C, x, y, chains), the kicked momenta p - force instead.

    As in ``campaign.actions.force_from_plaquettes``: each link collects the plaquette
    at its base site and the one behind it, brought to its base point by the connecting
    link (the adjoint action leaves a U(1) component alone)."""
    u0, u1 = u[0, :4], u[1, :4]
    g_y, g_x = _down(g, 1), _down(g, 0)
    r0 = _conjugate_vector(_down(u1, 1).unbind(0), g_y[:3].unbind(0))
    r1 = _conjugate_vector(_down(u0, 0).unbind(0), g_x[:3].unbind(0))
    f0 = [g[i] - r0[i] for i in range(3)]
    f1 = [r1[i] - g[i] for i in range(3)]
    if g.shape[0] == 4:
        f0.append(g[3] - g_y[3])
        f1.append(g_x[3] - g[3])
    if p is not None:
        # each component of p - force straight from its pieces: a stacked force and a
        # subtraction after it cost a pass more (compare force and kick in
        # benchmarks/hmc_kernels.py)
        f0 = [p[0, i] - f for i, f in enumerate(f0)]
        f1 = [p[1, i] - f for i, f in enumerate(f1)]
    # one flat stack: nested stacks make inductor write both halves and copy them
    return torch.stack(f0 + f1).unflatten(0, (2, len(f0)))


def _su2_force(q, beta, p=None):
    # F = (beta / N) proj(U_P) - ...; the coordinates of proj(a0 + i a.sigma) are sqrt2 a
    u = _phys(q)
    _, p1, p2, p3 = _quaternion_plaquette(u)
    g = (beta * SQRT1_2) * torch.stack((p1, p2, p3))
    return _plaquette_force(u, g, None if p is None else _phys(p)).movedim(-1, 0)


def _su2_density_sum(q):
    return (1 - _quaternion_plaquette(_phys(q))[0]).sum((0, 1), dtype=torch.float64)


def _su2_drift(q, p, eps):
    e = _qexp(_phys(p).unbind(1), eps * SQRT1_2)
    return torch.stack(_qmul(e, _phys(q).unbind(1)), 1).movedim(-1, 0)


def _u2_plaquette(u):
    """(cos phi_P, sin phi_P, quaternion plaquette) for U(2) links (2, 5, x, y, chains)."""
    phi0, phi1 = u[0, 4], u[1, 4]
    phi = phi0 + _up(phi1, 0) - _up(phi0, 1) - phi1
    return _cos(phi), _sin(phi), _quaternion_plaquette(u)


def _u2_force(q, beta, p=None):
    # proj(e^{i phi} (P0 + i p.sigma)) = i sin(phi) P0 1 + i cos(phi) p.sigma
    u = _phys(q)
    c, s, (p0, p1, p2, p3) = _u2_plaquette(u)
    g = (beta * SQRT1_2) * torch.stack((c * p1, c * p2, c * p3, s * p0))
    return _plaquette_force(u, g, None if p is None else _phys(p)).movedim(-1, 0)


def _u2_density_sum(q):
    c, _, plaq = _u2_plaquette(_phys(q))
    return (1 - c * plaq[0]).sum((0, 1), dtype=torch.float64)


def _u2_drift(q, p, eps):
    h = eps * SQRT1_2
    u, pp = _phys(q), _phys(p)
    e = _qexp(pp[:, :3].unbind(1), h)
    comps = _qmul(e, u[:, :4].unbind(1))
    return torch.stack((*comps, u[:, 4] + h * pp[:, 3]), 1).movedim(-1, 0)


def _su2_kick(q, p, cbeta):
    return _su2_force(q, cbeta, p)


def _u2_kick(q, p, cbeta):
    return _u2_force(q, cbeta, p)


_SU2_FORCE = _Kernel(_su2_force)
_SU2_KICK = _Kernel(_su2_kick)
# inductor writes an intermediate to memory when it is read 4 times or is more than 50
# operations; the U(2) kick has many such (quaternion products) -- keeping more of them in
# registers made it 10-20% faster (its time: benchmarks/hmc_kernels.py).  No gain for
# SU(2) and the drifts, and minutes of compilation for the drifts.
_U2_KICK = _Kernel(_u2_kick, options={"realize_reads_threshold": 6, "realize_cpu_opcount_threshold": 100})
_SU2_DENSITY = _Kernel(_su2_density_sum)
_SU2_DRIFT = _Kernel(_su2_drift)
_U2_FORCE = _Kernel(_u2_force)
_U2_DENSITY = _Kernel(_u2_density_sum)
_U2_DRIFT = _Kernel(_u2_drift)


def _unit_quaternion(u):
    """The four components of u, laid out (2, C >= 4, x, y, chains), scaled to unit norm
    (spelled out: a sum over the component axis makes inductor write a reduction)."""
    a = u[:, :4].unbind(1)
    r = torch.rsqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2] + a[3] * a[3])
    return [c * r for c in a]


def _su2_normalise(q):
    return torch.stack(_unit_quaternion(_phys(q)), 1).movedim(-1, 0)


def _u2_normalise(q):
    u = _phys(q)
    return torch.stack((*_unit_quaternion(u), _wrap_angle(u[:, 4])), 1).movedim(-1, 0)


def _su2_hamiltonian(q, p, beta):
    return _kinetic(p) + beta * _su2_density_sum(q)


def _u2_hamiltonian(q, p, beta):
    return _kinetic(p) + beta * _u2_density_sum(q)


_SU2_HAMILTONIAN = _Kernel(_su2_hamiltonian)
_U2_HAMILTONIAN = _Kernel(_u2_hamiltonian)
_SU2_NORMALISE = _Kernel(_su2_normalise)
_U2_NORMALISE = _Kernel(_u2_normalise)


class SU2QuaternionField(_FastField):
    """SU(2) links as unit quaternions, q (chains, 2, 4, L, L); momenta (chains, 2, 3, L, L)."""

    name = "su2-quaternions"
    components = 4
    _force_kernel, _kick_kernel, _drift_kernel, _density_kernel = _SU2_FORCE, _SU2_KICK, _SU2_DRIFT, _SU2_DENSITY
    _normalise_kernel, _hamiltonian_kernel = _SU2_NORMALISE, _SU2_HAMILTONIAN

    def __init__(self, dtype=torch.float64, device=None):
        super().__init__(SU2, dtype, device)

    def to_links(self, q):
        return quaternion_to_su2(q.movedim(2, -1))

    @staticmethod
    def _quaternion(U):
        return torch.stack((U[..., 0, 0].real, U[..., 0, 1].imag, U[..., 0, 1].real, U[..., 0, 0].imag), 2)

    def from_links(self, U):
        U = U.to(device=self.device, dtype=complex_dtype(self.real_dtype))
        return chains_last(self._quaternion(U))


class U2QuaternionField(SU2QuaternionField):
    """U(2) links exp(i phi) Q, q (chains, 2, 5, L, L) = (quaternion of Q, phi);
    momenta (chains, 2, 4, L, L), the fourth coordinate along T_4 = i 1 / sqrt2."""

    name = "u2-phase-quaternions"
    components = 5
    _force_kernel, _kick_kernel, _drift_kernel, _density_kernel = _U2_FORCE, _U2_KICK, _U2_DRIFT, _U2_DENSITY
    _normalise_kernel, _hamiltonian_kernel = _U2_NORMALISE, _U2_HAMILTONIAN

    def __init__(self, dtype=torch.float64, device=None):
        _FastField.__init__(self, U2, dtype, device)

    def to_links(self, q):
        su2 = quaternion_to_su2(q[:, :, :4].movedim(2, -1))
        return su2 * torch.polar(torch.ones_like(q[:, :, 4]), q[:, :, 4])[..., None, None]

    def from_links(self, U):
        U = U.to(device=self.device, dtype=complex_dtype(self.real_dtype))
        det = U[..., 0, 0] * U[..., 1, 1] - U[..., 0, 1] * U[..., 1, 0]
        phi = 0.5 * torch.angle(det)
        quat = self._quaternion(U * torch.polar(torch.ones_like(phi), -phi)[..., None, None])
        return chains_last(torch.cat((quat, phi[:, :, None]), 2))
