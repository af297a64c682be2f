"""Per-kernel times of the fast link fields, and the machine's copy bandwidth (roofline).

    python benchmarks/hmc_kernels.py                          # U(1) float32, L = 32 and 64, 64 chains
    python benchmarks/hmc_kernels.py --groups u1,su2,u2 --dtype float64 --L 32 --threads 1

Every row runs in a fresh process with CAMPAIGN_COMPILE=always (``--eager``: never) and
prints milliseconds per call of each molecular-dynamics kernel: force, kick, drift,
drift+kick, the fused U(1) drift+kick pairs (per pair, for 1, 2 and 4 pairs per call),
momenta, Hamiltonian, normalisation, mean plaquette and the conversion to links.  These
are the numbers behind the choices in ``campaign.fields`` (which kernels to fuse, up to
which size the fused U(1) kernel wins: ``fast.FUSE_MAX_BYTES``).

The bandwidth lines time ``dst.copy_(src)`` (bytes read + written per second) with a
working set that fits the caches (4 MiB) and one that does not (512 MiB): the roofline
``benchmarks/hmc.py`` compares each HMC row against.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from _cases import run_in_fresh_process, write_json

IN_CACHE_BYTES = 4 * 2**20
DRAM_BYTES = 512 * 2**20


def copy_bandwidth(nbytes: int, min_time: float = 0.2) -> float:
    """Bytes moved per second (read + write) by dst.copy_(src), src and dst nbytes / 2
    each; best of 5."""
    import torch

    n = max(1, nbytes // 2 // 4)
    src, dst = torch.rand(n), torch.empty(n)
    dst.copy_(src)
    reps = max(1, int(min_time * 10e9 / nbytes))
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            dst.copy_(src)
        best = min(best, (time.perf_counter() - t) / reps)
    return 2 * n * 4 / best


def _timer(fn, min_time: float) -> float:
    """Best milliseconds per call of fn(), the first (compiling) call excluded."""
    fn()
    t = time.perf_counter()
    fn()
    once = time.perf_counter() - t
    n = max(1, int(min_time / max(once, 1e-6)))
    best = once
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e3


def run_row(spec: dict) -> dict:
    import torch

    from campaign.fields import field_for
    from campaign.groups import get_group

    torch.set_num_threads(spec["threads"])
    group, L, chains = get_group(spec["group"]), spec["L"], spec["chains"]
    dtype = getattr(torch, spec["dtype"])
    fld = field_for(group, dtype)
    gen = torch.Generator().manual_seed(0)
    q = fld.normalise(fld.from_links(group.haar((chains, 2, L, L), generator=gen, dtype=dtype)))
    p = fld.momenta(q, gen)
    beta = torch.tensor(2.0, dtype=dtype)
    use, h, c = fld._use(q, p), fld._tensor(0.05, q), fld._scaled(beta, 0.1, q)
    m = spec["min_time"]
    out = {k: spec[k] for k in ("group", "dtype", "L", "chains", "threads")}
    out["compiled"] = use
    cases = {
        "force": lambda: fld.force(q, beta),
        "kick": lambda: fld.kick(p, q, beta, 0.1),
        "drift": lambda: fld.drift(q, p, 0.05),
        "drift+kick": lambda: fld.drift_kick(q, p, 0.05, beta, 0.1),
        "momenta": lambda: fld.momenta(q, gen),
        "hamiltonian": lambda: fld.hamiltonian(q, p, beta),
        "normalise": lambda: fld.normalise(q),
        "plaquette": lambda: fld.mean_plaquette(q),
        "to_links": lambda: fld.to_links(q.contiguous()),
    }
    for n, kernel in fld._fused_drift_kicks.items():
        cases[f"fused {n} (per pair)"] = (lambda k=kernel, n=n: k(use, q, p, h, *[c] * n), n)
    for name, case in cases.items():
        fn, per = case if isinstance(case, tuple) else (case, 1)
        out[name] = _timer(fn, m) / per
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", default="u1")
    p.add_argument("--dtype", default="float32", help="float32, float64 or a comma list")
    p.add_argument("--L", default="32,64")
    p.add_argument("--chains", default="64")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eager", action="store_true", help="time the uncompiled kernels")
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--json", default=None)
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.row is not None:
        print(json.dumps(run_row(json.loads(a.row))), flush=True)
        return 0
    import torch

    torch.set_num_threads(a.threads)
    bw = {"in_cache": copy_bandwidth(IN_CACHE_BYTES), "dram": copy_bandwidth(DRAM_BYTES)}
    print(f"# copy bandwidth, {a.threads} thread(s): {bw['in_cache'] / 1e9:.1f} GB/s in cache "
          f"({IN_CACHE_BYTES >> 20} MiB), {bw['dram'] / 1e9:.1f} GB/s from DRAM ({DRAM_BYTES >> 20} MiB); "
          f"load average {os.getloadavg()[0]:.1f}")
    env = dict(os.environ, CAMPAIGN_COMPILE="never" if a.eager else "always")
    rows = []
    for dtype in a.dtype.split(","):
        for group in a.groups.split(","):
            for L in map(int, a.L.split(",")):
                for chains in map(int, a.chains.split(",")):
                    spec = dict(group=group, dtype=dtype, L=L, chains=chains, threads=a.threads, min_time=a.min_time)
                    row, err = run_in_fresh_process(os.path.abspath(__file__), ["--row", json.dumps(spec)], env=env)
                    if row is None:
                        print(f"{group} {dtype} L={L} chains={chains}: error {err.strip().splitlines()[-1:]}")
                        continue
                    rows.append(row)
                    times = "  ".join(f"{k} {row[k]:.3f}" for k in row if isinstance(row[k], float))
                    print(f"{group} {dtype} L={L} chains={chains} {'compiled' if row['compiled'] else 'eager'}"
                          f" (ms per call): {times}", flush=True)
    write_json(a.json, {"bandwidth": bw, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
