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

import argparse
import copy
import csv
import math
import sys
import time
from pathlib import Path

import torch

from . import io
from .diffusion import DEFAULT_ARCH, ScoreModel, dsm_loss, sample_sigma
from .errors import CampaignError
from .groups import complex_dtype, get_group
from .lattice import gauge_transform
from .diffusion.lcnn import LOOP_SETS
from .progress import Progress

CHECKPOINT_FORMAT = "campaign-train-checkpoint"
SCHEDULES = ("cosine", "constant")
LOSS_COLUMNS = ("step", "loss", "lr", "wall_time", "ema")
LOSS_EMA = 0.98  # smoothing of the "ema" column (bias-corrected like Adam's moments)
# settings that must agree between a checkpoint and the run resuming it
RESUME_KEYS = ("steps", "batch_size", "lr", "lr_schedule", "ema_decay", "arch",
               "sigma_min", "sigma_max", "gauge_augment", "seed", "dtype", "grad_clip", "warmup")


def checkpoint_path(out) -> Path:
    from .jobs import parts_dir

    return parts_dir(out) / "train_state.pt"


def resolve_device(device) -> torch.device:
    name = "auto" if device is None else str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CampaignError(f"unknown torch device {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CampaignError(f"device {name!r} requested but torch sees no CUDA GPU")
    return dev


def resolve_dtype(dtype) -> torch.dtype:
    table = {"float64": torch.float64, "float32": torch.float32,
             torch.float64: torch.float64, torch.float32: torch.float32}
    if dtype not in table:
        raise CampaignError(f"dtype must be float64 or float32, got {dtype!r}")
    return table[dtype]


def lr_at(step: int, *, lr: float, steps: int, schedule: str, warmup: int) -> float:
    """Learning rate for optimiser step ``step`` (0-based)."""
    f = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if schedule == "cosine":
        f *= 0.5 * (1.0 + math.cos(math.pi * step / steps))
    return lr * f


def _validate(*, steps, batch_size, lr, lr_schedule, ema_decay, channels, layers, kernel_size,
              loops, sigma_min, sigma_max, checkpoint_interval, grad_clip) -> None:
    def bad(msg):
        raise CampaignError(msg)

    for name, v in (("steps", steps), ("batch_size", batch_size), ("channels", channels),
                    ("layers", layers), ("kernel_size", kernel_size)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            bad(f"{name} must be a positive integer, got {v!r}")
    for name, v in (("lr", lr), ("sigma_min", sigma_min), ("sigma_max", sigma_max)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            bad(f"{name} must be a finite number > 0, got {v!r}")
    if sigma_min >= sigma_max:
        bad(f"sigma_min ({sigma_min}) must be smaller than sigma_max ({sigma_max})")
    if lr_schedule not in SCHEDULES:
        bad(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {lr_schedule!r}")
    if not (0.0 <= ema_decay < 1.0):
        bad(f"ema_decay must lie in [0, 1), got {ema_decay!r}")
    if loops not in LOOP_SETS:
        bad(f"loops must be one of {', '.join(LOOP_SETS)}, got {loops!r}")
    if not (checkpoint_interval >= 0 and not math.isnan(checkpoint_interval)):
        bad(f"checkpoint_interval must be >= 0 seconds, got {checkpoint_interval!r}")
    if grad_clip is not None and not grad_clip > 0:
        bad(f"grad_clip must be > 0 or None, got {grad_clip!r}")


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


def train_model(
    ensemble_path,
    out,
    *,
    steps: int = 2000,
    batch_size: int = 16,
    lr: float = 1e-3,
    lr_schedule: str = "cosine",
    ema_decay: float = 0.999,
    channels: int = DEFAULT_ARCH["channels"],
    layers: int = DEFAULT_ARCH["layers"],
    kernel_size: int = DEFAULT_ARCH["kernel_size"],
    loops: str = DEFAULT_ARCH["loops"],
    sigma_min: float = 0.01,
    sigma_max: float = 4.0,
    gauge_augment: bool = True,
    seed: int = 0,
    device="cpu",
    dtype="float64",
    checkpoint_interval: float = 60.0,
    resume: bool = True,
    progress: bool = True,
    loss_log=None,
    grad_clip: float | None = 1.0,
    warmup: int | None = None,
    stop_after: int | None = None,
    force: bool = False,
) -> Path:
    """Train a score model on ``ensemble_path`` and write it to ``out``; returns ``out``.

    ``stop_after`` (tests, time-sliced jobs): do at most that many steps in this call,
    then write the checkpoint and return its path instead (``out`` is not written).
    ``warmup``: linear warm-up steps (default min(100, steps // 20))."""
    _validate(steps=steps, batch_size=batch_size, lr=lr, lr_schedule=lr_schedule,
              ema_decay=ema_decay, channels=channels, layers=layers, kernel_size=kernel_size,
              loops=loops, sigma_min=sigma_min, sigma_max=sigma_max,
              checkpoint_interval=checkpoint_interval, grad_clip=grad_clip)
    steps, batch_size = int(steps), int(batch_size)
    warmup = min(100, steps // 20) if warmup is None else int(warmup)
    dev = resolve_device(device)
    rdt = resolve_dtype(dtype)
    out = Path(out)
    from .jobs import check_writable

    check_writable(out)
    ens = io.read_ensemble(ensemble_path, dtype=rdt)
    try:
        group = get_group(ens.group)
    except ValueError as exc:
        raise CampaignError(f"{ensemble_path}: {exc}") from None
    data = ens.links.to(dev)
    n_cfg, L = data.shape[0], ens.L
    if n_cfg == 0:
        raise CampaignError(f"{ensemble_path} holds no configurations")
    if data.shape[-1] != group.N:
        raise CampaignError(f"{ensemble_path}: links are {data.shape[-1]}x{data.shape[-1]}, group {group.name} needs N={group.N}")
    beta0 = float(ens.beta)

    arch = {**DEFAULT_ARCH, "channels": int(channels), "layers": int(layers),
            "kernel_size": int(kernel_size), "loops": loops}
    settings = {
        "steps": steps, "batch_size": batch_size,
        "lr": float(lr), "lr_schedule": lr_schedule, "ema_decay": float(ema_decay), "arch": arch,
        "sigma_min": float(sigma_min), "sigma_max": float(sigma_max),
        "gauge_augment": bool(gauge_augment), "seed": int(seed), "dtype": str(rdt).replace("torch.", ""),
        "grad_clip": None if grad_clip is None else float(grad_clip), "warmup": warmup,
    }

    from .jobs import ResumableJob

    with ResumableJob(out, settings, {"ensemble": ensemble_path}, force=force, resume=resume,
                      label=f"train {group.name} b{beta0:g} L{L}") as job:
        ensemble_sha256 = job.fingerprint["inputs_sha256"]["ensemble"]
        ckpt_file = checkpoint_path(out)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = ScoreModel(group, beta0, L, sigma_min, sigma_max, arch=arch)
        model = model.to(device=dev, dtype=rdt)
        ema = copy.deepcopy(model)
        for p in ema.parameters():
            p.requires_grad_(False)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(seed))

        step, wall, rows, loss_ema = 0, 0.0, [], None
        ema_acc = [0.0, 0]  # running average of the loss and its count (bias-corrected EMA)
        if ckpt_file.exists():
            ck = io.load_torch(ckpt_file, what="training checkpoint")
            if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
                raise CampaignError(f"{ckpt_file} is not a campaign training checkpoint; remove it or use --no-resume")
            saved = ck.get("settings", {})
            diff = [k for k in RESUME_KEYS if saved.get(k) != settings[k]]
            if diff:
                detail = ", ".join(f"{k}: {saved.get(k)!r} -> {settings[k]!r}" for k in diff)
                raise CampaignError(f"checkpoint {ckpt_file} was made with different settings ({detail}); use --no-resume to start over")
            model.load_state_dict(ck["model"])
            ema.load_state_dict(ck["ema"])
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            step, wall, rows, loss_ema = int(ck["step"]), float(ck["wall"]), list(ck["rows"]), ck["loss_ema"]
            ema_acc = list(ck["loss_ema_acc"])
            if progress:
                print(f"train: resuming from {ckpt_file} at step {step}/{steps}", file=sys.stderr, flush=True)

        def save_checkpoint():
            state = {
                "format": CHECKPOINT_FORMAT, "settings": settings, "step": step, "wall": wall,
                "rows": rows, "loss_ema": loss_ema, "loss_ema_acc": ema_acc,
                "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "generator": gen.get_state(),
            }
            io.save_torch_atomic(state, ckpt_file)
            if loss_log is not None:
                _write_loss_log(loss_log, rows)

        label = f"train {group.name} b{beta0:g} L{L}"
        bar = Progress(label, steps, enabled=progress)
        last_ckpt = time.monotonic()
        done_here = 0
        model.train()
        cdt = complex_dtype(rdt)
        pending = []  # (step, loss tensor, lr, wall) not yet turned into floats

        def flush():
            nonlocal loss_ema
            for s_, lt, lr_, w_ in pending:
                v = float(lt)
                ema_acc[0] = LOSS_EMA * ema_acc[0] + (1 - LOSS_EMA) * v
                ema_acc[1] += 1
                loss_ema = ema_acc[0] / (1 - LOSS_EMA ** ema_acc[1])
                rows.append((s_, v, lr_, w_, loss_ema))
            pending.clear()
            if loss_ema is not None and not math.isfinite(loss_ema):
                raise CampaignError(f"training diverged at step {step} (loss {loss_ema}); try a smaller --lr")

        while step < steps and (stop_after is None or done_here < stop_after):
            t0 = time.perf_counter()
            cur_lr = lr_at(step, lr=lr, steps=steps, schedule=lr_schedule, warmup=warmup)
            for g in opt.param_groups:
                g["lr"] = cur_lr
            idx = torch.randint(n_cfg, (batch_size,), generator=gen, device=dev)
            U0 = data[idx].to(cdt)
            if gauge_augment:
                U0 = gauge_transform(U0, group.haar((batch_size, L, L), generator=gen, dtype=rdt, device=dev))
            sigma = sample_sigma(batch_size, sigma_min, sigma_max, generator=gen, dtype=rdt, device=dev)
            loss = dsm_loss(model, U0, sigma, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            _ema_update(ema, model, min(ema_decay, (1.0 + step) / (10.0 + step)))
            step += 1
            done_here += 1
            wall += time.perf_counter() - t0
            pending.append((step, loss.detach(), cur_lr, wall))
            if len(pending) >= 50 or dev.type == "cpu":
                flush()
            bar.update(step, extra=lambda: (flush(), f"loss {loss_ema:.4f} lr {cur_lr:.2e}")[1])
            if checkpoint_interval is not None and time.monotonic() - last_ckpt >= checkpoint_interval and step < steps:
                flush()
                save_checkpoint()
                last_ckpt = time.monotonic()
        flush()

        if step < steps:  # stopped by stop_after
            save_checkpoint()
            return ckpt_file

        bar.update(step, extra=f"loss {loss_ema:.4f}", force=True)
        meta = {
            "training": {
                **settings, "ensemble": str(Path(ensemble_path).resolve()), "ensemble_sha256": ensemble_sha256,
                "steps_done": step, "wall_time_s": wall,
                "final_loss_ema": loss_ema, "device": str(dev),
            },
            "ensemble_attrs": {k: ens.attrs.get(k) for k in ("group", "beta", "L", "n_configs", "algorithm", "seed",
                                                             "created", "code_commit", "campaign_version")
                               if k in ens.attrs},
        }
        ema.eval()
        io.save_model(out, ema, meta)
        if loss_log is not None:
            _write_loss_log(loss_log, rows)
        job.finish()
        return out


# ------------------------------------------------------------------------- CLI
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .cli import add_common_device, add_force, nonnegative_float, positive_float, positive_int

    p.add_argument("--ensemble", required=True, help="training ensemble (HDF5, e.g. from campaign hmc)")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="learning-rate schedule")
    p.add_argument("--channels", type=positive_int, default=DEFAULT_ARCH["channels"])
    p.add_argument("--layers", type=positive_int, default=DEFAULT_ARCH["layers"], help="L-Conv/L-Bilin blocks")
    p.add_argument("--kernel-size", type=positive_int, default=DEFAULT_ARCH["kernel_size"],
                   help="L-Conv sites per axis (2: nearest neighbours)")
    p.add_argument("--loops", choices=LOOP_SETS, default=DEFAULT_ARCH["loops"],
                   help="input loops: plaquettes, or plaquettes and 1x2 rectangles")
    p.add_argument("--sigma-min", type=positive_float, default=0.01)
    p.add_argument("--sigma-max", type=positive_float, default=4.0)
    p.add_argument("--ema", type=nonnegative_float, default=0.999, help="EMA decay of the weights, in [0, 1)")
    p.add_argument("--gauge-augment", action=argparse.BooleanOptionalAction, default=True,
                   help="random gauge copy of every training configuration")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="continue from the checkpoint OUT.parts/ if present")
    p.add_argument("--loss-log", default=None, help="csv: step, loss, lr, wall_time, ema")
    p.add_argument("--checkpoint-interval", type=nonnegative_float, default=60.0, help="seconds between checkpoints")
    p.add_argument("--stop-after", type=positive_int, default=None, help=argparse.SUPPRESS)
    add_common_device(p)
    add_force(p)


def train_from_args(args) -> Path:
    return train_model(
        args.ensemble, args.out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        lr_schedule=args.schedule, ema_decay=args.ema, channels=args.channels, layers=args.layers,
        kernel_size=args.kernel_size, loops=args.loops, sigma_min=args.sigma_min,
        sigma_max=args.sigma_max, gauge_augment=args.gauge_augment, seed=args.seed,
        device=args.device, dtype=args.dtype, checkpoint_interval=args.checkpoint_interval,
        resume=args.resume, progress=not args.quiet, loss_log=args.loss_log,
        stop_after=args.stop_after, force=args.force,
    )
