"""The complex_langevin campaign section (workflow/rules/complex_langevin.smk): config grid,
schema, and the stages after CL (train, sample, measure, figure, moments table) on tiny runs."""

import csv
import json
from pathlib import Path

import pytest
import torch

from campaign.complex_langevin import CLSettings, campaign, pipeline
from campaign.complex_langevin.job import generate_cl_ensemble
from campaign.complex_langevin.models import make_model
from campaign.complex_langevin.store import read_cl_ensemble
from campaign.config import ConfigError, load_yaml, validate_config
from campaign.errors import CampaignError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_default_config_section_is_valid_and_names_its_grid():
    cfg = validate_config(load_yaml(ROOT / "config.yaml"), SCHEMA)
    labels = [p.label for p in campaign.points(cfg)]
    assert labels == ["gaussian_sigma1+1i", "quartic_sigma1+1i_lam1", "bose-gas_n_t4_m1_lam1_mu1"]
    assert campaign.semantic_errors(cfg) == []
    assert campaign.model_for(cfg, labels[2]) == make_model("bose-gas", n_t=4, m=1.0, lam=1.0, mu=1.0)
    dm = campaign.dm_settings(cfg)
    assert sum(n for _, n in dm.lr_stages) == cfg["complex_langevin"]["dm"]["steps"]
    assert campaign.cl_settings(cfg, 7).seed == 7


def test_bad_section_is_refused_one_line_per_problem():
    cfg = {"complex_langevin": {"models": {"gaussian": {"sigma": ["-1+1j"]},
                                           "bose-gas": {"n_t": [4], "m": [1.0], "lam": [0.0], "mu": [0.5]}},
                                "cl": {"n_chains": 4, "dt0": 0.01, "dt_min": 0.1}}}
    errors = campaign.semantic_errors(cfg)
    assert len(errors) == 3 and all("\n" not in e for e in errors)
    assert "Re sigma > 0" in errors[0] and "lam > 0" in errors[1] and "complex_langevin.cl: dt_min" in errors[2]
    bad = load_yaml(ROOT / "config.yaml")
    bad["complex_langevin"]["models"]["bose-gas"]["mu"] = "big"
    with pytest.raises(ConfigError, match="complex_langevin"):
        validate_config(bad, SCHEMA)


@pytest.mark.parametrize("name,params", [("gaussian", {"sigma": 1 + 1j}),
                                         ("bose-gas", {"n_t": 3, "m": 1.0, "lam": 1.0, "mu": 0.5})])
def test_train_sample_measure_figure_table(tmp_path, name, params):
    model = make_model(name, **params)
    cl = generate_cl_ensemble(tmp_path / "cl.h5", model, CLSettings(n_chains=64, n_meas=8, tau_therm=1.0, seed=3))
    tiny = campaign.CLDiffusionSettings(lr_stages=((3e-3, 20),), hidden=8, sample_steps=8)
    net = pipeline.train_dm(cl, tmp_path / "dm.pt", tiny, seed=1)
    dm = pipeline.sample_dm(net, tmp_path / "dm.h5", 200, seed=2)
    d = read_cl_ensemble(dm)
    assert d["z"].shape == (1, 200, *getattr(model, "field_shape", ())) and d["attrs"]["independent"]
    assert d["model"] == model
    res = pipeline.measure_point(cl, dm, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["cl"]["statement"] == res["cl"]["statement"]
    fig = pipeline.point_figure(cl, dm, tmp_path / "f.png", title=name)
    assert fig.read_bytes()[:4] == b"\x89PNG"
    table = pipeline.moments_table({(name, 1): tmp_path / "m.json"}, tmp_path / "t.csv")
    rows = list(csv.DictReader(open(table)))
    expected = ["z^2", "z^4"] if name == "gaussian" else ["phi^2", "n"]
    assert [r["observable"] for r in rows] == expected
    assert all(float(r["cl_re_err"]) > 0 and float(r["dm_re_err"]) > 0 for r in rows)
    torch.save({"kind": "other"}, tmp_path / "other.pt")
    with pytest.raises(CampaignError, match="not a diffusion model"):
        pipeline.load_dm(tmp_path / "other.pt")
    with pytest.raises(CampaignError, match="cannot read"):
        pipeline.load_dm(cl)
