"""HMC throughput and peak memory of the fast link fields, beside a plain numpy reference.

    python benchmarks/hmc.py                  # U(1), SU(2), U(2); L = 16, 32, 64; chains = 1, 16, 64
    python benchmarks/hmc.py --quick          # L = 32, chains = 1 and 64 (a few minutes)
    python benchmarks/hmc.py --dtype float32 --groups u1 --L 32 --chains 64
    python benchmarks/hmc.py --generic        # also time the generic torch MatrixField

Every row runs in a fresh subprocess: batched HMC (``campaign.hmc.trajectory`` with the
field ``campaign.fields.field_for`` picks, Haar-random start, beta = 2, Omelyan
integrator, 10 steps of 0.1 by default) and, in the same process, a straightforward
numpy implementation of the same algorithm (angles and np.roll for U(1); complex 2 x 2
matrices, ``@`` and np.roll for SU(2) and U(2)); its force is checked against the fast
field's before timing.

Units: links = 2 L^2 per configuration;
  link updates/s       = links x chains x trajectories / s,
  link force evals/s   = links x chains x force evaluations / s.
Times are the best of several repeats (the machine may be shared), the first trajectory
(which compiles the kernels) excluded and reported as "warm-up".  "ratio" = fast / numpy
(or fast / generic); "of BW" = the row's least memory traffic per second (every link
force evaluation reads and writes a link and its momentum once) over the copy bandwidth
measured in cache at the start of the run (4 MiB working set; the 512 MiB one, from DRAM,
is printed beside it): the roofline.  "MB ratio" = fast / numpy peak memory.  Peak memory is the extra resident memory one trajectory needs
beyond the resident field (CPU: the process's peak RSS, reset through
/proc/self/clear_refs, with glibc returning freed blocks of 64 KiB and more to the
system; GPU: torch.cuda.max_memory_allocated).  Threads: ``--threads auto`` times an
elementwise op with 1 and with all threads and keeps the faster, which on a loaded
machine is often one thread.  ``--malloc tuned`` (default) sets MALLOC_MMAP_THRESHOLD_ and
MALLOC_TRIM_THRESHOLD_ in the row processes so that glibc keeps freed memory instead of
faulting fresh pages in for every large temporary (worth up to ~1.5x for U(1) in float64;
``--malloc default`` measures without).

A full run takes 5-8 minutes once the inductor cache (``/tmp/torchinductor_$USER``) holds
the kernels for the chosen thread count; a first run compiles each kernel for each
lattice shape (10-30 s apiece on a slow 2-core machine) and took 12-14 minutes here.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import resource
import sys
import time

from _cases import run_in_fresh_process, write_json
from hmc_kernels import DRAM_BYTES, IN_CACHE_BYTES, copy_bandwidth

TARGETS = {  # link force evaluations / s at L = 32, 64 chains (issue 7)
    ("u1", "float32"): 6e8, ("u1", "float64"): 3e8, ("su2", "float64"): 5e7, ("u2", "float64"): 5e7,
}


# ----------------------------------------------------------------------------- numpy
class _NumpyModel:
    """What campaign.hmc.integrate needs beyond force/drift: the unfused generic updates
    of campaign.fields.LinkField (plain array arithmetic, so they run on numpy too)."""

    from campaign.fields import LinkField

    kick = LinkField.kick
    drift_kick = LinkField.drift_kick
    drift_kicks = LinkField.drift_kicks
    hamiltonian = LinkField.hamiltonian
    del LinkField


class NumpyU1(_NumpyModel):
    """U(1) angles theta (chains, 2, L, L); plaquette angle and force with np.roll."""

    def __init__(self, dtype):
        import numpy as np

        self.np, self.dtype = np, np.dtype(dtype)

    def from_links(self, U):
        return self.np.angle(U[..., 0, 0]).astype(self.dtype)

    def plaq(self, th):
        np = self.np
        t0, t1 = th[:, 0], th[:, 1]  # axes (chain, x, y)
        return t0 + np.roll(t1, -1, 1) - np.roll(t0, -1, 2) - t1

    def action(self, th, beta):
        return beta * (1 - self.np.cos(self.plaq(th))).sum((1, 2))

    def force(self, th, beta):
        np = self.np
        s = beta * np.sin(self.plaq(th))
        return np.stack((s - np.roll(s, 1, 2), np.roll(s, 1, 1) - s), 1)

    def drift(self, th, p, eps):
        return th + eps * p

    def momenta(self, th, rng):
        return rng.standard_normal(th.shape, dtype=self.dtype)

    def kinetic(self, p):
        return 0.5 * (p * p).sum((1, 2, 3))

    def normalise(self, th):
        np = self.np
        return np.remainder(th + np.pi, 2 * np.pi) - np.pi

    def force_coords(self, f):
        return f


class NumpyMatrix(_NumpyModel):
    """SU(2) / U(2) links as complex (chains, 2, L, L, 2, 2) arrays, momenta as algebra
    matrices; products with @, shifts with np.roll, the closed-form 2 x 2 exponential."""

    def __init__(self, group, dtype):
        import numpy as np

        self.np, self.special = np, group.special
        self.rdtype = np.dtype(dtype)
        self.cdtype = np.complex128 if self.rdtype == np.float64 else np.complex64
        self.basis = group.basis().numpy().astype(self.cdtype)

    def from_links(self, U):
        return U.numpy().astype(self.cdtype)

    @staticmethod
    def dag(m):
        return m.conj().swapaxes(-1, -2)

    def plaquettes(self, U):
        np = self.np
        u0, u1 = U[:, 0], U[:, 1]  # axes (chain, x, y, i, j)
        return u0 @ np.roll(u1, -1, 1) @ self.dag(np.roll(u0, -1, 2)) @ self.dag(u1)

    def action(self, U, beta):
        tr = self.np.trace(self.plaquettes(U), axis1=-2, axis2=-1).real
        return beta * (1 - tr / 2).sum((1, 2))

    def project(self, m):
        x = 0.5 * (m - self.dag(m))
        if self.special:
            tr = self.np.trace(x, axis1=-2, axis2=-1)[..., None, None] / 2
            x = x - tr * self.np.eye(2, dtype=self.cdtype)
        return x

    def force(self, U, beta):
        np = self.np
        proj = self.project(self.plaquettes(U))
        u0, u1 = U[:, 0], U[:, 1]
        v, w = np.roll(u1, 1, 2), np.roll(u0, 1, 1)
        f0 = proj - self.dag(v) @ np.roll(proj, 1, 2) @ v
        f1 = self.dag(w) @ np.roll(proj, 1, 1) @ w - proj
        return (beta / 2) * np.stack((f0, f1), 1)

    def expm(self, x):
        np = self.np
        eye = np.eye(2, dtype=self.cdtype)
        half = (x[..., 0, 0] + x[..., 1, 1]) / 2
        xs = x - half[..., None, None] * eye
        theta2 = np.maximum(-(xs[..., 0, 0] ** 2 + xs[..., 0, 1] * xs[..., 1, 0]).real, 0)
        theta = np.sqrt(theta2)
        sinc = np.sinc(theta / np.pi)
        u = np.cos(theta)[..., None, None] * eye + sinc[..., None, None] * xs
        return u if self.special else u * np.exp(half)[..., None, None]

    def drift(self, U, p, eps):
        return self.expm(eps * p) @ U

    def momenta(self, U, rng):
        c = rng.standard_normal((*U.shape[:-2], len(self.basis)), dtype=self.rdtype)
        return self.np.einsum("...a,aij->...ij", c.astype(self.cdtype), self.basis)

    def kinetic(self, p):
        return 0.5 * (p.real ** 2 + p.imag ** 2).sum((1, 2, 3, 4, 5))

    def normalise(self, U):
        np = self.np
        a, b = U[..., 0, :], U[..., 1, :]  # Gram-Schmidt on the rows
        a = a / np.linalg.norm(a, axis=-1, keepdims=True)
        b = b - (a.conj() * b).sum(-1, keepdims=True) * a
        b = b / np.linalg.norm(b, axis=-1, keepdims=True)
        return np.stack((a, b), -2)

    def force_coords(self, f):
        return -self.np.einsum("aij,...ji->...a", self.basis, f).real


def numpy_trajectory(model, q, beta, eps, n_steps, integrator, rng):
    """campaign.hmc.trajectory on the numpy model (the integrator is the same code)."""
    from campaign.hmc import hamiltonian, integrate

    np = model.np
    p = model.momenta(q, rng)
    h0 = hamiltonian(model, q, p, beta)
    q1, p = integrate(model, q, p, beta, eps, n_steps, integrator)
    q1 = model.normalise(q1)
    dh = hamiltonian(model, q1, p, beta) - h0
    accept = rng.random(dh.shape) < np.exp(-np.maximum(dh, 0))
    mask = accept.reshape(accept.shape + (1,) * (q.ndim - 1))
    return np.where(mask, q1, q)


# ------------------------------------------------------------------------ measuring
_M_MMAP_THRESHOLD = -3


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _return_freed_memory() -> None:
    """Make glibc hand blocks >= 64 KiB straight back to the system, so that RSS follows
    the live tensors / arrays (no effect elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def peak_extra_mb(fn, device) -> float:
    """Peak memory fn() needs beyond what is resident when it starts, in MiB."""
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    _return_freed_memory()
    base = _status_kb("VmRSS")
    if base is not None and _reset_peak_rss():
        fn()
        return max(0, _status_kb("VmHWM") - base) / 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # fallback: maxrss delta
    fn()
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - max(before, base or 0)) / 1024


def best_time(fn, sync, min_time: float, repeats: int, budget: float) -> tuple[float, int]:
    """Best seconds per call over ``repeats`` runs of enough calls to last ``min_time``;
    fewer repeats once ``budget`` seconds are spent.  Returns (seconds, calls timed)."""
    t = time.perf_counter()
    fn()
    sync()
    best = time.perf_counter() - t
    n = max(1, math.ceil(min_time / max(best, 1e-9)))
    spent, calls = best, 1
    for _ in range(repeats):
        if spent > budget:
            break
        t = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        dt = time.perf_counter() - t
        best, spent, calls = min(best, dt / n), spent + dt, calls + n
    return best, calls


def run_row(spec: dict) -> dict:
    import numpy as np
    import torch

    from campaign.fields import MatrixField, field_for
    from campaign.groups import get_group
    from campaign.hmc import force_evaluations, trajectory

    torch.set_num_threads(spec["threads"])
    group, L, chains = get_group(spec["group"]), spec["L"], spec["chains"]
    dtype, device = getattr(torch, spec["dtype"]), torch.device(spec["device"])
    n_steps, integrator = spec["n_steps"], spec["integrator"]
    eps = spec["trajectory_length"] / n_steps
    n_force = force_evaluations(integrator, n_steps)
    link_chains = 2 * L * L * chains
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    U = group.haar((chains, 2, L, L), generator=torch.Generator().manual_seed(spec["seed"]))
    beta = torch.tensor(spec["beta"], dtype=dtype, device=device)
    out = {k: spec[k] for k in ("group", "L", "chains", "dtype", "device", "threads", "n_steps", "integrator")}
    out["force_evals_per_traj"] = n_force

    def torch_case(fld):
        gen = torch.Generator(device=device).manual_seed(spec["seed"])
        state = {"q": fld.from_links(U)}

        def step():
            state["q"] = trajectory(fld, state["q"], beta, eps, n_steps, integrator, gen)[0]

        t = time.perf_counter()
        step()
        sync()
        warm = time.perf_counter() - t
        sec, calls = best_time(step, sync, spec["min_time"], spec["repeats"], spec["budget"])
        return sec, calls, warm, step, state

    # all timings first: the memory passes below change how glibc returns memory
    memory_passes = {}
    fld = field_for(group, dtype, device)
    sec, calls, warm, step, state = torch_case(fld)
    memory_passes["peak_mb"] = (step, device)
    out.update(field=fld.name, compiled=fld.compiles(state["q"]), warmup_s=warm, traj_s=sec,
               trajectories_timed=calls)
    out["link_updates_per_s"] = link_chains / sec
    out["link_force_evals_per_s"] = link_chains * n_force / sec
    out["bytes_per_link_force"] = traffic_per_link_force(
        state["q"], fld.momenta(state["q"], torch.Generator(device)), link_chains)

    # the numpy reference: same algorithm, same start; checked against the fast force
    np_dtype = spec["dtype"]
    model = NumpyU1(np_dtype) if group.N == 1 else NumpyMatrix(group, np_dtype)
    qn = model.from_links(U)
    f_np = model.force_coords(model.force(qn, spec["beta"]))
    f_fast = fld.force(fld.from_links(U), beta).cpu().double().numpy()
    f_fast = f_fast if group.N == 1 else np.moveaxis(f_fast, 2, -1)
    tol = 1e-9 if spec["dtype"] == "float64" else 1e-4
    err = float(np.abs(f_np - f_fast).max() / np.abs(f_np).max())
    if not err < tol:
        raise AssertionError(f"numpy reference force disagrees with {fld.name}: relative {err:.2e}")
    rng = np.random.default_rng(spec["seed"])
    nstate = {"q": qn}

    def np_step():
        nstate["q"] = numpy_trajectory(model, nstate["q"], spec["beta"], eps, n_steps, integrator, rng)

    nsec, ncalls = best_time(np_step, lambda: None, spec["min_time"], spec["baseline_repeats"], spec["budget"])
    memory_passes["numpy_peak_mb"] = (np_step, torch.device("cpu"))
    out.update(numpy_traj_s=nsec, numpy_trajectories_timed=ncalls,
               numpy_link_force_evals_per_s=link_chains * n_force / nsec)

    if spec["generic"] and group.N > 1:
        gsec, _, _, gstep, _ = torch_case(MatrixField(group, dtype, device))
        memory_passes["generic_peak_mb"] = (gstep, device)
        out.update(generic_traj_s=gsec, generic_link_force_evals_per_s=link_chains * n_force / gsec)

    for key, (fn, dev) in memory_passes.items():
        out[key] = peak_extra_mb(fn, dev)
    return out


def traffic_per_link_force(q, p, link_chains: int) -> float:
    """The least memory traffic of one link force evaluation, in bytes: a drift+kick
    pair reads and writes each link and its momentum once (the roofline's numerator)."""
    return 2 * (q.element_size() * q.numel() + p.element_size() * p.numel()) / link_chains


# --------------------------------------------------------------------------- driver
def choose_threads(requested: str) -> tuple[int, str]:
    """A number, or "auto": time an HMC-like stream of medium-sized elementwise ops
    (1 MiB each, as in one L = 32, 64-chain U(1) step) with one thread and with all, and
    keep the faster.  On a machine shared with other jobs every parallel region waits
    for its slowest thread, so one thread often wins there."""
    import torch

    if requested != "auto":
        return int(requested), "requested"
    n_all = min(torch.get_num_threads(), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if n_all <= 1:
        return 1, "one CPU"
    x = torch.rand(2**17, dtype=torch.float64)
    times = {1: float("inf"), n_all: float("inf")}
    for _ in range(7):  # interleaved, best of 7
        for n in times:
            torch.set_num_threads(n)
            t = time.perf_counter()
            for _ in range(100):
                torch.add(x, torch.sin(x), alpha=0.5)
            times[n] = min(times[n], (time.perf_counter() - t) / 100)
    torch.set_num_threads(n_all)
    pick = min(times, key=times.get)
    note = ", ".join(f"{n} thread{'s' * (n > 1)}: {t * 1e6:.0f} us" for n, t in times.items())
    return pick, f"auto ({note} per sin + add of 2^17 doubles)"


def fmt(x: float) -> str:
    return f"{x:.3g}" if x == x else "-"


def print_table(rows: list[dict], generic: bool, in_cache_bandwidth: float) -> None:
    head = ["group", "dtype", "L", "chains", "F/traj", "traj/s", "link-upd/s", "link-force/s", "of BW",
            "numpy link-force/s", "ratio", "peak MB", "numpy MB", "MB ratio", "warm-up s", "compiled"]
    if generic:
        head[11:11] = ["generic link-force/s", "ratio"]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["group"], r["dtype"], str(r["L"]), str(r["chains"]), "error: " + r["error"][:60]])
            continue
        cells = [
            r["group"], r["dtype"], str(r["L"]), str(r["chains"]), str(r["force_evals_per_traj"]),
            fmt(1 / r["traj_s"]), fmt(r["link_updates_per_s"]), fmt(r["link_force_evals_per_s"]),
            f"{r['link_force_evals_per_s'] * r['bytes_per_link_force'] / in_cache_bandwidth:.1%}",
            fmt(r["numpy_link_force_evals_per_s"]),
            f"{r['link_force_evals_per_s'] / r['numpy_link_force_evals_per_s']:.1f}x",
            f"{r['peak_mb']:.1f}", f"{r['numpy_peak_mb']:.1f}",
            f"{r['peak_mb'] / r['numpy_peak_mb']:.2f}" if r["numpy_peak_mb"] > 0.05 else "-",
            f"{r['warmup_s']:.1f}", "yes" if r["compiled"] else "no",
        ]
        if generic:
            g = r.get("generic_link_force_evals_per_s")
            cells[11:11] = [fmt(g) if g else "-", f"{r['link_force_evals_per_s'] / g:.1f}x" if g else "-"]
        lines.append(cells)
    widths = [max([len(h), *(len(line[i]) for line in lines if i < len(line))]) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for line in lines:
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))


def print_targets(rows: list[dict]) -> None:
    for r in rows:
        target = TARGETS.get((r["group"], r["dtype"]))
        if target and r["L"] == 32 and r["chains"] == 64 and "error" not in r:
            rate = r["link_force_evals_per_s"]
            verdict = "met" if rate >= target else "NOT met"
            print(f"target {r['group']} {r['dtype']} L=32 x 64 chains: {rate:.3g} vs {target:.0e} link force evals/s: {verdict}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="L = 32, chains = 1 and 64, shorter timing")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float64", help="float64, float32 or a comma list")
    p.add_argument("--groups", default="u1,su2,u2")
    p.add_argument("--L", default=None, help="comma list (default 16,32,64; quick: 32)")
    p.add_argument("--chains", default=None, help="comma list (default 1,16,64; quick: 1,64)")
    p.add_argument("--n-steps", type=int, default=10)
    p.add_argument("--trajectory-length", type=float, default=1.0)
    p.add_argument("--integrator", default="omelyan", choices=("omelyan", "leapfrog"))
    p.add_argument("--beta", type=float, default=2.0)
    p.add_argument("--threads", default="auto", help="torch threads: a number or auto")
    p.add_argument("--min-time", type=float, default=None, help="seconds per timing repeat")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--generic", action="store_true", help="also time the generic MatrixField (slow)")
    p.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                   help="tuned: glibc keeps freed memory (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ "
                        "= 512 MiB in the row processes) instead of paging it back in for every new tensor")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the rows here")
    p.add_argument("--row", default=None, help=argparse.SUPPRESS)  # internal: one row as JSON
    a = p.parse_args(argv)

    if a.row is not None:
        print(json.dumps(run_row(json.loads(a.row))), flush=True)
        return 0

    threads, how = choose_threads(a.threads)
    Ls = [int(x) for x in (a.L or ("32" if a.quick else "16,32,64")).split(",")]
    chains = [int(x) for x in (a.chains or ("1,64" if a.quick else "1,16,64")).split(",")]
    base = {
        "device": a.device, "threads": threads, "n_steps": a.n_steps, "integrator": a.integrator,
        "trajectory_length": a.trajectory_length, "beta": a.beta, "seed": a.seed, "generic": a.generic,
        "min_time": a.min_time or (0.3 if a.quick else 0.5), "repeats": a.repeats or (2 if a.quick else 3),
        "baseline_repeats": 1 if a.quick else 2, "budget": 6.0 if a.quick else 10.0,
    }
    env = dict(os.environ)
    if a.malloc == "tuned":  # the values campaign.runtime sets in every campaign process
        from campaign.runtime import MALLOC_THRESHOLD_BYTES

        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(MALLOC_THRESHOLD_BYTES))
        env.setdefault("MALLOC_TRIM_THRESHOLD_", str(MALLOC_THRESHOLD_BYTES))
    import torch

    torch.set_num_threads(threads)
    bandwidth = {"in_cache": copy_bandwidth(IN_CACHE_BYTES), "dram": copy_bandwidth(DRAM_BYTES)}
    print(f"# HMC benchmark: torch {torch.__version__}, device {a.device}, threads {threads} [{how}], "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
          f"CAMPAIGN_COMPILE={os.environ.get('CAMPAIGN_COMPILE', 'auto')}, malloc {a.malloc}", flush=True)
    print(f"# copy bandwidth, {threads} thread(s): {bandwidth['in_cache'] / 1e9:.1f} GB/s in cache "
          f"({IN_CACHE_BYTES >> 20} MiB), {bandwidth['dram'] / 1e9:.1f} GB/s from DRAM ({DRAM_BYTES >> 20} MiB); "
          "'of BW': link force evals/s x the least traffic per evaluation (read + write link and momentum) "
          "/ in-cache bandwidth", flush=True)
    rows = []
    t_start = time.perf_counter()
    for dtype in a.dtype.split(","):
        for group in a.groups.split(","):
            for L in Ls:
                for c in chains:
                    spec = dict(base, group=group, dtype=dtype, L=L, chains=c)
                    t = time.perf_counter()
                    row, err = run_in_fresh_process(os.path.abspath(__file__), ["--row", json.dumps(spec)], env=env)
                    if row is None:
                        row = dict(group=group, dtype=dtype, L=L, chains=c,
                                   error=(err.strip().splitlines() or ["?"])[-1])
                    rows.append(row)
                    msg = row.get("error") or (f"{row['link_force_evals_per_s']:.3g} link force evals/s, "
                                               f"numpy {row['numpy_link_force_evals_per_s']:.3g}")
                    print(f"  {group} {dtype} L={L} chains={c}: {msg} ({time.perf_counter() - t:.0f} s)",
                          file=sys.stderr, flush=True)
    print()
    print_table(rows, a.generic, bandwidth["in_cache"])
    print()
    print_targets(rows)
    print(f"# {len(rows)} rows in {time.perf_counter() - t_start:.0f} s; n_steps={a.n_steps} "
          f"{a.integrator}, trajectory length {a.trajectory_length}, beta={a.beta}")
    write_json(a.json, {"threads": threads, "threads_choice": how, "bandwidth": bandwidth, "rows": rows})
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
