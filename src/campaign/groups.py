"""Compact gauge groups U(1), SU(2), U(2) as batched complex N x N matrices.

Conventions shared by every module (docs/conventions.md):

* Group elements are complex tensors of shape ``(..., N, N)``; U(1) uses N = 1.
* The Lie algebra is the anti-Hermitian matrices (traceless for SU(2)) with the real
  inner product ``<A, B> = -Re tr(A B)``.  ``basis`` is orthonormal for it:
  U(1): ``i``;  SU(2): ``i sigma_a / sqrt 2``;  U(2): those three plus ``i 1 / sqrt 2``.
  Algebra Gaussian noise ``sum_a eta_a T_a`` with standard-normal ``eta_a`` is then the
  increment of unit Brownian motion, HMC kinetic energy is ``sum_a p_a^2 / 2``, and the
  U(1) coordinate is exactly the link angle.
* Derivatives act from the left: ``d_a f(U) = d/dt f(exp(t T_a) U)`` at ``t = 0``; a
  gradient ``sum_a (d_a f) T_a`` is an algebra element (forces, scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .theories import THEORIES, THEORY_NAMES, UnknownGroupError, get_theory  # noqa: F401 (UnknownGroupError re-exported)

GROUP_NAMES = THEORY_NAMES  # the registered theories (campaign.theories) name the groups


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex128: torch.float64, torch.complex64: torch.float32}.get(dtype, dtype)


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.float64: torch.complex128, torch.float32: torch.complex64}.get(dtype, dtype)


def dagger(m: torch.Tensor) -> torch.Tensor:
    return m.conj().transpose(-1, -2)


def trace(m: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(m, dim1=-2, dim2=-1).sum(-1)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched product of N x N matrices; for N = 1, 2 written out because batched
    matmul of tiny matrices is several times slower on CPU."""
    n = a.shape[-1]
    if n == 1:
        return a * b
    if n == 2:
        a00, a01, a10, a11 = a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1]
        b00, b01, b10, b11 = b[..., 0, 0], b[..., 0, 1], b[..., 1, 0], b[..., 1, 1]
        # one stack of the four entries (nested stacks copy the result twice)
        out = torch.stack((a00 * b00 + a01 * b10, a00 * b01 + a01 * b11,
                           a10 * b00 + a11 * b10, a10 * b01 + a11 * b11), -1)
        return out.unflatten(-1, (2, 2))
    return a @ b


def matmul_dagger(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b^dagger"""
    return matmul(a, dagger(b))


@dataclass(frozen=True)
class Group:
    name: str
    N: int
    special: bool  # determinant fixed to one

    @property
    def algebra_dim(self) -> int:
        return self.N * self.N - (1 if self.special else 0)

    @property
    def has_topology(self) -> bool:
        """2D topological charge exists for U(N) (through arg det), not for SU(N)."""
        return not self.special

    # ----------------------------------------------------------------- algebra
    def basis(self, dtype=torch.complex128, device=None) -> torch.Tensor:
        """Orthonormal algebra basis, shape (algebra_dim, N, N)."""
        dtype = complex_dtype(dtype)
        if self.N == 1:
            return torch.tensor([[[1j]]], dtype=dtype, device=device)
        s = 1.0 / math.sqrt(2.0)
        sig = [
            [[0, 1j * s], [1j * s, 0]],  # i sigma_1 / sqrt2
            [[0, s], [-s, 0]],  # i sigma_2 / sqrt2
            [[1j * s, 0], [0, -1j * s]],  # i sigma_3 / sqrt2
        ]
        if not self.special:
            sig.append([[1j * s, 0], [0, 1j * s]])
        return torch.tensor(sig, dtype=dtype, device=device)

    def from_coords(self, c: torch.Tensor) -> torch.Tensor:
        """Real coordinates (..., algebra_dim) -> algebra matrices (..., N, N)."""
        b = self.basis(complex_dtype(c.dtype), c.device)
        return torch.einsum("...a,aij->...ij", c.to(b.dtype), b)

    def to_coords(self, x: torch.Tensor) -> torch.Tensor:
        """Algebra matrices -> real coordinates, c_a = -Re tr(T_a X)."""
        b = self.basis(x.dtype, x.device)
        return -torch.einsum("aij,...ji->...a", b, x).real

    def project_algebra(self, m: torch.Tensor) -> torch.Tensor:
        """Orthogonal projection of any N x N matrix onto the algebra."""
        x = 0.5 * (m - dagger(m))
        if self.special:
            eye = torch.eye(self.N, dtype=m.dtype, device=m.device)
            x = x - (trace(x) / self.N)[..., None, None] * eye
        return x

    def algebra_norm2(self, x: torch.Tensor) -> torch.Tensor:
        """<X, X> = sum_a c_a^2, reduced over the last two axes."""
        return (x.conj() * x).real.sum((-1, -2))

    def random_algebra(self, shape, generator=None, dtype=torch.float64, device=None) -> torch.Tensor:
        """Standard Gaussian algebra element sum_a eta_a T_a, shape (*shape, N, N)."""
        eta = torch.randn(
            (*shape, self.algebra_dim), generator=generator, dtype=real_dtype(dtype), device=device
        )
        return self.from_coords(eta)

    # ------------------------------------------------------------------- group
    def identity(self, shape, dtype=torch.float64, device=None) -> torch.Tensor:
        eye = torch.eye(self.N, dtype=complex_dtype(dtype), device=device)
        return eye.expand(*shape, self.N, self.N).clone()

    def exp(self, x: torch.Tensor) -> torch.Tensor:
        """Exponential of algebra elements (closed forms for N = 1, 2)."""
        if self.N == 1:
            return torch.exp(x)
        if self.N == 2:
            tr_half = trace(x) / 2
            xs = x - tr_half[..., None, None] * torch.eye(2, dtype=x.dtype, device=x.device)
            # traceless anti-Hermitian: xs^2 = -theta^2 1
            theta2 = (-(xs[..., 0, 0] ** 2 + xs[..., 0, 1] * xs[..., 1, 0])).real.clamp_min(0)
            # series below theta^2 = 1e-6 keeps exp and its autograd finite at X = 0
            small = theta2 < 1e-6
            safe = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
            cos = torch.where(small, 1 - theta2 / 2 + theta2 * theta2 / 24, torch.cos(safe))
            sinc = torch.where(small, 1 - theta2 / 6 + theta2 * theta2 / 120, torch.sin(safe) / safe)
            eye = torch.eye(2, dtype=x.dtype, device=x.device)
            u = cos[..., None, None].to(x.dtype) * eye + sinc[..., None, None].to(x.dtype) * xs
            if not self.special:
                u = u * torch.exp(tr_half)[..., None, None]
            return u
        return torch.linalg.matrix_exp(x)

    def log(self, u: torch.Tensor) -> torch.Tensor:
        """Principal logarithm into the algebra (eigenphases in [-pi, pi])."""
        if self.N == 1:
            return 1j * torch.angle(u).to(u.dtype)
        eye = torch.eye(2, dtype=u.dtype, device=u.device)
        half = torch.zeros_like(u[..., 0, 0].real)
        if not self.special:
            det = u[..., 0, 0] * u[..., 1, 1] - u[..., 0, 1] * u[..., 1, 0]
            half = 0.5 * torch.angle(det)
            u = u * torch.exp(-1j * half.to(u.dtype))[..., None, None]
        # u in SU(2): u = cos t 1 + (sin t / t) X_s with eigenphases +-t, t in [0, pi]
        t = torch.arccos((trace(u).real / 2).clamp(-1, 1))
        xs = 0.5 * (u - dagger(u))
        if not self.special:
            # U(2) = (U(1) x SU(2)) / Z2: (half, u) and (half -+ pi, -u) are the same
            # element; the principal branch has eigenphases half +- t within [-pi, pi]
            flip = half.abs() + t > math.pi
            half = torch.where(flip, half - math.pi * torch.sign(half), half)
            t = torch.where(flip, math.pi - t, t)
            xs = torch.where(flip[..., None, None], -xs, xs)
        sin_t = torch.sin(t)
        small = sin_t.abs() < 1e-8
        factor = torch.where(small, torch.ones_like(t), t / torch.where(small, torch.ones_like(t), sin_t))
        x = factor[..., None, None].to(u.dtype) * xs
        if not self.special:
            x = x + (1j * half.to(u.dtype))[..., None, None] * eye
        return x

    def haar(self, shape, generator=None, dtype=torch.float64, device=None) -> torch.Tensor:
        """Haar-random group elements, shape (*shape, N, N)."""
        rdt = real_dtype(dtype)
        if self.N == 1:
            theta = 2 * math.pi * torch.rand(shape, generator=generator, dtype=rdt, device=device)
            return torch.polar(torch.ones_like(theta), theta)[..., None, None]
        q = torch.randn((*shape, 4), generator=generator, dtype=rdt, device=device)
        q = q / q.norm(dim=-1, keepdim=True)
        u = quaternion_to_su2(q)
        if not self.special:
            # Haar on U(1) x SU(2) pushes forward to Haar on U(2)
            phi = 2 * math.pi * torch.rand(shape, generator=generator, dtype=rdt, device=device)
            u = u * torch.polar(torch.ones_like(phi), phi)[..., None, None]
        return u

    def reunitarize(self, u: torch.Tensor) -> torch.Tensor:
        """Project back onto the group to remove accumulated rounding error."""
        if self.N == 1:
            return u / u.abs()
        if self.special:
            a, b = u[..., 0, 0], u[..., 0, 1]
            n = torch.sqrt(a.abs() ** 2 + b.abs() ** 2)
            a, b = a / n, b / n
            return torch.stack((a, b, -b.conj(), a.conj()), -1).unflatten(-1, (2, 2))
        if self.N == 2:
            return gram_schmidt_2x2(u)
        q, r = torch.linalg.qr(u)
        d = torch.diagonal(r, dim1=-2, dim2=-1)
        return q * (d / d.abs())[..., None, :]


def gram_schmidt_2x2(u: torch.Tensor) -> torch.Tensor:
    """Q of u = QR with R's diagonal real positive (Gram-Schmidt on the columns), written
    out: batched LAPACK QR of 2x2 matrices costs about a fifth of a U(2) sampling step."""
    a, c, b, d = u[..., 0, 0], u[..., 1, 0], u[..., 0, 1], u[..., 1, 1]
    n = torch.sqrt(a.real.square() + a.imag.square() + c.real.square() + c.imag.square())
    a, c = a / n, c / n
    p = a.conj() * b + c.conj() * d
    b, d = b - p * a, d - p * c
    n = torch.sqrt(b.real.square() + b.imag.square() + d.real.square() + d.imag.square())
    return torch.stack((a, b / n, c, d / n), -1).unflatten(-1, (2, 2))


def quaternion_to_su2(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion (a0, a1, a2, a3) -> a0 1 + i a.sigma in SU(2)."""
    a0, a1, a2, a3 = q.unbind(-1)
    entries = (torch.complex(a0, a3), torch.complex(a2, a1), torch.complex(-a2, a1), torch.complex(a0, -a3))
    return torch.stack(entries, -1).unflatten(-1, (2, 2))


_GROUPS = {t.name: Group(t.name, t.N, special=t.special) for t in THEORIES.values()}
U1, SU2, U2 = _GROUPS["u1"], _GROUPS["su2"], _GROUPS["u2"]


def get_group(name: str | Group) -> Group:
    """The Group of a registered theory name (case-insensitive); UnknownGroupError otherwise."""
    if isinstance(name, Group):
        return name
    return _GROUPS[get_theory(name).name]
