"""Denoising score matching on the gauge group: forward noising U_sigma = V U_0 with
V ~ K_{sigma^2} (``heat_kernel``), training noise levels, and the DSM loss (weight
sigma^2, normalised per algebra component, sigma log-uniform in [sigma_min, sigma_max])."""

from __future__ import annotations

import math

import torch

from ..groups import get_group, matmul, real_dtype
from .heat_kernel import heat_kernel_sample, kernel_score


def sample_sigma(batch: int, sigma_min: float, sigma_max: float, generator=None,
                 dtype=torch.float64, device=None) -> torch.Tensor:
    """Training noise levels, log-uniform in [sigma_min, sigma_max], shape (batch,)."""
    u = torch.rand(batch, generator=generator, dtype=dtype, device=device)
    return torch.exp(math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min)))


def _batch_sigma(sigma, U: torch.Tensor) -> torch.Tensor:
    """sigma (B,) -> shape broadcasting against U.shape[:-2] = (B, 2, L, L)."""
    rdt = real_dtype(U.dtype)
    s = torch.as_tensor(sigma, dtype=rdt, device=U.device)
    if s.ndim == 0:
        s = s.expand(U.shape[0])
    return s.reshape(-1, *([1] * (U.ndim - 3)))


def perturb(group, U0: torch.Tensor, sigma, generator=None):
    """Forward noising U_sigma = V U_0 with V ~ K_{sigma^2} per link; sigma (B,) or scalar.
    Returns (U_sigma, V)."""
    group = get_group(group)
    s = _batch_sigma(sigma, U0)
    V = heat_kernel_sample(group, U0.shape[:-2], s, generator=generator, dtype=U0.dtype, device=U0.device)
    return matmul(V, U0), V


def dsm_loss(model, U0: torch.Tensor, sigma: torch.Tensor, generator=None, target: str = "heat",
             reduce: bool = True) -> torch.Tensor:
    """Denoising score matching, weight sigma^2, per algebra component:
    mean |sigma (s_theta(U_sigma, sigma) - grad log K(U_sigma U_0^dag))|^2 / (2 L^2 dim)."""
    group = model.group
    U, V = perturb(group, U0, sigma, generator)
    tgt = kernel_score(group, V, _batch_sigma(sigma, U0), target)
    pred = model(U, sigma)
    diff = group.algebra_norm2(pred - tgt).sum((-1, -2, -3))  # (B,)
    ndof = U0.shape[-3] * U0.shape[-4] * 2 * group.algebra_dim
    per = sigma.to(diff.dtype) ** 2 * diff / ndof
    return per.mean() if reduce else per
