"""Helpers for the workflow tests: run snakemake on the repository's Snakefile in a
scratch working directory, read its job counts, and the counts a config should give."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from campaign.config import (
    ensemble_points,
    exact_points,
    load_config_file,
    model_entries,
    sample_points,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


def run_snakemake(*args, workdir, env=None, timeout=900) -> subprocess.CompletedProcess:
    """``snakemake -s REPO/Snakefile --directory WORKDIR ARGS``; stdout and stderr merged."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir), *map(str, args)]
    return subprocess.run(
        cmd, cwd=workdir, env={**os.environ, **(env or {})}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
    )


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def job_counts(output: str) -> dict[str, int]:
    """The "Job stats" table of a (dry) run: {rule: count}, without the total."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    try:
        start = lines.index("Job stats:")
    except ValueError:
        return counts
    for line in lines[start + 3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def expected_counts(cfg: dict) -> dict[str, int]:
    """Jobs a fresh run of a config must schedule, from campaign.config's points."""
    from campaign.figures import figure_stems

    cfg = validate_config(cfg)
    n_ens, n_samples = len(ensemble_points(cfg)), len(sample_points(cfg))
    counts = {
        "campaign_config": 1,
        "hmc": n_ens,
        "exact": len(exact_points(cfg)),
        "measure": n_ens + n_samples,
        "train": len(model_entries(cfg)),
        "sample": n_samples,
        "collect": 1,
        "figures": len(figure_stems(list(cfg["groups"]))),  # one job per figure file
        "all": 1,
        **weights_counts(cfg),
        **phi4_counts(cfg),
        **cl_counts(cfg),
    }
    return {k: v for k, v in counts.items() if v}


def weights_counts(cfg: dict) -> dict[str, int]:
    """Jobs of the weights section (campaign.weights.config), for a validated config."""
    from campaign.weights.config import figure_names, run_points

    w = cfg.get("weights")
    if not w:
        return {}
    return {
        "weights_train": len(run_points(cfg)),
        "weights_spectra": len(w["models"]),
        "weights_collect": 1,
        "weights_figure": len(figure_names(cfg)),
    }


def phi4_counts(cfg: dict) -> dict[str, int]:
    """Jobs of the phi4 section (campaign.phi4.config), for a validated config."""
    from campaign.phi4.config import hmc_points, model_kappas, sample_points

    if not cfg.get("phi4"):
        return {}
    n_hmc, n_sample = len(hmc_points(cfg)), len(sample_points(cfg))
    return {"phi4_hmc": n_hmc, "phi4_train": len(model_kappas(cfg)), "phi4_sample": n_sample,
            "phi4_measure": n_hmc + n_sample, "phi4_collect": 1, "phi4_cumulants": 1, "phi4_figures": 1}


def cl_counts(cfg: dict) -> dict[str, int]:
    """Jobs of the complex_langevin section (campaign.complex_langevin.campaign), for a
    validated config: per point and seed run -> train -> sample -> measure, figure; one table."""
    from campaign.complex_langevin import campaign as cl_campaign

    section = cfg.get("complex_langevin")
    if not section:
        return {}
    n = len(cl_campaign.points(cfg)) * len(section.get("seeds", []))
    return {"cl_run": n, "cl_train": n, "cl_sample": n, "cl_measure": n, "cl_figure": n, "cl_table": 1}


def config_file(path) -> dict:
    return load_config_file(path)
