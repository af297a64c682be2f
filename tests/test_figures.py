"""Figures from a small synthetic campaign table (full and partial campaigns).

``build_fixture(directory)`` makes a plausible campaign: U(1), SU(2), U(2) at several
couplings and two volumes, HMC (topology freezing at large beta) and the exact diffusion
sampler (weighted SMC, trained at beta0 on L0 = 8), per-configuration tables for the
topology figure and training loss logs.  Running this file as a script writes the fixture
figures to results/figures-fixture/.
"""

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import ive

from campaign.analysis import TABLE_COLUMNS, write_table
import campaign.figures as figs
from campaign.figures import FIGURES, captions, choose_L, make_figures

BETAS = (1.0, 2.0, 4.0, 6.0)
BETA0 = {"u1": 1.0, "su2": 2.0, "u2": 2.0}
LS = (8, 16)
MAX_LOOP = 4


def _u1_w(beta):
    return ive(1, beta) / ive(0, beta)


def _w(group, beta, area):
    if group == "u1":
        return _u1_w(beta) ** area
    if group == "su2":
        return (ive(2, beta) / ive(1, beta)) ** area
    return (_u1_w(beta / 2) * ive(2, beta) / ive(1, beta)) ** (area / 2)


def _chi(group, beta):
    """Infinite-volume U(1) chi_t = <phi^2>/(4 pi^2), phi ~ exp(beta cos phi); U(2): beta/2."""
    b = beta if group == "u1" else beta / 2
    phi = np.linspace(-np.pi, np.pi, 4001)
    w = np.exp(b * (np.cos(phi) - 1))
    return float(np.trapezoid(phi**2 * w, phi) / np.trapezoid(w, phi) / (4 * np.pi**2))


def build_fixture(directory: Path, seed: int = 0, betas=BETAS, Ls=LS, max_loop=MAX_LOOP):
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    rows, per_config = [], []
    for group in ("u1", "su2", "u2"):
        for L in Ls:
            for beta in betas:
                for alg in ("hmc", "smc"):
                    n = 2000
                    table = str(directory / "measure" / group / alg / f"b{beta:g}_L{L}.csv")
                    wall = (30.0 if alg == "hmc" else 80.0) * (L / 8) ** 2
                    base = {
                        "source": table.replace(".csv", ".json"), "file": table.replace(".csv", ".h5"),
                        "table": table, "group": group, "beta": beta, "L": L, "algorithm": alg,
                        "beta0": BETA0[group] if alg == "smc" else np.nan,
                        "L0": 8 if alg == "smc" else np.nan, "independent": alg == "smc",
                        "n_configs": n, "n_chains": 4 if alg == "hmc" else 1, "wall_time_s": wall,
                    }

                    def add(obs, value, error, exact, tau, dtau, R=np.nan, T=np.nan):
                        n_eff = n / (2 * tau)
                        rows.append({
                            **base, "observable": obs, "R": R, "T": T, "area": R * T, "value": value,
                            "error": error, "tau_int": tau, "tau_int_error": dtau, "n_eff": n_eff,
                            "exact": exact, "pull": (value - exact) / error if np.isfinite(exact) else np.nan,
                            "cost_per_independent_sample_s": wall / n_eff if obs not in ("acceptance",) else np.nan,
                        })

                    tau_p = (1.5 + 0.4 * beta) if alg == "hmc" else 0.5
                    dtau_p = 0.1 * tau_p if alg == "hmc" else 0.0
                    for r in range(1, max_loop + 1):
                        for t in range(r, max_loop + 1):
                            ex = _w(group, beta, r * t)
                            err = 4e-3 * math.sqrt(max(ex, 0.01)) * 8 / L
                            val = ex + err * rng.normal()
                            add(f"W_{r}x{t}", val, err, ex, tau_p, dtau_p, r, t)
                            if r == t == 1:
                                add("plaquette", val, err, ex, tau_p, dtau_p)
                    if group != "su2":
                        chi = _chi(group, beta)
                        frozen = alg == "hmc" and beta >= 4
                        tau_q = 0.5 * math.exp(0.95 * beta) if alg == "hmc" else 0.5
                        dtau_q = 0.15 * tau_q if alg == "hmc" else 0.0
                        err_chi = chi * (0.06 + (0.3 if frozen else 0.0))
                        val_chi = chi * (0.12 if frozen else 1.0) + err_chi * 0.5 * rng.normal()
                        add("chi_t", val_chi, err_chi, chi, tau_q, dtau_q)
                        q_err = math.sqrt(chi * L * L / (n / (2 * tau_q)))
                        add("Q", q_err * rng.normal(), q_err, 0.0, tau_q, dtau_q)
                        if beta == max(betas) and L == max(Ls):
                            per_config.append(_per_config_table(Path(table), alg, chi * L * L, rng))
                    if alg == "smc":
                        ess = 0.92 * math.exp(-0.12 * abs(beta - BETA0[group])) * (8 / L) ** 0.4
                        add("ess_per_sample", ess, np.nan, np.nan, np.nan, np.nan)
                        add("tail_step_size", 0.05 / (1 + beta) * (8 / L) ** 0.6, np.nan, np.nan, np.nan, np.nan)
                        add("resamplings", 3 + beta, 0.3, np.nan, np.nan, np.nan)
                        add("acceptance", 0.6, 0.01, np.nan, 0.5, 0.0)
                    else:
                        add("acceptance", 0.85 + 0.02 * rng.normal(), 0.005, np.nan, 0.6, 0.05)
                        add("exp_minus_dH", 1 + 0.01 * rng.normal(), 0.01, 1.0, 0.6, 0.05)
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    losses = []
    for group in ("u1", "su2", "u2"):
        p = directory / "models" / group / f"dm_b{BETA0[group]:g}_L8_loss.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        step = np.arange(0, 3000, 5)
        loss = (0.6 + 2.5 / (1 + step / 150)) * (1 + 0.08 * rng.normal(size=len(step))) * (1 + 0.2 * len(losses))
        pd.DataFrame({"step": step, "loss": loss, "lr": 1e-3}).to_csv(p, index=False)
        losses.append(p)
    return df, per_config, losses


def _per_config_table(path: Path, alg: str, var_q: float, rng) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if alg == "hmc":  # frozen: rare tunnelling events, chain-minor storage
        chains, n_meas = 4, 500
        q = np.zeros((n_meas, chains))
        for c in range(chains):
            cur = int(rng.integers(-1, 2))
            for i in range(n_meas):
                if rng.uniform() < 0.004:
                    cur += int(rng.choice([-1, 1]))
                q[i, c] = cur
        chain = np.tile(np.arange(chains), n_meas)
        step = np.repeat(np.arange(1, n_meas + 1) * 10, chains)
        q = q.ravel()
    else:
        q = np.round(rng.normal(0, math.sqrt(var_q), size=2000))
        chain, step = np.zeros(2000, int), np.arange(2000)
    pd.DataFrame({"config": np.arange(len(q)), "chain": chain, "step": step,
                  "plaquette": 0.9 + 0.01 * rng.normal(size=len(q)), "Q": q.astype(int)}).to_csv(path, index=False)
    return path


# -------------------------------------------------------------------------- tests
def _check_outputs(out, outdir):
    assert set(out) == set(FIGURES)
    for name, paths in out.items():
        assert paths, name
        for p in paths:
            p = Path(p)
            assert p.exists() and p.stat().st_size > 1000, p
            head = p.read_bytes()[:8]
            assert head.startswith(b"%PDF") if p.suffix == ".pdf" else head.startswith(b"\x89PNG"), p
            assert (outdir / f"{p.stem}.rst").exists()


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return build_fixture(tmp_path_factory.mktemp("campaign"), betas=(1.0, 4.0), max_loop=3)


def test_full_campaign(fixture, tmp_path):
    df, per_config, losses = fixture
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to complain about in a complete campaign
        out = make_figures(df, tmp_path, per_config_tables=per_config, loss_logs=losses, exact_curves=False)
    _check_outputs(out, tmp_path)
    assert {p.name for p in out["beta_extrapolation"]} == {
        f"beta_extrapolation_{g}.{f}" for g in ("u1", "su2", "u2") for f in ("pdf", "png")}
    assert "L = 16" in (tmp_path / "wilson_loops.rst").read_text()


def test_partial_campaign_hmc_only(fixture, tmp_path):
    df = fixture[0]
    hmc = df[(df.algorithm == "hmc") & df.group.isin(["u1", "su2"])]
    path = tmp_path / "summary.csv"
    write_table(hmc, path)  # also through a table file
    out = make_figures(path, tmp_path / "figs", per_config_tables=[], loss_logs=[], exact_curves=False,
                       formats=("png",))
    assert set(out) == set(FIGURES)
    for paths in out.values():
        assert all(Path(p).stat().st_size > 1000 for p in paths)


def test_su2_only_and_empty(fixture, tmp_path):
    df = fixture[0]
    out = make_figures(df[df.group == "su2"], tmp_path / "su2", exact_curves=False, formats=("png",))
    assert [p.name for p in out["beta_extrapolation"]] == ["beta_extrapolation_su2.png"]
    out = make_figures(pd.DataFrame(columns=TABLE_COLUMNS), tmp_path / "empty", exact_curves=False,
                       formats=("png",), groups=["u1"])
    assert set(out) == set(FIGURES)
    assert [p.name for p in out["beta_extrapolation"]] == ["beta_extrapolation_u1.png"]


def _u1_small(fixture):
    from campaign.figures.data import _load_table

    df = fixture[0]
    return _load_table(df[(df.group == "u1") & (df.L == 8)])


def test_exact_curves_are_campaign_exact(fixture):
    """The dense exact curve of each panel is campaign.exact at the plotted betas."""
    import matplotlib.pyplot as plt

    import campaign.exact
    from campaign.figures.data import _exact_curve

    _exact_curve.cache_clear()
    df = _u1_small(fixture)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = figs.fig_beta_extrapolation(df, "u1", exact_curves=True)
    funcs = (lambda b: campaign.exact.plaquette("u1", b, 8), lambda b: campaign.exact.wilson_loop("u1", b, 8, 2, 2),
             lambda b: campaign.exact.chi_t("u1", b, 8))
    for ax, exact in zip(fig.axes[0::2], funcs):
        (curve,) = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 40]  # the dense beta grid
        x, y = np.asarray(curve.get_xdata(), float), np.asarray(curve.get_ydata(), float)
        assert np.allclose(y, [exact(b) for b in x], rtol=1e-12, atol=0)
    plt.close(fig)
    # without exact values in the table, the Wilson-loop panel draws campaign.exact per area
    fig = figs.fig_wilson_loops(df.assign(exact=np.nan), 8, exact_curves=True)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "exact"]
    areas = np.asarray(line.get_xdata(), float)
    loops = {r * t: (int(r), int(t)) for r, t in df[["R", "T"]].dropna().itertuples(index=False)}
    want = [campaign.exact.wilson_loop("u1", 1.0, 8, *loops[a]) for a in areas]
    assert np.allclose(line.get_ydata(), want, rtol=1e-12)
    plt.close(fig)
    _exact_curve.cache_clear()


def test_exact_failure_falls_back_to_the_table(fixture, monkeypatch):
    import matplotlib.pyplot as plt

    import campaign.exact
    from campaign.figures import data as figdata

    def broken(*args):
        raise RuntimeError("not converged")

    for name in ("plaquette", "wilson_loop", "chi_t"):
        monkeypatch.setattr(campaign.exact, name, broken)
    figdata._exact_curve.cache_clear()
    figdata._EXACT_WARNED.clear()
    with pytest.warns(UserWarning, match="failed"):
        fig = figs.fig_beta_extrapolation(_u1_small(fixture), "u1", exact_curves=True)
    # falls back to the table's exact values at the measured betas
    assert any(line.get_linestyle() == "--" for line in fig.axes[0].get_lines())
    plt.close(fig)
    figdata._exact_curve.cache_clear()


def _panel_points(ax) -> list[float]:
    """y of every error-bar point drawn on an axes (NaN dropped), sorted."""
    ys = [y for c in ax.containers for y in np.asarray(c[0].get_ydata(), float)]
    return sorted(round(y, 9) for y in ys if np.isfinite(y))


def _check_wilson_figure(fig, df, L):
    """Each (group, beta) panel shows the table's significant loops and, underneath, the pulls
    (value - exact) / error of every loop of that panel."""
    labels = {v: k for k, v in figs.GROUP_LABEL.items()}
    for ax, axp in zip(fig.axes[0::2], fig.axes[1::2]):
        label, beta = ax.get_title().split(",  ")
        g, beta = labels[label], float(beta.strip("$").split("=")[1])
        s = df[(df.group == g) & (df.beta == beta) & (df.L == L) & df.observable.str.startswith("W_")]
        shown = s[(s.value > 0) & (s.value > 2 * s.error)]
        assert _panel_points(ax) == sorted(round(v, 9) for v in shown.value), (g, beta)
        pulls = (s.value - s.exact) / s.error
        assert _panel_points(axp) == sorted(round(p, 9) for p in pulls), (g, beta)


def test_wilson_loop_figure_plots_the_table(fixture, monkeypatch):
    import matplotlib.pyplot as plt

    import campaign.figures.wilson_loops as wl
    from campaign.figures.data import _load_table

    df = _load_table(fixture[0])
    fig = figs.fig_wilson_loops(df, 16, exact_curves=False)
    assert len(fig.axes) == 2 * 3 * 2  # (values, pulls) per group and beta
    _check_wilson_figure(fig, df, 16)
    plt.close(fig)
    # power: a flipped pull sign, or data of another volume, fails the check
    monkeypatch.setattr(wl, "_pulls", lambda v, e, x: -figs.data._pulls(v, e, x))
    fig = figs.fig_wilson_loops(df, 16, exact_curves=False)
    with pytest.raises(AssertionError):
        _check_wilson_figure(fig, df, 16)
    plt.close(fig)
    monkeypatch.undo()
    fig = figs.fig_wilson_loops(df, 8, exact_curves=False)
    with pytest.raises(AssertionError):
        _check_wilson_figure(fig, df, 16)
    plt.close(fig)


def test_beta_extrapolation_plots_values_and_pulls(fixture):
    """Upper panels: the table's values per observable; lower panels: its pulls."""
    import matplotlib.pyplot as plt

    from campaign.figures.data import _load_table

    df = _load_table(fixture[0])
    for g in ("u1", "su2"):
        fig = figs.fig_beta_extrapolation(df, g, exact_curves=False)
        observables = ["plaquette", "W_2x2"] + (["chi_t"] if g == "u1" else [])
        assert len(fig.axes) == 2 * len(observables)
        for obs, ax, axp in zip(observables, fig.axes[0::2], fig.axes[1::2]):
            s = df[(df.group == g) & (df.observable == obs)]
            assert _panel_points(ax) == sorted(round(v, 9) for v in s.value), (g, obs)
            assert _panel_points(axp) == sorted(round(p, 9) for p in (s.value - s.exact) / s.error), (g, obs)
        plt.close(fig)


def test_diffusion_sampler_figure_plots_the_table(fixture):
    """The sampler figure draws, per group and L, exactly the table's ESS/N and step sizes
    against beta (checked on the plotted data, not the image)."""
    import matplotlib.pyplot as plt

    import campaign.figures as figs
    from campaign.figures.data import _load_table

    df = _load_table(fixture[0])
    fig = figs.fig_diffusion_sampler(df)
    axes = np.asarray(fig.axes).reshape(3, -1)
    assert axes.shape == (3, 3)
    for j, g in enumerate(("u1", "su2", "u2")):
        for i, obs in enumerate(("ess_per_sample", "tail_step_size")):
            data = {(tuple(np.round(np.asarray(ln.get_xdata(), float), 9)),
                     tuple(np.round(np.asarray(ln.get_ydata(), float), 9))) for ln in axes[i, j].get_lines()}
            for L in (8, 16):
                s = df[(df.group == g) & (df.observable == obs) & (df.L == L)].sort_values("beta")
                assert (tuple(np.round(s.beta, 9)), tuple(np.round(s.value, 9))) in data, (g, obs, L)
    assert axes[0, 0].get_ylim()[1] <= 1.05 and axes[1, 0].get_yscale() == "log"
    plt.close(fig)


def _check_topology(fig, df, tables, L=16):
    """Per topological group: the Q histograms are the per-configuration tables' frequencies,
    the Gaussian has the exact variance chi_t V, the histories are the first chain's Q."""
    axes = iter(fig.axes)
    for g in ("u1", "u2"):
        ah, histories = next(axes), [next(axes), next(axes)]
        assert ah.get_title(loc="left").startswith(figs.GROUP_LABEL[g] + ",")
        heights = np.array([b.get_height() for b in ah.patches]).reshape(2, -1)
        qmax = (heights.shape[1] - 1) // 2
        for alg, h, at in zip(("hmc", "smc"), heights, histories):
            t = tables[(g, alg)]
            assert np.allclose(h, [np.mean(t["Q"] == k) for k in range(-qmax, qmax + 1)]), (g, alg)
            first = t[t["chain"] == t["chain"].min()].sort_values("step", kind="stable")["Q"].to_numpy(float)
            assert np.array_equal(at.get_lines()[0].get_ydata(), first[:600]), (g, alg)
        chi = df[(df.group == g) & (df.observable == "chi_t") & (df.L == L) & (df.beta == df.beta.max())]["exact"]
        (gauss,) = [ln for ln in ah.get_lines() if len(ln.get_xdata()) == 400]
        assert np.isclose(np.max(gauss.get_ydata()), 1 / math.sqrt(2 * math.pi * chi.iloc[0] * L * L), rtol=1e-3)


def test_topology_figure_plots_the_per_configuration_tables(fixture):
    import matplotlib.pyplot as plt

    from campaign.figures.data import _load_table, _PerConfig

    df, per_config, _ = fixture
    df = _load_table(df)
    tables = {(Path(p).parts[-3], Path(p).parts[-2]): pd.read_csv(p) for p in per_config}
    fig = figs.fig_topology(df, _PerConfig(per_config), 16)
    _check_topology(fig, df, tables)
    # power: another sample's charges fail the check
    wrong = {**tables, ("u1", "hmc"): tables[("u1", "hmc")].assign(Q=lambda t: t["Q"] + 1)}
    with pytest.raises(AssertionError):
        _check_topology(fig, df, wrong)
    plt.close(fig)


def _check_autocorrelation(fig, df, observable_of):
    for g, (at, ac) in zip(("u1", "su2", "u2"), zip(fig.axes[0::2], fig.axes[1::2])):
        s = df[(df.group == g) & (df.observable == observable_of[g])]
        assert _panel_points(at) == sorted(round(v, 9) for v in s.tau_int), g
        assert _panel_points(ac) == sorted(round(v, 9) for v in s.cost_per_independent_sample_s), g


def test_autocorrelation_figure_plots_tau_and_cost(fixture):
    """tau_int of Q (of the plaquette for SU(2), which has no charge) and the cost per
    independent sample, every (L, algorithm, beta) of the table."""
    import matplotlib.pyplot as plt

    from campaign.figures.data import _load_table

    df = _load_table(fixture[0])
    fig = figs.fig_autocorrelation_cost(df)
    _check_autocorrelation(fig, df, {"u1": "Q", "su2": "plaquette", "u2": "Q"})
    with pytest.raises(AssertionError):  # power: the plaquette's tau for U(1) is not what is drawn
        _check_autocorrelation(fig, df, {"u1": "plaquette", "su2": "plaquette", "u2": "Q"})
    plt.close(fig)


def test_captions_and_choose_L(fixture):
    df = fixture[0]
    caps = captions(8)
    assert {"wilson_loops", "diffusion_sampler", "topology", "autocorrelation_cost", "training_loss",
            "beta_extrapolation_u1", "beta_extrapolation_su2", "beta_extrapolation_u2", "wilson_loops_all_L",
            "plaquette_history_histogram", "q_autocorrelation", "diffusion_sampler_levels"} <= set(caps)
    assert set(figs.figure_stems(["u1", "su2", "u2"])) <= set(caps)  # every file has its caption
    assert all(len(c) > 40 for c in caps.values())
    assert choose_L(df) == 16  # ties between L = 8 and 16 go to the larger
    assert choose_L(df[df.L == 8]) == 8


if __name__ == "__main__":  # fixture figures for inspection
    root = Path(__file__).resolve().parents[1]
    out_dir = root / "results" / "figures-fixture"
    df, per_config, losses = build_fixture(root / "results" / "figures-fixture-data")
    for name, paths in make_figures(df, out_dir, per_config_tables=per_config, loss_logs=losses,
                                    exact_curves=False).items():
        print(name, *[str(p) for p in paths])


def test_q_history_uses_all_independent_samples():
    """The Q history shows a Markov chain's first chain in order, but for independent
    samples (one per chain) every sample, not a single point."""
    import pandas as pd

    from campaign.figures.topology import _first_chain

    markov = pd.DataFrame({"chain": [1, 0, 0, 1, 0], "step": [0, 2, 0, 1, 1], "Q": [9, 3, 1, 9, 2]})
    assert list(_first_chain(markov)["Q"]) == [1, 2, 3]
    independent = pd.DataFrame({"chain": [2, 0, 1], "step": [0, 0, 0], "Q": [5, 6, 7]})
    assert list(_first_chain(independent)["Q"]) == [6, 7, 5]


def test_q_distribution_uses_importance_weights():
    """Weighted samples enter the Q histogram with their weights (plain frequencies of
    weighted samples would show the sampler's biased proposal distribution)."""
    from campaign.figures.topology import _q_distribution

    edges = np.arange(-2.5, 3.5)
    t = pd.DataFrame({"Q": [0, 0, 0, 1], "log_weight": np.log([1.0, 1.0, 1.0, 3.0])})
    assert np.allclose(_q_distribution(t, edges), [0, 0, 0.5, 0.5, 0])
    assert np.allclose(_q_distribution(t.drop(columns="log_weight"), edges), [0, 0, 0.75, 0.25, 0])


# ------------------------------------------------------- the figures of issue 17
def _wilson_panels(fig):
    """(group, L, beta, values axes, pulls axes) of each panel of the every-L figure."""
    labels = {v: k for k, v in figs.GROUP_LABEL.items()}
    for ax, axp in zip(fig.axes[0::2], fig.axes[1::2]):
        label, L, beta = ax.get_title().split(",  ")
        yield labels[label], int(L.strip("$").split("=")[1]), float(beta.strip("$").split("=")[1]), ax, axp


def _check_wilson_all_L(fig, df):
    for g, L, beta, ax, axp in _wilson_panels(fig):
        s = df[(df.group == g) & (df.beta == beta) & (df.L == L) & df.observable.str.startswith("W_")]
        shown = s[(s.value > 0) & (s.value > 2 * s.error)]
        assert _panel_points(ax) == sorted(round(v, 9) for v in shown.value), (g, L, beta)
        assert _panel_points(axp) == sorted(round(p, 9) for p in (s.value - s.exact) / s.error), (g, L, beta)


def test_wilson_loops_every_L_plots_the_table(fixture):
    """One row per (group, L), one panel per beta: the table's significant loops and every pull."""
    import matplotlib.pyplot as plt

    from campaign.figures.data import _load_table

    df = _load_table(fixture[0])
    fig = figs.fig_wilson_loops_all_L(df, exact_curves=False)
    panels = [(g, L, b) for g, L, b, *_ in _wilson_panels(fig)]
    assert sorted(panels) == sorted((g, L, b) for g in ("u1", "su2", "u2") for L in (8, 16) for b in (1.0, 4.0))
    _check_wilson_all_L(fig, df)
    with pytest.raises(AssertionError):  # power: the volumes swapped
        _check_wilson_all_L(fig, df.assign(L=df.L.map({8: 16, 16: 8})))
    plt.close(fig)


def _w11_tables(fixture, rng):
    """Per-configuration tables at beta = 4, L = 16 with W_1x1: HMC (4 chains, chain-minor
    order) and the exact sampler (importance weights), for U(1) and SU(2)."""
    tables = {}
    for g in ("u1", "su2"):
        n = 400
        tables[(g, "hmc", 4.0, 16)] = pd.DataFrame({
            "config": np.arange(n), "chain": np.tile(np.arange(4), n // 4), "step": np.repeat(np.arange(n // 4), 4),
            "W_1x1": 0.8 + 0.01 * rng.normal(size=n)})
        tables[(g, "smc", 4.0, 16)] = pd.DataFrame({
            "config": np.arange(200), "chain": np.arange(200), "step": 0, "W_1x1": 0.79 + 0.02 * rng.normal(size=200),
            "log_weight": rng.normal(size=200), "weight_block": np.repeat(np.arange(8), 25)})
    return tables


def _check_w11(fig, df, tables):
    """Histograms: the tables' (weighted) densities on the drawn bins; the exact line: the
    table's exact W(1x1); the history: the HMC chains one after the other."""
    import matplotlib.patches

    from campaign.figures.plaquette_history_histogram import HISTORY_MAX

    for r, g in enumerate(("u1", "su2")):
        ah, at = fig.axes[2 * r], fig.axes[2 * r + 1]
        assert ah.get_title(loc="left").startswith(figs.GROUP_LABEL[g] + ",")
        exact = df[(df.group == g) & (df.observable == "W_1x1") & (df.beta == 4.0) & (df.L == 16)].exact.iloc[0]
        (line,) = [ln for ln in ah.get_lines() if ln.get_label() == "exact"]
        assert np.allclose(line.get_xdata(), exact, rtol=1e-12)
        steps = [p for p in ah.patches if isinstance(p, matplotlib.patches.StepPatch)]
        assert len(steps) == 2
        for patch, alg in zip(steps, ("hmc", "smc")):
            t = tables[(g, alg, 4.0, 16)]
            values, edges = patch.get_data().values, patch.get_data().edges
            w = np.exp(t.log_weight - t.log_weight.max()) if "log_weight" in t else None
            want, _ = np.histogram(t.W_1x1, bins=edges, weights=w, density=True)
            assert np.allclose(values, want, rtol=1e-12), (g, alg)
        hmc = tables[(g, "hmc", 4.0, 16)].sort_values(["chain", "step"])
        share = HISTORY_MAX // 4
        want = np.concatenate([c.W_1x1.to_numpy()[:share] for _, c in hmc.groupby("chain")])
        drawn = np.concatenate([ln.get_ydata() for ln in at.get_lines() if len(ln.get_xdata()) > 2])
        assert np.array_equal(drawn, want), g


def test_plaquette_history_histogram_plots_the_tables(fixture):
    import matplotlib.pyplot as plt

    from campaign.figures.data import _load_table, _PerConfig

    df = _load_table(fixture[0])
    tables = _w11_tables(fixture, np.random.default_rng(5))
    fig = figs.fig_plaquette_history_histogram(df, _PerConfig(tables), 16)
    assert len(fig.axes) == 4  # U(2) has no table with W_1x1 here
    _check_w11(fig, df, tables)
    # power: the exact sampler's samples without their weights are another distribution
    unweighted = {k: (v.drop(columns="log_weight") if "log_weight" in v else v) for k, v in tables.items()}
    with pytest.raises(AssertionError):
        _check_w11(fig, df, unweighted)
    plt.close(fig)


def _ar1_chains(phi: float, n_chains: int, n: int, rng) -> pd.DataFrame:
    """Q of ``n_chains`` AR(1) chains (autocorrelation phi^t), chain-minor storage."""
    q = np.zeros((n, n_chains))
    for i in range(1, n):
        q[i] = phi * q[i - 1] + rng.normal(size=n_chains)
    return pd.DataFrame({"config": np.arange(n * n_chains), "chain": np.tile(np.arange(n_chains), n),
                         "step": np.repeat(np.arange(n), n_chains), "Q": q.ravel()})


def _direct_rho(table: pd.DataFrame, n_lags: int) -> np.ndarray:
    """Normalised autocorrelation, each chain about its own mean, summed over the chains."""
    chains = [c.sort_values("step").Q.to_numpy() for _, c in table.groupby("chain")]
    d = [x - x.mean() for x in chains]
    gamma = np.array([sum(np.dot(x[: len(x) - t], x[t:]) for x in d) / sum(len(x) - t for x in d)
                      for t in range(n_lags)])
    return gamma / gamma[0]


def _check_acf(fig, tables):
    """rho(t) of each beta equals the direct sum over the chains; the dot on tau_int(W) is
    the table's tau_int (stats.chain_summary) at the marked window."""
    from campaign.stats import chain_summary

    ax, axt = fig.axes[0], fig.axes[1]
    rho_lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    dots = [ln for ln in axt.get_lines() if len(ln.get_xdata()) == 1]
    assert len(rho_lines) == len(dots) == len(tables)
    for (beta, t), rho, dot in zip(sorted(tables.items()), rho_lines, dots):
        y = np.asarray(rho.get_ydata(), float)
        assert np.allclose(y, _direct_rho(t, len(y)), rtol=0, atol=1e-12), beta
        ordered = t.sort_values(["chain", "step"])
        summary = chain_summary([c.Q.to_numpy(float) for _, c in ordered.groupby("chain")])
        assert np.isclose(dot.get_ydata()[0], summary["tau_int"], rtol=1e-12), beta
        assert rf"\beta = {beta:g}" in rho.get_label() and f"W = {int(dot.get_xdata()[0])}" in rho.get_label()


def test_q_autocorrelation_is_the_gamma_method_of_the_chains(fixture):
    import matplotlib.pyplot as plt

    from campaign.figures.data import _load_table, _PerConfig

    df = _load_table(fixture[0])
    df = df[(df.group == "u1") & (df.L == 16)]
    rng = np.random.default_rng(7)
    tables = {1.0: _ar1_chains(0.3, 4, 300, rng), 4.0: _ar1_chains(0.9, 4, 300, rng)}
    fig = figs.fig_q_autocorrelation(df, _PerConfig({("u1", "hmc", b, 16): t for b, t in tables.items()}))
    assert len(fig.axes) == 2
    _check_acf(fig, tables)
    rho = {ln.get_label(): np.asarray(ln.get_ydata()) for ln in fig.axes[0].get_lines() if len(ln.get_xdata()) > 2}
    assert [round(r[1], 1) for r in rho.values()] == [0.3, 0.9]  # the AR(1) coefficients, by eye
    with pytest.raises(AssertionError):  # power: the two couplings' chains swapped
        _check_acf(fig, {1.0: tables[4.0], 4.0: tables[1.0]})
    plt.close(fig)


def _write_sample_file(path: Path, beta: float, L: int, rng, n_levels: int = 30, n_batches: int = 3) -> dict:
    """A small U(1) sample file of the exact sampler with a level history."""
    from campaign.io import write_ensemble

    theta = rng.uniform(-np.pi, np.pi, size=(4, 2, L, L, 1, 1))
    history = {
        "level_sigma": np.geomspace(2.0, 0.01, n_levels), "level_beta": np.linspace(0, beta, n_levels),
        "level_eps": 0.1 * np.geomspace(1, 0.05, n_levels) / beta,
        "level_ess": rng.uniform(0.5, 1.0, size=(n_levels, n_batches)),
        "level_acceptance": rng.uniform(0.4, 0.8, size=(n_levels, n_batches)),
    }
    attrs = {"group": "u1", "beta": beta, "L": L, "algorithm": "smc", "method": "smc",
             "resample_ess": 0.5, "target_acceptance": 0.6}
    write_ensemble(path, np.exp(1j * theta), attrs, history=history, datasets={"log_weights": rng.normal(size=4)})
    return history


def _check_levels(fig, histories):
    """Per (L) row: ESS/N and acceptance are the batch means per level, the step size the
    file's level_eps, all against the file's noise levels."""
    axes = np.asarray(fig.axes).reshape(-1, 3)
    for (beta, L), h in histories.items():
        r = sorted({k[1] for k in histories}).index(L)
        for ax, key in zip(axes[r], ("level_ess", "level_acceptance", "level_eps")):
            want = h[key].mean(axis=-1) if h[key].ndim == 2 else h[key]
            (line,) = [ln for ln in ax.get_lines() if ln.get_label() == rf"$\beta = {beta:g}$"]
            assert np.array_equal(line.get_xdata(), h["level_sigma"]), (beta, L, key)
            assert np.allclose(line.get_ydata(), want, rtol=1e-12), (beta, L, key)


def test_diffusion_sampler_levels_plots_the_sample_histories(tmp_path):
    import matplotlib.pyplot as plt

    from campaign.figures.data import _sample_histories

    rng = np.random.default_rng(3)
    histories, paths = {}, []
    for beta, L in ((1.0, 4), (3.0, 4), (3.0, 6)):
        paths.append(tmp_path / f"b{beta:g}_L{L}.h5")
        histories[(beta, L)] = _write_sample_file(paths[-1], beta, L, rng)
    entries = _sample_histories(pd.DataFrame(), paths)
    fig = figs.fig_diffusion_sampler_levels(entries)
    assert len(fig.axes) == 2 * 3  # rows L = 4, 6; ESS/N, acceptance, step size
    _check_levels(fig, histories)
    with pytest.raises(AssertionError):  # power: the couplings' files swapped
        _check_levels(fig, {(1.0, 4): histories[(3.0, 4)], (3.0, 4): histories[(1.0, 4)],
                            (3.0, 6): histories[(3.0, 6)]})
    plt.close(fig)
    # through make_figures, which finds the files in the table's `file` column
    table = pd.DataFrame([{"group": "u1", "algorithm": "smc", "beta": b, "L": L, "observable": "ess_per_sample",
                           "value": 0.5, "file": str(p)} for (b, L), p in zip(histories, paths)])
    out = make_figures(table, tmp_path / "figs", formats=("png",), only="diffusion_sampler_levels",
                       exact_curves=False)
    assert [p.name for p in out["diffusion_sampler_levels"]] == ["diffusion_sampler_levels.png"]
    assert "noise level" in (tmp_path / "figs" / "diffusion_sampler_levels.rst").read_text()
