"""HMC for phi^4, many chains at once, through the shared integrators of ``campaign.hmc``
(leapfrog or Omelyan; the same trajectory, Metropolis step and step-size tuning as the gauge
theories).  ``run_hmc`` keeps the configurations in memory; each chain accepts or rejects on
its own and the batch of chains is one tensor."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch

from .. import hmc as shared
from ..errors import CampaignError
from .action import Phi4Couplings, Phi4Field

STARTS = ("hot", "cold")  # hot: phi_x standard normal; cold: phi_x = 0


@dataclass
class Phi4HMCSettings:
    kappa: float
    lam: float
    shape: tuple[int, ...]  # the lattice, e.g. (16, 16); () is the one-site theory
    n_configs: int  # per chain
    chains: int = 16
    therm: int = 200
    sep: int = 1
    n_leapfrog: int | None = None  # None: tuned during thermalisation
    trajectory_length: float = 1.0
    integrator: str = "omelyan"
    target_acceptance: float = 0.8
    start: str = "hot"
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"

    def validate(self) -> None:
        Phi4Couplings(self.kappa, self.lam)
        if any(int(n) < 2 for n in self.shape):
            raise CampaignError(f"every lattice extent must be >= 2, got {tuple(self.shape)}")
        for name in ("n_configs", "chains", "sep"):
            if getattr(self, name) < 1:
                raise CampaignError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.therm < 0:
            raise CampaignError(f"therm must be >= 0, got {self.therm}")
        if self.n_leapfrog is not None and self.n_leapfrog < 1:
            raise CampaignError(f"n_leapfrog must be >= 1, got {self.n_leapfrog}")
        if not (math.isfinite(self.trajectory_length) and self.trajectory_length > 0):
            raise CampaignError(f"trajectory length must be > 0, got {self.trajectory_length}")
        if self.integrator not in shared.INTEGRATORS:
            raise CampaignError(f"unknown integrator {self.integrator!r}; choose one of {shared.INTEGRATORS}")
        if not 0 < self.target_acceptance < 1:
            raise CampaignError(f"target acceptance must lie in (0, 1), got {self.target_acceptance}")
        if self.start not in STARTS:
            raise CampaignError(f"start must be one of {', '.join(STARTS)}, got {self.start!r}")
        if self.dtype not in ("float64", "float32"):
            raise CampaignError(f"dtype must be float64 or float32, got {self.dtype!r}")


@dataclass
class Phi4Ensemble:
    """phi: (n_configs, chains, *lattice) on the CPU, Monte Carlo order along axis 0;
    history: per-trajectory diagnostics (trajectories, chains); attrs: settings and
    the tuned step."""

    phi: torch.Tensor
    history: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.phi.shape[2:])

    @property
    def volume(self) -> int:
        return math.prod(self.shape)


def run_hmc(settings: Phi4HMCSettings, progress=None) -> Phi4Ensemble:
    """Thermalise (tuning the number of steps at fixed trajectory length when
    ``n_leapfrog`` is None, then frozen), then store every ``sep``-th trajectory."""
    s = replace(settings, shape=tuple(int(n) for n in settings.shape))
    s.validate()
    try:
        device = torch.device(s.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise CampaignError(f"device {s.device!r} is not available: {exc}") from None
    dtype = torch.float64 if s.dtype == "float64" else torch.float32
    fld = Phi4Field(dtype=dtype, device=device)
    couplings = Phi4Couplings(s.kappa, s.lam)
    gen = torch.Generator(device=device).manual_seed(s.seed)
    if s.start == "hot":
        phi = torch.randn((s.chains, *s.shape), generator=gen, dtype=dtype, device=device)
    else:
        phi = torch.zeros((s.chains, *s.shape), dtype=dtype, device=device)
    ctl = shared.StepSizeController(s.trajectory_length, s.target_acceptance, s.n_leapfrog or 10)
    configs, history = [], {"dH": [], "accept_prob": [], "accepted": []}
    total = s.therm + s.n_configs * s.sep
    for t in range(total):
        phi, diag = shared.trajectory(fld, phi, couplings, ctl.eps, ctl.n_steps, s.integrator, gen)
        for key in history:
            history[key].append(diag[key].cpu())
        if t < s.therm and s.n_leapfrog is None:
            ctl.update(float(diag["accept_prob"].mean()), 1.0 if t < s.therm // 2 else 0.3)
        done = t + 1 - s.therm
        if done > 0 and done % s.sep == 0:
            configs.append(phi.cpu().clone())
        if progress is not None:
            progress(t + 1, total)
    attrs = {**asdict(s), "algorithm": "hmc", "theory": "phi4", "n_leapfrog": ctl.n_steps,
             "step_size": ctl.eps, "step_size_tuned": s.n_leapfrog is None,
             "force_evaluations_per_trajectory": shared.force_evaluations(s.integrator, ctl.n_steps)}
    attrs["shape"] = list(s.shape)
    return Phi4Ensemble(torch.stack(configs), {k: torch.stack(v) for k, v in history.items()}, attrs)
