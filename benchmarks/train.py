"""Training throughput and peak memory of the default score model, per group and L.

    python benchmarks/train.py            # U(1), SU(2), U(2) at L = 16, 32; batch 16
    python benchmarks/train.py --quick    # fewer steps, batch 8 (about a minute on 1 core)
    python benchmarks/train.py --device cuda --dtype float32

Each case runs ``campaign.training.train_model`` on a Haar-random ensemble in a fresh
subprocess (so peak memory is per case), twice: with the batch size asked for, and, as the
baseline measured in the same run, the way a straightforward training loop goes through
the data, one configuration per step (batch 1); "ratio" compares configurations/s.  Rates: steps/s from the loss log's wall-time column
(optimiser steps only, after ``--warmup`` steps), peak memory as the process's maximum
RSS (CPU; also its growth during training) or ``torch.cuda.max_memory_allocated`` (GPU).
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

from _cases import run_in_fresh_process, write_json


def run_case(group: str, L: int, steps: int, warmup: int, batch: int, device: str, dtype: str,
             threads: int, arch: dict) -> dict:
    import torch

    from campaign.groups import get_group
    from campaign.io import write_ensemble
    from campaign.training import TrainSettings, train_model

    torch.set_num_threads(threads)
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
        "group": group, "L": L, "batch": batch, "steps_per_s": steps / timed,
        "configs_per_s": steps * batch / timed, "total_s": total,
        "peak_rss_mb": rss1 / 1024, "train_rss_growth_mb": (rss1 - rss0) / 1024,
    }
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--groups", nargs="+", default=["u1", "su2", "u2"])
    p.add_argument("--L", nargs="+", type=int, default=[16, 32])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--kernel-size", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case as JSON
    a = p.parse_args(argv)
    steps = a.steps or (4 if a.quick else 20)
    batch = a.batch_size or (8 if a.quick else 16)
    arch = {k: v for k, v in (("channels", a.channels), ("layers", a.layers), ("kernel_size", a.kernel_size)) if v}
    if a.case:
        group, L = a.case.split(":")
        print(json.dumps(run_case(group, int(L), steps, a.warmup, batch, a.device, a.dtype, a.threads, arch)))
        return 0
    def case(group, L, batch_size):
        args = ["--case", f"{group}:{L}", "--steps", str(steps), "--warmup", str(a.warmup),
                "--batch-size", str(batch_size), "--device", a.device, "--dtype", a.dtype, "--threads", str(a.threads)]
        for k, v in arch.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        row, err = run_in_fresh_process(__file__, args)
        if row is None:
            print(f"{group} L={L} batch {batch_size} failed:\n{err}", file=sys.stderr)
        return row

    rows = []
    for group in a.groups:
        for L in a.L:
            row, base = case(group, L, batch), case(group, L, 1)
            if row is None or base is None:
                continue
            row["baseline_configs_per_s"] = base["configs_per_s"]
            rows.append(row)
            print(f"  done {group} L={L}", file=sys.stderr, flush=True)
    mem = "cuda_peak_mb" if a.device.startswith("cuda") else "train_rss_growth_mb"
    print(f"training benchmark: device={a.device} dtype={a.dtype} threads={a.threads} batch={batch} "
          f"steps={steps} arch={arch or 'default'}; baseline = batch 1")
    print(f"{'group':6} {'L':>4} {'steps/s':>9} {'configs/s':>10} {'ms/step':>9} {'baseline configs/s':>19} "
          f"{'ratio':>7} {'peak RSS MB':>12} {mem:>20}")
    for r in rows:
        print(f"{r['group']:6} {r['L']:>4} {r['steps_per_s']:>9.2f} {r['configs_per_s']:>10.1f} "
              f"{1000 / r['steps_per_s']:>9.1f} {r['baseline_configs_per_s']:>19.1f} "
              f"{r['configs_per_s'] / r['baseline_configs_per_s']:>6.1f}x {r['peak_rss_mb']:>12.0f} {r[mem]:>20.0f}")
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
