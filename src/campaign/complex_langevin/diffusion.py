"""A diffusion model of the CL distribution P(x, y) (arXiv 2412.01919): VE diffusion with
denoising score matching on CL samples (x, y), from ``campaign.flat_diffusion`` (the same
VE/DSM machinery as the scalar theory), with a small MLP score network.

Score network (``ScoreMLP``): input u = (x, y) / sqrt(sigma^2 + s_data^2) and log sigma; output
(MLP(u, log sigma) + M(log sigma) u) / sqrt(sigma^2 + s_data^2), with M a learned 2x2 matrix
function of the noise level (the Gaussian part of any score is linear in x; the MLP learns
the rest).  The score of the noised distribution is O(1/sigma) at large noise and
O(1/s_data) at small noise, so the raw outputs are O(1) at every level (s_data^2: the data's
mean variance per coordinate, fixed at construction).  Training: ``flat_diffusion.train_dsm``
in learning-rate stages, with an exponential moving average of the weights.

DM draws are read as holomorphic samples z = x + i y (``diagnostics.independent_moment_summary``).
``score_error`` compares the learned score at small noise with an exact one, e.g. the
Gaussian model's grad log (P * N(0, sigma^2)) = -(C + sigma^2 1)^{-1} (x, y).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .. import flat_diffusion as fd
from ..errors import CampaignError


class ScoreMLP(nn.Module):
    def __init__(self, data_var: float = 1.0, hidden: int = 64, depth: int = 3, dim: int = 2,
                 linear_head: bool = True):
        super().__init__()
        self.dim = dim
        # a learned sigma-dependent matrix M(sigma) applied to x: the Gaussian part of any
        # distribution's score is linear in x, so the MLP only has to learn the rest
        self.linear_head = (nn.Sequential(nn.Linear(1, hidden, dtype=torch.float64), nn.SiLU(),
                                          nn.Linear(hidden, dim * dim, dtype=torch.float64))
                            if linear_head else None)
        if not (math.isfinite(data_var) and data_var > 0):
            raise CampaignError(f"data variance must be > 0, got {data_var}")
        self.register_buffer("data_var", torch.tensor(float(data_var), dtype=torch.float64))
        layers, width = [], dim + 1
        for _ in range(depth):
            layers += [nn.Linear(width, hidden, dtype=torch.float64), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim, dtype=torch.float64))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.reshape(-1, 1).to(x.dtype)
        scale = torch.sqrt(s * s + self.data_var)
        u = x / scale
        out = self.net(torch.cat([u, torch.log(s)], dim=1))
        if self.linear_head is not None:
            m = self.linear_head(torch.log(s)).reshape(-1, self.dim, self.dim)
            out = out + torch.einsum("bij,bj->bi", m, u)
        return out / scale


@dataclass
class CLDiffusionSettings:
    # Adam stages (learning rate, steps) of flat_diffusion.train_dsm, with an exponential
    # moving average of the weights: measured on the Gaussian model (sigma = 1 + i, 49k CL
    # samples), one constant rate leaves the weights noisy enough for a 3-5 sigma bias of
    # <z^2> from 10^4 DM draws; the decaying rate plus EMA brings it within 1 sigma
    lr_stages: tuple = ((3e-3, 400), (1e-3, 300), (3e-4, 200))
    ema_decay: float = 0.99
    batch_size: int = 1024
    # Holomorphic moments are unchanged by the forward process: x + i y gets circular complex
    # Gaussian noise w, and E[w^k] = 0 for k >= 1, so <(z + w)^n> = <z^n> at every sigma.
    # Stopping at sigma_min = 0.1 therefore costs the moments nothing, and the DSM signal there
    # is far stronger than at 0.01 (the density itself is P * N(0, sigma_min^2)).
    sigma_min: float = 0.1
    sigma_max: float = 10.0
    hidden: int = 32
    depth: int = 3
    sample_steps: int = 100  # Heun levels of the sampler (40 leave a 1.5% bias in <z^2> at sigma_min = 0.05)

    def __post_init__(self):
        self.lr_stages = tuple((float(lr), int(n)) for lr, n in self.lr_stages)
        if not self.lr_stages or any(not (lr > 0 and n >= 1) for lr, n in self.lr_stages):
            raise CampaignError(f"lr_stages must be (learning rate > 0, steps >= 1) pairs, got {self.lr_stages}")
        if not 0 <= self.ema_decay < 1:
            raise CampaignError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        fd.check_sigmas(self.sigma_min, self.sigma_max)

    def dsm(self, lr: float, steps: int) -> fd.DSMSettings:
        return fd.DSMSettings(steps=steps, batch_size=self.batch_size, lr=lr,
                              sigma_min=self.sigma_min, sigma_max=self.sigma_max)

    def asdict(self) -> dict:
        return asdict(self)


def as_xy(z, field_shape: tuple = ()) -> torch.Tensor:
    """complex samples (..., *field_shape) -> float64 rows (x_1..x_D, y_1..y_D), D = prod(field_shape)
    (for a 0D model: (N, 2) rows (x, y))."""
    z = np.asarray(z).reshape(-1, math.prod(field_shape))
    return torch.from_numpy(np.concatenate([z.real, z.imag], axis=1).astype(np.float64))


def from_xy(xy: torch.Tensor, field_shape: tuple = ()) -> np.ndarray:
    """Inverse of ``as_xy``: complex (N, *field_shape)."""
    d = math.prod(field_shape)
    xy = xy.numpy()
    return (xy[:, :d] + 1j * xy[:, d:]).reshape(-1, *field_shape)


def train_cl_diffusion(z, settings: CLDiffusionSettings, seed: int = 0, field_shape: tuple = ()):
    """Train a ScoreMLP on CL samples z (complex array (..., *field_shape)) with
    flat_diffusion.train_dsm, one call per learning-rate stage; returns (EMA network, losses).
    Seconds of CPU time: not checkpointed."""
    data = as_xy(z, field_shape)
    if data.shape[0] < 2:
        raise CampaignError("need at least 2 CL samples to train a diffusion model")
    torch.manual_seed(seed)  # the network's initial weights
    net = ScoreMLP(float(data.var(0).mean()), settings.hidden, settings.depth, dim=data.shape[1])
    ema = copy.deepcopy(net)
    decay = settings.ema_decay

    @torch.no_grad()
    def update_ema(step, loss):
        for p_ema, p in zip(ema.parameters(), net.parameters()):
            p_ema.mul_(decay).add_(p, alpha=1 - decay)

    losses = []
    for i, (lr, steps) in enumerate(settings.lr_stages):
        losses += fd.train_dsm(net, data, settings.dsm(lr, steps), seed=1000 * seed + i, progress=update_ema)
    return ema, losses


@torch.no_grad()
def sample_cl_diffusion(net, n_samples: int, settings: CLDiffusionSettings, seed: int = 0,
                        method: str = "flow", field_shape: tuple = ()) -> np.ndarray:
    """DM draws as complex z = x + i y, shape (n_samples, *field_shape) (independent samples;
    read at sigma_min).
    ``method``: "flow", the probability-flow ODE dx/d ln sigma = -sigma^2 score with Heun
    steps on the geometric grid (deterministic given the prior draw: second order, so few
    levels suffice), or "sde", the reverse SDE of ``flat_diffusion.sample_reverse``."""
    gen = torch.Generator().manual_seed(seed)
    if method == "sde":
        xy = fd.sample_reverse(net, (net.dim,), settings.sample_steps, n_samples, sigma_min=settings.sigma_min,
                               sigma_max=settings.sigma_max, generator=gen)
    elif method == "flow":
        sig = fd.sigma_schedule(settings.sigma_min, settings.sigma_max, settings.sample_steps + 1)
        # the prior is p_sigma_max = P * N(0, sigma_max^2): its spread includes the data's own
        # (flat_diffusion's N(0, sigma_max^2) misses it by O(s_data^2 / sigma_max^2))
        data_var = float(getattr(net, "data_var", 0.0))
        xy = math.sqrt(settings.sigma_max ** 2 + data_var) * torch.randn((n_samples, net.dim), generator=gen,
                                                                         dtype=torch.float64)

        def velocity(x, s):
            return -(s * s) * net(x, torch.full((x.shape[0],), s, dtype=torch.float64))

        for k in range(settings.sample_steps):
            s0, s1 = float(sig[k]), float(sig[k + 1])
            h = math.log(s1 / s0)
            v0 = velocity(xy, s0)
            xy = xy + 0.5 * h * (v0 + velocity(xy + h * v0, s1))
    else:
        raise CampaignError(f"sampling method must be 'flow' or 'sde', got {method!r}")
    return from_xy(xy, field_shape)


@torch.no_grad()
def score_error(net, exact_score, xy: torch.Tensor, sigma: float) -> float:
    """Relative L2 error sqrt(sum |s_net - s_exact|^2 / sum |s_exact|^2) at the points xy, noise sigma."""
    levels = torch.full((xy.shape[0],), float(sigma), dtype=torch.float64)
    learned = net(xy, levels)
    exact = exact_score(xy, sigma)
    return float(torch.sqrt(((learned - exact) ** 2).sum() / (exact ** 2).sum()))


def gaussian_noisy_score(sigma_model: complex):
    """Exact score of the Gaussian model's P(x, y) convolved with N(0, s^2 1): -(C + s^2)^{-1} X."""
    from .exact import gaussian_covariance

    c = torch.from_numpy(gaussian_covariance(sigma_model))

    def score(xy: torch.Tensor, s: float) -> torch.Tensor:
        prec = torch.linalg.inv(c + s * s * torch.eye(2, dtype=torch.float64))
        return -xy @ prec.T

    return score
