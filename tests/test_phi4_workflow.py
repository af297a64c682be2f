"""The phi4 section of the campaign config, its stages and figures: validation, schema
defaults equal to the library's, the job graph, the table's pulls and the plotted data."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from _snakemake import REPO, expected_counts, job_counts, run_snakemake, write_config
from campaign.config import ConfigError, load_config_file, load_schema, validate_config
from campaign.flat_diffusion import DSMSettings
from campaign.phi4 import config as p4config
from campaign.phi4.hmc import Phi4HMCSettings
from campaign.phi4.jobs import Phi4NetSettings, Phi4SampleSettings

PHI4_ONLY = {
    "seed": 5,
    "phi4": {"lam": 0.02, "kappa": [0.2, 0.3], "L": [4, 6],
             "hmc": {"configs_per_chain": 40, "chains": 2, "therm": 20},
             "model": {"L0": 4, "steps": 20, "batch_size": 16, "channels": 2, "layers": 1, "sigma_min": 0.05},
             "sample": {"kappa": [0.3], "L": [4], "configs_per_chain": 6, "chains": 2, "flow_steps": 3, "batch": 6},
             "cumulants": {"sigmas": [0, 0.5, 2], "reverse_steps": 10, "n_samples": 40, "replicas": 4}},
}


def schema_defaults(block: str) -> dict:
    props = load_schema()["$defs"]["phi4"]["properties"][block]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v}


def dataclass_defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


@pytest.mark.parametrize("block,classes,skip", [
    ("hmc", (Phi4HMCSettings,), ("seed", "device", "dtype")),
    ("model", (DSMSettings, Phi4NetSettings), ()),
    ("sample", (Phi4SampleSettings,), ("seed",)),
])
def test_schema_defaults_equal_library_defaults(block, classes, skip):
    lib = {k: v for c in classes for k, v in dataclass_defaults(c).items() if k not in skip}
    # configs_per_chain is required by the library, defaulted by the campaign
    assert {k: v for k, v in schema_defaults(block).items() if k != "configs_per_chain"} == lib


def test_default_campaign_has_the_three_phases_and_resolves_defaults():
    cfg = validate_config(load_config_file(REPO / "config.yaml"))
    p = cfg["phi4"]
    assert len(p["kappa"]) == 3 and p["sample"]["L"] == [p["model"]["L0"]]
    assert p["cumulants"]["kappa"] == p["sample"]["kappa"][1] and p["cumulants"]["L"] == p["model"]["L0"]
    paper = validate_config(load_config_file(REPO / "campaigns" / "phi4.yaml"))
    assert {16, 32} <= set(paper["phi4"]["L"]) and len(paper["phi4"]["kappa"]) == 3


def test_phi4_only_campaign_points():
    cfg = validate_config(copy.deepcopy(PHI4_ONLY))
    assert cfg["groups"] == {}
    assert [(p.k, p.L) for p in p4config.hmc_points(cfg)] == [("0.2", 4), ("0.2", 6), ("0.3", 4), ("0.3", 6)]
    assert [(p.k, p.L) for p in p4config.sample_points(cfg)] == [("0.3", 4)]
    assert p4config.cumulant_point(cfg) == p4config.Phi4Point(0.3, 4)
    s = p4config.sample_settings(cfg, "0.3", "4")
    Phi4SampleSettings(**s, seed=1).validate()
    Phi4HMCSettings(**p4config.hmc_settings(cfg, "0.2", "6")).validate()


BAD = [
    ("L0 off the grid", ["model", "L0"], 8, "phi4.model.L0: 8 is not on the HMC grid"),
    ("sample kappa off the grid", ["sample", "kappa"], [0.25], r"phi4.sample.kappa\[0\]: 0.25 is not on"),
    ("sample volume", ["sample", "L"], [40], "beyond the exact flow"),
    ("cumulants without model", ["cumulants", "kappa"], 0.2, "phi4.cumulants.kappa: 0.2 has no model"),
    ("sigmas", ["model", "sigma_min"], 20.0, "must be smaller than sigma_max"),
    ("negative lambda", ["lam"], -1, "phi4.lam: must be >= 0"),
    ("unknown key", ["hmc", "steps"], 3, "unknown key 'steps'"),
]


@pytest.mark.parametrize("where,value,message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_phi4_config(where, value, message):
    cfg = copy.deepcopy(PHI4_ONLY)
    d = cfg["phi4"]
    for k in where[:-1]:
        d = d[k]
    if where[-1] == "L" and where[0] == "sample":
        cfg["phi4"]["L"] = [4, 6, 40]
    d[where[-1]] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_dry_run_schedules_every_phi4_stage(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", PHI4_ONLY)
    r = run_snakemake("-n", "--cores", "1", "--configfile", cfg, workdir=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:]
    counts = job_counts(r.stdout)
    assert {k: v for k, v in counts.items() if k.startswith("phi4")} == {
        "phi4_hmc": 4, "phi4_train": 1, "phi4_sample": 1, "phi4_measure": 5, "phi4_collect": 1,
        "phi4_cumulants": 1, "phi4_figures": 1}
    assert counts == expected_counts(PHI4_ONLY)


# ------------------------------------------------------------------ table and figures
def summary(source, kappa, L, absM, err, tau=2.0, G=(3.0, 1.0, 0.5)):
    obs = {name: {"value": absM if name == "absM" else absM * (i + 2), "error": err, "tau_int": tau,
                  "tau_int_error": 0.1, "n_eff": 100 / (2 * tau)}
           for i, name in enumerate(["absM", "chi", "binder", "phi2", "M2", *[f"kappa_{n}" for n in range(2, 7)]])}
    return {"source": source, "kappa": kappa, "lam": 0.02, "L": L, "volume": L * L, "algorithm": source,
            "n_configs": 100, "chains": 4, "acceptance": 0.5, "ess_per_proposal": math.nan, "wall_time_s": 10.0,
            "cost_per_independent_s": 10.0 / obs["absM"]["n_eff"], "observables": obs,
            "G": [{"value": g, "error": 0.1} for g in G], "G_connected": []}


@pytest.fixture
def table(tmp_path):
    from campaign.phi4.stages import collect

    paths = []
    for i, s in enumerate([summary("hmc", 0.2, 4, 1.0, 0.1), summary("dm", 0.2, 4, 1.3, 0.1, tau=1.0),
                           summary("hmc", 0.3, 4, 2.0, 0.2), summary("hmc", 0.2, 6, 0.8, 0.05)]):
        paths.append(tmp_path / f"s{i}.json")
        paths[-1].write_text(json.dumps(s))
    return collect(paths, tmp_path / "table.csv")


def test_collect_pulls_pair_each_sample_with_its_hmc_point(table):
    dm = table[table.source == "dm"].iloc[0]
    assert dm.pull_absM == pytest.approx(0.3 / math.hypot(0.1, 0.1))
    assert table[table.source == "hmc"].pull_absM.isna().all()
    assert dm.tau_absM == 1.0 and dm.ess_per_config == pytest.approx(0.5)


def plotted(fig, gid):
    """(x, y) of the Line2D (an errorbar's data line) with this gid."""
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_gid() == gid:
                return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    raise AssertionError(f"no artist {gid!r}")


def matches_table(fig, df, column, prefix) -> bool:
    for (source, L), part in df.groupby(["source", "L"]):
        x, y = plotted(fig, f"{prefix}_{source}_L{L}")
        part = part.sort_values("kappa")
        if not (np.allclose(x, part.kappa) and np.allclose(y, part[column])):
            return False
    return True


def test_binder_chi_and_autocorrelation_plot_the_table(table):
    from campaign.phi4 import figures

    fig = figures.fig_binder_chi(table)
    assert matches_table(fig, table, "binder", "binder") and matches_table(fig, table, "chi", "chi")
    fig2 = figures.fig_autocorrelation(table)
    assert matches_table(fig2, table, "tau_absM", "tau")
    assert matches_table(fig2, table, "cost_per_independent_s", "cost")
    # power: the check fails against a table with one value changed
    wrong = table.copy()
    wrong.loc[0, "binder"] += 0.01
    assert not matches_table(fig, wrong, "binder", "binder")


def test_histogram_and_correlator_plot_their_data():
    from campaign.phi4 import figures

    rng = np.random.default_rng(1)
    m_hmc, m_dm = rng.normal(2, 0.3, 400) * rng.choice([-1, 1], 400), rng.normal(0, 1, 300)
    measured = {("hmc", 0.3, 4): pd.DataFrame({"M": m_hmc}), ("dm", 0.3, 4): pd.DataFrame({"M": m_dm})}
    fig = figures.fig_histograms(measured)
    x, y = plotted(fig, "hmc_k0.3_L4")
    edges = np.linspace(-np.abs(np.r_[m_hmc, m_dm]).max(), np.abs(np.r_[m_hmc, m_dm]).max(), figures.HIST_BINS + 1)
    assert np.allclose(y, np.histogram(m_hmc, edges, density=True)[0])
    assert y[x < -1].sum() > 0 and y[x > 1].sum() > 0  # both vacua
    assert not np.allclose(plotted(fig, "dm_k0.3_L4")[1], y)
    summaries = {("hmc", 0.3, 4): summary("hmc", 0.3, 4, 1, 0.1), ("dm", 0.3, 4): summary("dm", 0.3, 4, 1, 0.1,
                                                                                        G=(3.0, 1.2, 0.4))}
    fig = figures.fig_correlator(summaries)
    assert np.allclose(plotted(fig, "G_dm_k0.3_L4")[1], [3.0, 1.2, 0.4])
    assert np.allclose(plotted(fig, "G_hmc_k0.3_L4")[0], [0, 1, 2])


def test_cumulant_figure_plots_both_directions_and_the_ve_law():
    from campaign.phi4 import figures

    rows = []
    for direction, shift in (("forward", 0.0), ("backward", 0.01)):
        for sigma in (0.0, 0.5, 2.0):
            for n in range(2, 7):
                value = (0.4 + sigma**2 / 16 if n == 2 else -0.1 * n) + shift
                rows.append({"direction": direction, "sigma": sigma, "observable": "M", "n": n, "value": value,
                             "error": 0.01, "noise_weight": 1 / 16})
    df = pd.DataFrame(rows)
    fig = figures.fig_cumulants(df)
    x, y = plotted(fig, "kappa2_forward")
    assert np.allclose(x, [0, 0.5, 2]) and np.allclose(y, 0.4 + x**2 / 16)
    assert np.allclose(plotted(fig, "kappa4_backward")[1], -0.39)
    xs, law = plotted(fig, "kappa2_law")
    assert np.allclose(law, 0.4 + xs**2 / 16)
    assert np.allclose(plotted(fig, "kappa3_law")[1], -0.3)


def test_make_figures_writes_every_file(tmp_path, table):
    """The figures stage end to end on measurement files written by measure_ensemble."""
    import torch

    from campaign.io import write_scalar_ensemble
    from campaign.phi4.figures import FIGURES, make_figures
    from campaign.phi4.stages import collect, measure_ensemble

    gen = torch.Generator().manual_seed(0)
    paths = []
    for source, alg in (("hmc", "hmc"), ("dm", "diffusion-independence-metropolis")):
        phi = torch.randn((30, 2, 4, 4), generator=gen, dtype=torch.float64)
        attrs = {"theory": "phi4", "kappa": 0.2, "lam": 0.02, "shape": [4, 4], "algorithm": alg,
                 "wall_time_s": 1.0, "configs_per_chain": 30, "sep": 1, "therm": 10}
        write_scalar_ensemble(tmp_path / f"{source}.h5", phi, attrs,
                              history={"accepted": np.ones((40, 2), bool)})
        s = measure_ensemble(tmp_path / f"{source}.h5", tmp_path / f"{source}.csv", tmp_path / f"{source}.json")
        paths.append(tmp_path / f"{source}.csv")
        assert s["source"] == source and len(s["G"]) == 4
    collect([p.with_suffix(".json") for p in paths], tmp_path / "t.csv")
    out = make_figures(tmp_path / "fig", tmp_path / "t.csv", paths, None)
    assert {p.stem for p in out} == set(FIGURES) - {"phi4_cumulants"} and all(p.stat().st_size > 0 for p in out)
    assert set(FIGURES) == set(p4config.FIGURES)


def test_cumulant_rows_follow_the_ve_law_for_an_exact_gaussian_score():
    """Data iid N(0, 1) per site and its exact score -x / (1 + sigma^2): forward and backward
    kappa_2 of one site are 1 + sigma^2 and of M (1 + sigma^2) / V within errors, kappa_4 is
    0; a model off by 20 % in its variance is caught (power)."""
    import torch

    from campaign.phi4.stages import backward_rows, forward_rows

    phi = torch.randn((500, 4, 2, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigmas = [0.0, 0.5, 1.5]
    dsm = {"sigma_min": 0.05, "sigma_max": 10.0}

    def rows(scale):
        def score(x, sigma):
            return -x / (scale + sigma.reshape(-1, 1, 1) ** 2)

        back = backward_rows(score, (2, 2), sigmas, dsm, 100, 4000, 8, seed=2, orders=(2, 4))
        return pd.DataFrame(forward_rows(phi, sigmas, seed=3, orders=(2, 4)) + back)

    df = rows(1.0)
    for _, r in df.iterrows():
        s2 = max(r.sigma, 0.05 if r.direction == "backward" else 0.0) ** 2
        expect = (1 + s2) * r.noise_weight if r.n == 2 else 0.0
        assert abs(r.value - expect) < 4 * r.error, r.to_dict()
    wrong = rows(1.2)
    r = wrong[(wrong.direction == "backward") & (wrong.sigma == 0) & (wrong.n == 2) & (wrong.observable == "phi0")]
    assert abs(r.value.iloc[0] - 1.0) > 4 * r.error.iloc[0]


@pytest.mark.slow  # 16 jobs of a few seconds each
def test_tiny_phi4_campaign_runs_end_to_end(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", PHI4_ONLY)
    r = run_snakemake("--cores", "2", "--configfile", cfg, workdir=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:]
    table = pd.read_csv(tmp_path / "results/phi4/table.csv")
    assert sorted(zip(table.source, table.kappa, table.L)) == [
        ("dm", 0.3, 4), ("hmc", 0.2, 4), ("hmc", 0.2, 6), ("hmc", 0.3, 4), ("hmc", 0.3, 6)]
    dm = table[table.source == "dm"].iloc[0]
    assert 0 < dm.acceptance <= 1 and np.isfinite(dm.pull_absM)
    cum = pd.read_csv(tmp_path / "results/phi4/cumulants/k0.3_L4.csv")
    assert set(cum.direction) == {"forward", "backward"} and set(cum.sigma) == {0.0, 0.5, 2.0}
    for name in p4config.FIGURES:
        assert (tmp_path / f"results/phi4/figures/{name}.png").stat().st_size > 0
    # a second run has nothing to do
    again = run_snakemake("-n", "--cores", "1", "--configfile", cfg, workdir=tmp_path)
    assert "Nothing to be done" in again.stdout, again.stdout[-2000:]
