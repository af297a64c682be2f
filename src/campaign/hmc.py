"""Hybrid Monte Carlo for 2D Wilson gauge theory, many chains at once.

The field is held in a representation chosen for speed (``campaign.fields``): angles for
U(1), matrices otherwise.  Each chain accepts or rejects on its own; the whole batch of
chains is one tensor, so the inner loops never synchronise with the host.

Integrators (both second order, reversible, area preserving):
* leapfrog: n + 1 force evaluations per trajectory (first and last half kicks merged);
* Omelyan 2MN with lambda = 0.1931833275037836: 2n + 1 force evaluations, a much
  smaller error coefficient (Omelyan, Mryglod, Folk 2003; Takaishi & de Forcrand 2006).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .device import real_dtype, resolve_device, restore_generator
from .errors import CampaignError
from .fields import LinkField, field_for
from .groups import get_group
from .preemption import CheckpointClock
from .progress import Progress
from .seeds import seed_from

OMELYAN_LAMBDA = 0.1931833275037836
INTEGRATORS = ("leapfrog", "omelyan")
# hot: Haar-random links, so chains that freeze (topology at large beta) freeze in
# different places and their scatter shows it; cold: unit links
STARTS = ("hot", "cold")
# links converted and written at a time: fits in cache, and large enough that one HDF5 write
# per block costs nothing beside it
LINK_BLOCK_BYTES = 4 * 2**20


def force_evaluations(integrator: str, n_steps: int) -> int:
    return n_steps + 1 if integrator == "leapfrog" else 2 * n_steps + 1


def integrate(fld: LinkField, q, p, beta, eps: float, n_steps: int, integrator: str):
    """Molecular dynamics for a trajectory of n_steps steps of size eps; returns (q, p).
    After the first half kick the steps are (drift, kick) pairs with one drift length,
    ``fld.drift_kicks`` (fused kernels for the fast U(1) field)."""
    if integrator == "leapfrog":
        p = fld.kick(p, q, beta, 0.5 * eps)
        return fld.drift_kicks(q, p, eps, beta, [eps] * (n_steps - 1) + [0.5 * eps])
    if integrator == "omelyan":
        lam = OMELYAN_LAMBDA
        p = fld.kick(p, q, beta, lam * eps)
        kicks = [(1 - 2 * lam) * eps, 2 * lam * eps] * n_steps
        kicks[-1] = lam * eps
        return fld.drift_kicks(q, p, 0.5 * eps, beta, kicks)
    raise ValueError(f"unknown integrator {integrator!r}; choose one of {INTEGRATORS}")


def hamiltonian(fld: LinkField, q, p, beta) -> torch.Tensor:
    return fld.hamiltonian(q, p, beta)


def trajectory(fld: LinkField, q, beta, eps, n_steps, integrator, generator):
    """One HMC trajectory for every chain.  Returns the new state and per-chain
    diagnostics (dH, acceptance probability, accepted flag), all still on device."""
    p = fld.momenta(q, generator)
    h0 = hamiltonian(fld, q, p, beta)
    q1, p1 = integrate(fld, q, p, beta, eps, n_steps, integrator)
    q1 = fld.normalise(q1)
    dh = hamiltonian(fld, q1, p1, beta) - h0
    u = torch.rand(dh.shape, generator=generator, dtype=dh.dtype, device=dh.device)
    accept_prob = torch.exp(-dh.clamp_min(0))
    # dH = nan (a blown-up trajectory) must be rejected
    accepted = (u < accept_prob) & torch.isfinite(dh)
    q = torch.where(fld.broadcast(accepted, q), q1, q)
    return q, {"dH": dh, "accept_prob": accept_prob, "accepted": accepted}


# ------------------------------------------------------------------ run control
@dataclass(kw_only=True)
class MDSettings:
    """The options every HMC run shares, gauge theories and phi^4 alike: thermalisation,
    molecular dynamics, start, seed, device and dtype.  The theories' settings add their
    couplings, lattice, run length and chains in front."""

    therm: int = 200
    n_leapfrog: int | None = None  # None: tuned during thermalisation
    trajectory_length: float = 1.0
    integrator: str = "omelyan"
    target_acceptance: float = 0.8
    start: str = "hot"
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"

    def validate_md(self, counts: tuple[str, ...]) -> None:
        """Check the shared options, and that the fields named in counts are >= 1."""
        for name in counts:
            if getattr(self, name) < 1:
                raise CampaignError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.therm < 0:
            raise CampaignError(f"therm must be >= 0, got {self.therm}")
        if self.n_leapfrog is not None and self.n_leapfrog < 1:
            raise CampaignError(f"n_leapfrog must be >= 1, got {self.n_leapfrog}")
        if not (math.isfinite(self.trajectory_length) and self.trajectory_length > 0):
            raise CampaignError(f"trajectory length must be > 0, got {self.trajectory_length}")
        if self.integrator not in INTEGRATORS:
            raise CampaignError(f"unknown integrator {self.integrator!r}; choose one of {INTEGRATORS}")
        if not 0 < self.target_acceptance < 1:
            raise CampaignError(f"target acceptance must lie in (0, 1), got {self.target_acceptance}")
        if self.start not in STARTS:
            raise CampaignError(f"start must be one of {', '.join(STARTS)}, got {self.start!r}")
        real_dtype(self.dtype)

    @property
    def tuned(self) -> bool:
        return self.n_leapfrog is None


@dataclass
class HMCSettings(MDSettings):
    group: str
    beta: float
    L: int
    n_configs: int
    chains: int = 4
    sep: int = 5

    def validate(self) -> None:
        get_group(self.group)
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise CampaignError(f"beta must be finite and >= 0, got {self.beta}")
        if self.L < 2:
            raise CampaignError(f"L must be >= 2, got {self.L}")
        self.validate_md(("n_configs", "chains", "sep"))

    @property
    def measurements_per_chain(self) -> int:
        return -(-self.n_configs // self.chains)

    @property
    def total_trajectories(self) -> int:
        return self.therm + self.measurements_per_chain * self.sep

@dataclass
class StepSizeController:
    """Adapts the number of integration steps (trajectory length fixed) during
    thermalisation so that the mean Metropolis probability approaches the target;
    frozen afterwards, so the production chain is a proper Markov chain."""

    trajectory_length: float
    target: float
    n_steps: int
    log_eps: float = field(init=False)

    def __post_init__(self):
        self.log_eps = math.log(self.trajectory_length / self.n_steps)

    @property
    def eps(self) -> float:
        return self.trajectory_length / self.n_steps

    def update(self, mean_accept_prob: float, gain: float) -> None:
        self.log_eps += gain * (mean_accept_prob - self.target)
        self.log_eps = min(self.log_eps, math.log(self.trajectory_length))
        self.n_steps = max(1, math.ceil(self.trajectory_length / math.exp(self.log_eps)))


def generate_ensemble(
    out,
    group: str,
    beta: float,
    L: int,
    n_configs: int,
    *,
    chains: int = 4,
    therm: int = 200,
    sep: int = 5,
    n_leapfrog: int | None = None,
    trajectory_length: float = 1.0,
    integrator: str = "omelyan",
    target_acceptance: float = 0.8,
    start: str = "hot",
    seed: int = 0,
    device: str = "cpu",
    dtype: str = "float64",
    checkpoint_interval: float = 60.0,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Run HMC and write an ensemble of ``n_configs`` configurations to ``out`` (HDF5).

    A checkpoint (state + finished configurations) lives in ``out.parts/`` and is
    refreshed every ``checkpoint_interval`` seconds; rerunning the same command after a
    kill resumes from it and produces exactly the ensemble of an uninterrupted run.
    The output file appears atomically once complete, and the checkpoint is removed.
    The job runs under ``campaign.jobs.ResumableJob`` (output lock, no overwrite unless
    ``force``, atomic removal of the checkpoint); beta beyond ``campaign.bounds.BETA_MAX`` or
    an estimated memory beyond the limit is refused unless ``force``.
    """
    from .jobs import ResumableJob

    settings = HMCSettings(
        group=str(group), beta=float(beta), L=int(L), n_configs=int(n_configs), chains=int(chains),
        therm=int(therm), sep=int(sep), n_leapfrog=n_leapfrog, trajectory_length=float(trajectory_length),
        integrator=integrator, target_acceptance=float(target_acceptance), start=str(start), seed=int(seed),
        device=str(device), dtype=str(dtype),
    )
    settings.validate()
    from .bounds import check_beta, check_memory, check_time, hmc_memory_bytes, hmc_seconds_at_least

    N = get_group(settings.group).N
    check_beta(settings.beta, force)
    check_time(f"hmc with {settings.chains} chains of L={settings.L} and {settings.total_trajectories} trajectories",
               hmc_seconds_at_least(N, settings.L, settings.chains, settings.total_trajectories,
                                    force_evaluations(settings.integrator, settings.n_leapfrog or 1)), force)
    check_memory(f"hmc with {settings.chains} chains of L={settings.L} and {settings.n_configs} configurations",
                 hmc_memory_bytes(N, settings.L, settings.chains, settings.n_configs, settings.dtype), force)
    out = Path(out)
    torch_device = resolve_device(settings.device)
    with ResumableJob(out, _portable(asdict(settings)), force=force, label=f"hmc {settings.group} beta={settings.beta:g}") as job:
        run = HMCRun(settings, job.parts, torch_device)
        wall = run.run(checkpoint_interval=checkpoint_interval, progress=progress)
        try:
            links, chain, step, history = run.collect()
            job.check_count(links.shape[0], settings.n_configs)
            _write(out, run, settings, links, chain, step, history, wall)
        except Exception:
            run._checkpoint()  # the finished trajectories are kept for a rerun
            raise
        job.finish()
    return out


def _write(out, run, settings, links, chain, step, history, wall) -> None:
    from . import io

    attrs = {
        **asdict(settings),
        "algorithm": "hmc",
        "n_leapfrog": run.controller.n_steps,
        "step_size": run.controller.eps,
        "step_size_tuned": settings.tuned,
        "force_evaluations_per_trajectory": force_evaluations(settings.integrator, run.controller.n_steps),
        "field_representation": run.field.name,
        "n_chains": settings.chains,
        "independent": False,
        "wall_time_s": wall,
    }
    io.write_ensemble(out, links, attrs, history=history, chain=chain, step=step)


def _portable(settings: dict) -> dict:
    """The settings a checkpoint must match: all but the device, so that a checkpoint moves
    between CPU and GPU (older checkpoints recorded it: dropped here before comparing)."""
    return {k: v for k, v in settings.items() if k != "device"}


class HMCRun:
    """State of one HMC run, checkpointed into a parts directory:
    ``state.pt`` (field, RNG, counters, step size) and ``part_XXXXX.pt`` (finished
    configurations and per-trajectory history since the previous checkpoint)."""

    def __init__(self, settings: HMCSettings, parts: Path, device: torch.device):
        self.s = settings
        self.parts = parts
        self.device = device
        self.group = get_group(settings.group)
        rdtype = real_dtype(settings.dtype)
        self.field = field_for(self.group, dtype=rdtype, device=device)
        n_force = force_evaluations(settings.integrator, settings.n_leapfrog or 10)
        self.field.plan(settings.total_trajectories * settings.chains * 2 * settings.L**2 * n_force)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(settings.seed)
        self.controller = StepSizeController(
            settings.trajectory_length, settings.target_acceptance, settings.n_leapfrog or 10
        )
        self.trajectories_done = 0
        self.n_parts = 0
        self.q = None
        self._pending_configs: list = []
        self._pending_steps: list = []
        self._pending_history: list = []

    # ---------------------------------------------------------------- checkpoint
    def _state_path(self) -> Path:
        return self.parts / "state.pt"

    def _fingerprint(self) -> dict:
        return _portable(asdict(self.s))

    def _load(self) -> bool:
        from . import io

        path = self._state_path()
        if not path.exists():
            return False
        state = io.load_torch(path, "HMC checkpoint")
        if _portable(state.get("settings", {})) != self._fingerprint():
            raise CampaignError(
                f"checkpoint {path} was made with different settings; delete {self.parts} to start afresh"
            )
        self.q = state["q"].to(self.device)
        restore_generator(self.generator, state["generator"], what=f"hmc {self.s.group} beta={self.s.beta:g}",
                          reseed=seed_from("hmc resumed", self.s.seed, state["trajectories_done"]))
        self.controller.n_steps = state["n_steps"]
        self.controller.log_eps = state["log_eps"]
        self.trajectories_done = state["trajectories_done"]
        self.n_parts = state["n_parts"]
        missing = [k for k in range(self.n_parts) if not (self.parts / f"part_{k:05d}.pt").exists()]
        if missing:
            # a checkpoint half deleted by an older version of this code: unusable, start afresh
            print(f"hmc: note: checkpoint {self.parts} lacks part {missing[0]} of its {self.n_parts}; "
                  "starting afresh", file=sys.stderr)
            for stale in [path, *self.parts.glob("part_*.pt")]:
                stale.unlink()
            self.generator.manual_seed(self.s.seed)
            self.controller = StepSizeController(
                self.s.trajectory_length, self.s.target_acceptance, self.s.n_leapfrog or 10)
            self.trajectories_done, self.n_parts, self.q = 0, 0, None
            return False
        # a part written after the last state (killed in between) is not part of it
        for extra in self.parts.glob("part_*.pt"):
            if int(extra.stem.split("_")[1]) >= self.n_parts:
                extra.unlink()
        return True

    def _pending_part(self, stack: bool = True) -> dict | None:
        """The configurations and history since the last checkpoint, as a part (configurations
        as one tensor, or, without ``stack``, as the loop's list: collect needs no copy)."""
        if not (self._pending_configs or self._pending_history):
            return None
        configs = list(self._pending_configs)
        return {
            "configs": (torch.stack(configs) if stack else configs) if configs else None,
            "steps": list(self._pending_steps),
            "history": {k: torch.stack([h[k] for h in self._pending_history]).cpu()
                        for k in self._pending_history[0]} if self._pending_history else {},
        }

    def _checkpoint(self) -> None:
        from . import io

        self.parts.mkdir(parents=True, exist_ok=True)
        part = self._pending_part()
        if part is not None:
            io.save_torch_atomic(part, self.parts / f"part_{self.n_parts:05d}.pt")
            self.n_parts += 1
            self._pending_configs, self._pending_steps, self._pending_history = [], [], []
        state = {
            "settings": self._fingerprint(),
            "q": self.q.cpu(),
            "generator": self.generator.get_state(),
            "n_steps": self.controller.n_steps,
            "log_eps": self.controller.log_eps,
            "trajectories_done": self.trajectories_done,
            "n_parts": self.n_parts,
        }
        io.save_torch_atomic(state, self._state_path())

    # ----------------------------------------------------------------------- run
    def run(self, checkpoint_interval: float = 60.0, progress: bool = True) -> float:
        s = self.s
        start = time.monotonic()
        resumed = self._load()
        if not resumed:
            if s.start == "hot":
                U = self.group.haar((s.chains, 2, s.L, s.L), generator=self.generator,
                                    dtype=self.field.real_dtype, device=self.device)
                self.q = self.field.normalise(self.field.from_links(U))
            else:
                self.q = self.field.cold_start(s.chains, s.L)
        total = s.total_trajectories
        label = f"hmc {s.group} beta={s.beta:g} L={s.L}"
        bar = Progress(label, total, enabled=progress)
        if resumed and progress:
            print(f"{label}: resuming at trajectory {self.trajectories_done}/{total}", file=sys.stderr)
        clock = CheckpointClock(checkpoint_interval, label)
        beta = torch.tensor(s.beta, dtype=self.field.real_dtype, device=self.device)
        while self.trajectories_done < total:
            t = self.trajectories_done
            thermalising = t < s.therm
            self.q, diag = trajectory(
                self.field, self.q, beta, self.controller.eps, self.controller.n_steps,
                s.integrator, self.generator,
            )
            diag["plaquette"] = self.field.mean_plaquette(self.q)
            diag["n_steps"] = torch.full_like(diag["dH"], self.controller.n_steps)
            diag["step_size"] = torch.full_like(diag["dH"], self.controller.eps)
            self._pending_history.append(diag)
            if thermalising and s.tuned:
                # one host sync per trajectory during thermalisation only
                gain = 1.0 if t < s.therm // 2 else 0.3
                self.controller.update(float(diag["accept_prob"].mean()), gain)
            self.trajectories_done += 1
            done_prod = self.trajectories_done - s.therm
            if done_prod > 0 and done_prod % s.sep == 0:
                # the field's own representation, chain axis first; converted to links
                # once, in collect (a U(1) conversion costs as much as half a trajectory)
                self._pending_configs.append(self.q.clone(memory_format=torch.contiguous_format).cpu())
                self._pending_steps.append(self.trajectories_done)
            if self.trajectories_done < total and clock.due():
                self._checkpoint()
                clock.written()  # after a stop signal: raises Preempted
            if progress:
                bar.update(
                    self.trajectories_done,
                    lambda: f"acc={float(diag['accept_prob'].mean()):.2f} "
                    f"plaq={float(diag['plaquette'].mean()):.4f} n_md={self.controller.n_steps}"
                    + (" (therm)" if thermalising else ""),
                )
        # no final checkpoint: collect takes the last part from memory, and a failure
        # before the output is written checkpoints then (generate_ensemble)
        bar.update(self.trajectories_done, "done", force=True)
        return time.monotonic() - start

    def _parts(self):
        """The finished parts in order: those checkpointed, then the one in memory."""
        from . import io

        for k in range(self.n_parts):
            yield io.load_torch(self.parts / f"part_{k:05d}.pt", "HMC checkpoint part")
        part = self._pending_part(stack=False)
        if part is not None:
            yield part

    def collect(self):
        """The finished ensemble from the parts: links, chain, step, history; measurement-major,
        chain-minor, truncated to exactly n_configs.  The links are ``io.RowBlocks``: converted
        from the stored coordinates a block at a time while they are written (U(1), L = 32,
        16000 configurations: 1.1 s to convert all at once and 256 MB of links held whole)."""
        from . import io

        parts, steps, history = [], [], {}
        for part in self._parts():
            if part["configs"] is not None:
                parts.append(list(part["configs"]))  # one (chains, 2, ...) tensor per measurement
                steps.extend(part["steps"])
            for key, value in part["history"].items():
                history.setdefault(key, []).append(value)
        n_meas = sum(map(len, parts))
        chains = parts[0][0].shape[0]
        n = min(self.s.n_configs, n_meas * chains)
        probe = self._links(parts[0][0][None, :1])
        row = tuple(probe.shape[2:])
        per_block = max(1, LINK_BLOCK_BYTES // (probe.element_size() * probe[0, 0].numel() * chains))

        def blocks():
            # a block never spans two parts: an older version's part may hold links already
            done = 0
            for measurements in parts:
                for i in range(0, len(measurements), per_block):
                    links = self._links(torch.stack(measurements[i:i + per_block])).flatten(0, 1)[:n - done]
                    done += links.shape[0]
                    yield links
                    if done == n:
                        return

        links = io.RowBlocks((n, *row), probe.numpy().dtype, blocks())
        chain = np.tile(np.arange(chains), n_meas)
        step = np.repeat(np.asarray(steps, dtype=np.int64), chains)
        hist = {k: torch.cat(v).numpy() for k, v in history.items()}
        hist["accepted"] = hist["accepted"].astype(np.int8)
        return links, chain[:n], step[:n], hist

    def _links(self, configs):
        """Stored configurations (measurements, chains, 2, ...) as links.  The run stores
        the field's own coordinates and converts them when the ensemble is written: in the
        trajectory loop, a U(1) conversion cost half a trajectory.  Parts written by
        versions that converted in the loop hold links already."""
        if configs.is_complex():
            return configs
        return self.field.to_links(configs.flatten(0, 1)).unflatten(0, configs.shape[:2])
