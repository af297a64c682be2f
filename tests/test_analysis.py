"""Observables, Gamma-method statistics, measure_file and the tidy campaign table."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from campaign import io
from campaign.analysis import (
    TABLE_COLUMNS,
    collect_summaries,
    measure_file,
    read_table,
    summarize_table,
    write_table,
)
from campaign.stats import (
    bootstrap_errors,
    chi_t_summary,
    independent_summary,
    kish_ess,
    weighted_summary,
)
from campaign.stats import chain_summary as gamma_summary
from campaign.groups import SU2, U1, U2
from campaign.lattice import gauge_transform, wilson_loop
from campaign.observables import (
    loop_names,
    measure_links,
    plaquette,
    topological_charge,
    wilson_loops,
)


# ------------------------------------------------------------------------ helpers
def ar1(rng, n, rho):
    x = np.empty(n)
    x[0] = rng.normal() / math.sqrt(1 - rho**2)  # start in equilibrium
    noise = rng.normal(size=n)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + noise[i]
    return x


def constant_field_u1(L, k):
    """Uniform field strength 2 pi k / L^2 on every plaquette of the torus (total flux
    2 pi k): U_1(x, y) = exp(2 pi i k x / L^2), U_0(L-1, y) = exp(-2 pi i k y / L)."""
    x = torch.arange(L, dtype=torch.float64)[:, None].expand(L, L)
    y = torch.arange(L, dtype=torch.float64)[None, :].expand(L, L)
    th1 = 2 * math.pi * k * x / L**2
    th0 = torch.zeros(L, L, dtype=torch.float64)
    th0[L - 1, :] = -2 * math.pi * k * y[L - 1, :] / L
    theta = torch.stack((th0, th1))
    return torch.polar(torch.ones_like(theta), theta)[None, ..., None, None]  # (1, 2, L, L, 1, 1)


def u1_to_u2(U):
    """diag(e^{i theta}, 1): det = e^{i theta}, so Q is unchanged."""
    z = torch.zeros(*U.shape[:-2], 2, 2, dtype=U.dtype)
    z[..., 0, 0] = U[..., 0, 0]
    z[..., 1, 1] = 1
    return z


# -------------------------------------------------------------------- observables
@pytest.mark.parametrize("grp", [U1, U2], ids=lambda g: g.name)
def test_charge_integer_and_gauge_invariant(grp, gen):
    U = grp.haar((6, 2, 6, 6), generator=gen)
    q = topological_charge(grp, U)
    assert q.shape == (6,) and q.dtype == torch.float64
    assert torch.equal(q, torch.round(q))
    assert q.abs().max() > 0  # Haar-random fields carry charge
    omega = grp.haar((6, 6, 6), generator=gen)
    Ug = gauge_transform(U, omega)
    assert torch.equal(topological_charge(grp, Ug), q)
    assert torch.allclose(plaquette(Ug), plaquette(U), atol=1e-13)
    assert torch.allclose(wilson_loops(Ug, 3), wilson_loops(U, 3), atol=1e-13)


def test_charge_complex64_input_still_integral(gen):
    U = U1.haar((3, 2, 32, 32), generator=gen).to(torch.complex64)
    q = topological_charge(U1, U)
    assert torch.equal(q, torch.round(q))


def test_su2_has_no_charge(gen):
    with pytest.raises(ValueError, match="no topological charge"):
        topological_charge(SU2, SU2.haar((1, 2, 4, 4), generator=gen))
    assert "Q" not in measure_links(SU2, SU2.haar((2, 2, 4, 4), generator=gen), 2)


def test_non_group_links_rejected(gen):
    U = U1.haar((2, 2, 4, 4), generator=gen)
    U[1, 0, 0, 0] = 0.3 + 0.2j  # not unitary, but Q only sees phases: still integral
    q = topological_charge(U1, U)
    assert torch.equal(q, torch.round(q))
    U[1, 0, 0, 0] = complex("nan")
    with pytest.raises(ValueError, match="not integral"):
        topological_charge(U1, U)


def test_plaquette_is_w11(group, gen):
    U = group.haar((4, 2, 5, 5), generator=gen)
    assert torch.allclose(plaquette(U), wilson_loop(U, 1, 1), atol=1e-14)
    m = measure_links(group, U, 2)
    assert torch.allclose(m["plaquette"], wilson_loop(U, 1, 1), atol=1e-14)
    assert torch.allclose(m["W_1x2"], wilson_loop(U, 1, 2), atol=1e-14)
    assert torch.allclose(m["W_2x2"], wilson_loop(U, 2, 2), atol=1e-14)


@pytest.mark.parametrize("k", [-3, 1, 5])
def test_constant_flux_u1_charge_and_loops(k):
    L = 8
    U = constant_field_u1(L, k)
    assert float(topological_charge(U1, U)) == k
    # uniform field: an R x T loop encloses flux 2 pi k R T / L^2
    grid = wilson_loops(U, 3)
    for r in range(1, 4):
        for t in range(1, 4):
            assert math.isclose(float(grid[0, r - 1, t - 1]), math.cos(2 * math.pi * k * r * t / L**2), abs_tol=1e-12)


@pytest.mark.parametrize("k", [-2, 3])
def test_constant_flux_u2_charge(k, gen):
    L = 6
    U = u1_to_u2(constant_field_u1(L, k))
    omega = U2.haar((1, L, L), generator=gen)
    assert float(topological_charge(U2, U)) == k
    assert float(topological_charge(U2, gauge_transform(U, omega))) == k


def test_measure_links_chunking_and_keys(gen):
    U = U2.haar((7, 2, 4, 4), generator=gen)
    whole = measure_links(U2, U, 2)
    chunked = measure_links(U2, U, 2, chunk_size=3)
    assert list(whole) == ["plaquette", *loop_names(2), "Q"] == ["plaquette", "W_1x1", "W_1x2", "W_2x2", "Q"]
    for key in whole:
        assert whole[key].shape == (7,)
        assert torch.allclose(whole[key], chunked[key], atol=1e-14)


# --------------------------------------------------------------------- statistics
def test_tau_int_of_ar1_chain():
    rho, n, reps = 0.8, 5000, 4
    rng = np.random.default_rng(7)
    chains = [ar1(rng, n, rho) for _ in range(reps)]
    s = gamma_summary(chains)
    tau_exact = (1 + rho) / (2 * (1 - rho))  # 4.5
    assert abs(s["tau_int"] - tau_exact) < 2 * s["tau_int_error"]
    assert s["tau_int_error"] < 0.2 * tau_exact
    # error of the mean: sqrt(2 tau var / N) with var = 1 / (1 - rho^2)
    err_exact = math.sqrt(2 * tau_exact / (1 - rho**2) / (n * reps))
    assert abs(s["error"] / err_exact - 1) < 0.15
    assert abs(s["value"]) < 4 * err_exact
    assert math.isclose(s["n_eff"], n * reps / (2 * s["tau_int"]))


def test_uncorrelated_chain_has_tau_half():
    rng = np.random.default_rng(3)
    s = gamma_summary([rng.normal(size=4000) for _ in range(2)])
    assert abs(s["tau_int"] - 0.5) < 3 * s["tau_int_error"] + 0.02


def test_short_chains_are_concatenated():
    rng = np.random.default_rng(0)
    chains = [rng.normal(size=3) for _ in range(10)]  # each below pyerrors' minimum of 5
    s = gamma_summary(chains)
    assert math.isclose(s["value"], np.concatenate(chains).mean())
    assert np.isfinite(s["error"]) and np.isfinite(s["tau_int"])
    tiny = gamma_summary([np.array([1.0, 2.0])])
    assert tiny["value"] == 1.5 and math.isnan(tiny["tau_int"])


def test_chains_stuck_apart_are_statistics_not_replicas():
    """Eight chains each frozen at a different Q: pyerrors alone reads error 0; the chain
    summary takes the scatter between chains and marks the result unreliable."""
    qs = [0, 1, -1, 2, 0, -2, 1, 0]
    frozen = [np.full(200, float(q)) for q in qs]
    s = gamma_summary(frozen)
    assert s["value"] == pytest.approx(np.mean(qs))
    assert s["error"] == pytest.approx(np.std(qs, ddof=1) / math.sqrt(len(qs)))
    assert not s["reliable"] and "frozen" in s["note"]
    # slowly mixing: chains fluctuate a little around different levels
    rng = np.random.default_rng(4)
    stuck = [q + 0.01 * rng.normal(size=400) for q in qs]
    s = gamma_summary(stuck)
    assert s["error"] >= 0.9 * np.std(qs, ddof=1) / math.sqrt(len(qs))
    assert s["error_within"] < 0.01 and not s["reliable"] and "scatter" in s["note"]
    # mixed chains: both errors agree, reliable
    rng = np.random.default_rng(5)
    good = gamma_summary([ar1(rng, 4000, 0.5) for _ in range(8)])
    assert good["reliable"], good["note"]
    assert abs(good["error_between"] / good["error_within"] - 1) < 0.5


def test_short_chain_relative_to_tau_is_flagged():
    rng = np.random.default_rng(6)
    s = gamma_summary([ar1(rng, 300, 0.97) for _ in range(4)])  # tau ~ 33: 300 < 50 tau
    assert not s["reliable"] and "tau_int" in s["note"]


def test_weighted_estimator_is_exact_with_honest_errors():
    """Importance sampling N(mu, 1) from N(0, 1) draws: the self-normalised estimate of the
    mean matches mu, the jackknife-over-blocks error is calibrated over repetitions, and
    the same draws without weights miss by many errors (the test has power)."""
    mu, n, blocks = 0.7, 4000, 20
    pulls, unweighted = [], []
    for rep in range(40):
        rng = np.random.default_rng(100 + rep)
        x = rng.normal(size=n)
        lw = mu * x - mu**2 / 2
        s = weighted_summary(x, lw, np.repeat(np.arange(blocks), n // blocks))
        pulls.append((s["value"] - mu) / s["error"])
        unweighted.append((x.mean() - mu) / (x.std() / math.sqrt(n)))
        assert s["reliable"] and s["ess"] == pytest.approx(kish_ess(lw))
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.5 and 0.7 < pulls.std() < 1.4, pulls
    assert max(unweighted) < -20
    one_block = weighted_summary(x, lw, None, independent_within_blocks=True)
    assert one_block["reliable"] and one_block["error_method"].startswith("delta")
    assert abs(one_block["error"] / s["error"] - 1) < 0.5
    assert not weighted_summary(x, lw, None)["reliable"]  # correlated (resampled) samples, one block


def test_independent_errors_match_gaussian():
    sigma, n = 2.0, 4000
    x = np.random.default_rng(11).normal(1.0, sigma, size=n)
    s = independent_summary(x)
    exact = sigma / math.sqrt(n)
    assert s["tau_int"] == 0.5 and s["n_eff"] == n
    assert abs(s["error"] / exact - 1) < 0.05
    assert abs(s["error_bootstrap"] / exact - 1) < 0.08
    assert abs(s["error_bootstrap"] / s["error"] - 1) < 0.08
    both = bootstrap_errors(np.column_stack([x, 3 * x]))
    assert math.isclose(both[1], 3 * both[0], rel_tol=1e-9)


def test_chi_t_error_propagation():
    rng = np.random.default_rng(5)
    V = 64.0
    # correlated Q history: AR(1) of a continuous "charge"
    chains = [ar1(rng, 3000, 0.6) * 2.0 for _ in range(3)]
    chi = chi_t_summary(chains, V)
    q2 = gamma_summary([c**2 for c in chains])
    assert math.isclose(chi["value"], np.mean(np.concatenate(chains) ** 2) / V, rel_tol=1e-12)
    assert math.isclose(chi["error"], q2["error"] / V, rel_tol=1e-9)
    assert math.isclose(chi["tau_int"], q2["tau_int"], rel_tol=1e-9)
    # independent Gaussian Q with variance s2: <Q^2> = s2, var(Q^2) = 2 s2^2
    s2, n = 9.0, 20000
    q = rng.normal(0, 3.0, size=n)
    ind = chi_t_summary([q], V)
    assert abs(ind["value"] * V / s2 - 1) < 4 * math.sqrt(2 / n)
    assert abs(ind["error"] / (math.sqrt(2 * s2**2 / n) / V) - 1) < 0.1
    df = pd.DataFrame({"chain": 0, "step": np.arange(n), "Q": q})
    s = summarize_table(df, V, independent=True)
    assert abs(s["chi_t"]["error"] / ind["error"] - 1) < 0.1
    assert abs(s["chi_t"]["error_bootstrap"] / s["chi_t"]["error"] - 1) < 0.1


def test_summarize_table_orders_chains_by_step():
    rng = np.random.default_rng(2)
    chains = [ar1(rng, 400, 0.7) for _ in range(2)]
    # measurement-major, chain-minor, then shuffled rows: the split must undo it
    df = pd.DataFrame({
        "chain": np.tile([0, 1], 400), "step": np.repeat(np.arange(400) * 5, 2),
        "x": np.column_stack(chains).ravel(),
    }).sample(frac=1.0, random_state=0)
    s = summarize_table(df, 16.0, independent=False)
    ref = gamma_summary(chains)
    assert math.isclose(s["x"]["tau_int"], ref["tau_int"], rel_tol=1e-12)


# ----------------------------------------------------------------- measure_file
def _write(tmp_path, grp, name="ens.h5", n_chains=3, n_meas=6, L=4, **attrs):
    g = torch.Generator().manual_seed(0)
    U = grp.haar((n_chains * n_meas, 2, L, L), generator=g)
    chain = np.tile(np.arange(n_chains), n_meas)
    step = np.repeat((np.arange(n_meas) + 1) * 10, n_chains)
    rng = np.random.default_rng(0)
    history = attrs.pop("history", None)
    if history is None:
        history = {
            "dH": rng.normal(0, 0.2, size=(70, n_chains)),
            "accept_prob": rng.uniform(0.6, 1, size=(70, n_chains)),
            "accepted": (rng.uniform(size=(70, n_chains)) < 0.8).astype(np.int8),
        }
    base = {"group": grp.name, "beta": 2.0, "L": L, "algorithm": "hmc", "therm": 10,
            "independent": False, "wall_time_s": 12.0, "seed": 1}
    path = tmp_path / name
    io.write_ensemble(path, U, {**base, **attrs}, history=history, chain=chain, step=step)
    return path, U


@pytest.mark.parametrize("grp", [U1, SU2], ids=lambda g: g.name)
def test_measure_file_table_and_summary(tmp_path, grp):
    path, U = _write(tmp_path, grp)
    summary = measure_file(path, tmp_path / "t.csv", max_loop=2, summary_path=tmp_path / "s.json")
    table = read_table(tmp_path / "t.csv")
    cols = ["config", "chain", "step", "plaquette", "W_1x1", "W_1x2", "W_2x2"] + (["Q"] if grp.has_topology else [])
    assert list(table.columns) == cols
    assert len(table) == 18
    assert np.allclose(table["plaquette"], wilson_loop(U, 1, 1).numpy(), atol=1e-12)
    assert table["chain"].tolist()[:4] == [0, 1, 2, 0]
    for key in ("file", "group", "beta", "L", "algorithm", "n_configs", "n_chains", "independent",
                "observables", "diagnostics", "attrs"):
        assert key in summary
    assert summary["n_configs"] == 18 and summary["n_chains"] == 3 and summary["group"] == grp.name
    for name in cols[3:]:
        assert set(summary["observables"][name]) >= {"value", "error", "tau_int", "tau_int_error", "n_eff"}
    assert ("chi_t" in summary) == grp.has_topology
    d = summary["diagnostics"]
    assert d["n_trajectories"] == 60 and set(d) >= {"acceptance", "acceptance_rate", "exp_minus_dH"}
    assert summary["attrs"]["seed"] == 1 and "created" in summary["attrs"]
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["observables"].keys() == summary["observables"].keys()


def test_measure_file_independent_and_parquet_name(tmp_path):
    history = {"tail_acceptance": np.full((5, 6), 0.7)}
    path, _ = _write(tmp_path, U2, algorithm="maala", independent=True, history=history,
                     model_beta0=1.0, model_L0=4, n_chains=1)
    s = measure_file(path, tmp_path / "t.csv.gz")
    assert s["observables"]["Q"]["tau_int"] == 0.5 and "error_bootstrap" in s["chi_t"]
    assert s["diagnostics"]["tail_acceptance"]["value"] == pytest.approx(0.7)
    assert s["max_loop"] == 2  # default min(8, L // 2)
    assert len(read_table(tmp_path / "t.csv.gz")) == 6
    from campaign.errors import CampaignError

    with pytest.raises(CampaignError):
        measure_file(path, tmp_path / "t.txt")


def test_measure_file_bad_files(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(io.EnsembleFileError):
        measure_file(bad, tmp_path / "t.csv")
    with pytest.raises(io.EnsembleFileError):
        measure_file(tmp_path / "missing.h5", tmp_path / "t.csv")
    assert not (tmp_path / "t.csv").exists()


def test_cli_measure(tmp_path, capsys):
    from campaign.cli import main

    path, _ = _write(tmp_path, U1, n_meas=5)
    assert main(["measure", str(path), "--out", str(tmp_path / "t.csv"), "--max-loop", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["observables"].keys() == {"plaquette", "W_1x1", "Q"}
    assert main(["measure", str(tmp_path / "nope.h5"), "--out", str(tmp_path / "t.csv")]) == 1
    assert "not found" in capsys.readouterr().err


# ------------------------------------------------------------------- tidy table
def test_collect_summaries(tmp_path):
    h, _ = _write(tmp_path, U1, name="hmc.h5")
    m, _ = _write(tmp_path, U1, name="dm.h5", algorithm="maala", independent=True, n_chains=1,
                  model_beta0=1.0, model_L0=8, history={"accept_prob": np.full(20, 0.5)})
    measure_file(h, tmp_path / "h.csv", max_loop=2, summary_path=tmp_path / "h.json")
    measure_file(m, tmp_path / "m.csv", max_loop=2, summary_path=tmp_path / "m.json")
    exact = {"group": "u1", "beta": 2.0, "L": 4, "plaquette": 0.7, "chi_t": 0.05,
             "wilson_loops": {"1x1": 0.7, "1x2": 0.49, "2x2": 0.24}}
    (tmp_path / "e.json").write_text(json.dumps(exact))
    df = collect_summaries([tmp_path / "h.json", tmp_path / "m.json"], [tmp_path / "e.json"])
    assert list(df.columns) == TABLE_COLUMNS
    assert set(df["algorithm"]) == {"hmc", "maala"}
    obs = set(df["observable"])
    assert obs >= {"plaquette", "W_1x1", "W_1x2", "W_2x2", "Q", "chi_t", "acceptance"}
    row = df[(df.algorithm == "hmc") & (df.observable == "W_1x2")].iloc[0]
    assert row["exact"] == 0.49 and (row["R"], row["T"], row["area"]) == (1, 2, 2)
    assert math.isclose(row["pull"], (row["value"] - 0.49) / row["error"])
    assert math.isclose(row["cost_per_independent_sample_s"], 12.0 / row["n_eff"])
    dm = df[df.algorithm == "maala"]
    assert (dm["beta0"] == 1.0).all() and (dm["L0"] == 8).all()
    assert dm[dm.observable == "acceptance"]["value"].iloc[0] == pytest.approx(0.5)
    assert df[(df.algorithm == "hmc") & (df.observable == "chi_t")]["exact"].iloc[0] == 0.05
    assert "exp_minus_dH" in set(df[df.algorithm == "hmc"]["observable"])
    write_table(df, tmp_path / "all.csv")
    back = read_table(tmp_path / "all.csv")
    assert len(back) == len(df) and list(back.columns) == TABLE_COLUMNS
    empty = collect_summaries([])
    assert list(empty.columns) == TABLE_COLUMNS and len(empty) == 0


def test_maala_diagnostics_from_history():
    """Tail step size (mean over batches) and the plaquette after annealing, from the
    sampler's history arrays; HMC files do not get them."""
    from campaign.analysis import algorithm_diagnostics

    history = {
        "tail_acceptance": np.full((4, 2), 0.6),
        "batch_eps": np.array([0.02, 0.04]),
        "tail_plaquette": np.array([[0.70, 0.74], [0.80, 0.81], [0.81, 0.80], [0.80, 0.82]]),
        "tail_q_changed": np.array([0.0, 1.0, 0.0, 0.0]),
    }
    d = algorithm_diagnostics("maala", history, {})
    assert d["acceptance"]["value"] == pytest.approx(0.6)
    assert d["tail_step_size"]["value"] == pytest.approx(0.03)
    assert d["tail_step_size"]["error"] == pytest.approx(0.01)
    assert d["annealed_plaquette"]["value"] == pytest.approx(0.72)
    assert d["tail_q_changed"]["value"] == pytest.approx(0.25)
    hmc = algorithm_diagnostics("hmc", {"accept_prob": np.full((10, 2), 0.9)}, {"therm": 0})
    assert "tail_step_size" not in hmc and "annealed_plaquette" not in hmc


def test_few_weighted_blocks_do_not_give_overconfident_errors():
    """Four blocks whose total weights differ a lot (a few SMC batches): the jackknife over
    four block estimates is itself a sample of four and often far too small; the blocks' own
    delta-method errors floor it.  Over many repetitions, far fewer 3-sigma misses with the
    floor than with the bare jackknife (which the test computes itself: its power).  With a
    much wider spread of block weights both stay overconfident: such results carry the
    'effective blocks < 5' flag."""
    mu, per, blocks, reps = 1.0, 100, 4, 300
    floored, bare = [], []
    for rep in range(reps):
        rng = np.random.default_rng(500 + rep)
        x = rng.normal(size=per * blocks)
        lw = mu * x - mu**2 / 2
        labels = np.repeat(np.arange(blocks), per)
        s = weighted_summary(x, lw, labels)
        floored.append(abs(s["value"] - mu) / s["error"])
        W = np.exp(lw - lw.max())
        a = np.bincount(labels, weights=W * x)
        z = np.bincount(labels, weights=W)
        loo = (a.sum() - a) / (z.sum() - z)
        jack = math.sqrt((blocks - 1) / blocks * np.sum((loo - loo.mean()) ** 2))
        bare.append(abs(s["value"] - mu) / jack)
    floored, bare = np.array(floored), np.array(bare)
    assert np.mean(bare > 3) > 0.06, np.mean(bare > 3)
    assert np.mean(floored > 3) < 0.5 * np.mean(bare > 3), (np.mean(floored > 3), np.mean(bare > 3))


def test_parquet_needs_an_engine_or_says_so(tmp_path):
    """parquet is optional (no engine in the campaign environment): a .parquet name either
    round-trips or is one CampaignError naming the csv alternative, never a traceback."""
    import importlib.util

    from campaign.errors import CampaignError

    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    if importlib.util.find_spec("pyarrow") or importlib.util.find_spec("fastparquet"):
        write_table(df, tmp_path / "t.parquet")
        assert read_table(tmp_path / "t.parquet").equals(df)
    else:
        with pytest.raises(CampaignError, match="use a .csv name"):
            write_table(df, tmp_path / "t.parquet")
        assert not (tmp_path / "t.parquet").exists()
