"""MAALA sampling throughput and peak memory, batched chains against one chain at a time.

    python benchmarks/maala.py                  # U(1), SU(2), U(2) at L = 16, 32; 32 chains
    python benchmarks/maala.py --quick          # L = 16 only, fewer steps
    python benchmarks/maala.py --device cuda --dtype float32 --chains 256

Each case runs ``campaign.sampler.run_batch`` (annealing + Metropolis-adjusted tail) with
the default score-model architecture (untrained weights: a network evaluation costs the
same) in a fresh subprocess, twice: once with all chains in one batch, and, as the
baseline measured in the same run, the way a straightforward sampler runs them, one chain
after the other (batch 1).  The schedule is shortened (``--levels`` + ``--tail`` steps, each
one score evaluation and one Wilson action); "samples/s" is scaled to the default
schedule of 100 levels + 200 tail steps = 300 score evaluations per sample.
Peak memory: the process's maximum-RSS growth (CPU) or torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from _cases import run_in_fresh_process, write_json

DEFAULT_STEPS_PER_SAMPLE = 100 + 200


def run_case(group: str, L: int, chains: int, levels: int, tail: int, device: str, dtype: str,
             threads: int, baseline_chains: int) -> dict:
    import torch

    from campaign.diffusion import ScoreModel
    from campaign.sampler import MAALASettings, run_batch

    torch.set_num_threads(threads)
    dev = torch.device(device)
    model = ScoreModel(group, 2.0, L, 0.01, 4.0).to(dev, torch.float64 if dtype == "float64" else torch.float32)
    model.eval()
    steps = levels + tail

    def timed(n_chains: int, seed: int) -> float:
        s = MAALASettings(beta=2.0, L=L, n_samples=n_chains, n_levels=levels, tail_steps=tail,
                          batch=n_chains, seed=seed, device=device, dtype=dtype)
        s.resolve({"group": group, "sigma_min": 0.01, "sigma_max": 4.0})
        gen = torch.Generator(device=dev).manual_seed(seed)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            run_batch(model, s, n_chains, gen, dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    timed(min(chains, 2), 99)  # warm-up: allocator, first-call overheads
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    batched = timed(chains, 1)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
    # baseline: chains one after the other; baseline_chains of them, rates per chain
    one = sum(timed(1, 10 + i) for i in range(baseline_chains))
    per_step_batched = chains * steps / batched
    per_step_one = baseline_chains * steps / one
    return {
        "group": group, "L": L, "chains": chains, "dtype": dtype, "device": device, "steps": steps,
        "chain_steps_per_s": per_step_batched, "samples_per_s": per_step_batched / DEFAULT_STEPS_PER_SAMPLE,
        "site_steps_per_s": per_step_batched * L * L,
        "baseline_chain_steps_per_s": per_step_one,
        "baseline_samples_per_s": per_step_one / DEFAULT_STEPS_PER_SAMPLE,
        "ratio": per_step_batched / per_step_one, "peak_mb": peak,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--groups", nargs="+", default=["u1", "su2", "u2"])
    p.add_argument("--L", nargs="+", type=int, default=None)
    p.add_argument("--chains", type=int, default=32)
    p.add_argument("--levels", type=int, default=None, help="annealing levels timed")
    p.add_argument("--tail", type=int, default=None, help="MH tail steps timed")
    p.add_argument("--baseline-chains", type=int, default=None, help="chains timed one by one")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case
    a = p.parse_args(argv)
    Ls = a.L or ([16] if a.quick else [16, 32])
    levels = a.levels or (5 if a.quick else 10)
    tail = a.tail or (5 if a.quick else 10)
    nbase = a.baseline_chains or (2 if a.quick else 4)
    if a.case:
        group, L = a.case.split(":")
        print(json.dumps(run_case(group, int(L), a.chains, levels, tail, a.device, a.dtype, a.threads, nbase)))
        return 0
    rows = []
    for group in a.groups:
        for L in Ls:
            args = ["--case", f"{group}:{L}", "--chains", str(a.chains), "--levels", str(levels),
                    "--tail", str(tail), "--baseline-chains", str(nbase), "--device", a.device,
                    "--dtype", a.dtype, "--threads", str(a.threads)]
            t = time.perf_counter()
            row, err = run_in_fresh_process(__file__, args)
            if row is None:
                print(f"{group} L={L} failed:\n{err}", file=sys.stderr)
                continue
            rows.append(row)
            print(f"  done {group} L={L} ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    print(f"MAALA benchmark: device={a.device} dtype={a.dtype} threads={a.threads} chains={a.chains} "
          f"timed {levels} levels + {tail} tail steps; samples/s at {DEFAULT_STEPS_PER_SAMPLE} steps per sample; "
          f"baseline = one chain at a time ({nbase} chains)")
    head = f"{'group':6} {'L':>4} {'chain-steps/s':>14} {'samples/s':>10} {'baseline samples/s':>19} {'ratio':>7} {'peak MB':>8}"
    print(head)
    for r in rows:
        print(f"{r['group']:6} {r['L']:>4} {r['chain_steps_per_s']:>14.1f} {r['samples_per_s']:>10.3f} "
              f"{r['baseline_samples_per_s']:>19.4f} {r['ratio']:>6.1f}x {r['peak_mb']:>8.0f}")
    write_json(a.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
