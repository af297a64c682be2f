"""Training loop: denoising score matching of a ``ScoreModel`` on one ensemble.

``train_model(ensemble, out, ...)`` reads the ensemble through ``campaign.io``, and per
optimiser step draws ``batch_size`` configurations (with replacement), applies a fresh
Haar-random gauge transformation to each (``gauge_augment``: every batch sees new gauge
copies), draws sigma log-uniformly in [sigma_min, sigma_max], noises with the exact heat
kernel and minimises ``campaign.diffusion.dsm_loss`` with Adam (linear warm-up, then
cosine decay to zero or constant), gradient-norm clipping and an EMA of the weights
(decay min(ema_decay, (1 + step) / (10 + step)), so short runs average too).

Reproducibility and restarts: one ``torch.Generator`` (seeded with ``seed``) drives batch
choice, gauge copies, sigma and noise; the weights are initialised from ``seed`` as well.
Every ``checkpoint_interval`` seconds the state (model, EMA, optimiser, generator, step,
loss history, wall time, settings) goes atomically to ``<out>.parts/train_state.pt``; a
killed run started again with ``resume=True`` continues from there and ends bit-identical
(CPU) to an uninterrupted run, losing at most one interval.  The job runs under
``campaign.jobs.ResumableJob``: output lock, no overwrite unless ``force``, and a checkpoint
fingerprinted with the ensemble file's sha256 (a regenerated ensemble means a fresh start).  The final file ``out`` (written
atomically by ``campaign.io.save_model``) holds the EMA weights and everything
``load_model`` / the sampler need; the checkpoint is then removed.  The loss log (csv:
step, loss, lr, wall_time, ema = bias-corrected exponential average of the loss with
decay 0.98) is rewritten atomically at each checkpoint and at the end.
"""

from __future__ import annotations

import copy
import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import io
from .device import DTYPES, dtype_name, real_dtype, resolve_device, restore_generator
from .diffusion import DEFAULT_ARCH, ScoreModel, dsm_loss, sample_sigma
from .errors import CampaignError
from .preemption import CheckpointClock
from .groups import complex_dtype, get_group
from .jobs import ResumableJob, check_writable, parts_dir
from .lattice import gauge_transform
from .diffusion.lcnn import LOOP_SETS
from .progress import Progress
from .seeds import seed_from
from .settings import SettingError, check_choice, check_integer, check_number, option

CHECKPOINT_FORMAT = "campaign-train-checkpoint"
SCHEDULES = ("cosine", "constant")
LOSS_COLUMNS = ("step", "loss", "lr", "wall_time", "ema")
LOSS_EMA = 0.98  # smoothing of the "ema" column (bias-corrected like Adam's moments)
ARCH_KEYS = ("channels", "layers", "kernel_size", "loops")


@dataclass
class TrainSettings:
    """Every parameter of the train stage, with its default and meaning, written once: the
    CLI flags (``campaign train --lr-schedule ...``) are generated from these fields, the
    workflow passes a model's config entry straight in, and a test checks the config
    schema against them.  Invalid values raise ``SettingError`` at construction."""

    steps: int = field(default=2000, metadata=option("optimiser steps"))
    batch_size: int = field(default=16, metadata=option("configurations per optimiser step (drawn with replacement)"))
    lr: float = field(default=1e-3, metadata=option("Adam learning rate"))
    lr_schedule: str = field(default="cosine", metadata=option(
        "learning-rate schedule after the warm-up", choices=SCHEDULES))
    warmup: int | None = field(default=None, metadata=option("linear warm-up steps (default: min(100, steps / 20))"))
    ema_decay: float = field(default=0.999, metadata=option("EMA decay of the weights, in [0, 1)"))
    grad_clip: float | None = field(default=1.0, metadata=option("gradient-norm clip (null in a config: no clipping)"))
    channels: int = field(default=DEFAULT_ARCH["channels"], metadata=option("L-CNN channels"))
    layers: int = field(default=DEFAULT_ARCH["layers"], metadata=option("L-Conv/L-Bilin blocks"))
    kernel_size: int = field(default=DEFAULT_ARCH["kernel_size"], metadata=option(
        "L-Conv sites per axis (2: nearest neighbours)"))
    loops: str = field(default=DEFAULT_ARCH["loops"], metadata=option(
        "input loops: plaquettes, or plaquettes and 1x2 rectangles", choices=LOOP_SETS))
    sigma_min: float = field(default=0.01, metadata=option("smallest training noise level"))
    sigma_max: float = field(default=4.0, metadata=option("largest training noise level"))
    gauge_augment: bool = field(default=True, metadata=option("a random gauge copy of every training configuration"))
    seed: int = field(default=0, metadata=option("seed of the weights and of every random stream of the run"))
    device: str = field(default="cpu", metadata=option("torch device, e.g. cpu, cuda, cuda:1, auto"))
    dtype: str = field(default="float64", metadata=option("real precision of fields and network", choices=DTYPES))
    checkpoint_interval: float = field(default=60.0, metadata=option("seconds between checkpoints"))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``SettingError`` naming the first invalid field."""
        for name in ("steps", "batch_size", "channels", "layers", "kernel_size"):
            check_integer(self, name, 1)
        check_integer(self, "seed", 0)
        for name in ("lr", "sigma_min", "sigma_max"):
            check_number(self, name)
        check_number(self, "ema_decay", strict=False)
        check_number(self, "checkpoint_interval", strict=False)
        check_choice(self, "lr_schedule", SCHEDULES)
        check_choice(self, "loops", LOOP_SETS)
        check_choice(self, "dtype", DTYPES)
        if self.sigma_min >= self.sigma_max:
            raise SettingError("sigma_min", f"must be smaller than sigma_max ({self.sigma_min} >= {self.sigma_max})")
        if self.ema_decay >= 1.0:
            raise SettingError("ema_decay", f"must lie in [0, 1), got {self.ema_decay!r}")
        if self.grad_clip is not None:
            check_number(self, "grad_clip")
        if self.warmup is not None:
            check_integer(self, "warmup", 0)
            if self.warmup > self.steps:
                raise SettingError("warmup", f"{self.warmup} warm-up steps exceed steps ({self.steps})")

    @property
    def warmup_steps(self) -> int:
        return min(100, self.steps // 20) if self.warmup is None else int(self.warmup)

    @property
    def arch(self) -> dict:
        return {**DEFAULT_ARCH, **{k: getattr(self, k) for k in ARCH_KEYS}}

    def record(self) -> dict:
        """What the checkpoint fingerprint and the model file record; a checkpoint made
        with another record is refused (device and checkpoint interval may change)."""
        return {
            "steps": self.steps, "batch_size": self.batch_size,
            "lr": float(self.lr), "lr_schedule": self.lr_schedule, "ema_decay": float(self.ema_decay),
            "arch": self.arch, "sigma_min": float(self.sigma_min), "sigma_max": float(self.sigma_max),
            "gauge_augment": bool(self.gauge_augment), "seed": int(self.seed),
            "dtype": dtype_name(real_dtype(self.dtype)),
            "grad_clip": None if self.grad_clip is None else float(self.grad_clip), "warmup": self.warmup_steps,
        }


def checkpoint_path(out) -> Path:
    return parts_dir(out) / "train_state.pt"


def lr_at(step: int, *, lr: float, steps: int, schedule: str, warmup: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based)."""
    f = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if schedule == "cosine":
        f *= 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return lr * f


def _write_loss_log(path, rows) -> None:
    with io.atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(LOSS_COLUMNS)
            for r in rows:
                w.writerow([r[0], repr(r[1]), repr(r[2]), f"{r[3]:.3f}", repr(r[4])])


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.mul_(decay).add_(pm.detach(), alpha=1.0 - decay)




@dataclass
class _TrainingSet:
    """The ensemble a model learns from, on the training device."""

    ens: io.Ensemble
    group: object
    links: torch.Tensor  # (n_cfg, 2, L, L, N, N)
    L: int
    beta0: float

    @classmethod
    def load(cls, path, rdt: torch.dtype, dev: torch.device) -> "_TrainingSet":
        ens = io.read_ensemble(path, dtype=rdt)
        try:
            group = get_group(ens.group)
        except ValueError as exc:
            raise CampaignError(f"{path}: {exc}") from None
        data = ens.links.to(dev)
        if data.shape[0] == 0:
            raise CampaignError(f"{path} holds no configurations")
        if data.shape[-1] != group.N:
            raise CampaignError(f"{path}: links are {data.shape[-1]}x{data.shape[-1]}, group {group.name} needs N={group.N}")
        return cls(ens, group, data, ens.L, float(ens.beta))

    @property
    def label(self) -> str:
        return f"train {self.group.name} b{self.beta0:g} L{self.L}"


class _Trainer:
    """Model, EMA copy, optimiser, generator and loss log of one training run; one
    ``step()`` is one optimiser step (module docstring)."""

    def __init__(self, s: TrainSettings, record: dict, data: _TrainingSet, dev: torch.device, rdt: torch.dtype,
                 ckpt_file: Path, loss_log):
        self.s, self.record, self.data, self.dev, self.rdt = s, record, data, dev, rdt
        self.ckpt_file, self.loss_log = ckpt_file, loss_log
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(s.seed))
            model = ScoreModel(data.group, data.beta0, data.L, s.sigma_min, s.sigma_max, arch=record["arch"])
        self.model = model.to(device=dev, dtype=rdt)
        self.ema = copy.deepcopy(self.model)
        # the network compiles when the run is long enough; a backward pass costs about two forwards
        self.model.plan(3 * s.steps * s.batch_size * 2 * data.L**2)
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=s.lr)
        self.gen = torch.Generator(device=dev)
        self.gen.manual_seed(int(s.seed))
        self.step, self.wall, self.rows, self.loss_ema = 0, 0.0, [], None
        self.ema_acc = [0.0, 0]  # running average of the loss and its count (bias-corrected EMA)
        self.pending = []  # (step, loss tensor, lr, wall) not yet turned into floats

    def resume(self, progress: bool) -> None:
        """Continue from the checkpoint, if there is one (made with the same settings)."""
        ckpt_file = self.ckpt_file
        if not ckpt_file.exists():
            return
        ck = io.load_torch(ckpt_file, what="training checkpoint")
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise CampaignError(f"{ckpt_file} is not a campaign training checkpoint; remove it or use --no-resume")
        saved = ck.get("settings", {})
        diff = [k for k in self.record if saved.get(k) != self.record[k]]
        if diff:
            detail = ", ".join(f"{k}: {saved.get(k)!r} -> {self.record[k]!r}" for k in diff)
            raise CampaignError(f"checkpoint {ckpt_file} was made with different settings ({detail}); use --no-resume to start over")
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["optimizer"])
        restore_generator(self.gen, ck["generator"], reseed=seed_from("train resumed", self.s.seed, ck["step"]),
                          what="train")
        self.step, self.wall, self.rows, self.loss_ema = int(ck["step"]), float(ck["wall"]), list(ck["rows"]), ck["loss_ema"]
        self.ema_acc = list(ck["loss_ema_acc"])
        if progress:
            print(f"train: resuming from {ckpt_file} at step {self.step}/{self.s.steps}", file=sys.stderr, flush=True)

    def save_checkpoint(self) -> None:
        state = {
            "format": CHECKPOINT_FORMAT, "settings": self.record, "step": self.step, "wall": self.wall,
            "rows": self.rows, "loss_ema": self.loss_ema, "loss_ema_acc": self.ema_acc,
            "model": self.model.state_dict(), "ema": self.ema.state_dict(), "optimizer": self.opt.state_dict(),
            "generator": self.gen.get_state(),
        }
        io.save_torch_atomic(state, self.ckpt_file)
        if self.loss_log is not None:
            _write_loss_log(self.loss_log, self.rows)

    def flush(self) -> None:
        """Turn the pending losses into log rows (one host synchronisation per flush)."""
        acc = self.ema_acc
        for s_, lt, lr_, w_ in self.pending:
            v = float(lt)
            acc[0] = LOSS_EMA * acc[0] + (1 - LOSS_EMA) * v
            acc[1] += 1
            self.loss_ema = acc[0] / (1 - LOSS_EMA ** acc[1])
            self.rows.append((s_, v, lr_, w_, self.loss_ema))
        self.pending.clear()
        if self.loss_ema is not None and not math.isfinite(self.loss_ema):
            raise CampaignError(f"training diverged at step {self.step} (loss {self.loss_ema}); try a smaller --lr")

    def optimiser_step(self) -> float:
        """One DSM step on a fresh batch; returns its learning rate."""
        s, d, gen, dev, rdt = self.s, self.data, self.gen, self.dev, self.rdt
        t0 = time.perf_counter()
        cur_lr = lr_at(self.step, lr=s.lr, steps=s.steps, schedule=s.lr_schedule, warmup=self.record["warmup"])
        for g in self.opt.param_groups:
            g["lr"] = cur_lr
        idx = torch.randint(d.links.shape[0], (s.batch_size,), generator=gen, device=dev)
        U0 = d.links[idx].to(complex_dtype(rdt))
        if s.gauge_augment:
            U0 = gauge_transform(U0, d.group.haar((s.batch_size, d.L, d.L), generator=gen, dtype=rdt, device=dev))
        sigma = sample_sigma(s.batch_size, s.sigma_min, s.sigma_max, generator=gen, dtype=rdt, device=dev)
        loss = dsm_loss(self.model, U0, sigma, generator=gen)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if s.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.opt.step()
        _ema_update(self.ema, self.model, min(s.ema_decay, (1.0 + self.step) / (10.0 + self.step)))
        self.step += 1
        self.wall += time.perf_counter() - t0
        self.pending.append((self.step, loss.detach(), cur_lr, self.wall))
        if len(self.pending) >= 50 or dev.type == "cpu":
            self.flush()
        return cur_lr

    def run(self, bar: Progress, stop_after: int | None) -> None:
        """Optimiser steps until ``steps`` (or ``stop_after`` steps in this call), with a
        checkpoint every ``checkpoint_interval`` seconds."""
        s = self.s
        clock = CheckpointClock(s.checkpoint_interval, "train")
        done_here = 0
        self.model.train()
        while self.step < s.steps and (stop_after is None or done_here < stop_after):
            cur_lr = self.optimiser_step()
            done_here += 1
            bar.update(self.step, extra=lambda: (self.flush(), f"loss {self.loss_ema:.4f} lr {cur_lr:.2e}")[1])
            if self.step < s.steps and clock.due():
                self.flush()
                self.save_checkpoint()
                clock.written()  # after a stop signal: raises Preempted
        self.flush()

    def write_model(self, out: Path, ensemble_path, ensemble_sha256: str) -> None:
        meta = {
            "training": {
                **self.record, "ensemble": str(Path(ensemble_path).resolve()), "ensemble_sha256": ensemble_sha256,
                "steps_done": self.step, "wall_time_s": self.wall,
                "final_loss_ema": self.loss_ema, "device": str(self.dev),
            },
            "ensemble_attrs": {k: self.data.ens.attrs.get(k) for k in (
                "group", "beta", "L", "n_configs", "algorithm", "seed", "created", "code_commit", "campaign_version")
                if k in self.data.ens.attrs},
        }
        self.ema.eval()
        io.save_model(out, self.ema, meta)
        if self.loss_log is not None:
            _write_loss_log(self.loss_log, self.rows)


def train_model(ensemble_path, out, settings: TrainSettings | None = None, *, resume: bool = True,
                progress: bool = True, loss_log=None, stop_after: int | None = None, force: bool = False) -> Path:
    """Train a score model on ``ensemble_path`` and write it to ``out``; returns ``out``.

    ``settings``: ``TrainSettings`` (default: all defaults).  ``loss_log``: the csv to
    write.  ``stop_after`` (tests, time-sliced jobs): do at most that many steps in this
    call, then write the checkpoint and return its path instead (``out`` is not written)."""
    s = TrainSettings() if settings is None else settings
    s.validate()  # a dataclass can be changed after construction
    dev = resolve_device(s.device)
    rdt = real_dtype(s.dtype)
    out = Path(out)
    check_writable(out)
    data = _TrainingSet.load(ensemble_path, rdt, dev)
    record = s.record()
    with ResumableJob(out, record, {"ensemble": ensemble_path}, force=force, resume=resume, label=data.label) as job:
        ensemble_sha256 = job.fingerprint["inputs_sha256"]["ensemble"]
        trainer = _Trainer(s, record, data, dev, rdt, checkpoint_path(out), loss_log)
        trainer.resume(progress)
        bar = Progress(data.label, s.steps, enabled=progress)
        trainer.run(bar, stop_after)
        if trainer.step < s.steps:  # stopped by stop_after
            trainer.save_checkpoint()
            return trainer.ckpt_file
        bar.update(trainer.step, extra=f"loss {trainer.loss_ema:.4f}", force=True)
        trainer.write_model(out, ensemble_path, ensemble_sha256)
        job.finish()
        return out
