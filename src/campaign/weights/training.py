"""SGD along which the weight-matrix spectra are logged: one run per (model, lr, batch
size, seed), resumable bit-identically.

``train_run(out, model, lr=, batch_size=, steps=, seed=, ...)`` builds the model
(campaign.weights.models) from ``seed``, trains it with plain SGD (or AdamW, for the
nano-GPT as in the papers) on fresh mini-batches from a second stream derived from
``seed``, and records the spectra at step 0 and every ``log_every`` steps (and at the
last step).  Every ``checkpoint_interval`` seconds (0: at every snapshot) the whole state
(weights, optimiser, data generator, snapshots so far) goes atomically to
``<out>.ckpt``; a run killed at any point and started again continues from there and
writes a run file whose data are bit-identical to an uninterrupted run's (same device,
dtype and thread count).  The run file (campaign.weights.io) appears atomically once
complete, and the checkpoint is then removed.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import io as cio
from ..errors import CampaignError
from ..preemption import CheckpointClock, stop_signals
from ..progress import Progress
from ..seeds import seed_from
from .io import write_run
from .models import build_model

CHECKPOINT_FORMAT = "campaign-weights-checkpoint"
OPTIMIZERS = ("sgd", "adamw")


def checkpoint_path(out) -> Path:
    return Path(str(out) + ".ckpt")


def _dtype(name) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    table = {"float64": torch.float64, "float32": torch.float32}
    if name not in table:
        raise CampaignError(f"dtype must be float64 or float32, got {name!r}")
    return table[name]


def _check(lr, batch_size, steps, log_every, optimizer, checkpoint_interval):
    if not (lr > 0 and math.isfinite(lr)):
        raise CampaignError(f"learning rate must be > 0, got {lr!r}")
    for name, v in (("batch_size", batch_size), ("steps", steps), ("log_every", log_every)):
        if int(v) != v or v < 1:
            raise CampaignError(f"{name} must be a positive integer, got {v!r}")
    if optimizer not in OPTIMIZERS:
        raise CampaignError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if not checkpoint_interval >= 0:
        raise CampaignError(f"checkpoint_interval must be >= 0 seconds, got {checkpoint_interval!r}")


@dataclass
class _Log:
    """What a run has recorded so far: the resumable part of its state besides the model,
    optimiser and data stream."""

    step: int = 0
    wall_before: float = 0.0
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    spectra: dict[str, list[np.ndarray]] = field(default_factory=dict)
    loss_sum: float = 0.0
    loss_count: int = 0

    def snapshot(self, net) -> None:
        self.steps.append(self.step)
        self.loss.append(self.loss_sum / self.loss_count if self.loss_count else math.nan)
        for name, ev in net.spectra().items():
            self.spectra.setdefault(name, []).append(ev.detach().cpu().numpy().astype(np.float64))
        self.loss_sum, self.loss_count = 0.0, 0

    def stacked_spectra(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v) for k, v in self.spectra.items()}


def _save_checkpoint(path, signature, log: _Log, net, opt, data_gen, wall_time_s: float) -> None:
    cio.save_torch_atomic({
        "format": CHECKPOINT_FORMAT, "signature": signature, "step": log.step,
        "model": net.state_dict(), "optimizer": opt.state_dict(), "data_generator": data_gen.get_state(),
        "wall_time_s": wall_time_s, "log_step": log.steps, "log_loss": log.loss,
        "log_spectra": log.stacked_spectra(), "loss_sum": log.loss_sum, "loss_count": log.loss_count,
    }, path)


def _resume(path, signature, net, opt, data_gen) -> _Log:
    ck = cio.load_torch(path, what="weights checkpoint")
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CampaignError(f"{path} is not a weights checkpoint; remove it to start over")
    if ck["signature"] != signature:
        diff = sorted(k for k in signature if ck["signature"].get(k) != signature[k])
        raise CampaignError(f"checkpoint {path} was made with other settings ({', '.join(diff)}); remove it to start over")
    net.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    data_gen.set_state(ck["data_generator"])
    return _Log(step=int(ck["step"]), wall_before=float(ck["wall_time_s"]), steps=list(ck["log_step"]),
                loss=list(ck["log_loss"]), spectra={k: list(v) for k, v in ck["log_spectra"].items()},
                loss_sum=float(ck["loss_sum"]), loss_count=int(ck["loss_count"]))


def train_run(
    out,
    model: str,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    seed: int,
    log_every: int = 10,
    settings: dict | None = None,
    optimizer: str = "sgd",
    device="cpu",
    dtype="float64",
    checkpoint_interval: float = 60.0,
    resume: bool = True,
    progress: bool = False,
    stop_after: int | None = None,
) -> Path:
    """Train one run and write its run file ``out``; returns ``out``.  With ``stop_after``
    the call stops after that many optimiser steps of this call, writes the checkpoint
    and returns its path instead (what a kill would leave, without the kill)."""
    _check(lr, batch_size, steps, log_every, optimizer, checkpoint_interval)
    out = Path(out)
    dt = _dtype(dtype)
    init_gen = torch.Generator().manual_seed(seed_from("init", base=int(seed)))
    data_gen = torch.Generator().manual_seed(seed_from("data", base=int(seed)))
    net = build_model(model, settings, init_gen, dtype=dt, device=device)
    settings = net.settings()
    opt = torch.optim.SGD(net.parameters(), lr=lr) if optimizer == "sgd" else torch.optim.AdamW(net.parameters(), lr=lr)
    signature = {
        "model": model, "settings": settings, "lr": float(lr), "batch_size": int(batch_size), "steps": int(steps),
        "seed": int(seed), "log_every": int(log_every), "optimizer": optimizer, "dtype": str(dt),
    }
    ckpt_file = checkpoint_path(out)
    log = _Log()
    if resume and ckpt_file.exists():
        log = _resume(ckpt_file, signature, net, opt, data_gen)
        if progress:
            print(f"weights: resuming {out.name} from {ckpt_file} at step {log.step}/{steps}", file=sys.stderr, flush=True)
    t0 = time.monotonic()

    def save_checkpoint():
        _save_checkpoint(ckpt_file, signature, log, net, opt, data_gen, log.wall_before + time.monotonic() - t0)

    if log.step == 0 and not log.steps:
        log.snapshot(net)
    bar = Progress(f"weights {model} lr={lr:g} B={batch_size}", steps, enabled=progress)
    clock, done_here = CheckpointClock(checkpoint_interval, f"weights {out.name}"), 0
    net.train()
    with stop_signals():
        while log.step < steps:
            _sgd_step(net, opt, data_gen, batch_size, log, model, lr)
            done_here += 1
            if log.step % log_every == 0 or log.step == steps:
                log.snapshot(net)
                if log.step < steps and clock.due():
                    save_checkpoint()
                    clock.written()
                bar.update(log.step, extra=lambda: f"loss {log.loss[-1]:.4g}")
            if stop_after is not None and done_here >= stop_after and log.step < steps:
                save_checkpoint()
                return ckpt_file
    bar.update(log.step, force=True)

    net.eval()
    attrs = {
        "model": model, "lr": float(lr), "batch_size": int(batch_size), "seed": int(seed), "steps": int(steps),
        "log_every": int(log_every), "optimizer": optimizer, "dtype": str(dt).replace("torch.", ""),
        "device": str(device), "settings": settings, "theory": net.theory(),
        "evaluation": net.evaluate() if hasattr(net, "evaluate") else {},
        "wall_time_s": log.wall_before + time.monotonic() - t0, "threads": torch.get_num_threads(),
    }
    write_run(out, log.steps, log.loss, log.stacked_spectra(), attrs)
    if ckpt_file.exists():
        ckpt_file.unlink()
    return out


def _sgd_step(net, opt, data_gen, batch_size: int, log: _Log, model: str, lr: float) -> None:
    opt.zero_grad(set_to_none=True)
    losses = net.loss(net.sample_batch(batch_size, data_gen), data_gen)
    mean_loss = float(losses.detach().mean())
    if not math.isfinite(mean_loss):
        raise CampaignError(f"{model}: loss became {mean_loss} at step {log.step} (lr={lr}, B={batch_size}): SGD diverged")
    losses.sum().backward()
    opt.step()
    log.step += 1
    log.loss_sum += mean_loss
    log.loss_count += 1
