"""Representations of a batch of gauge fields for molecular dynamics.

HMC only needs the action, the force, the drift q -> exp(eps p) q, momenta and kinetic
energy; how the links are stored is free.  Every representation here is exact (the same
action, force and trajectory as the generic one up to rounding); they differ in speed:

* ``MatrixField`` -- any group, complex N x N matrices (the reference).
* ``U1AngleField`` -- U(1) links as angles: the drift is an addition, the force one sine
  per plaquette, no unitarity drift.
* ``SU2QuaternionField`` -- SU(2) links as unit quaternions ``a0 1 + i a.sigma`` stored as
  real component planes: products, daggers, the projection to the algebra and the
  exponential are a few real multiply-adds.
* ``U2QuaternionField`` -- U(2) links as ``exp(i phi) Q`` with Q a unit quaternion: the
  U(1) phase is an angle, the SU(2) part as above.  (phi, Q) and (phi + pi, -Q) are the
  same link; nothing depends on the choice.

Shapes (real tensors, chain axis first like every other batch in the package):

==================  ====================  ===============================
field               q                     p (algebra coordinates)
==================  ====================  ===============================
U1AngleField        (chains, 2, L, L)     (chains, 2, L, L)
SU2QuaternionField  (chains, 2, 4, L, L)  (chains, 2, 3, L, L)
U2QuaternionField   (chains, 2, 5, L, L)  (chains, 2, 4, L, L)
==================  ====================  ===============================

Quaternion components are (a0, a1, a2, a3) of ``campaign.groups.quaternion_to_su2``; the
fifth U(2) component is phi.  Momenta are the coordinates ``p_a`` of ``sum_a p_a T_a`` in
the orthonormal basis of ``Group.basis``; every representation takes them from
``gaussian_momenta`` (a counter-based Threefry stream keyed by the run's generator), so
the same seed gives the same trajectory in every representation.

Memory layout: the fast fields create their tensors with the chain axis innermost in
memory (``chains_last``: a permuted view of a ``(2, [components,] L, L, chains)``
buffer), so that every lattice shift moves whole contiguous rows of chains and the
compiled kernels vectorise over chains without wrap-around index arithmetic.  This is a
pure performance matter: every method accepts any strides, elementwise torch ops keep
the layout, and with one chain it coincides with the contiguous one.

Speed: the per-step kernels (force, drift, action) are pure tensor functions.  On large
enough problems they run through ``torch.compile`` (inductor fuses each into one or two
C++/OpenMP or Triton loops; on CPU sines and cosines become range-reduced polynomials,
exact to a few ulp); they run eagerly for small problems, for inputs that require grad,
and whenever compilation is unavailable or fails (one warning, then eager for the rest
of the process).  Environment variable ``CAMPAIGN_COMPILE``: ``auto`` (default: compile
from ``COMPILE_MIN_LINKS`` links x chains on), ``1``/``always``, ``0``/``never``.
Nothing in the molecular-dynamics step synchronises with the host.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import torch

from .actions import force_from_plaquettes, plaquette_action_density
from .groups import SU2, U1, U2, Group, complex_dtype, matmul, quaternion_to_su2, trace
from .lattice import plaquettes

SQRT1_2 = 1.0 / math.sqrt(2.0)
COMPILE_MIN_LINKS = 8192  # links x chains from which "auto" compiles (L=16 x 16 chains)


class LinkField:
    name = "abstract"

    def __init__(self, group: Group, dtype=torch.float64, device=None):
        self.group = group
        self.real_dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def broadcast(self, mask: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return mask.reshape(mask.shape + (1,) * (q.ndim - mask.ndim))

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
        plaquette loops (U(2), L = 32 x 64 chains: 2.4 ms against 0.54 + 1.04 ms)."""
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


# ---------------------------------------------------------------- compilation
_INDUCTOR_OPTIONS = {
    # let gcc fuse a * b + c into FMA instructions (inductor compiles with -ffp-contract=off):
    # the polynomials and quaternion products run ~1.5x faster, results change by rounding
    "cpp.enable_floating_point_contract_flag": "fast",
}
_compile_disabled_reason: str | None = None


def compile_mode() -> str:
    mode = os.environ.get("CAMPAIGN_COMPILE", "auto").strip().lower()
    if mode in ("0", "no", "off", "false", "never"):
        return "never"
    if mode in ("1", "yes", "on", "true", "always"):
        return "always"
    return "auto"


def compile_disabled_reason() -> str | None:
    """Why compilation was switched off in this process (None while it works)."""
    return _compile_disabled_reason


class _Kernel:
    """A pure tensor function run through torch.compile when asked, eagerly otherwise.

    If the compiled call raises where the eager call succeeds, compilation is broken here
    (no C++ compiler, no Triton, unsupported Python): warn once and stay eager for the
    rest of the process.  An error the eager call raises too is the caller's and is
    re-raised unchanged."""

    def __init__(self, fn, dynamic: bool | None = None, options: dict | None = None):
        self.fn = fn
        self.name = fn.__name__.lstrip("_")
        self.dynamic = dynamic
        self.options = {**_INDUCTOR_OPTIONS, **(options or {})}
        self._compiled = None

    def __call__(self, use_compiled: bool, *args):
        global _compile_disabled_reason
        if not use_compiled or _compile_disabled_reason is not None:
            return self.fn(*args)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.fn, options=self.options, dynamic=self.dynamic)
            return self._compiled(*map(_canonical_single_chain, args))
        except Exception as exc:  # noqa: BLE001 - decided below by the eager call
            out = self.fn(*args)  # raises the caller's own errors
            msg = str(exc).strip().splitlines()
            _compile_disabled_reason = f"{type(exc).__name__}: {msg[0] if msg else ''}"
            warnings.warn(
                f"campaign.fields: torch.compile failed for {self.name} "
                f"({_compile_disabled_reason[:300]}); running eagerly from now on",
                RuntimeWarning,
                stacklevel=3,
            )
            return out


# ---------------------------------------------------------------- layout
def _canonical_single_chain(t):
    """With one chain, the chain axis's stride is arbitrary (chains_last makes it 1, a
    kernel's output has it numel): one canonical value, or every other call fails
    dynamo's stride guard and recompiles (a minute per kernel for U(2) at L = 64)."""
    if torch.is_tensor(t) and t.ndim > 1 and t.shape[0] == 1 and t.stride(0) != t[0].numel():
        # an alias through set_, not a view: dynamo would guard on a view's base strides
        alias = torch.empty(0, dtype=t.dtype, device=t.device)
        return alias.set_(t.untyped_storage(), t.storage_offset(), t.shape, (t[0].numel(), *t.stride()[1:]))
    return t


def chains_last(t: torch.Tensor) -> torch.Tensor:
    """Same values and shape (chain axis first), chain axis innermost in memory."""
    return t.movedim(0, -1).contiguous().movedim(-1, 0)


def _phys(t):
    """View with the chain axis last: (..., x, y, chains); contiguous for chains_last t."""
    return t.movedim(0, -1)


def _up(f, mu):
    """f(x + mu_hat) for a field laid out (..., x, y, chains)."""
    return torch.roll(f, -1, f.ndim - 3 + mu)


def _down(f, mu):
    """f(x - mu_hat)"""
    return torch.roll(f, 1, f.ndim - 3 + mu)


# ------------------------------------------------- sin / cos inside compiled kernels
# On CPU inductor calls SLEEF's 1-ulp sin/cos, several times slower than the rest of a
# kernel.  Instead: t = 2 pi k + r with |r| <= pi (Cody-Waite, two-part 2 pi), then a
# Taylor polynomial in r^2 (truncation error below 1e-18 in float64, 1e-8 in float32):
# a dozen fused multiply-adds, no branches.  Absolute error a few 1e-16 in float64 for
# |t| up to ~100 (beyond, the rounding of t itself dominates, as for any sine).  Eager
# code and other devices use torch.sin / torch.cos.
def _poly_wanted(x) -> bool:
    return x.device.type == "cpu" and torch.compiler.is_compiling()


def _reduce(t):
    """(k, r) with t = 2 pi k + r, |r| <= pi."""
    k = torch.round(t * (0.5 / math.pi))
    return k, (t - k * 6.283185307179586) - k * 2.4492935982947064e-16


def _horner(x2, coeffs):
    acc = coeffs[-1]
    for c in reversed(coeffs[:-1]):
        acc = acc * x2 + c
    return acc


def _taylor(dtype):
    """Coefficients of sin(r) / r and cos(r) in r^2 for |r| <= pi."""
    n_sin, n_cos = (15, 16) if dtype == torch.float64 else (10, 10)
    s = [(-1) ** k / math.factorial(2 * k + 1) for k in range(n_sin)]
    c = [(-1) ** k / math.factorial(2 * k) for k in range(n_cos)]
    return s, c


def _sin(x):
    if not _poly_wanted(x):
        return torch.sin(x)
    _, r = _reduce(x)
    return r * _horner(r * r, _taylor(x.dtype)[0])


def _cos(x):
    if not _poly_wanted(x):
        return torch.cos(x)
    _, r = _reduce(x)
    return _horner(r * r, _taylor(x.dtype)[1])


def _cos_sinc(t):
    """cos t and sin(t) / t for t >= 0."""
    if not _poly_wanted(t):
        return torch.cos(t), torch.sinc(t * (1 / math.pi))
    s, c = _taylor(t.dtype)
    k, r = _reduce(t)
    r2 = r * r
    sinc_r = _horner(r2, s)
    small = k == 0  # then r = t
    return _horner(r2, c), torch.where(small, sinc_r, r * sinc_r / torch.where(small, 1.0, t))


# ---------------------------------------------------------------- U(1) angles
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


# Several pairs in one kernel (U(1), L = 32, 64 chains): 20 pairs as 10 calls of two took
# 0.64x the time of 20 calls, as 5 calls of four 0.8x that again -- a U(1) pair is short
# enough that the per-call cost and the memory passes between calls count.  SU(2) and U(2)
# run drift and kick as two kernels (see LinkField.drift_kick).
def _u1_drift_kick_2(q, p, h, cbeta1, cbeta2):
    q, p = _u1_drift_kick(q, p, h, cbeta1)
    return _u1_drift_kick(q, p, h, cbeta2)


def _u1_drift_kick_4(q, p, h, cbeta1, cbeta2, cbeta3, cbeta4):
    q, p = _u1_drift_kick_2(q, p, h, cbeta1, cbeta2)
    return _u1_drift_kick_2(q, p, h, cbeta3, cbeta4)


_U1_FORCE = _Kernel(_u1_force)
_U1_DRIFT_KICKS = {4: _Kernel(_u1_drift_kick_4), 2: _Kernel(_u1_drift_kick_2)}
_U1_KICK = _Kernel(_u1_kick)
_U1_DRIFT_KICK = _Kernel(_u1_drift_kick)
_U1_DENSITY = _Kernel(_u1_density_sum)


# ---------------------------------------------------------------- quaternions
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
        # subtraction after it cost a pass more (kick U(2) 1.39 -> 1.04 ms, SU(2) 0.98 ->
        # 0.61 ms at L = 32 x 64 chains, 2 threads)
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
# registers: kick 0.80 -> 0.66-0.72 ms (L = 32 x 64 chains, 2 threads; 1 thread 1.52 -> 1.31-1.41).
# No gain for SU(2) and the drifts, and minutes of compilation for the drifts.
_U2_KICK = _Kernel(_u2_kick, options={"realize_reads_threshold": 6, "realize_cpu_opcount_threshold": 100})
_SU2_DENSITY = _Kernel(_su2_density_sum)
_SU2_DRIFT = _Kernel(_su2_drift)
_U2_FORCE = _Kernel(_u2_force)
_U2_DENSITY = _Kernel(_u2_density_sum)
_U2_DRIFT = _Kernel(_u2_drift)


# ---------------------------------------------------------------- momenta
# Gaussian momenta come from a counter-based generator, Threefry-4x32-20 (Salmon, Moraes,
# Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC11; the Random123
# reference): the n-th pair of normals is a pure function of (key, n), so one compiled
# kernel draws all momenta in parallel, straight into the field's memory layout, with
# the same numbers on every device.  torch.randn's Mersenne twister is sequential and
# took 15-25% of a trajectory (float64, L = 32, 64 chains).  The 128-bit key is drawn
# from the run's torch.Generator at every refresh: the stream stays seeded by, and
# checkpointed with, that generator.
THREEFRY_ROTATIONS = ((10, 26), (11, 21), (13, 27), (23, 5), (6, 20), (17, 11), (25, 10), (18, 20))
_MASK32 = 0xFFFFFFFF


def _is_int32(x) -> bool:
    return torch.is_tensor(x) and x.dtype == torch.int32


def _wrap32(x):
    # int32 tensors wrap by themselves (two's complement; vector instructions wrap)
    return x if _is_int32(x) else x & _MASK32


def _rotl32(x, r):
    if _is_int32(x):  # >> is arithmetic on int32: keep only the r bits rotated in
        return (x << r) | ((x >> (32 - r)) & ((1 << r) - 1))
    return ((x << r) | (x >> (32 - r))) & _MASK32


def threefry4x32(counter, key, rounds: int = 20):
    """The Threefry-4x32 block function: four counter words and four key words, each a
    Python int, an int64 tensor of values in [0, 2^32), a numpy uint32 array or an int32
    tensor (the same bits, read as signed), to four pseudo-random words of that kind.
    int64 holds every intermediate exactly (no signed overflow anywhere); uint32 and
    int32 wrap, which the masks make no difference to."""
    ks = [*key, 0x1BD11BDA ^ key[0] ^ key[1] ^ key[2] ^ key[3]]
    x = [_wrap32(counter[i] + ks[i]) for i in range(4)]
    for r in range(rounds):
        a, b = THREEFRY_ROTATIONS[r % 8]
        i, j = (1, 3) if r % 2 == 0 else (3, 1)
        x[0] = _wrap32(x[0] + x[i])
        x[i] = _rotl32(x[i], a) ^ x[0]
        x[2] = _wrap32(x[2] + x[j])
        x[j] = _rotl32(x[j], b) ^ x[2]
        if r % 4 == 3:  # key injection
            s = r // 4 + 1
            x = [_wrap32(x[k] + ks[(s + k) % 5]) for k in range(4)]
            x[3] = _wrap32(x[3] + s)
    return x


def _as_int32(t):
    """int64 values in [0, 2^32) to int32 tensors with the same 32 bits."""
    return (t - ((t >> 31) << 32)).to(torch.int32)


def _counter_words(key, n_counters: int, dtype: torch.dtype):
    """The four Threefry words of counters 0 .. n_counters - 1, as tensors of dtype."""
    if key.device.type == "cpu" and not torch.compiler.is_compiling() and n_counters < 2**32:
        # eager on the CPU (small lattices): numpy's uint32 arithmetic wraps by itself and
        # costs a fraction of torch's per-operation overhead (0.4 ms against 1.1-2.5 ms
        # per refresh at L = 8); the same bits
        n = np.arange(n_counters, dtype=np.uint32)
        zero = np.zeros_like(n)
        words = threefry4x32((n, zero, zero, zero), [np.uint32(k) for k in key.tolist()])
        return [torch.from_numpy(w.astype(np.float64)).to(dtype) for w in words]
    # int32 words: twice the lanes of int64 per vector instruction (32768 counters, 1
    # thread: 0.70 -> 0.33 ms); int32 -> float64 converts natively, and the unsigned value
    # is exact there, so the words round to float32 once, as from int64
    n = torch.arange(n_counters, device=key.device)
    zero = torch.zeros_like(n, dtype=torch.int32)
    words = threefry4x32((_as_int32(n & _MASK32), _as_int32(n >> 32), zero, zero), _as_int32(key).unbind(0))
    return [(w.to(torch.float64) + torch.where(w < 0, 4294967296.0, 0.0)).to(dtype) for w in words]


def _gaussian_pairs(key, n_pairs: int, dtype: torch.dtype):
    """(2, n_pairs) standard normals, Box-Muller from uniforms made of the counters' bits
    (the first uniform never 0, for the logarithm).  float64: pair n from counter n, two
    64-bit uniforms.  float32: counter n gives pairs n and n + ceil(n_pairs / 2), four
    32-bit uniforms -- a float32 normal cannot use more bits, and the integer work halves."""
    if dtype == torch.float64:
        w = _counter_words(key, n_pairs, dtype)
        u1 = (w[0] * 4294967296.0 + w[1] + 0.5) * 5.421010862427522e-20  # 2^-64
        u2 = (w[2] * 4294967296.0 + w[3]) * 5.421010862427522e-20
        return _box_muller(u1, u2)
    w = _counter_words(key, (n_pairs + 1) // 2, dtype)
    # both halves in one loop and one (2, 2, half) block: concatenating the halves first
    # made inductor's loops scale badly with threads (2 threads: 1.0x of one)
    halves = [_box_muller((a + 0.5) * 2.3283064365386963e-10, b * 2.3283064365386963e-10)  # 2^-32
              for a, b in ((w[0], w[1]), (w[2], w[3]))]
    return torch.stack(halves, 1).flatten(1)[:, :n_pairs]


def _box_muller(u1, u2):
    """(2, n) standard normals from uniforms u1 in (0, 1] and u2 in [0, 1)."""
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = (2 * math.pi) * u2
    return torch.stack((r * _cos(theta), r * _sin(theta)))


_GAUSSIAN_PAIRS = _Kernel(_gaussian_pairs, dynamic=True)  # one compilation for every size


def gaussian_momenta(generator, shape, dtype, device, compiled: bool = False) -> torch.Tensor:
    """Standard normal momentum coordinates laid out (2, dim, L1, L2, chains) for
    shape = (chains, L1, L2, dim): pair number ((a L1 + x) L2 + y) chains + c of
    ``_gaussian_pairs`` is the coordinate a at site (x, y), chain c, of the links in
    direction 0 and 1.  Every field takes its momenta from here (a view, no copy), so one
    seed gives the same trajectory in every representation."""
    chains, L1, L2, dim = shape
    key = torch.randint(0, 2**32, (4,), generator=generator, dtype=torch.int64, device=device)
    z = _GAUSSIAN_PAIRS(compiled, key, dim * L1 * L2 * chains, dtype)
    return z.view(2, dim, L1, L2, chains)


# ---------------------------------------------------------------- bookkeeping kernels
# The per-trajectory steps around the integrator; compiled, each is one pass (eager
# they were 3-6 passes and about 10% of a U(1) trajectory).
def _kinetic(p):
    # actions, kinetic energies and H accumulate in float64 whatever the field's dtype:
    # dH is a small difference of two extensive sums
    return 0.5 * p.square().sum(tuple(range(1, p.ndim)), dtype=torch.float64)


def _wrap_angle(t):
    """t - 2 pi k in [-pi, pi]: a multiplication and a rounding (``_reduce``), where
    torch.remainder divides (U(1) normalise 0.42 -> 0.07 ms, float32, L = 32 x 64 chains)."""
    return _reduce(t)[1]


def _unit_quaternion(u):
    """The four components of u, laid out (2, C >= 4, x, y, chains), scaled to unit norm
    (spelled out: a sum over the component axis makes inductor write a reduction)."""
    a = u[:, :4].unbind(1)
    r = torch.rsqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2] + a[3] * a[3])
    return [c * r for c in a]


def _u1_normalise(q):
    return _wrap_angle(q)


def _su2_normalise(q):
    return torch.stack(_unit_quaternion(_phys(q)), 1).movedim(-1, 0)


def _u2_normalise(q):
    u = _phys(q)
    return torch.stack((*_unit_quaternion(u), _wrap_angle(u[:, 4])), 1).movedim(-1, 0)


# H = p^2 / 2 + S in one call: one kernel launch and one dynamo call (~40 us) fewer, twice
# a trajectory -- a tenth of a float32 U(1) trajectory at L = 32 went to these small calls
def _u1_hamiltonian(q, p, beta):
    return _kinetic(p) + beta * _u1_density_sum(q)


def _su2_hamiltonian(q, p, beta):
    return _kinetic(p) + beta * _su2_density_sum(q)


def _u2_hamiltonian(q, p, beta):
    return _kinetic(p) + beta * _u2_density_sum(q)


_KINETIC = _Kernel(_kinetic)
_U1_HAMILTONIAN = _Kernel(_u1_hamiltonian)
_SU2_HAMILTONIAN = _Kernel(_su2_hamiltonian)
_U2_HAMILTONIAN = _Kernel(_u2_hamiltonian)
_U1_NORMALISE = _Kernel(_u1_normalise)
_SU2_NORMALISE = _Kernel(_su2_normalise)
_U2_NORMALISE = _Kernel(_u2_normalise)


# ---------------------------------------------------------------- fast fields
class _FastField(LinkField):
    """Shared plumbing of the real-tensor representations."""

    components = 0  # per link; 0: a bare angle
    _force_kernel = _density_kernel = _drift_kernel = _kick_kernel = _drift_kick_kernel = None
    _normalise_kernel = _hamiltonian_kernel = None
    _fused_drift_kicks: dict = {}  # pairs per call -> kernel, largest first

    def __init__(self, group: Group, dtype=torch.float64, device=None):
        super().__init__(group, dtype, device)
        self._scalars: dict = {}

    def compiles(self, q):
        mode = compile_mode()
        if mode == "never" or _compile_disabled_reason is not None:
            return False
        if mode == "always":
            return True
        return q.shape[0] * 2 * q.shape[-1] * q.shape[-2] >= COMPILE_MIN_LINKS

    def _use(self, q, *others) -> bool:
        if any(torch.is_tensor(t) and t.requires_grad for t in (q, *others)):
            return False
        return self.compiles(q)

    def _tensor(self, x, q):
        """beta or eps for a kernel: one value, or one per chain, as a 1-d tensor of q's
        dtype and device (the chain axis is innermost inside the kernels, so it
        broadcasts as is).  Not a Python float, which the compiled kernel would bake in
        and recompile for every new value; not a 0-d tensor, for which dynamo adds a
        guard calling .item() -- a host sync on every call on a GPU.  Python numbers are
        cached: an integrator uses the same few coefficients thousands of times, and a
        fresh tensor per call costs as much as a small kernel."""
        if torch.is_tensor(x):
            return x.to(dtype=q.dtype, device=q.device).reshape(-1)
        key = (float(x), q.dtype, q.device)
        t = self._scalars.get(key)
        if t is None:
            if len(self._scalars) >= 64:
                self._scalars.clear()
            # torch.full, not torch.tensor: no blocking host-to-device copy on a GPU
            t = self._scalars[key] = torch.full((1,), float(x), dtype=q.dtype, device=q.device)
        return t

    def _scaled(self, beta, c, q):
        """beta * c as a kernel argument (one multiplication in Python for a number)."""
        if torch.is_tensor(beta):
            return self._tensor(beta, q) * c
        return self._tensor(float(beta) * c, q)

    def _shape(self, chains, L):
        return (chains, 2, self.components, L, L) if self.components else (chains, 2, L, L)

    def cold_start(self, chains: int, L: int | None = None) -> torch.Tensor:
        q = torch.zeros(self._shape(chains, L), dtype=self.real_dtype, device=self.device)
        if self.components:
            q[:, :, 0] = 1
        return chains_last(q)

    def action(self, q, beta):
        return self._tensor(beta, q) * self._density_kernel(self._use(q), q)

    def mean_plaquette(self, q):
        return 1 - self._density_kernel(self._use(q), q) / (q.shape[-1] * q.shape[-2])

    def force(self, q, beta):
        return self._force_kernel(self._use(q, beta), q, self._tensor(beta, q))

    def drift(self, q, p, eps):
        return self._drift_kernel(self._use(q, p, eps), q, p, self._tensor(eps, q))

    def kick(self, p, q, beta, c):
        return self._kick_kernel(self._use(q, p, beta), q, p, self._scaled(beta, c, q))

    def drift_kick(self, q, p, h, beta, c):
        if self._drift_kick_kernel is None:
            return super().drift_kick(q, p, h, beta, c)
        return self._drift_kick_kernel(self._use(q, p, beta, h), q, p, self._tensor(h, q), self._scaled(beta, c, q))

    def drift_kicks(self, q, p, h, beta, kicks):
        kicks, use, ht = list(kicks), self._use(q, p, beta, h), self._tensor(h, q)
        while kicks:
            size = next((n for n in self._fused_drift_kicks if n <= len(kicks)), 1)
            if size == 1:
                q, p = self.drift_kick(q, p, h, beta, kicks.pop(0))
                continue
            coefficients = [self._scaled(beta, c, q) for c in kicks[:size]]
            q, p = self._fused_drift_kicks[size](use, q, p, ht, *coefficients)
            del kicks[:size]
        return q, p

    def momenta(self, q, generator):
        chains, L1, L2 = q.shape[0], q.shape[-2], q.shape[-1]
        shape = (chains, L1, L2, self.group.algebra_dim)
        z = gaussian_momenta(generator, shape, q.dtype, q.device, self._use(q)).movedim(-1, 0)
        return z if self.components else z[:, :, 0]

    def kinetic(self, p):
        return _KINETIC(self._use(p), p)

    def hamiltonian(self, q, p, beta):
        return self._hamiltonian_kernel(self._use(q, p, beta), q, p, self._tensor(beta, q))

    def normalise(self, q):
        return self._normalise_kernel(self._use(q), q)


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


FIELDS = {"u1": U1AngleField, "su2": SU2QuaternionField, "u2": U2QuaternionField}


def field_for(group: Group, dtype=torch.float64, device=None) -> LinkField:
    """The fastest exact representation available for the group."""
    cls = FIELDS.get(group.name)
    if cls is None:
        return MatrixField(group, dtype, device)
    return cls(dtype, device)
