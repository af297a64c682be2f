"""``sample_to_file``: a sampling job, in batches, checkpointed, resumable, one output file.

Batches are independent (own seed from ``campaign.seeds``).  Each finished batch is
written atomically to ``OUT.parts/``; the smc sampler's pilot (its tuned path) too.  A
rerun after a kill resumes from there and gives exactly the file of an uninterrupted run.

Output: the standard HDF5 layout of ``campaign.io`` (algorithm "smc" or "maala").  smc
files also hold ``log_weights`` (n_samples,) float64 and ``weight_block`` (n_samples,), the
batch each particle belongs to (the independent blocks of the error analysis), and the
attributes ``weighted``, ``ess`` (Kish's effective sample size of the whole file),
``ess_per_sample``, ``log_z`` (log of the batch-averaged estimate of Z(beta), the Haar
integral of exp(-S_beta)).  maala files say ``approximate = true``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .. import io
from ..device import real_dtype, resolve_device
from ..errors import CampaignError
from ..groups import complex_dtype
from ..jobs import ResumableJob
from ..preemption import stop_if_requested
from ..progress import Progress
from ..stats import kish_ess
from .maala import TAIL_Q_CHANGED_WARN, run_maala_batch
from .scores import ModelScore, describe_model, load_score_model
from .settings import SampleSettings
from .smc import SMCPath, initial_path, run_smc_batch, run_smc_batches

PILOT_FILE = "pilot.pt"


def batch_seed(seed: int, index: int) -> int:
    from ..seeds import seed_from

    return seed_from("maala-batch", index, base=seed)


def pilot_seed(seed: int) -> int:
    from ..seeds import seed_from

    return seed_from("smc-pilot", base=seed)


def sample_to_file(model, out, settings: SampleSettings, *, model_path: str | None = None,
                   progress: bool = True, group: str | None = None, force: bool = False) -> Path:
    """Draw ``settings.n_samples`` configurations at (beta, L) and write them to ``out``.

    ``model`` is a score function (``scores.ScoreFn``) or the path of a model file
    (``campaign.io.load_model``).  ``group``: the target group; a model of another group is
    refused (default: the model's group).  The job runs under
    ``campaign.jobs.ResumableJob``: output lock, no overwrite unless ``force``, a
    checkpoint fingerprinted with the model file's sha256 (a retrained model means a
    fresh start).  Returns the output path."""
    if isinstance(model, (str, Path)):
        model_path = str(model) if model_path is None else model_path
        model = load_score_model(model)
    info = describe_model(model)
    if group is not None and info["group"] != str(group):
        where = f" {model_path}" if model_path is not None else ""
        raise CampaignError(f"model{where} is a {info['group']} model; it cannot sample group {group}")
    s = replace(settings).resolve(info)
    dev = resolve_device(s.device)
    out = Path(out)
    has_file = model_path is not None and Path(model_path).is_file()
    inputs = {"model": model_path} if has_file else {}
    label = f"{s.method} {info['group']} beta={s.beta:g} L={s.L}"
    with ResumableJob(out, {k: v for k, v in asdict(s).items() if k != "device"}, inputs,
                      force=force, label=label) as job:
        model_hash = job.fingerprint["inputs_sha256"]["model"] if has_file else "none"
        _sample(model, out, s, info, dev, job, model_path, model_hash, label, progress)
    return out


def _sample(model, out: Path, s: SampleSettings, info: dict, dev, job: ResumableJob, model_path, model_hash: str,
            label: str, progress: bool) -> None:
    parts = job.parts
    fingerprint = {
        **{k: v for k, v in asdict(s).items() if k != "device"},
        "model": info, "model_path": str(model_path) if model_path is not None else "none",
        "model_sha256": model_hash,
    }
    sizes = s.batch_sizes
    results = _load_parts(parts, fingerprint, len(sizes))
    rdtype = real_dtype(s.dtype)
    score = ModelScore(model, dev, complex_dtype(rdtype))
    if hasattr(model, "plan"):  # the network compiles when the run is long enough
        model.plan(s.steps_per_batch * (sum(sizes) + min(s.pilot_chains, s.batch)) * 2 * s.L**2)
    _probe(score, info, s, dev, rdtype, model_path)
    path = _pilot(score, s, parts, fingerprint, dev, label, progress) if s.method == "smc" else None
    # the pilot may move steps between levels (step_allocation), so count what will run
    per_batch = int(path.steps.sum()) + s.tail_steps if path is not None else s.steps_per_batch
    total = per_batch * len(sizes)
    bar = Progress(label, total, enabled=progress)
    if results and progress:
        print(f"{label}: resuming with {len(results)}/{len(sizes)} batches done", file=sys.stderr)
    for batches in s.passes:
        if all(b in results for b in batches):
            continue
        first, size = batches[0], sizes[batches[0]]
        gen = torch.Generator(device=dev)
        gen.manual_seed(batch_seed(s.seed, first))  # a pass of one batch: that batch's own stream
        if s.method == "smc":
            done = run_smc_batches(score, s, path, size, len(batches), gen, dev, bar, first * per_batch)
            new = {b: {"samples": res.samples, "log_weights": res.log_weights, "log_z": res.log_z,
                       "history": res.history, "wall_s": res.wall_s} for b, res in zip(batches, done)}
            ess = [kish_ess(res.log_weights) / size for res in done]
            note = (f"ESS/N={ess[0]:.2f} log_z={done[0].log_z:.2f}" if len(done) == 1
                    else f"ESS/N={min(ess):.2f}-{max(ess):.2f}")
        else:
            res = run_maala_batch(score, s, size, gen, dev, bar, first * per_batch)
            new = {first: {"samples": res.samples, "history": res.history, "eps": res.eps, "wall_s": res.wall_s}}
            note = f"acc={res.history['batch_acceptance']:.2f} eps={res.eps:.3g}"
        for b, part in new.items():  # a pass cut short by a kill reruns whole, to the same numbers
            part.update(fingerprint=fingerprint, batch=b)
            io.save_torch_atomic(part, parts / f"batch_{b:05d}.pt")
            results[b] = part
        last = batches[-1]
        what = f"batch {last + 1}" if len(batches) == 1 else f"batches {first + 1}-{last + 1}"
        bar.update((last + 1) * per_batch, f"{what}/{len(sizes)} {note}", force=True)
        if len(results) < len(sizes):  # every pass is a checkpoint
            stop_if_requested(label, f" after batch {last + 1}/{len(sizes)}")

    if s.method == "smc":
        links, chain, step, history, summary, datasets = _assemble_smc(s, sizes, results, path)
    else:
        links, chain, step, history, summary = _assemble_maala(s, sizes, results)
        datasets = {}
        changed = summary.get("tail_q_changed")
        if progress and changed is not None and changed < TAIL_Q_CHANGED_WARN:
            print(f"note: the Metropolis-corrected tail changed the topological charge of {100 * changed:.0f}% of "
                  "the chains; Q (and chi_t) then come from the annealing and carry its bias (maala is "
                  "approximate; method smc is exact)", file=sys.stderr)
    attrs = {
        **{k: v for k, v in asdict(s).items() if v is not None},
        "group": info["group"],
        "algorithm": s.method,
        "approximate": s.method == "maala",
        "weighted": s.weighted,
        "model_path": str(model_path) if model_path is not None else "none",
        "model_sha256": model_hash,
        "model_class": info["class"],
        "model_beta0": info["beta0"],
        "model_L0": info["L0"],
        "model_sigma_min": info["sigma_min"],
        "model_sigma_max": info["sigma_max"],
        "score_scale": s.beta / info["beta0"],
        "independent": s.independent,
        "mh_target": "exp(-S_beta) Wilson action at the target beta",
        "n_chains": s.n_chains,
        "n_batches": len(sizes),
        "samples_per_chain": s.samples_per_chain,
        **summary,
    }
    job.check_count(links.shape[0], s.n_samples)
    io.write_ensemble(out, links, attrs, history=history, chain=chain, step=step, datasets=datasets)
    job.finish()


def _probe(score, info: dict, s: SampleSettings, dev, rdtype, model_path) -> None:
    """Refuse a model whose score is not finite on a Haar-random configuration at the ends of
    its noise range (weights trained to overflow, lr 1e10): it would sample with acceptance 0."""
    from ..groups import get_group

    gen = torch.Generator(device=dev)
    gen.manual_seed(0)  # its own generator: the batches' random streams are untouched
    U = get_group(info["group"]).haar((1, 2, s.L, s.L), generator=gen, dtype=rdtype, device=dev)
    for sigma in (info["sigma_min"], info["sigma_max"]):
        out = score(U, torch.full((1,), sigma, dtype=rdtype, device=dev))
        if not bool(torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all()):
            where = f" {model_path}" if model_path is not None else ""
            raise CampaignError(f"model{where} gives non-finite scores at sigma={sigma:g} on a Haar-random "
                                "configuration; it cannot sample (retrain it)")


def _pilot(score, s: SampleSettings, parts: Path, fingerprint: dict, dev, label: str, progress: bool) -> SMCPath:
    """The smc path with step sizes tuned by a pilot run (loaded from the checkpoint when
    an earlier run of this job finished its pilot)."""
    pilot_path = parts / PILOT_FILE
    if pilot_path.exists():
        saved = io.load_torch(pilot_path, "smc pilot checkpoint")
        if saved.get("fingerprint") != fingerprint:
            raise CampaignError(
                f"checkpoint {pilot_path} was made with different settings or model; delete {parts} to start afresh")
        return SMCPath.from_dict(saved["path"])
    n = min(s.pilot_chains, s.batch)
    bar = Progress(f"{label} pilot", s.steps_per_batch, enabled=progress)
    gen = torch.Generator(device=dev)
    gen.manual_seed(pilot_seed(s.seed))
    res = run_smc_batch(score, s, initial_path(score, s), n, gen, dev, bar, 0, adapt=True)
    path = res.path
    parts.mkdir(parents=True, exist_ok=True)
    io.save_torch_atomic({"fingerprint": fingerprint, "path": path.as_dict(), "history": res.history,
                          "wall_s": res.wall_s}, pilot_path)
    if progress:
        print(f"{label} pilot: step sizes {path.eps.min():.3g}..{path.eps.max():.3g}, tail {path.tail_eps:.3g}, "
              f"ESS/N {kish_ess(res.log_weights) / n:.2f}", file=sys.stderr)
    return path


def _load_parts(parts: Path, fingerprint: dict, n_batches: int) -> dict:
    results = {}
    if not parts.exists():
        return results
    for path in sorted(parts.glob("batch_*.pt")):
        part = io.load_torch(path, "sampler checkpoint part")
        if part.get("fingerprint") != fingerprint:
            raise CampaignError(
                f"checkpoint {path} was made with different settings or model; delete {parts} to start afresh"
            )
        if 0 <= part["batch"] < n_batches:
            results[part["batch"]] = part
    return results


def _stack_history(results: dict, n_batches: int, keys) -> dict:
    return {k: np.stack([np.asarray(results[b]["history"][k]) for b in range(n_batches)], -1) for k in keys}


def _assemble_smc(s: SampleSettings, sizes: list[int], results: dict, path: SMCPath):
    """Concatenate batches (batch-major), with global log weights (module docstring).  The
    links are ``io.RowBlocks`` over the batches' samples: the file is written from them,
    with no second copy of every sample in memory."""
    nb = len(sizes)
    log_weights = np.concatenate([np.asarray(results[b]["log_weights"], dtype=np.float64) for b in range(nb)])
    block = np.concatenate([np.full(size, b, dtype=np.int64) for b, size in enumerate(sizes)])
    per_level = [k for k in results[0]["history"] if k.startswith("level_")] + ["tail_acceptance"]
    history = {
        "level_sigma": path.sigma, "level_beta": path.beta, "level_eps": path.eps, "level_steps": path.steps,
        **_stack_history(results, nb, per_level),
        "batch_log_z": np.asarray([results[b]["log_z"] for b in range(nb)]),
        "batch_ess": np.asarray([kish_ess(results[b]["log_weights"]) for b in range(nb)]),
        "batch_chains": np.asarray(sizes),
        "batch_wall_s": np.asarray([results[b]["wall_s"] for b in range(nb)]),
        "batch_resamplings": np.asarray([float(np.sum(results[b]["history"]["level_resampled"])) for b in range(nb)]),
    }
    log_z = np.asarray(history["batch_log_z"])
    ess = kish_ess(log_weights)
    summary = {
        "ess": ess,
        "ess_per_sample": ess / len(log_weights),
        "log_z": float(np.logaddexp.reduce(log_z) - math.log(nb)),
        "tail_step_size": path.tail_eps,
        "acceptance": float(np.mean(history["tail_acceptance"])) if s.tail_steps else math.nan,
        "level_acceptance_min": float(np.min(np.mean(history["level_acceptance"], -1))),
        "resamplings_per_batch": float(np.mean(history["batch_resamplings"])),
        "nonfinite_scores": int(sum(results[b]["history"]["nonfinite_scores"] for b in range(nb))),
        "wall_time_s": float(history["batch_wall_s"].sum()),
    }
    chain = np.arange(len(log_weights), dtype=np.int64)
    step = np.zeros(len(log_weights), dtype=np.int64)
    n = s.n_samples
    datasets = {"log_weights": log_weights[:n], "weight_block": block[:n]}
    links = io.RowBlocks.concatenated([results[b]["samples"] for b in range(nb)], n)
    return links, chain[:n], step[:n], history, summary, datasets


def _assemble_maala(s: SampleSettings, sizes: list[int], results: dict):
    """Concatenate batches (batch-major; within a batch measurement-major, chain-minor),
    truncated to exactly n_samples; the links as ``io.RowBlocks`` (``_assemble_smc``)."""
    links, chain, step, sample_acc = [], [], [], []
    offset = 0
    for b, size in enumerate(sizes):
        part = results[b]
        smp = part["samples"]  # (K + 1, B, ...)
        k1 = smp.shape[0]
        links.append(smp.reshape(k1 * size, *smp.shape[2:]))
        chain.append(np.tile(np.arange(offset, offset + size), k1))
        step.append(np.repeat(np.arange(k1), size))
        sample_acc.append(np.asarray(part["history"]["sample_acceptance"]).reshape(-1))
        offset += size
    nb = len(sizes)
    hist_parts = [results[b]["history"] for b in range(nb)]
    history = {
        "level_sigma": np.asarray(hist_parts[0]["level_sigma"]),
        "level_eps": np.asarray(hist_parts[0]["level_eps"]),
        **_stack_history(results, nb, ("level_acceptance", "tail_acceptance", "tail_eps", "tail_plaquette")),
        "batch_eps": np.asarray([results[b]["eps"] for b in range(nb)]),
        "batch_acceptance": np.asarray([h["batch_acceptance"] for h in hist_parts]),
        "batch_chains": np.asarray(sizes),
        "batch_wall_s": np.asarray([results[b]["wall_s"] for b in range(nb)]),
        "sample_acceptance": np.concatenate(sample_acc),
    }
    if all("tail_q_changed" in h for h in hist_parts):
        history["tail_q_changed"] = np.concatenate([np.asarray(h["tail_q_changed"]).reshape(-1) for h in hist_parts])
    weights = np.asarray(sizes, dtype=float)
    acc = history["batch_acceptance"]
    summary = {
        "acceptance": float(np.sum(acc * weights) / weights.sum()) if np.all(np.isfinite(acc)) else float("nan"),
        "step_size_final": float(np.sum(history["batch_eps"] * weights) / weights.sum()),
        "nonfinite_scores": int(sum(h["nonfinite_scores"] for h in hist_parts)),
        "wall_time_s": float(history["batch_wall_s"].sum()),
    }
    if "tail_q_changed" in history:
        summary["tail_q_changed"] = float(history["tail_q_changed"].mean())
    n = s.n_samples  # measurement-major order: the surplus is the last steps of the last chains
    history["sample_acceptance"] = history["sample_acceptance"][:n]
    return io.RowBlocks.concatenated(links, n), np.concatenate(chain)[:n], np.concatenate(step)[:n], history, summary
