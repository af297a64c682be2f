"""Langevin proposals on the gauge group and the generic Metropolis-Hastings kernel.

Move and acceptance (for an injectable target log-density log p and drift d):
    X = eps d(U) + sqrt(2 eps) eta,  U' = exp(X) U,
    log q(U'|U) = -|X - eps d(U)|^2 / (4 eps) = -|eta|^2 / 2,
    log q(U|U') = -|-X - eps d(U')|^2 / (4 eps)          (the reverse move is -X),
    log alpha   = log p(U') - log p(U) + log q(U|U') - log q(U'|U)
                = log p(U') - log p(U) - sqrt(eps/2) <eta, d + d'> - eps/4 |d + d'|^2,
the last form being algebraically identical and free of cancellation in float32.  No
exp-map Jacobian appears: (U, X) -> (exp(X) U, -X) is an involution whose Jacobian with
respect to Haar x Lebesgue is one (left multiplication preserves Haar), so the kernel is
exact also where exp is not injective.  The same argument makes the proposal ratio the
exact importance-weight increment of a Langevin move with the reverse Langevin move as
backward kernel (Crooks), for any drift.

Precision: every log-density, log proposal ratio and log acceptance is accumulated in
float64, also for float32 fields (the per-link terms are computed in the field's dtype).
Every chain accepts or rejects on its own; step sizes may be a float, a 0-dim or a (B,)
tensor; nothing here synchronises with the host.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch

from ..actions import plaquette_action_density
from ..groups import Group, complex_dtype, matmul, real_dtype
from ..lattice import plaquettes

LogProb = Callable[[torch.Tensor], torch.Tensor]  # U -> (B,) float64 log density w.r.t. Haar
Drift = Callable[[torch.Tensor], torch.Tensor]  # U -> algebra tensor shaped like U


class ChainState(NamedTuple):
    """A batch of chains with the cached target log-density and drift of each."""

    U: torch.Tensor  # (B, ..., N, N)
    log_prob: torch.Tensor  # (B,) float64
    drift: torch.Tensor  # algebra, shaped like U


def sum_sites(x: torch.Tensor) -> torch.Tensor:
    """Sum over every axis but the chain axis, accumulated in float64."""
    return x.reshape(x.shape[0], -1).to(torch.float64).sum(1)


def algebra_inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """<A, B> = -Re tr(A B) = Re sum conj(A_ij) B_ij for anti-Hermitian A, per link."""
    return (a.conj() * b).real.sum((-1, -2))


def action_density_sum(U: torch.Tensor) -> torch.Tensor:
    """sum_P (1 - Re tr U_P / N) per configuration, float64: the Wilson action at beta = 1."""
    return sum_sites(plaquette_action_density(plaquettes(U)))


def wilson_log_prob(beta: float) -> LogProb:
    """Target log-density exp(-S_beta) (Wilson action at ``beta`` itself), float64."""
    return lambda U: -float(beta) * action_density_sum(U)


def init_state(U: torch.Tensor, log_prob: LogProb, drift: Drift) -> ChainState:
    return ChainState(U, log_prob(U), drift(U))


_BASIS_CACHE: dict = {}


def random_algebra(group: Group, shape, generator=None, dtype=torch.complex128, device=None) -> torch.Tensor:
    """Same draw as ``Group.random_algebra`` (standard normal coordinates times the
    orthonormal basis), with the basis cached per device: building it from a Python list
    every step would be a host-to-device copy, i.e. a synchronisation, on a GPU."""
    cdtype = complex_dtype(dtype)
    key = (group.name, cdtype, str(device))
    basis = _BASIS_CACHE.get(key)
    if basis is None:
        basis = _BASIS_CACHE[key] = group.basis(cdtype, device)
    c = torch.randn((*shape, group.algebra_dim), generator=generator, dtype=real_dtype(cdtype), device=device)
    return torch.einsum("...a,aij->...ij", c.to(cdtype), basis)


def _per_chain(x, like: torch.Tensor):
    """A scalar, 0-dim or (B,) step size broadcast against a (B, ..., N, N) tensor."""
    if torch.is_tensor(x) and x.ndim == 1:
        return x.reshape(x.shape[0], *([1] * (like.ndim - 1))).to(real_dtype(like.dtype))
    return x


def _sqrt(x):
    return torch.sqrt(x) if torch.is_tensor(x) else math.sqrt(x)


def langevin_proposal(group: Group, U: torch.Tensor, d: torch.Tensor, eps, generator=None):
    """X = eps d + sqrt(2 eps) eta, U' = exp(X) U (reunitarised).  Returns (U', eta)."""
    e = _per_chain(eps, U)
    eta = random_algebra(group, U.shape[:-2], generator=generator, dtype=U.dtype, device=U.device)
    X = e * d + _sqrt(2 * e) * eta
    return group.reunitarize(matmul(group.exp(X), U)), eta


def log_proposal_ratio(group: Group, eta: torch.Tensor, d: torch.Tensor, d_new: torch.Tensor, eps) -> torch.Tensor:
    """log q(U|U') - log q(U'|U) per chain (float64) for the move X = eps d + sqrt(2 eps) eta,
    written as -sqrt(eps/2) <eta, d + d'> - (eps/4) |d + d'|^2."""
    s = d + d_new
    e = eps.to(torch.float64) if torch.is_tensor(eps) else eps
    return -(_sqrt(e / 2) * sum_sites(algebra_inner(eta, s)) + (e / 4) * sum_sites(group.algebra_norm2(s)))


def mh_step(group: Group, state: ChainState, eps, log_prob: LogProb, drift: Drift, generator=None):
    """One Metropolis-adjusted Langevin step for every chain.

    Returns (new_state, accept_prob (B,), accepted (B,) bool), all on the device; a
    non-finite proposal (log density, drift) is always rejected."""
    U, lp, d = state
    U1, eta = langevin_proposal(group, U, d, eps, generator)
    lp1, d1 = log_prob(U1), drift(U1)
    log_alpha = lp1 - lp + log_proposal_ratio(group, eta, d, d1, eps)
    finite = torch.isfinite(log_alpha)
    accept_prob = torch.where(finite, torch.exp(log_alpha.clamp(max=0)), torch.zeros_like(log_alpha))
    u = torch.rand(accept_prob.shape, generator=generator, dtype=accept_prob.dtype, device=accept_prob.device)
    accepted = (u < accept_prob) & finite
    m = accepted.reshape(-1, *([1] * (U.ndim - 1)))
    new = ChainState(torch.where(m, U1, U), torch.where(accepted, lp1, lp), torch.where(m, d1, d))
    return new, accept_prob, accepted


def langevin_step(group: Group, U: torch.Tensor, d: torch.Tensor, eps, generator=None) -> torch.Tensor:
    """One unadjusted Langevin step; biased on its own."""
    return langevin_proposal(group, U, d, eps, generator)[0]


def default_step_size(group: Group, beta: float, L: int) -> float:
    """A first guess of the Metropolis-adjusted Langevin step size at coupling beta:
    ~ 1/(link stiffness) times the MALA d^(-1/3) scaling; step-size control corrects it."""
    stiffness = 1.0 + 2.0 * beta / group.N
    dof = 2 * L * L * group.algebra_dim
    return min(1.0, 1.0 / stiffness) * dof ** (-1.0 / 3.0)


def noise_levels(sigma_max: float, sigma_min: float, n_levels: int):
    """Geometric schedule from sigma_max down to sigma_min (n_levels values, float64)."""
    import numpy as np

    if n_levels == 0:
        return np.zeros(0)
    if n_levels == 1:
        return np.asarray([float(sigma_min)])
    return np.geomspace(float(sigma_max), float(sigma_min), n_levels)
