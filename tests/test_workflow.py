"""The Snakemake campaign: dry runs of every shipped config, the SLURM profile without a
cluster, config errors before any job, and a tiny local end-to-end run."""

from __future__ import annotations

import re
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml

from _snakemake import REPO, config_file, expected_counts, job_counts, run_snakemake, write_config

CAMPAIGNS = sorted((REPO / "campaigns").glob("*.yaml"))


def test_dry_run_default_campaign(tmp_path):
    res = run_snakemake("-n", workdir=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    expected = expected_counts(config_file(REPO / "config.yaml"))
    assert job_counts(res.stdout) == expected
    # the default campaign covers the three groups and every stage
    assert set(config_file(REPO / "config.yaml")["groups"]) == {"u1", "su2", "u2"}
    assert {"hmc", "exact", "measure", "train", "sample", "collect", "figures"} <= set(expected)


@pytest.mark.parametrize("campaign", CAMPAIGNS, ids=lambda p: p.stem)
def test_dry_run_campaign(tmp_path, campaign):
    res = run_snakemake("-n", "--configfile", campaign, workdir=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    # --configfile replaces config.yaml: only the campaign's own groups appear
    assert job_counts(res.stdout) == expected_counts(config_file(campaign))


def test_campaigns_exist():
    assert len(CAMPAIGNS) >= 2


def fake_slurm(tmp_path: Path) -> tuple[dict, Path]:
    """Env whose SLURM commands are stubs that record their call and fail."""
    import os

    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    called = tmp_path / "called"
    for cmd in ("sbatch", "squeue", "sacct", "sacctmgr", "sinfo", "scontrol", "srun", "scancel", "sshare"):
        stub = bin_dir / cmd
        stub.write_text(f"#!/bin/sh\necho {cmd} >> {called}\nexit 1\n")
        stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, called


def job_resources(output: str) -> dict[tuple[str, str], dict[str, str]]:
    """{(rule, wildcards): {resource: value}} from a dry run's job blocks."""
    out = {}
    for block in re.split(r"\n(?=rule \w+:)", output):
        rule = re.match(r"rule (\w+):", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rule and res:
            wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            out[(rule.group(1), wc.group(1) if wc else "")] = dict(
                kv.split("=", 1) for kv in res.group(1).split(", ") if "=" in kv
            )
    return out


def test_dry_run_slurm_profile_without_cluster(tmp_path):
    """The SLURM profile plans the campaign without a cluster: every SLURM command is
    replaced by a stub that records its call and fails."""
    env, called = fake_slurm(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    res = run_snakemake(
        "-n", "--profile", REPO / "profiles" / "slurm", workdir=work,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:]
    # the slurm plugin reads "scontrol show config" when it loads (for its status-command
    # default) and copes with its failure; nothing may be submitted or cancelled
    calls = called.read_text().split() if called.exists() else []
    assert not {"sbatch", "srun", "scancel"} & set(calls), calls
    assert job_counts(res.stdout) == expected_counts(config_file(REPO / "config.yaml"))
    # GPU stages ask for a GPU, with the profile's runtime
    train_block = res.stdout.split("rule train:", 1)[1].split("\n\n", 1)[0]
    assert "gpu=1" in train_block and "runtime=" in train_block


def test_resources_come_from_the_rules(tmp_path):
    """profiles/slurm names no job sizes; the rules ask for a GPU for every GPU stage of the
    paper campaign (device auto on a cluster) and for more time on the larger lattice."""
    prof = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert not {"set-resources", "set-threads", "default-resources"} & set(prof), prof
    env, _ = fake_slurm(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    res = run_snakemake("-n", "--profile", REPO / "profiles" / "slurm", "--configfile",
                        REPO / "campaigns/u1_physics_conditioned.yaml", workdir=work, env=env)
    assert res.returncode == 0, res.stdout[-3000:]
    jobs = job_resources(res.stdout)
    for (rule, wc), r in jobs.items():
        if rule in ("hmc", "train", "sample"):
            assert r.get("gpu") == "1", (rule, wc, r)
        if rule in ("hmc", "train", "sample", "measure"):
            assert int(r["runtime"]) >= 10 and int(r["mem_mb"]) >= 1000, (rule, wc, r)
        if rule == "measure":
            assert r.get("gpu", "0") == "0", (rule, wc, r)
    small = jobs[("sample", "group=u1, model=b1_L16, beta=7, L=16")]
    large = jobs[("sample", "group=u1, model=b1_L16, beta=7, L=32")]
    assert int(large["runtime"]) > int(small["runtime"]), (small, large)


BAD = [
    ("unknown group", {"u3": {"hmc": {"beta": [1], "L": [4]}}}, "groups.u3: unknown gauge group"),
    ("negative beta", {"u1": {"hmc": {"beta": [1, -0.5], "L": [4]}}}, "groups.u1.hmc.beta[1]: must be >= 0"),
    ("bad type", {"u1": {"hmc": {"beta": [1], "L": [4], "n_configs": "many"}}}, "groups.u1.hmc.n_configs: expected an integer"),
    ("L too small", {"su2": {"hmc": {"beta": [1], "L": [1]}}}, "groups.su2.hmc.L[0]: must be >= 2"),
    ("missing training ensemble", {"u1": {"hmc": {"beta": [1], "L": [4]}, "models": [{"beta0": 2, "L0": 4}]}},
     "groups.u1.models[0]: no training ensemble"),
]


@pytest.mark.parametrize("groups,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_fails_before_any_job(tmp_path, groups, message):
    cfg = write_config(tmp_path / "bad.yaml", {"seed": 1, "groups": groups})
    res = run_snakemake("--cores", "1", "--configfile", cfg, workdir=tmp_path)
    assert res.returncode != 0
    assert message in res.stdout, res.stdout[-3000:]
    assert not (tmp_path / "results").exists()
    assert "Job stats" not in res.stdout


def tiny_campaign(with_models: bool = True) -> dict:
    """Every stage, seconds each: U(1) with a model, SU(2) references only."""
    u1 = {
        "hmc": {"beta": [1.0], "L": [4], "n_configs": 64, "chains": 4, "therm": 30, "sep": 1},
        "sample": {"beta": [1.0], "L": [4], "n_samples": 32},
    }
    if with_models:
        u1["models"] = [{"beta0": 1.0, "L0": 4, "steps": 20, "batch_size": 8}]
    return {
        "seed": 11,
        "device": "cpu",
        "max_loop": 2,
        "groups": {
            "u1": u1,
            "su2": {"hmc": {"beta": [2.0], "L": [4], "n_configs": 64, "chains": 4, "therm": 30, "sep": 1}},
        },
    }


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow (Snakefile, workflow/, profiles/, config.yaml), so a
    test may edit a script without touching the repository."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    shutil.copy(REPO / "config.yaml", dest / "config.yaml")
    shutil.copytree(REPO / "workflow", dest / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "profiles", dest / "profiles")
    return dest


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_tiny_campaign_end_to_end(tmp_path):
    import subprocess
    import sys

    wf = copy_workflow(tmp_path / "wf")
    cfg_path = write_config(tmp_path / "tiny.yaml", tiny_campaign())

    def smk(*args):
        cmd = [sys.executable, "-m", "snakemake", "-s", str(wf / "Snakefile"), "--configfile", str(cfg_path), *map(str, args)]
        return subprocess.run(cmd, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1100)

    res = smk("--profile", wf / "profiles" / "local", "--cores", "2")
    assert res.returncode == 0, res.stdout[-5000:]
    results = tmp_path / "results"
    assert (results / "ensembles/u1/hmc_b1_L4.h5").exists()
    assert (results / "models/u1/b1_L4.pt").exists() and (results / "models/u1/b1_L4_loss.csv").exists()
    assert (results / "samples/u1/from_b1_L4/b1_L4.h5").exists()
    assert (results / "exact/su2/b2_L4.json").exists()
    assert (results / "config.yaml").exists()
    figs = sorted(p.name for p in (results / "figures").glob("*.png"))
    assert "wilson_loops.png" in figs and "beta_extrapolation_su2.png" in figs

    # HMC reproduces the exact plaquette
    table = pd.read_csv(results / "tables/summary.csv")
    plaq = table[(table.observable == "plaquette") & (table.algorithm == "hmc")]
    assert len(plaq) == 2
    assert (plaq.pull.abs() < 5).all(), plaq[["group", "value", "error", "exact", "pull"]]
    # HMC files record their seed
    from campaign.io import read_ensemble_attrs
    from campaign.seeds import seed_from

    attrs = read_ensemble_attrs(results / "ensembles/u1/hmc_b1_L4.h5")
    assert int(attrs["seed"]) == seed_from("hmc", "u1", 1.0, 4, base=11)

    # a second invocation has nothing to do
    res = smk("-n", "--profile", wf / "profiles" / "local")
    assert res.returncode == 0 and "Nothing to be done" in res.stdout, res.stdout[-3000:]

    # editing a script does not recompute anything under the profiles' rerun triggers
    script = wf / "workflow/scripts/hmc.py"
    script.write_text(script.read_text() + "\n# edited\n")
    res = smk("-n", "--profile", wf / "profiles" / "local")
    assert "Nothing to be done" in res.stdout, res.stdout[-3000:]
    # (snakemake's default triggers would: the check is meaningful)
    res = smk("-n", "--rerun-triggers", "code")
    assert "hmc" in job_counts(res.stdout), res.stdout[-3000:]

    # the report holds every figure and the config
    res = smk("--report", tmp_path / "report.html")
    assert res.returncode == 0, res.stdout[-3000:]
    html = (tmp_path / "report.html").read_text(errors="replace")
    for name in ("wilson_loops", "training_loss", "summary.csv", "config.yaml"):
        assert name in html, name


def test_lint_clean(tmp_path):
    """snakemake --lint finds nothing (it exits 1 and prints "Lints for ..." when it does):
    every rule has a conda env and a log, functions live in common.smk."""
    res = run_snakemake("--lint", workdir=tmp_path)
    assert res.returncode == 0 and "Lints for" not in res.stdout, res.stdout[-4000:]


def test_every_figure_is_a_target(tmp_path):
    """A dry run lists every figure file; one figure is a target of its own and pulls in only
    what it draws (the loss curves: the training ensembles and training, no measurement)."""
    from campaign.figures import figure_stems

    res = run_snakemake("-n", workdir=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    for stem in figure_stems(["u1", "su2", "u2"]):
        for ext in ("pdf", "png"):
            assert f"results/figures/{stem}.{ext}" in res.stdout, stem
    res = run_snakemake("-n", "results/figures/training_loss.pdf", workdir=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    assert job_counts(res.stdout) == {"hmc": 3, "train": 3, "figures": 1}, job_counts(res.stdout)
