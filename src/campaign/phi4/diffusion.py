"""Diffusion models for phi^4 (issue 18): a symmetric score network and the exact samplers
built on it.

Score network (``Phi4Score``): for phi of shape (B, *lattice), any lattice dimension d <= 3
and any extents,

    score(phi, sigma) = -phi / (sigma^2 + c^2) + f(phi / sqrt(sigma^2 + c^2), sigma) / sigma,

f a stack of convolutions with circular padding (translation-equivariant on the torus),
no biases, odd activations (tanh) and sigma entering only as per-channel *scales*, so
f(-phi) = -f(phi) exactly: the score is Z2-odd.  Every kernel is the average of a free
kernel over the hyperoctahedral group of the lattice (axis permutations and reflections;
D4 in 2D), so the network commutes with the lattice's rotations and reflections (exactly up
to float rounding; on a lattice with unequal extents only the symmetries that map it to
itself apply).  The first term is the exact score of N(0, c^2) data, so an untrained network
(last layer zero) is already a valid model: iid N(0, c^2) sites.

Exact samplers with the model as proposal (``campaign.flat_diffusion.sample_flow``: the
discrete probability-flow map from N(0, sigma_max^2) and its exact log-density log q, with
the full V x V Jacobian of every step, built from one backward pass per colour of the
network's ``receptive_radius``; V <= 1024):

* ``independence_metropolis``: the model as an independence proposal in a Metropolis chain,
  accepting phi' with min(1, exp(-S(phi')) q(phi) / (exp(-S(phi)) q(phi'))).  Exact by
  construction whatever the model: the target is exp(-S) for any valid q (one that is
  positive wherever exp(-S) is).
* ``importance_weights``: log w = -S - log q and the Kish ESS per sample.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CampaignError
from .action import Phi4Couplings, action

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _hyperoctahedral(kernel: torch.Tensor, d: int) -> torch.Tensor:
    """Average of a kernel (out, in, k, ..., k) over the 2^d d! axis permutations and flips
    of its d spatial axes: a kernel invariant under the lattice's point group."""
    spatial = list(range(2, 2 + d))
    images = []
    for perm in itertools.permutations(spatial):
        k = kernel.permute(0, 1, *perm)
        for flips in itertools.product((False, True), repeat=d):
            axes = [a for a, f in zip(spatial, flips) if f]
            images.append(torch.flip(k, axes) if axes else k)
    return torch.stack(images).mean(0)


class SymmetricConv(nn.Module):
    """Circular-padded convolution, no bias, point-group-invariant kernel (odd size)."""

    def __init__(self, d: int, c_in: int, c_out: int, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise CampaignError(f"kernel size must be odd (centred on the site), got {kernel_size}")
        self.d, self.pad = d, kernel_size // 2
        fan_in = c_in * kernel_size**d
        self.weight = nn.Parameter(torch.randn(c_out, c_in, *([kernel_size] * d)) / math.sqrt(fan_in))

    def forward(self, h):
        padded = F.pad(h, [self.pad] * (2 * self.d), mode="circular") if self.pad else h
        return _CONV[self.d](padded, _hyperoctahedral(self.weight, self.d))


def receptive_radius(kernel_size: int, layers: int) -> int:
    """Torus distance per axis within which Phi4Score's output at a site sees its inputs:
    ``layers`` hidden convolutions and the output convolution, each reaching kernel_size // 2."""
    return (kernel_size // 2) * (layers + 1)


class Phi4Score(nn.Module):
    """Z2-odd, translation- and point-group-equivariant score network (module docstring)."""

    def __init__(self, d: int = 2, channels: int = 16, layers: int = 3, kernel_size: int = 3, c: float = 1.0,
                 embed: int = 32):
        super().__init__()
        if d not in _CONV:
            raise CampaignError(f"the phi^4 score network handles lattice dimension 1..3, got {d}")
        if channels < 1 or layers < 1:
            raise CampaignError(f"channels and layers must be >= 1, got {channels}, {layers}")
        if not (math.isfinite(c) and c > 0):
            raise CampaignError(f"the skip scale c must be > 0, got {c}")
        self.d, self.c, self.channels, self.layers = d, float(c), channels, layers
        # torus distance (per axis) within which the output at a site sees its inputs:
        # flat_diffusion.sample_flow builds the exact Jacobian from it (one colour per block)
        self.receptive_radius = receptive_radius(kernel_size, layers)
        widths = [1] + [channels] * layers
        self.convs = nn.ModuleList(SymmetricConv(d, a, b, kernel_size) for a, b in zip(widths[:-1], widths[1:]))
        self.out = SymmetricConv(d, channels, 1, kernel_size)
        nn.init.zeros_(self.out.weight)  # untrained = the exact score of N(0, c^2) sites
        # per-layer, per-channel scales from log sigma: multiplicative only, so oddness survives
        self.film = nn.Sequential(nn.Linear(1, embed), nn.SiLU(), nn.Linear(embed, layers * channels))

    def forward(self, phi: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if phi.ndim != self.d + 1:
            raise CampaignError(f"expected phi of shape (B, *lattice) with {self.d} lattice axes, "
                                f"got {tuple(phi.shape)}")
        B = phi.shape[0]
        s = sigma.reshape(B, *([1] * self.d)).to(phi.dtype)
        var = s * s + self.c**2
        h = (phi / torch.sqrt(var)).unsqueeze(1)
        scales = 1.0 + self.film(torch.log(sigma.reshape(B, 1).to(phi.dtype))).reshape(B, self.layers, self.channels)
        for i, conv in enumerate(self.convs):
            h = torch.tanh(conv(h) * scales[:, i].reshape(B, self.channels, *([1] * self.d)))
        f = self.out(h).squeeze(1)
        return -phi / var + f / s


# ---------------------------------------------------------------- exact samplers
def independence_metropolis(proposals: torch.Tensor, log_q: torch.Tensor, couplings: Phi4Couplings,
                            generator=None) -> dict:
    """Independence Metropolis chains fed by model proposals.

    proposals: (n, chains, *lattice), log_q: (n, chains) their exact model log-densities.
    Step 0 starts each chain at its first proposal; at step i > 0 the chain moves to
    proposal i with probability min(1, exp(-S') q / (exp(-S) q')).  Returns phi (n, chains,
    *lattice) in Monte Carlo order, accepted (n - 1, chains) and the acceptance rate."""
    if proposals.shape[:2] != log_q.shape:
        raise CampaignError(f"proposals {tuple(proposals.shape)} and log_q {tuple(log_q.shape)} do not match")
    n, chains = log_q.shape
    flat = proposals.reshape(n * chains, *proposals.shape[2:])
    # log of the importance weight exp(-S)/q of every proposal, float64
    log_w = (-action(flat, couplings)).reshape(n, chains) - log_q.double()
    current = torch.zeros(chains, dtype=torch.long)  # index of the current state, per chain
    index = torch.zeros(n, chains, dtype=torch.long)
    accepted = torch.zeros(max(n - 1, 0), chains, dtype=torch.bool)
    cols = torch.arange(chains)
    for i in range(1, n):
        log_u = torch.log(torch.rand(chains, generator=generator, dtype=torch.float64))
        acc = log_u < log_w[i] - log_w[current, cols]
        current = torch.where(acc, torch.full_like(current, i), current)
        index[i] = current
        accepted[i - 1] = acc
    phi = proposals[index, cols]
    return {"phi": phi, "accepted": accepted, "acceptance": float(accepted.double().mean()) if n > 1 else math.nan}


def importance_weights(proposals: torch.Tensor, log_q: torch.Tensor, couplings: Phi4Couplings) -> dict:
    """log w = -S - log q (up to the unknown log Z) per proposal (B, *lattice) and the Kish
    ESS per sample, (sum w)^2 / (B sum w^2)."""
    from ..stats import kish_ess

    log_w = (-action(proposals, couplings) - log_q.double()).cpu().numpy()
    return {"log_w": log_w, "ess_per_sample": kish_ess(log_w) / max(len(log_w), 1)}


def free_field_samples(kappa: float, shape: tuple[int, ...], n: int, generator=None,
                       dtype=torch.float64) -> torch.Tensor:
    """n exact samples (n, *shape) of the free field (lambda = 0): phi = K^{-1/2} eta in
    momentum space (``campaign.phi4.exact.free_kernel``)."""
    from .exact import free_kernel

    k = torch.as_tensor(free_kernel(kappa, tuple(shape)), dtype=torch.float64)
    eta = torch.randn((n, *shape), generator=generator, dtype=torch.float64)
    dims = tuple(range(1, len(shape) + 1))
    phi = torch.fft.ifftn(torch.fft.fftn(eta, dim=dims) / torch.sqrt(k), dim=dims).real
    return phi.to(dtype)


__all__ = ["Phi4Score", "SymmetricConv", "independence_metropolis", "importance_weights", "free_field_samples"]
