"""Diffusion sampling: throughput against one chain at a time, and effective samples per
second of the exact sampler against the unweighted MAALA, in the same run.

    python benchmarks/maala.py                  # U(1), SU(2), U(2) at L = 16, 32
    python benchmarks/maala.py --quick          # L = 16 throughput, small ESS cases
    python benchmarks/maala.py --device cuda --dtype float32 --batches 1 64 256

Part 1, throughput.  ``campaign.samplers.smc.run_smc_batch`` (Metropolis-adjusted moves with
the model's score, reweighting, resampling) with the default score-model architecture
(untrained weights: a network evaluation costs the same) in a fresh subprocess per L-CNN
implementation (``--impl``: ``reference``, the complex-matrix L-CNN; ``fast``, FastLCNN
eagerly; ``compiled``, FastLCNN through torch.compile, what a long sampling job runs; the
same function) and dtype (``--dtype``, several allowed), at every batch size of
``--batches`` (batch 1: one chain after the other).  Warm-up runs at batch 1 and 2 come
first (a compiled case compiles there; its wall time is printed as "warm-up s"), and one
untimed level at each batch size before it is timed (the steady state of a long job: the
first network call of a shape runs eagerly).
Printed: samples/s per batch size, the per-chain gain of the largest batch over batch 1
(where it is under 3x, the time per chain-step at batch 1 and at the best batch, split into
the score evaluation, timed alone, and the rest of the step), and every case against the reference at the
first dtype ("before"; float64 by default) at every batch, measured in the same run.  Unit: chain-steps/s (one step = one score evaluation and
one Wilson action); samples/s is scaled to the default schedule (``SampleSettings``:
n_levels x (steps_per_level + 1) + tail score evaluations per sample).  Peak memory: the
process's maximum-RSS growth (CPU) or torch.cuda.max_memory_allocated.

Part 2, effective samples per second.  At one (group, beta, L) per case, from beta0 = beta/2,
the same untrained ScoreModel (its physics prior, no training) samples with
  * smc, drift = model   (exact: weighted SMC with the network's score as drift),
  * smc, drift = physics (exact: the same without the network, the baseline),
  * maala                (unweighted, approximate: its "effective" samples are biased),
each timed end to end through ``sample_to_file``.  Reported: wall time, Kish ESS/N,
n_eff of the plaquette (the number of independent draws worth the same error), effective
samples/s = n_eff / wall, and the pull (value - exact) / error of the plaquette -- the
figure of merit only counts when the pull is consistent with zero.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from _cases import batching_note, run_in_fresh_process, seconds_per_item, write_json


def _settings_steps_per_sample() -> int:
    from campaign.samplers.settings import SampleSettings

    s = SampleSettings(beta=1.0, L=4, n_samples=1)
    return s.n_levels * (s.steps_per_level + 1) + s.tail_steps


_PER_BATCH = ("chain_steps_per_s", "samples_per_s", "peak_mb", "score_s_per_chain")  # JSON keys by batch
IMPLEMENTATIONS = ("reference", "fast", "compiled")  # complex-matrix L-CNN, FastLCNN eager / compiled


def run_throughput(group: str, L: int, batches: list[int], levels: int, device: str, dtype: str, threads: int,
                   baseline_chains: int, impl: str) -> dict:
    import torch

    from campaign import runtime
    from campaign.diffusion import ScoreModel
    from campaign.samplers.scores import ModelScore
    from campaign.samplers.settings import SampleSettings
    from campaign.samplers.smc import initial_path, run_smc_batch

    runtime.setup(threads)  # threads and the allocator, as every campaign command sets them
    dev = torch.device(device)
    rdtype = torch.float64 if dtype == "float64" else torch.float32
    model = ScoreModel(group, 2.0, L, 0.01, 4.0, fast=impl != "reference").to(dev, rdtype)
    model.eval()
    # the project's compile switch decides, as for a long sampling job (fresh process per case)
    os.environ["CAMPAIGN_COMPILE"] = "always" if impl == "compiled" else "never"
    model.plan(0)
    score = ModelScore(model, dev, torch.complex128 if rdtype == torch.float64 else torch.complex64)
    steps_per_level = 1

    def timed(n_chains: int, seed: int, n_levels: int = levels) -> float:
        s = SampleSettings(beta=2.0, L=L, n_samples=n_chains, n_levels=n_levels, steps_per_level=steps_per_level,
                           tail_steps=0, batch=n_chains, seed=seed, device=device, dtype=dtype)
        s.resolve({"group": group, "sigma_min": 0.01, "sigma_max": 4.0})
        path = initial_path(score, s)
        gen = torch.Generator(device=dev).manual_seed(seed)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        run_smc_batch(score, s, path, n_chains, gen, dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    t0 = time.perf_counter()
    timed(1, 98)  # warm-up: allocator, first-call overheads, compilation (batch 1, any other batch)
    timed(2, 99)
    warmup = time.perf_counter() - t0
    evals = levels * (steps_per_level + 1)  # a drift refresh per level and one per move
    rates, peaks = {}, {}
    for b in batches:
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        timed(b, 0, 1)  # steady state: a shape's first network call runs eagerly (FastLCNN.forward)
        if b == 1:  # one chain after the other
            wall = sum(timed(1, 10 + i) for i in range(baseline_chains))
            rates[b] = baseline_chains * evals / wall
        else:
            rates[b] = b * evals / timed(b, 1)
        peaks[b] = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
                    else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
    # the score evaluation alone (network, skip force, output scale) per chain at every batch:
    # which part of the step gains from batching, measured rather than inferred
    score_s = {}
    for b in batches:
        U = score.group.haar((b, 2, L, L), generator=torch.Generator(device=dev).manual_seed(b),
                             dtype=rdtype, device=dev)
        sig = torch.full((b,), 0.5, dtype=rdtype, device=dev)
        score_s[b] = seconds_per_item(lambda: score(U, sig), b, dev, max(3, 64 // b))
    per_sample = _settings_steps_per_sample()
    return {
        "group": group, "L": L, "impl": impl, "dtype": dtype, "device": device, "levels": levels,
        "chain_steps_per_s": rates, "samples_per_s": {b: r / per_sample for b, r in rates.items()},
        "peak_mb": peaks, "evals_per_sample": per_sample, "warmup_s": warmup, "score_s_per_chain": score_s,
    }


def run_effective(group: str, beta: float, L: int, n: int, batch: int, levels: int, device: str, dtype: str,
                  threads: int) -> list[dict]:
    import torch

    from campaign import exact, io, runtime
    from campaign.diffusion import ScoreModel
    from campaign.lattice import wilson_loop
    from campaign.samplers.job import sample_to_file
    from campaign.samplers.settings import SampleSettings
    from campaign.stats import independent_summary, weighted_summary

    runtime.setup(threads)  # threads and the allocator, as every campaign command sets them
    model = ScoreModel(group, beta / 2, L, 0.01, 4.0)
    ex = exact.plaquette(group, beta, L)
    variants = (
        ("smc/model", dict(method="smc", drift="model", n_levels=levels)),
        ("smc/physics", dict(method="smc", drift="physics", n_levels=levels)),
        ("maala", dict(method="maala", n_levels=levels, tail_steps=2 * levels, steps_per_level=1)),
    )
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, kw in variants:
            s = SampleSettings(beta=beta, L=L, n_samples=n, batch=batch, seed=3, device=device, dtype=dtype, **kw)
            t = time.perf_counter()
            path = sample_to_file(model, Path(d) / f"{name.replace('/', '_')}.h5", s, progress=False)
            wall = time.perf_counter() - t
            ens = io.read_ensemble(path)
            plaq = wilson_loop(ens.links, 1, 1).numpy()
            if ens.log_weights is not None:
                st = weighted_summary(plaq, ens.log_weights, ens.weight_block)
                ess = float(ens.attrs["ess_per_sample"])
            else:
                st = independent_summary(plaq)
                ess = 1.0
            rows.append({
                "group": group, "beta": beta, "L": L, "beta0": beta / 2, "sampler": name, "n": n,
                "wall_s": wall, "ess_per_sample": ess, "n_eff": st["n_eff"],
                "effective_per_s": st["n_eff"] / wall, "pull": (st["value"] - ex) / st["error"],
                "approximate": name == "maala",
            })
    return rows


def print_throughput(thr: list[dict], a, levels: int, nbase: int, batches: list[int]) -> None:
    print(f"Sampler throughput: device={a.device} threads={a.threads}, {levels} SMC levels "
          f"timed; samples/s at {_settings_steps_per_sample()} score evaluations per sample (default schedule); "
          f"batch 1 = one chain after the other ({nbase} chains); x1 = per-chain rate over batch 1's")
    print(f"{'group':6} {'L':>4} {'L-CNN':9} {'dtype':8} " + " ".join(f"{'samples/s b=' + str(b):>17}" for b in batches)
          + f" {'x1 at b=' + str(batches[-1]):>10} {'peak MB':>8} {'warm-up s':>9}")
    for r in thr:
        sps, cs = r["samples_per_s"], r["chain_steps_per_s"]
        print(f"{r['group']:6} {r['L']:>4} {r['impl']:9} {r['dtype']:8} "
              + " ".join(f"{sps[b]:>17.4f}" for b in batches)
              + f" {cs[batches[-1]] / cs[batches[0]]:>9.1f}x {r['peak_mb'][batches[-1]]:>8.0f} {r['warmup_s']:>9.1f}")
        note = (batching_note(cs, r["peak_mb"], r["score_s_per_chain"], unit="chain-step", part="score evaluation",
                              rest="proposal, exp map, Wilson action, acceptance, weights")
                if "score_s_per_chain" in r else "")
        if note:
            print(f"{'':12}batching: {note}")
    before_dtype = a.dtype[0]
    lines = []
    for r in thr:
        base = [x for x in thr if x["impl"] == "reference" and x["dtype"] == before_dtype
                and (x["group"], x["L"]) == (r["group"], r["L"])]
        if base and r is not base[0]:
            b0 = base[0]["chain_steps_per_s"]
            lines.append(f"  {r['group']} L={r['L']} {r['impl']} {r['dtype']}: " + " ".join(
                f"b={b} {r['chain_steps_per_s'][b] / b0[b]:.2f}x" for b in batches)
                + f"; best batch over reference batch 1: "
                  f"{max(r['chain_steps_per_s'].values()) / b0[batches[0]]:.2f}x")
    if lines:
        print(f"against the reference L-CNN at {before_dtype} (before), same batch, same run:")
        print("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--groups", nargs="+", default=["u1", "su2", "u2"])
    p.add_argument("--L", nargs="+", type=int, default=None)
    p.add_argument("--batches", nargs="+", type=int, default=None,
                   help="chains per batch timed (1 = one chain after the other)")
    p.add_argument("--levels", type=int, default=None, help="levels timed in the throughput part")
    p.add_argument("--baseline-chains", type=int, default=None, help="chains timed one by one")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", nargs="+", default=["float64"],
                   help="dtypes timed in the throughput part (the first is the reference's 'before'); "
                        "the effective part runs the first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--impl", nargs="+", default=None, choices=IMPLEMENTATIONS,
                   help="L-CNN implementations timed in the throughput part (default: all; --quick: no "
                        "compiled, whose compilation takes minutes with a cold cache)")
    p.add_argument("--parts", nargs="+", default=["throughput", "effective"], choices=["throughput", "effective"])
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--from-json", default=None, help="print the tables of an earlier --json run and stop")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one case
    a = p.parse_args(argv)
    a.impl = a.impl or [i for i in IMPLEMENTATIONS if not (a.quick and i == "compiled")]
    Ls = a.L or ([16] if a.quick else [16, 32])
    batches = a.batches or ([1, 4, 16] if a.quick else [1, 4, 16, 64])
    levels = a.levels or (5 if a.quick else 10)
    nbase = a.baseline_chains or (2 if a.quick else 4)
    ess_cases = [(g, 2.0, 8 if a.quick else (16 if g == "u1" else 8)) for g in a.groups]
    ess_n, ess_batch, ess_levels = (64, 16, 40) if a.quick else (256, 32, 200)
    if a.from_json:
        with open(a.from_json) as f:
            thr = [{**r, **{k: {int(b): v for b, v in r[k].items()} for k in _PER_BATCH if k in r}}
                   for r in json.load(f)["throughput"]]
        first = thr[0]
        a.dtype = [next((r["dtype"] for r in thr if r["impl"] == "reference"), first["dtype"])]  # the "before"
        print_throughput(thr, a, first["levels"], a.baseline_chains or 4, sorted(first["chain_steps_per_s"]))
        return 0
    if a.case:
        kind, group, x = a.case.split(":")
        if kind == "throughput":
            L, impl = x.split(",")
            out = run_throughput(group, int(L), batches, levels, a.device, a.dtype[0], a.threads, nbase, impl)
        else:
            beta, L = (float(v) for v in x.split(","))
            out = run_effective(group, beta, int(L), ess_n, ess_batch, ess_levels, a.device, a.dtype[0], a.threads)
        print(json.dumps(out))
        return 0
    common = ["--batches", *map(str, batches), "--levels", str(levels), "--baseline-chains", str(nbase),
              "--device", a.device, "--threads", str(a.threads)] + (["--quick"] if a.quick else [])
    thr, eff = [], []
    for group in a.groups if "throughput" in a.parts else ():
        for L in Ls:
            for impl, dtype in [(i, d) for d in a.dtype for i in a.impl]:
                row, err = run_in_fresh_process(__file__, ["--case", f"throughput:{group}:{L},{impl}", *common,
                                                           "--dtype", dtype])
                if row is None:
                    print(f"throughput {group} L={L} {impl} {dtype} failed:\n{err}", file=sys.stderr)
                    continue
                print(f"  done {group} L={L} {impl} {dtype}", file=sys.stderr, flush=True)
                row = {**row, **{k: {int(b): v for b, v in row[k].items()} for k in _PER_BATCH}}
                thr.append(row)
    for group, beta, L in ess_cases if "effective" in a.parts else ():
        rows, err = run_in_fresh_process(__file__, ["--case", f"effective:{group}:{beta},{L}", *common,
                                                    "--dtype", a.dtype[0]])
        if rows is None:
            print(f"effective {group} L={L} failed:\n{err}", file=sys.stderr)
            continue
        eff.extend(rows)
    print_throughput(thr, a, levels, nbase, batches)
    if "effective" not in a.parts:
        write_json(a.json, {"throughput": thr, "effective": eff})
        return 0
    print(f"\nEffective samples per second (untrained ScoreModel at beta0 = beta/2, {ess_n} samples, "
          f"batches of {ess_batch}, {ess_levels} levels; ratio against the unweighted MAALA of the same case; "
          "MAALA's samples count only where its pull is consistent with zero)")
    print(f"{'group':6} {'beta':>5} {'L':>4} {'sampler':12} {'wall s':>8} {'ESS/N':>6} {'n_eff':>7} {'eff/s':>8} "
          f"{'ratio':>7} {'plaq pull':>9}")
    for r in eff:
        base = [x for x in eff if x["group"] == r["group"] and x["sampler"] == "maala"]
        ratio = r["effective_per_s"] / base[0]["effective_per_s"] if base and base[0]["effective_per_s"] > 0 else math.nan
        print(f"{r['group']:6} {r['beta']:>5g} {r['L']:>4} {r['sampler']:12} {r['wall_s']:>8.1f} "
              f"{r['ess_per_sample']:>6.2f} {r['n_eff']:>7.1f} {r['effective_per_s']:>8.2f} {ratio:>6.2f}x "
              f"{r['pull']:>+9.1f}")
    write_json(a.json, {"throughput": thr, "effective": eff})
    return 0


if __name__ == "__main__":
    sys.exit(main())
