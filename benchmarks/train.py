"""Training throughput and peak memory of the default score model, per group and L.

    python benchmarks/train.py            # U(1), SU(2), U(2) at L = 16, 32; batches 1, 4, 16, 64
    python benchmarks/train.py --quick    # fewer steps, batches 1, 4, 16
    python benchmarks/train.py --device cuda --dtype float32

Each case runs ``campaign.training.train_model`` on a Haar-random ensemble in a fresh
subprocess (so peak memory is per case), for each L-CNN implementation (``--impl``:
``reference``, the complex-matrix L-CNN; ``fast``, FastLCNN eagerly; ``compiled``, FastLCNN
through torch.compile, what a long training run uses; the same function), dtype
(``--dtype``, several allowed) and batch size (``--batches``; batch 1 is how a
straightforward loop goes through the data); printed: steps/s, configurations/s against
batch 1, and every case against the reference at the first dtype ("before") in the same
run.  A compiled case compiles during its warm-up steps (total_s in the JSON rows).
Rates: steps/s from the loss log's wall-time column (optimiser steps only, after ``--warmup`` steps), peak memory as the process's maximum
RSS (CPU; also its growth during training) or ``torch.cuda.max_memory_allocated`` (GPU).
Where configurations/s at the largest batch are under 3x batch 1's, a note says why, measured:
the network's forward and backward pass is timed alone at every batch, and the note splits
the time per configuration into that pass and the rest of the step.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import time

from _cases import batching_note, run_in_fresh_process, seconds_per_item, write_json


IMPLEMENTATIONS = ("reference", "fast", "compiled")  # complex-matrix L-CNN, FastLCNN eager / compiled


def _use_lcnn(impl: str) -> None:
    """Make ``train_model`` build its ScoreModel on the L-CNN ``impl`` (this process only)."""
    from campaign import training
    from campaign.diffusion import ScoreModel

    class BenchmarkScoreModel(ScoreModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, fast=impl != "reference", **kwargs)

    training.ScoreModel = BenchmarkScoreModel
    # the project's compile switch decides what the trainer's plan() picks (this process only)
    os.environ["CAMPAIGN_COMPILE"] = "always" if impl == "compiled" else "never"


def run_case(group: str, L: int, steps: int, warmup: int, batch: int, device: str, dtype: str,
             threads: int, arch: dict, impl: str) -> dict:
    import torch

    from campaign import runtime
    from campaign.groups import get_group
    from campaign.io import write_ensemble
    from campaign.training import TrainSettings, train_model

    runtime.setup(threads)  # threads and the allocator, as every campaign command sets them
    _use_lcnn(impl)
    g = get_group(group)
    with tempfile.TemporaryDirectory() as tmp:
        ens = os.path.join(tmp, "e.h5")
        write_ensemble(ens, g.haar((32, 2, L, L), generator=torch.Generator().manual_seed(0)),
                       {"group": group, "beta": 1.0, "L": L, "algorithm": "haar"})
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        settings = TrainSettings(steps=warmup + steps, batch_size=batch, device=device, dtype=dtype,
                                 checkpoint_interval=1e9, **arch)
        train_model(ens, os.path.join(tmp, "m.pt"), settings, progress=False, loss_log=os.path.join(tmp, "loss.csv"))
        total = time.perf_counter() - t0
        with open(os.path.join(tmp, "loss.csv")) as f:
            wall = [float(r["wall_time"]) for r in csv.DictReader(f)]
    timed = wall[-1] - wall[warmup - 1] if warmup else wall[-1]
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "group": group, "L": L, "impl": impl, "dtype": dtype, "batch": batch, "steps_per_s": steps / timed,
        "configs_per_s": steps * batch / timed, "total_s": total,
        "peak_rss_mb": rss1 / 1024, "train_rss_growth_mb": (rss1 - rss0) / 1024,
        "network_s_per_config": network_seconds(g, L, batch, settings, torch.device(device)),
    }
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def network_seconds(group, L: int, batch: int, settings, device) -> float:
    """Seconds per configuration of the network's forward and backward pass alone, on a model
    built as the trainer builds it: the part of a training step whose gain from batching the
    batching note reports."""
    import torch

    from campaign import training
    from campaign.device import real_dtype

    rdt = real_dtype(settings.dtype)
    model = training.ScoreModel(group, 1.0, L, settings.sigma_min, settings.sigma_max, arch=settings.arch)
    model = model.to(device=device, dtype=rdt).train()
    model.plan(0)  # CAMPAIGN_COMPILE, set by _use_lcnn for the case, decides
    gen = torch.Generator(device=device).manual_seed(batch)
    U = group.haar((batch, 2, L, L), generator=gen, dtype=rdt, device=device)
    sigma = torch.full((batch,), 0.5, dtype=rdt, device=device)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        group.algebra_norm2(model(U, sigma)).sum().backward()

    return seconds_per_item(forward_backward, batch, device, max(3, 32 // batch))


def print_table(rows: list[dict], a, batches: list[int], steps: int, arch: dict) -> None:
    mem = "cuda_peak_mb" if a.device.startswith("cuda") else "train_rss_growth_mb"
    print(f"training benchmark: device={a.device} threads={a.threads} steps={steps} "
          f"arch={arch or 'default'}; configs/s per batch size; x1 = configs/s over batch 1's")
    print(f"{'group':6} {'L':>4} {'L-CNN':9} {'dtype':8} " + " ".join(f"{'steps/s b=' + str(b):>13}" for b in batches)
          + " " + " ".join(f"{'x1 b=' + str(b):>8}" for b in batches[1:]) + f" {mem + ' b=' + str(batches[-1]):>24}")
    by = {(r["group"], r["L"], r["impl"], r["dtype"], r["batch"]): r for r in rows}
    order = {d: i for i, d in enumerate(a.dtype)}
    keys = sorted({(r["group"], r["L"], r["impl"], r["dtype"]) for r in rows},
                  key=lambda k: (k[0], k[1], order[k[3]], IMPLEMENTATIONS.index(k[2])))
    for g, L, impl, dt in keys:
        rs = [by.get((g, L, impl, dt, b)) for b in batches]
        if None in rs:
            continue
        print(f"{g:6} {L:>4} {impl:9} {dt:8} " + " ".join(f"{r['steps_per_s']:>13.3f}" for r in rs) + " "
              + " ".join(f"{r['configs_per_s'] / rs[0]['configs_per_s']:>7.1f}x" for r in rs[1:])
              + f" {rs[-1][mem]:>24.0f}")
        note = batching_note({b: r["configs_per_s"] for b, r in zip(batches, rs)},
                             {b: r[mem] for b, r in zip(batches, rs)},
                             {b: r["network_s_per_config"] for b, r in zip(batches, rs)},
                             unit="configuration", part="network forward and backward",
                             rest="noise, heat-kernel target, loss, Adam, EMA")
        if note:
            print(f"{'':12}batching: {note}")
    ratios, before = [], a.dtype[0]
    for g, L, impl, dt in keys:
        if (impl, dt) != ("reference", before) and all((g, L, "reference", before, b) in by for b in batches):
            ref = {b: by[(g, L, "reference", before, b)]["steps_per_s"] for b in batches}
            ratios.append(f"  {g} L={L} {impl} {dt}: " + " ".join(
                f"b={b} {by[(g, L, impl, dt, b)]['steps_per_s'] / ref[b]:.2f}x" for b in batches))
    if ratios:
        print(f"train steps/s against the reference L-CNN at {before} (before), same batch, same run:")
        print("\n".join(ratios))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--groups", nargs="+", default=["u1", "su2", "u2"])
    p.add_argument("--L", nargs="+", type=int, default=[16, 32])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batches", nargs="+", type=int, default=None, help="batch sizes timed")
    p.add_argument("--impl", nargs="+", default=None, choices=IMPLEMENTATIONS,
                   help="default: all; --quick: no compiled (its compilation takes minutes with a cold cache)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", nargs="+", default=["float64"], help="dtypes timed (the first is the 'before')")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--kernel-size", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case as JSON
    a = p.parse_args(argv)
    a.impl = a.impl or [i for i in IMPLEMENTATIONS if not (a.quick and i == "compiled")]
    steps = a.steps or (4 if a.quick else 20)
    batches = a.batches or ([1, 4, 16] if a.quick else [1, 4, 16, 64])
    arch = {k: v for k, v in (("channels", a.channels), ("layers", a.layers), ("kernel_size", a.kernel_size)) if v}
    if a.case:
        group, L, batch, impl = a.case.split(":")
        print(json.dumps(run_case(group, int(L), steps, a.warmup, int(batch), a.device, a.dtype[0], a.threads, arch,
                                  impl)))
        return 0
    def case(group, L, batch_size, impl, dtype):
        args = ["--case", f"{group}:{L}:{batch_size}:{impl}", "--steps", str(steps), "--warmup", str(a.warmup),
                "--device", a.device, "--dtype", dtype, "--threads", str(a.threads)]
        for k, v in arch.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        row, err = run_in_fresh_process(__file__, args)
        if row is None:
            print(f"{group} L={L} batch {batch_size} {impl} {dtype} failed:\n{err}", file=sys.stderr)
        return row

    rows = []
    for group in a.groups:
        for L in a.L:
            for impl, dtype in [(i, d) for d in a.dtype for i in a.impl]:
                for b in batches:
                    row = case(group, L, b, impl, dtype)
                    if row is not None:
                        rows.append(row)
            print(f"  done {group} L={L}", file=sys.stderr, flush=True)
    print_table(rows, a, batches, steps, arch)
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
