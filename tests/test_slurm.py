"""A tiny campaign through a real SLURM cluster (sbatch, squeue), GPU stages included.

Needs a running cluster with GPU gres, e.g. the one-node cluster of ``.ci/slurm.sh start``
(fake GPUs); skips with the reason otherwise.  The profile is profiles/slurm with the
test-cluster settings of shared/DESIGN.md: squeue as status command (no accounting), a
7 s status tick, no account, small runtime and memory; GPU requests come from the rules.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _snakemake import REPO, SNAKEFILE, job_counts, run_snakemake, write_config

pytestmark = pytest.mark.slurm

SLURM_RULES = ("hmc", "measure", "train", "sample")  # localrules (exact, ...) run in the driver
SINGLE_RULES = ("hmc", "train", "sample")  # one SLURM job per job; measure goes in bundles
USABLE = ("idle", "mix", "alloc", "comp")


def slurm_unavailable() -> str | None:
    """Why the test cannot run here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM here (sinfo/sbatch not found); start a local cluster with .ci/slurm.sh"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t|%G|%P"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "SLURM is not responding (sinfo timed out)"
    if out.returncode != 0:
        lines = (out.stderr.strip() or out.stdout.strip() or "no output").splitlines()
        return f"SLURM is not responding: sinfo failed: {lines[-1]}"
    rows = [line.split("|") for line in out.stdout.split("\n") if line.strip()]
    states = {r[0].rstrip("*~#") for r in rows}
    if not states & set(USABLE):
        return f"no SLURM node takes jobs (states: {', '.join(sorted(states)) or 'none'})"
    if not any("gpu" in r[1] for r in rows if len(r) > 1):
        return "the SLURM cluster has no GPU gres (the GPU stages would pend forever)"
    return None


def default_partition() -> str | None:
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20).stdout
    names = [p.strip() for p in out.split()]
    for p in names:
        if p.endswith("*"):
            return p[:-1]
    return names[0] if names else None


def slurm_test_profile(directory: Path) -> Path:
    """profiles/slurm adapted to a test cluster (see shared/DESIGN.md).  No account: the
    test cluster has no accounting, so the plugin's guess fails and it submits without -A
    (slurm-no-account is a no-op in plugin 2.x).  The GPU requests come from the rules;
    runtime, memory and threads are shrunk to fit the one-node cluster."""
    prof = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert "set-resources" not in prof and "set-threads" not in prof, "resources belong in the rules"
    prof.update({
        "slurm-status-command": "squeue",           # no accounting: sacct would wait forever
        "slurm-init-seconds-before-status-checks": 7,  # also the idle poll tick (plugin 2.8)
        "slurm-keep-successful-logs": True,
        "retries": 0,
        "latency-wait": 10,
        "jobs": 4,
    })
    partition = default_partition()
    if partition:
        prof["default-resources"] = {"slurm_partition": partition}
    prof["set-resources"] = {rule: {"runtime": 10, "mem_mb": 1000} for rule in SLURM_RULES}
    prof["set-threads"] = {rule: 1 for rule in SLURM_RULES}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return directory


TINY = {
    "seed": 5,
    "device": "auto",
    "max_loop": 2,
    "groups": {
        "u1": {
            "hmc": {"beta": [1.0], "L": [4], "n_configs": 200, "chains": 4, "therm": 40, "sep": 2},
            "models": [{"beta0": 1.0, "L0": 4, "steps": 10, "batch_size": 8}],
            "sample": {"n_samples": 32},
        }
    },
}


def slurm_job_ids(workdir: Path) -> dict[str, list[str]]:
    """{rule or group: [job ids]} from the plugin's kept logs
    .snakemake/slurm_logs/rule_<rule>/.../<id>.log and group_<group id>_<rules>/<id>.log"""
    out: dict[str, list[str]] = {}
    for log in (workdir / ".snakemake/slurm_logs").glob("*/**/*.log"):
        top = log.relative_to(workdir / ".snakemake/slurm_logs").parts[0]
        name = top[len("rule_"):] if top.startswith("rule_") else top[len("group_"):]
        if re.fullmatch(r"\d+", log.stem):
            out.setdefault(name, []).append(log.stem)
    return out


def cancel(job_ids) -> None:
    """Cancel this test's own jobs (by id) after a failure or timeout."""
    ids = [j for ids in job_ids.values() for j in ids]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


@pytest.mark.timeout(900)
def test_tiny_campaign_on_slurm(tmp_path):
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    profile = slurm_test_profile(tmp_path / "profile")
    cfg = write_config(tmp_path / "tiny.yaml", TINY)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--profile", str(profile)]
    start = time.monotonic()
    try:
        res = subprocess.run(cmd, cwd=tmp_path, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=780)
    except subprocess.TimeoutExpired:
        cancel(slurm_job_ids(tmp_path))
        raise
    wall = time.monotonic() - start
    print(f"SLURM campaign wall time: {wall:.0f} s")
    ids = slurm_job_ids(tmp_path)
    if res.returncode != 0:
        cancel(ids)
    assert res.returncode == 0, res.stdout[-6000:]

    # every non-local job went through sbatch: one kept SLURM log (named by job id) each
    counts = job_counts(res.stdout)
    for rule in SINGLE_RULES:
        assert len(ids.get(rule, [])) == counts[rule], (rule, ids, counts)
    # measure: one bundle per (group, source, L) -- here the HMC ensemble and the sample
    bundles = {name: js for name, js in ids.items() if name.startswith("measure_")}
    assert sorted(bundles) == ["measure_u1_from_b1_L4_L4_measure", "measure_u1_hmc_L4_measure"], ids
    assert all(len(js) == 1 for js in bundles.values()), bundles
    assert counts["measure"] == 2 and "exact" not in ids, (counts, ids)
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", res.stdout))
    assert submitted == {j for js in ids.values() for j in js}, (submitted, ids)
    # the GPU stages asked SLURM for a GPU (visible while the cluster remembers the job)
    for rule in ("train", "sample"):
        info = subprocess.run(["scontrol", "show", "job", ids[rule][0]], capture_output=True, text=True).stdout
        if info:
            assert "gpu" in info, info

    # outputs: HMC plaquette within 5 sigma of the exact value; samples measured
    table = pd.read_csv(tmp_path / "results/tables/summary.csv")
    plaq = table[(table.observable == "plaquette") & (table.algorithm == "hmc")].iloc[0]
    assert abs(plaq.value - plaq.exact) < 5 * plaq.error, plaq
    assert (tmp_path / "results/measure/u1/from_b1_L4/b1_L4.json").exists()
    # every job log starts with where it ran: device, dtype, threads, SLURM job and node
    for rule, log in (("hmc", "hmc/u1/b1_L4.log"), ("train", "train/u1/b1_L4.log"),
                      ("sample", "sample/u1/from_b1_L4/b1_L4.log")):
        first = (tmp_path / "logs" / log).read_text().splitlines()[0]
        assert re.fullmatch(rf"{rule}: device=(cpu|cuda \(.+\)) dtype=float64 torch_threads=1 "
                            rf"slurm_job={ids[rule][0]} node=\S+", first), first
    # provenance: the SLURM job and node that made each file, the model behind the samples
    import h5py

    from campaign.jobs import file_sha256

    for rule, path in (("hmc", "results/ensembles/u1/hmc_b1_L4.h5"), ("sample", "results/samples/u1/from_b1_L4/b1_L4.h5")):
        with h5py.File(tmp_path / path) as f:
            attrs = dict(f.attrs)
        assert str(attrs["slurm_job_id"]) == ids[rule][0] and attrs["slurm_node"], (rule, attrs)
    assert attrs["model_sha256"] == file_sha256(tmp_path / "results/models/u1/b1_L4.pt")
    assert (tmp_path / "results/figures/wilson_loops.png").exists()


# ---------------------------------------------------------------- preemption through SLURM
PREEMPTED = {
    "seed": 8,
    "device": "cpu",
    "checkpoint_interval": 3600,  # only the signal makes a checkpoint
    "max_loop": 2,
    "groups": {"u1": {"hmc": {"beta": [1.0], "L": [6], "n_configs": 1200, "chains": 4, "therm": 50, "sep": 10},
                      "models": [], "exact": False}},
}
PREEMPTED_TARGET = "results/ensembles/u1/hmc_b1_L6.h5"


def job_script_process(job_id: str, script: str) -> int | None:
    """The pid of the job's workflow script (Snakemake runs it as .snakemake/scripts/tmp*.<script>)
    on this node, once it catches SIGUSR1 (its work loop is open), else None."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if f"SLURM_JOB_ID={job_id}".encode() not in environ:
            continue
        if not any(arg.endswith(f".{script}".encode()) and b".snakemake/scripts" in arg for arg in cmdline):
            continue
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught >> (signal.SIGUSR1 - 1) & 1:
            return int(proc.name)
    return None


def warn_first_job(workdir: Path, rule: str, script: str, driver: subprocess.Popen, timeout: float) -> str:
    """Send SLURM's warning (scancel --signal=USR1: every process of the job's steps, as
    --signal=USR1@120 does before the time limit) to the first job of ``rule`` as soon as
    its script is in its work loop; returns the job id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and driver.poll() is None:
        ids = slurm_job_ids(workdir).get(rule, [])
        if ids and job_script_process(ids[0], script):
            subprocess.run(["scancel", "--signal=USR1", ids[0]], check=True, timeout=30)
            return ids[0]
        time.sleep(0.2)
    exited = driver.poll()
    driver.kill()
    out, _ = driver.communicate()
    cancel(slurm_job_ids(workdir))
    pytest.fail(f"the {rule} job never reached its work loop (driver exit {exited}): {out[-3000:]}")


@pytest.mark.timeout(900)
def test_job_warned_by_slurm_is_retried_and_resumes_bit_identically(tmp_path):
    """The HMC job gets SLURM's SIGUSR1 mid-run: it writes its checkpoint and exits 75, Snakemake
    resubmits it (retries), the second SLURM job resumes, and the ensemble equals, bit for bit,
    the one an uninterrupted (local) run writes."""
    from test_preemption import assert_same_datasets

    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    cfg = write_config(tmp_path / "preempted.yaml", PREEMPTED)
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "slurm"
    ref_dir.mkdir()
    ref = run_snakemake(PREEMPTED_TARGET, "--cores", "1", "--configfile", cfg, workdir=ref_dir, timeout=600)
    assert ref.returncode == 0, ref.stdout[-3000:]

    profile = slurm_test_profile(tmp_path / "profile")
    prof = yaml.safe_load((profile / "config.yaml").read_text())
    prof["retries"] = 1
    (profile / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(run_dir),
           "--configfile", str(cfg), "--profile", str(profile), PREEMPTED_TARGET]
    run_dir.mkdir()
    driver = subprocess.Popen(cmd, cwd=run_dir, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = warn_first_job(run_dir, "hmc", "hmc.py", driver, timeout=400)
    try:
        out, _ = driver.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        driver.kill()
        cancel(slurm_job_ids(run_dir))
        raise
    ids = slurm_job_ids(run_dir)
    assert driver.returncode == 0, out[-6000:]
    assert len(ids["hmc"]) == 2 and first in ids["hmc"], (ids, out[-3000:])
    # the warned job stopped with its checkpoint (exit 75); the retry resumed from it
    warned = next((run_dir / ".snakemake/slurm_logs").glob(f"rule_hmc/**/{first}.log")).read_text()
    assert re.search(r"tmp\w+\.hmc\.py' returned non-zero exit status 75", warned), warned[-3000:]
    log = (run_dir / "logs/hmc/u1/b1_L6.log").read_text().splitlines()
    retry = next(j for j in ids["hmc"] if j != first)
    assert log[0] == f"hmc: device=cpu dtype=float64 torch_threads=1 slurm_job={retry} node={socket.gethostname().split('.')[0]}", log[:2]
    assert any("resuming at trajectory" in line for line in log), log[-10:]
    assert_same_datasets(ref_dir / PREEMPTED_TARGET, run_dir / PREEMPTED_TARGET, skip=("wall", "history/time"))
