"""`campaign hmc` end to end against the benchmark's trajectory rate (issue 16).

    python benchmarks/hmc_cli.py                       # U(1) float32, L = 32 x 64 chains; 32 and 2000 trajectories
    python benchmarks/hmc_cli.py --trajectories 32 --threads 1
    python benchmarks/hmc_cli.py --trajectories 2000 --cases warm,auto --repeat 3   # medians on a noisy machine

Runs, each in a fresh process and in this order:
  bench      the benchmark's loop: ``campaign.hmc.trajectory`` on the same field, compiled,
             best trajectories/s of 5 windows of 20 (what ``benchmarks/hmc.py`` reports), then
             the mean rate over as many trajectories in one go as the longest job runs (a
             job's loop is such a mean; the two part on a shared machine), allocator tuned
             as ``campaign.runtime`` does;
  cold       ``campaign hmc`` compiled (CAMPAIGN_COMPILE=always) with an empty compile cache
             (the job builds its kernels ahead of time into it: ``campaign.fields.aot``);
  warm       the same again: the cache the cold job filled (loaded, no dynamo);
  eager      ``campaign hmc`` uncompiled (CAMPAIGN_COMPILE=never);
  auto       ``campaign hmc`` as a campaign runs it (CAMPAIGN_COMPILE=auto with the campaign's
             compile cache: compiled when the run is estimated long enough), warm cache,
for each number of trajectories (``--therm 0 --sep 8 --n-leapfrog 10``, Omelyan, 64 chains
store every 8th trajectory).  Printed per job: wall time of the process, of the HMC loop
(the file's wall_time_s) and trajectories/s end to end; then the ratios the issue asks
for: end-to-end rate / benchmark rate, compile overhead of a warm job (warm - eager, an
upper bound: the compiled trajectories themselves are faster), and auto / eager.  The
HMC loop rate (trajectories / wall_time_s) leaves out the imports, the conversion to links and
the HDF5 write; "after the imports" leaves out only the interpreter start and the imports
(measured separately, best of three), which every job pays and the benchmark does not count.
The benchmark runs again at the end: a changed rate says the machine's load changed.

Timings on a shared machine mean something only as ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

SEP = 8


def campaign_hmc(out: str, trajectories: int, args, env: dict) -> dict:
    """One `campaign hmc` job; its process wall time and the file's HMC wall time."""
    import h5py

    n_configs = args.chains * (trajectories // SEP)
    cmd = [sys.executable, "-m", "campaign.cli", "hmc", "--group", args.group, "--beta", str(args.beta),
           "--L", str(args.L), "--chains", str(args.chains), "--n-configs", str(n_configs), "--therm", "0",
           "--sep", str(SEP), "--n-leapfrog", str(args.n_steps), "--dtype", args.dtype, "--out", out,
           "--quiet", "--force", "--threads", str(args.threads), "--compile-cache", env["CACHE"]]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"campaign hmc failed: {proc.stderr.strip().splitlines()[-1:]}")
    with h5py.File(out) as f:
        loop = float(f.attrs["wall_time_s"])
    os.remove(out)
    return {"wall_s": wall, "hmc_s": loop, "traj_per_s": trajectories / wall}


def import_seconds(env: dict) -> float:
    """Best of three: a fresh interpreter importing what every job imports first."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, h5py, campaign.cli"], env=env, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def bench_row(spec: dict) -> dict:
    """In a fresh process: best trajectories/s of the compiled loop, warm-up excluded."""
    import torch

    from campaign import runtime
    from campaign.fields import field_for
    from campaign.groups import get_group
    from campaign.hmc import trajectory

    # torch.compile's path, as benchmarks/hmc.py runs it: inductor's cache, no campaign
    # compile cache (whose ahead-of-time kernels the jobs load; bit-identical, slightly faster)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = spec["cache"]
    os.environ.pop(runtime.CACHE_ENV, None)
    runtime.setup(spec["threads"], None)
    group, dtype = get_group(spec["group"]), getattr(torch, spec["dtype"])
    fld = field_for(group, dtype)
    gen = torch.Generator().manual_seed(0)
    q = fld.normalise(fld.from_links(group.haar((spec["chains"], 2, spec["L"], spec["L"]), generator=gen, dtype=dtype)))
    beta = torch.tensor(spec["beta"], dtype=dtype)
    eps = 1.0 / spec["n_steps"]
    for _ in range(3):
        q = trajectory(fld, q, beta, eps, spec["n_steps"], "omelyan", gen)[0]
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(20):
            q = trajectory(fld, q, beta, eps, spec["n_steps"], "omelyan", gen)[0]
        best = min(best, (time.perf_counter() - t) / 20)
    row = {"traj_per_s": 1 / best, "compiled": fld.compiles(q)}
    if spec.get("straight"):
        # as many trajectories in one go as the longest job runs: the mean rate, which a
        # job's loop is, against the best window of 20 above (apart on a shared machine)
        t = time.perf_counter()
        for _ in range(spec["straight"]):
            q = trajectory(fld, q, beta, eps, spec["n_steps"], "omelyan", gen)[0]
        row["straight_per_s"] = spec["straight"] / (time.perf_counter() - t)
    return row


def run_bench(spec: dict, env: dict, when: str) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--row", json.dumps(spec)],
                          env=dict(env, CAMPAIGN_COMPILE="always"), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"benchmark loop failed: {proc.stderr.strip().splitlines()[-1:]}")
    bench = json.loads(proc.stdout.strip().splitlines()[-1])
    straight = f", {bench['straight_per_s']:.1f} over {spec['straight']} in one go" if spec.get("straight") else ""
    print(f"bench {when}: {bench['traj_per_s']:.1f} trajectories/s best of 5 x 20{straight} "
          f"(compiled: {bench['compiled']}), load average {os.getloadavg()[0]:.1f}", flush=True)
    return bench


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trajectories", default="32,2000", help=f"comma list, multiples of {SEP}")
    p.add_argument("--group", default="u1")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--L", type=int, default=32)
    p.add_argument("--chains", type=int, default=64)
    p.add_argument("--beta", type=float, default=2.0)
    p.add_argument("--n-steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--cases", default="cold,warm,eager,auto")
    p.add_argument("--cache", default=None,
                   help="the jobs' compile cache (default: a temporary directory; 'cold' empties it)")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions (benchmark, then the jobs); medians over them are printed")
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.row is not None:
        print(json.dumps(bench_row(json.loads(a.row))), flush=True)
        return 0
    trajectories = [int(t) for t in a.trajectories.split(",")]
    if any(t % SEP or t <= 0 for t in trajectories):
        p.error(f"--trajectories: multiples of {SEP}")
    with tempfile.TemporaryDirectory(prefix="hmc_cli_") as tmp:
        cache = os.path.abspath(a.cache) if a.cache else os.path.join(tmp, "cache")
        env = dict(os.environ, CACHE=cache)
        print(f"# campaign hmc {a.group} {a.dtype} L={a.L} x {a.chains} chains, {a.n_steps} Omelyan steps, "
              f"{a.threads} threads, load average {os.getloadavg()[0]:.1f}", flush=True)
        spec = {k: getattr(a, k) for k in ("group", "dtype", "L", "chains", "beta", "n_steps", "threads")}
        spec["cache"] = os.path.join(tmp, "bench_cache")
        spec["straight"] = max(trajectories)
        imports = import_seconds(env)
        print(f"interpreter + imports (torch, h5py, campaign): {imports:.1f} s per process", flush=True)
        modes = {"cold": "always", "warm": "always", "eager": "never", "auto": "auto"}
        ratios: dict = {}
        for rep in range(a.repeat):
            bench = run_bench(spec, env, "before the jobs" if rep == 0 else f"before repetition {rep + 1}")
            for n in trajectories:
                jobs = {}
                for case in a.cases.split(","):
                    if case == "cold":
                        subprocess.run(["rm", "-rf", cache], check=True)
                    jobs[case] = campaign_hmc(os.path.join(tmp, "e.h5"), n, a, dict(env, CAMPAIGN_COMPILE=modes[case]))
                    j = jobs[case]
                    print(f"{n:5d} trajectories, {case:5s}: {j['wall_s']:6.1f} s process, {j['hmc_s']:6.1f} s HMC, "
                          f"{j['traj_per_s']:6.1f} trajectories/s end to end", flush=True)
                for case, j in jobs.items():
                    r = (j["traj_per_s"] / bench["traj_per_s"], n / (j["wall_s"] - imports) / bench["traj_per_s"],
                         n / j["hmc_s"] / bench["traj_per_s"], n / j["hmc_s"] / bench["straight_per_s"])
                    ratios.setdefault((n, case), []).append(r)
                    print(f"{n:5d} trajectories: {case} rate / bench: end to end {r[0]:.2f}, after the imports "
                          f"{r[1]:.2f}, HMC loop {r[2]:.2f} (against the benchmark's {spec['straight']} in one go: {r[3]:.2f}); outside the loop {j['wall_s'] - j['hmc_s']:.1f} s")
                if "warm" in jobs and "eager" in jobs:
                    print(f"{n:5d} trajectories: warm compile overhead <= "
                          f"{jobs['warm']['wall_s'] - jobs['eager']['wall_s']:.1f} s (warm - eager)")
                if "auto" in jobs and "eager" in jobs:
                    print(f"{n:5d} trajectories: auto / eager wall = {jobs['auto']['wall_s'] / jobs['eager']['wall_s']:.2f}")
        if a.repeat > 1:
            print(f"over {a.repeat} repetitions, each against the benchmark run just before it: median (range)")
            for (n, case), rs in ratios.items():
                cols = [sorted(r[k] for r in rs) for k in range(4)]
                print(f"{n:5d} trajectories, {case:5s}: " + ", ".join(
                    f"{name} {statistics.median(c):.2f} ({c[0]:.2f}-{c[-1]:.2f})"
                    for name, c in zip(("end to end", "after the imports", "HMC loop", "HMC loop / in one go"), cols)))
        run_bench(spec, env, "after the jobs (a rate unlike the first: the load changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
