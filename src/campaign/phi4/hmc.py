"""HMC for phi^4, many chains at once, through the shared integrators of ``campaign.hmc``
(leapfrog or Omelyan; the same trajectory, Metropolis step and step-size tuning as the gauge
theories).  Each chain accepts or rejects on its own; the batch of chains is one tensor.

``run_hmc`` keeps everything in memory; ``generate_ensemble`` writes an HDF5 file through
``campaign.io.write_scalar_ensemble`` and checkpoints into ``OUT.parts/`` (``state.pt``
plus ``part_XXXXX.pt`` of finished configurations), so a killed run resumes to exactly the
ensemble of an uninterrupted one."""

from __future__ import annotations

import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from .. import hmc as shared
from ..device import real_dtype, resolve_device
from ..errors import CampaignError
from ..preemption import CheckpointClock
from ..progress import Progress
from .action import Phi4Couplings, Phi4Field

@dataclass
class Phi4HMCSettings(shared.MDSettings):
    """start: hot, phi_x standard normal; cold, phi_x = 0."""

    kappa: float
    lam: float
    shape: tuple[int, ...]  # the lattice, e.g. (16, 16); () is the one-site theory
    configs_per_chain: int
    chains: int = 16
    sep: int = 1

    def validate(self) -> None:
        Phi4Couplings(self.kappa, self.lam)
        if any(int(n) < 2 for n in self.shape):
            raise CampaignError(f"every lattice extent must be >= 2, got {tuple(self.shape)}")
        self.validate_md(("configs_per_chain", "chains", "sep"))

    @property
    def total_trajectories(self) -> int:
        return self.therm + self.configs_per_chain * self.sep


@dataclass
class Phi4Ensemble:
    """phi: (configs_per_chain, chains, *lattice) on the CPU, Monte Carlo order along
    axis 0; step: (configs_per_chain,) trajectory index of each row; history:
    per-trajectory diagnostics (trajectories, chains); attrs: settings and the tuned step."""

    phi: torch.Tensor
    step: torch.Tensor
    history: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.phi.shape[2:])

    @property
    def volume(self) -> int:
        return math.prod(self.shape)


HISTORY_KEYS = ("dH", "accept_prob", "accepted")


class Phi4HMCRun:
    """One HMC run; with ``parts`` a directory, checkpointed there and resumable."""

    def __init__(self, settings: Phi4HMCSettings, parts: Path | None = None):
        s = replace(settings, shape=tuple(int(n) for n in settings.shape))
        s.validate()
        self.device = resolve_device(s.device)
        self.s, self.parts = s, parts
        self.dtype = real_dtype(s.dtype)
        self.field = Phi4Field(dtype=self.dtype, device=self.device)
        self.couplings = Phi4Couplings(s.kappa, s.lam)
        self.generator = torch.Generator(device=self.device).manual_seed(s.seed)
        self.controller = shared.StepSizeController(s.trajectory_length, s.target_acceptance, s.n_leapfrog or 10)
        self.t = 0
        self.n_parts = 0
        self.phi = None
        self._configs, self._steps, self._history = [], [], []

    # ---------------------------------------------------------------- checkpoint
    def _load(self) -> bool:
        from .. import io

        path = self.parts / "state.pt" if self.parts else None
        if path is None or not path.exists():
            return False
        state = io.load_torch(path, "phi4 HMC checkpoint")
        if state.get("settings") != asdict(self.s):
            raise CampaignError(f"checkpoint {path} was made with different settings; "
                                f"delete {self.parts} to start afresh")
        self.phi = state["phi"].to(self.device)
        self.generator.set_state(state["generator"])
        self.controller.n_steps, self.controller.log_eps = state["n_steps"], state["log_eps"]
        self.t, self.n_parts = state["t"], state["n_parts"]
        for extra in self.parts.glob("part_*.pt"):  # written after the last state: not part of it
            if int(extra.stem.split("_")[1]) >= self.n_parts:
                extra.unlink()
        return True

    def _checkpoint(self) -> None:
        from .. import io

        self.parts.mkdir(parents=True, exist_ok=True)
        if self._history:
            io.save_torch_atomic(self._pending(), self.parts / f"part_{self.n_parts:05d}.pt")
            self.n_parts += 1
            self._configs, self._steps, self._history = [], [], []
        state = {"settings": asdict(self.s), "phi": self.phi.cpu(), "generator": self.generator.get_state(),
                 "n_steps": self.controller.n_steps, "log_eps": self.controller.log_eps, "t": self.t,
                 "n_parts": self.n_parts}
        io.save_torch_atomic(state, self.parts / "state.pt")

    def _pending(self) -> dict:
        # configurations and diagnostics stay on the device until here: no host sync per trajectory
        return {"configs": torch.stack(self._configs).cpu() if self._configs else None,
                "steps": list(self._steps),
                "history": {k: torch.stack([h[k] for h in self._history]).cpu() for k in HISTORY_KEYS}}

    # ----------------------------------------------------------------------- run
    def run(self, checkpoint_interval: float = 60.0, progress=None) -> float:
        """Run to the end.  ``progress``: a ``campaign.progress.Progress`` or None."""
        s = self.s
        start = time.monotonic()
        if not self._load():
            if s.start == "hot":
                self.phi = torch.randn((s.chains, *s.shape), generator=self.generator, dtype=self.dtype,
                                       device=self.device)
            else:
                self.phi = torch.zeros((s.chains, *s.shape), dtype=self.dtype, device=self.device)
        clock = CheckpointClock(checkpoint_interval, f"phi4-hmc kappa={s.kappa:g}")
        ctl = self.controller
        while self.t < s.total_trajectories:
            self.phi, diag = shared.trajectory(self.field, self.phi, self.couplings, ctl.eps, ctl.n_steps,
                                               s.integrator, self.generator)
            self._history.append({k: diag[k] for k in HISTORY_KEYS})
            if self.t < s.therm and s.n_leapfrog is None:
                ctl.update(float(diag["accept_prob"].mean()), 1.0 if self.t < s.therm // 2 else 0.3)
            self.t += 1
            done = self.t - s.therm
            if done > 0 and done % s.sep == 0:
                self._configs.append(self.phi.clone())
                self._steps.append(self.t)
            if self.parts is not None and self.t < s.total_trajectories and clock.due():
                self._checkpoint()
                clock.written()  # after a stop signal: raises Preempted
            if progress is not None:
                progress.update(self.t, lambda: f"acc={float(diag['accept_prob'].mean()):.2f} n_md={ctl.n_steps}")
        if self.parts is not None:
            self._checkpoint()
        return time.monotonic() - start

    def collect(self) -> Phi4Ensemble:
        from .. import io

        parts = [io.load_torch(self.parts / f"part_{k:05d}.pt", "phi4 HMC checkpoint part")
                 for k in range(self.n_parts)] if self.parts is not None else []
        if self._history:
            parts.append(self._pending())
        configs = torch.cat([p["configs"] for p in parts if p["configs"] is not None])
        steps = torch.tensor([t for p in parts for t in p["steps"]], dtype=torch.int64)
        history = {k: torch.cat([p["history"][k] for p in parts]) for k in HISTORY_KEYS}
        attrs = {**asdict(self.s), "shape": list(self.s.shape), "algorithm": "hmc", "theory": "phi4",
                 "n_leapfrog": self.controller.n_steps, "step_size": self.controller.eps,
                 "step_size_tuned": self.s.n_leapfrog is None,
                 "force_evaluations_per_trajectory": shared.force_evaluations(self.s.integrator,
                                                                              self.controller.n_steps)}
        return Phi4Ensemble(configs, steps, history, attrs)


def run_hmc(settings: Phi4HMCSettings) -> Phi4Ensemble:
    """Thermalise (tuning the number of steps at fixed trajectory length when
    ``n_leapfrog`` is None, then frozen), then store every ``sep``-th trajectory; in memory."""
    run = Phi4HMCRun(settings)
    run.run()
    return run.collect()


def generate_ensemble(out, settings: Phi4HMCSettings, *, checkpoint_interval: float = 60.0,
                      progress: bool = True) -> Path:
    """Run HMC and write the ensemble to ``out`` (HDF5, ``campaign.io.write_scalar_ensemble``);
    checkpoints in ``out.parts/``, resumed when rerun after a kill, removed at the end."""
    from .. import io

    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    run = Phi4HMCRun(settings, parts)
    s = run.s
    label = f"phi4-hmc kappa={s.kappa:g} lambda={s.lam:g} shape={'x'.join(map(str, s.shape)) or 'site'}"
    bar = Progress(label, s.total_trajectories, enabled=progress)
    if progress and (parts / "state.pt").exists():
        print(f"{label}: resuming from the checkpoint in {parts}", file=sys.stderr)
    wall = run.run(checkpoint_interval=checkpoint_interval, progress=bar)
    bar.update(run.t, "done", force=True)
    ens = run.collect()
    io.write_scalar_ensemble(out, ens.phi, {**ens.attrs, "wall_time_s": wall, "independent": False},
                             history=ens.history, step=ens.step)
    shutil.rmtree(parts, ignore_errors=True)
    return out
