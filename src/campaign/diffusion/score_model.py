"""The score model the sampler uses: a physics skip term plus an L-CNN correction.

Score model parametrisation
---------------------------
    s(U, sigma) = -beta0 g(sigma) F(U) + c_out(sigma) net(U, sigma)
F = ``wilson_force(group, U, 1)`` (so -beta0 F = -grad S_beta0, the exact sigma -> 0 limit of
the score of exp(-S_beta0)), t = sigma^2, and
    g(sigma) = exp(-a t) / (1 + b t),   c_out(sigma) = sigma / (sigma^2 + sigma_data^2) exp(-c_f t)
with learnable a, b > 0 and sigma_data = 1.  Motivation: for one plaquette angle (U(1))
noised on its four links, a Gaussian mode of stiffness beta has score -beta x / (1 + 4 beta t)
(large beta), while at small beta the character expansion gives -beta e^{-2t} sin(theta_P);
so b starts at 4 beta0 and a at 4 c_f / (1 + beta0).  c_f = 1/2, 3/4, 1 (U(1), SU(2), U(2)) is
the decay rate of the fundamental character under the kernel, E[Re tr V / N] = exp(-c_f t).
A gauge-invariant density depends on links only through closed loops of >= 2 links, so
the exact score decays at least like exp(-2 c_f t) at large sigma: with the factor exp(-c_f t)
in c_out the network output vanishes there by construction (instead of having to learn
to cancel the skip term), while at small noise c_out ~ sigma, so the L-CNN only learns an
O(sigma) correction to a skip term that is exact up to O(sigma^2).  ``arch["skip"] = False`` drops the
physics skip term.  The DSM loss is weighted by lambda(sigma) = sigma^2 and normalised
per algebra component, sigma ~ log-uniform in [sigma_min, sigma_max].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..groups import Group, complex_dtype, get_group
from .heat_kernel import FUNDAMENTAL_DECAY
from .fast_lcnn import FastLCNN
from .lcnn import LCNN


def initial_physics_parameters(group, beta0: float) -> tuple[float, float]:
    """(a, b) of the physics weight g(sigma) = exp(-a t) / (1 + b t) a ScoreModel starts
    from (module docstring): b = 4 beta0, a = 4 c_f / (1 + beta0)."""
    c_f = FUNDAMENTAL_DECAY[get_group(group).name]
    return 4.0 * c_f / (1.0 + float(beta0)), 4.0 * max(float(beta0), 1e-3)


def initial_physics_weight(group, beta0: float, sigma: torch.Tensor) -> torch.Tensor:
    """g(sigma) at the ScoreModel's initial parameters (g(0) = 1)."""
    a, b = initial_physics_parameters(group, beta0)
    t = sigma * sigma
    return torch.exp(-a * t) / (1.0 + b * t)


DEFAULT_ARCH = {
    "channels": 6,
    "layers": 2,
    "kernel_size": 2,
    "loops": "plaquette",
    "time_features": 8,
    "hidden": 32,
    "skip": True,
    "sigma_data": 1.0,
}


class ScoreModel(nn.Module):
    """Gauge-equivariant score model s(U, sigma) (see module docstring).

    Attributes used by the sampler: ``group``, ``beta0``, ``L0``, ``sigma_min``,
    ``sigma_max``; ``arch`` is the architecture dict (``DEFAULT_ARCH`` keys).  ``fast``
    (default) evaluates the L-CNN as ``FastLCNN`` (real arithmetic, compiled for long runs:
    ``plan``), False as the complex-matrix reference ``LCNN`` (same parameters and
    state_dict, same scores to rounding)."""

    def __init__(self, group, beta0: float, L0: int, sigma_min: float, sigma_max: float, arch: dict | None = None,
                 fast: bool = True):
        super().__init__()
        self.group: Group = get_group(group)
        self.beta0, self.L0 = float(beta0), int(L0)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        unknown = set(arch or {}) - set(DEFAULT_ARCH)
        if unknown:
            raise ValueError(f"unknown architecture options {sorted(unknown)}")
        self.arch = {**DEFAULT_ARCH, **(arch or {})}
        a = self.arch
        # the same function and parameters either way (scores equal to rounding); the
        # complex-matrix reference stays for tests and as the benchmark baseline
        self.net = (FastLCNN if fast else LCNN)(self.group, channels=int(a["channels"]), layers=int(a["layers"]),
                        kernel_size=int(a["kernel_size"]), loops=a["loops"],
                        time_features=int(a["time_features"]), hidden=int(a["hidden"]))
        self.c_f = FUNDAMENTAL_DECAY[self.group.name]
        # g(sigma) = exp(-a t) / (1 + b t): log a, log b (see module docstring)
        decay, kappa = initial_physics_parameters(self.group, self.beta0)
        self.log_kappa = nn.Parameter(torch.tensor(math.log(kappa)))
        self.log_decay = nn.Parameter(torch.tensor(math.log(decay)))

    def plan(self, link_evaluations: float) -> bool:
        """Tell the network how long the run will be (links x chains x score evaluations);
        True if it will run compiled (``FastLCNN.plan``; the reference never compiles)."""
        return self.net.plan(link_evaluations) if isinstance(self.net, FastLCNN) else False

    @property
    def real_dtype(self) -> torch.dtype:
        return self.log_kappa.dtype

    def skip_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """beta0 g(sigma), the weight of -F in the score."""
        t = sigma * sigma
        return self.beta0 * torch.exp(-torch.exp(self.log_decay) * t) / (1.0 + torch.exp(self.log_kappa) * t)

    def c_out(self, sigma: torch.Tensor) -> torch.Tensor:
        sd = float(self.arch["sigma_data"])
        return sigma / (sigma * sigma + sd * sd) * torch.exp(-self.c_f * sigma * sigma)

    def forward(self, U: torch.Tensor, sigma) -> torch.Tensor:
        rdt = self.real_dtype
        cdt = complex_dtype(rdt)
        in_dtype = U.dtype
        U = U.to(cdt)
        sigma = torch.as_tensor(sigma, dtype=rdt, device=U.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(U.shape[0])
        skip = self.skip_weight(sigma) if self.arch["skip"] and self.beta0 != 0 else None
        return self.net(U, sigma, out_scale=self.c_out(sigma), force_weight=skip).to(in_dtype)

    def config(self) -> dict:
        return {"group": self.group.name, "beta0": self.beta0, "L0": self.L0,
                "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "arch": dict(self.arch)}
