"""The weights section of the campaign config and its Snakemake stages: validation,
schema defaults equal to the library's, the job graph, and a tiny end-to-end run."""

from __future__ import annotations

import copy
import subprocess
import sys

import pandas as pd
import pytest

from _snakemake import REPO, expected_counts, job_counts, run_snakemake, write_config
from campaign.config import ConfigError, load_schema, validate_config
from campaign.weights.config import GRID_KEYS, TRAIN_KEYS, figure_names, grid_points, model_settings, run_points
from campaign.weights.models import MODEL_NAMES, model_defaults

WEIGHTS_ONLY = {
    "seed": 3,
    "weights": {
        "seeds": [1, 2],
        "models": {
            "teacher_student": {"lr": [0.05, 0.1], "batch_size": [4], "steps": 300, "log_every": 5,
                                "n": 6, "replicas": 4},
            "rbm": {"lr": [0.01], "batch_size": [16], "steps": 300, "log_every": 5, "n_visible": 8, "n_hidden": 4,
                    "replicas": 4},
            "nanogpt": {"lr": [0.5], "batch_size": [4], "steps": 40, "log_every": 2, "n_layer": 1, "n_embd": 16,
                        "block_size": 8},
        },
    },
}


def test_weights_only_campaign_validates_with_defaults():
    cfg = validate_config(copy.deepcopy(WEIGHTS_ONLY))
    assert cfg["groups"] == {}
    ts = cfg["weights"]["models"]["teacher_student"]
    assert ts["optimizer"] == "sgd" and ts["noise"] == 1.0 and cfg["weights"]["stationary_fraction"] == 0.5
    assert len(grid_points(cfg)) == 4 and len(run_points(cfg)) == 8
    assert model_settings(cfg, "rbm")["n_hidden"] == 4 and "lr" not in model_settings(cfg, "rbm")
    assert set(figure_names(cfg)) == {"temperature_collapse", "stationary_density", "spacing_wigner",
                                      "nanogpt_marchenko_pastur"}
    assert figure_names(validate_config({"weights": {"models": {"nanogpt": {"lr": [1], "batch_size": [2]}}}})) == \
        ["spacing_wigner", "nanogpt_marchenko_pastur"]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_schema_defaults_equal_model_defaults(model):
    """Every model setting in the schema has the constructor's default, and vice versa."""
    props = load_schema()["$defs"][f"weights_{model}"]["properties"]
    schema = {k: v.get("default") for k, v in props.items() if k not in GRID_KEYS + TRAIN_KEYS}
    assert schema == model_defaults(model)


BAD = [
    ("unknown model", ["weights", "models", "mlp"], {"lr": [1], "batch_size": [1]}, "weights.models.mlp: unknown key"),
    ("negative lr", ["weights", "models", "teacher_student", "lr"], [-0.1], "must be > 0"),
    ("log_every > steps", ["weights", "models", "teacher_student", "log_every"], 1000, "exceeds steps"),
    ("short window", ["weights", "models", "teacher_student", "steps"], 40, "stationary window holds"),
    ("rbm data variance", ["weights", "models", "rbm", "data_variance"], 0.5, "must exceed sigma_v^2"),
    ("heads", ["weights", "models", "nanogpt", "n_head"], 3, "multiple of n_head"),
]


@pytest.mark.parametrize("where,value,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_weights_config(where, value, message):
    cfg = copy.deepcopy(WEIGHTS_ONLY)
    d = cfg
    for k in where[:-1]:
        d = d[k]
    d[where[-1]] = value
    with pytest.raises(ConfigError, match=message.replace("^", r"\^")):
        validate_config(cfg)


def test_campaign_needs_groups_or_weights():
    with pytest.raises(ConfigError, match="missing required key 'groups'"):
        validate_config({"seed": 1})


def test_dry_run_weights_only(tmp_path):
    cfg = write_config(tmp_path / "w.yaml", WEIGHTS_ONLY)
    res = run_snakemake("-n", "--configfile", cfg, workdir=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    counts = job_counts(res.stdout)
    assert counts == expected_counts(WEIGHTS_ONLY)
    assert counts["weights_train"] == 8 and counts["weights_spectra"] == 3 and counts["weights_figure"] == 4


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tiny_weights_campaign_end_to_end(tmp_path):
    """Every weights stage runs; the table has a row per point, every figure exists, and a
    second invocation has nothing to do."""
    models = {k: v for k, v in WEIGHTS_ONLY["weights"]["models"].items() if k != "rbm"}  # RBM: test_weights.py
    cfg = write_config(tmp_path / "w.yaml", {**WEIGHTS_ONLY, "weights": {**WEIGHTS_ONLY["weights"], "seeds": [1],
                                                                          "models": models}})

    def smk(*args):
        cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", str(cfg), *args]
        return subprocess.run(cmd, cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=850)

    res = smk("--profile", str(REPO / "profiles" / "local"), "--cores", "2")
    assert res.returncode == 0, res.stdout[-5000:]
    results = tmp_path / "results" / "weights"
    table = pd.read_csv(results / "temperatures.csv")
    assert len(table) == 3 and set(table["model"]) == {"teacher_student", "nanogpt"}
    ts = table[table.model == "teacher_student"]
    assert ts["temperature"].notna().all() and ts["pull_exact"].notna().all()
    for name in ("temperature_collapse", "stationary_density", "spacing_wigner", "nanogpt_marchenko_pastur"):
        for ext in ("png", "pdf", "rst"):
            assert (results / "figures" / f"{name}.{ext}").exists(), (name, ext)
    assert len(list((results / "runs").glob("*/*.h5"))) == 3
    res = smk("-n", "--profile", str(REPO / "profiles" / "local"))
    assert res.returncode == 0 and "Nothing to be done" in res.stdout, res.stdout[-3000:]
