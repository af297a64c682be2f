"""Batched complex Langevin: dz = K(z) dt + sqrt(2) dW, K = -S'(z), real noise, float64.

Integrator: Heun (second-order Runge-Kutta for additive noise, weak order 2) with an
adaptive step per chain (Aarts, James, Seiler,
Stamatescu arXiv 0912.0617): dt = min(dt0, dt0 * K_ref / |K(z)|), so that a chain that
wanders where the drift is large (runaway trajectories, a pole) takes small steps instead
of blowing up.  K_ref is the mean drift magnitude at the start of the measurement phase
unless given.  Measurements are taken at fixed Langevin times (every ``tau_meas``): the
last step before a measurement time is shortened to land on it exactly, so every chain is
sampled at the same Langevin times, and time averages need no dt weighting.

Stored per measurement: z = x + i y and |K(z)| (for the boundary-term criterion).

Fields: a model's ``field_shape`` (() for the 0D models, (n_t, 2) for the lattice Bose gas)
follows the chain axis.  For a field, |K| of a chain is the largest |K| over its components
(the step size must keep the fastest component stable; Aarts et al. use the same maximum).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from ..errors import CampaignError
from .models import Model


@dataclass
class CLSettings:
    n_chains: int = 256
    n_meas: int = 200  # measurements per chain
    tau_meas: float = 0.5  # Langevin time between measurements
    tau_therm: float = 10.0  # Langevin time discarded before the first measurement
    dt0: float = 2e-2  # largest step
    k_ref: float | None = None  # drift magnitude at which the step starts to shrink
    dt_min: float = 1e-9  # below this a chain is stuck at a singularity: error
    seed: int = 0

    def __post_init__(self):
        for name in ("n_chains", "n_meas"):
            if int(getattr(self, name)) < 1:
                raise CampaignError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("tau_meas", "dt0", "dt_min"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise CampaignError(f"{name} must be a number > 0, got {getattr(self, name)!r}")
        if self.dt_min >= self.dt0:
            raise CampaignError(f"dt_min = {self.dt_min:g} must be below dt0 = {self.dt0:g}")
        if not math.isfinite(float(self.tau_therm)) or self.tau_therm < 0:
            raise CampaignError(f"tau_therm must be >= 0, got {self.tau_therm!r}")
        if self.k_ref is not None and not (math.isfinite(self.k_ref) and self.k_ref > 0):
            raise CampaignError(f"k_ref must be > 0, got {self.k_ref!r}")

    def asdict(self) -> dict:
        return asdict(self)


@dataclass
class CLState:
    """What a checkpoint needs to continue a run exactly."""
    z: torch.Tensor  # complex128 (n_chains, *field_shape)
    t: float  # Langevin time reached by every chain
    k_ref: float
    n_steps: int  # total steps taken by the slowest chain (cost measure)
    rng_state: torch.Tensor


def field_shape(model) -> tuple:
    return tuple(getattr(model, "field_shape", ()))


def drift_magnitude(k: torch.Tensor) -> torch.Tensor:
    """|K| per chain: the largest component modulus (the modulus itself for a 0D model)."""
    return k.abs() if k.ndim == 1 else k.abs().reshape(k.shape[0], -1).amax(1)


def evolve(model: Model, z: torch.Tensor, t_target: torch.Tensor | float, t: torch.Tensor,
           dt0: float, k_ref: float, gen: torch.Generator, dt_min: float) -> int:
    """Advance every chain (in place) from its time t to t_target; returns the steps taken."""
    steps = 0
    t_target = torch.as_tensor(t_target, dtype=torch.float64)
    # a chain counts as arrived within rounding of the target (t ~ 1e4 after long runs)
    tol = 1e-12 * max(1.0, float(t_target.abs().max()))
    while True:
        remaining = t_target - t
        if float(remaining.max()) <= tol:
            return steps
        k = model.drift(z)
        kabs = drift_magnitude(k)
        # |K| = inf or nan fails this comparison too: one check for both
        if not float(kabs.max()) < math.inf:
            raise CampaignError("complex Langevin diverged (non-finite drift): lower dt0 or k_ref")
        adaptive = (dt0 * k_ref) / kabs.clamp(min=k_ref)
        if float(adaptive.min()) < dt_min:
            raise CampaignError(f"complex Langevin step fell below dt_min = {dt_min:g} (a chain sits on a "
                                "singularity of the drift)")
        dt = torch.where(remaining > tol, torch.minimum(adaptive, remaining), torch.zeros_like(remaining))
        dt_field = dt.reshape(dt.shape + (1,) * (z.ndim - 1))
        kick = (2 * dt_field).sqrt_() * torch.randn(z.shape, dtype=torch.float64, generator=gen)  # real noise
        # Heun predictor-corrector: weak order 2 for additive noise, so the O(dt) bias of
        # Euler (1% in <z^2> at dt = 0.02) drops to O(dt^2)
        k_pred = model.drift(z + k * dt_field + kick)
        z += 0.5 * (k + k_pred) * dt_field + kick
        t += dt
        steps += 1


def initial_state(model: Model, settings: CLSettings) -> CLState:
    gen = torch.Generator().manual_seed(int(settings.seed))
    # start near the real axis; thermalisation forgets it
    z = torch.randn((settings.n_chains, *field_shape(model)), dtype=torch.float64, generator=gen).to(torch.complex128)
    t = torch.zeros(settings.n_chains, dtype=torch.float64)
    k_ref = settings.k_ref
    steps = 0
    if settings.tau_therm > 0:
        # thermalise with a provisional reference (the starting drift), then fix K_ref
        k0 = float(drift_magnitude(model.drift(z)).mean()) if k_ref is None else k_ref
        steps = evolve(model, z, settings.tau_therm, t, settings.dt0, max(k0, 1e-3), gen, settings.dt_min)
    if k_ref is None:
        k_ref = max(float(drift_magnitude(model.drift(z)).mean()), 1e-3)
    return CLState(z=z, t=float(settings.tau_therm), k_ref=k_ref, n_steps=steps, rng_state=gen.get_state())


def measure_block(model: Model, state: CLState, settings: CLSettings, n: int) -> dict:
    """Continue the run for n measurements; returns {"z": (n, chains, *field_shape) complex,
    "drift_abs": (n, chains), "time": (n,)} and updates ``state``."""
    gen = torch.Generator()
    gen.set_state(state.rng_state)
    zs, ks, ts = [], [], []
    t = torch.full(state.z.shape[:1], state.t, dtype=torch.float64)
    for _ in range(n):
        target = state.t + settings.tau_meas
        state.n_steps += evolve(model, state.z, target, t, settings.dt0, state.k_ref, gen, settings.dt_min)
        state.t = target
        t.fill_(target)
        zs.append(state.z.clone())
        ks.append(drift_magnitude(model.drift(state.z)))
        ts.append(target)
    state.rng_state = gen.get_state()
    return {"z": torch.stack(zs), "drift_abs": torch.stack(ks), "time": torch.tensor(ts, dtype=torch.float64)}


def run_cl(model: Model, settings: CLSettings) -> dict:
    """One uninterrupted run: thermalise, then n_meas measurements per chain."""
    start = time.perf_counter()
    state = initial_state(model, settings)
    out = measure_block(model, state, settings, settings.n_meas)
    out.update(k_ref=state.k_ref, n_steps=state.n_steps, seconds=time.perf_counter() - start)
    return out
