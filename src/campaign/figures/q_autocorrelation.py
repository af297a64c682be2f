"""The normalised autocorrelation function of Q against the lag, HMC chains at the largest
couplings, with the Gamma method's window W and tau_int(W) (the analysis of the table)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..stats import gamma_obs, gamma_replicas
from .data import _PerConfig
from .style import FULL_WIDTH, GROUP_LABEL, TOPOLOGICAL, _beta_colours, _fmt_beta, _group_order, _no_data

N_BETAS = 3  # the largest couplings shown per (group, L)
MAX_COLUMNS = 3  # panels per row


@dataclass
class Autocorrelation:
    """Gamma-method autocorrelation of one observable over the chains (replicas) of a run:
    rho(t) with its error, tau_int(W) for every window W, the chosen window and tau_int."""

    rho: np.ndarray
    drho: np.ndarray
    tau_of_window: np.ndarray
    window: int
    tau_int: float
    frozen: bool = False


def q_autocorrelation(table: pd.DataFrame, column: str = "Q") -> Autocorrelation:
    """The Gamma method (pyerrors, S = ``stats.S_TAU``) on the per-configuration table's
    chains in Monte Carlo order, as ``stats.chain_summary`` runs it for the table's tau_int."""
    order = table.sort_values(["chain", "step"], kind="stable")
    chains = [g[column].to_numpy(float) for _, g in order.groupby("chain", sort=True)]
    replicas = gamma_replicas(chains)
    if not replicas or all(np.ptp(r) == 0 for r in replicas):
        return Autocorrelation(np.zeros(0), np.zeros(0), np.zeros(0), 0, math.inf, frozen=True)
    obs = gamma_obs(replicas)
    name = obs.e_names[0]
    return Autocorrelation(np.asarray(obs.e_rho[name], float), np.asarray(obs.e_drho[name], float),
                           np.asarray(obs.e_n_tauint[name], float), int(obs.e_windowsize[name]),
                           float(obs.e_tauint[name]))


def _acf_panels(df: pd.DataFrame, per_config: _PerConfig) -> list:
    """[(group, L, [(beta, per-configuration table), ...])] of HMC runs with Q, the
    ``N_BETAS`` largest couplings per (group, L)."""
    panels = []
    hmc = df[(df["algorithm"] == "hmc") & (df["observable"] == "Q")]
    for g in _group_order(hmc["group"]):
        if g not in TOPOLOGICAL:
            continue
        for L in sorted({int(v) for v in hmc.loc[hmc["group"] == g, "L"]}):
            runs = []
            for _, row in hmc[(hmc["group"] == g) & (hmc["L"] == L)].sort_values("beta").iterrows():
                t = per_config.get(row)
                if t is not None and "Q" in t and len(t):
                    runs.append((float(row["beta"]), t))
            if runs:
                panels.append((g, L, runs[-N_BETAS:]))
    return panels


def _draw_run(ax, axt, a: Autocorrelation, colour, label: str) -> tuple[float, float]:
    """rho(t) with errors and tau_int(W) on the two axes, the window and the table's tau_int
    (Wolff's bias-corrected value at W); returns (largest lag worth showing, smallest rho there)."""
    t = np.arange(len(a.rho))
    ax.plot(t, a.rho, color=colour, lw=0.9, label=label)
    ax.fill_between(t, a.rho - a.drho, a.rho + a.drho, color=colour, alpha=0.18, lw=0)
    axt.plot(np.arange(len(a.tau_of_window)), a.tau_of_window, color=colour, lw=0.9)
    for axis in (ax, axt):
        axis.axvline(a.window, color=colour, ls=":", lw=0.9)
    axt.plot([a.window], [a.tau_int], ls="none", marker="o", ms=3.5, color=colour)
    shown = min(len(a.rho) - 1, 2.5 * max(a.window, 2))
    return shown, float(np.min(a.rho[: int(shown) + 1]))


def fig_q_autocorrelation(df: pd.DataFrame, per_config: _PerConfig):
    title = "Autocorrelation of Q"
    panels = _acf_panels(df, per_config)
    if not panels:
        return _no_data(title, "no HMC per-configuration tables with Q (U(1)/U(2))", FULL_WIDTH)
    ncols = min(MAX_COLUMNS, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width = FULL_WIDTH if ncols >= 2 else FULL_WIDTH * 0.55
    height = 3.5 * nrows + 0.2
    outer = plt.figure(figsize=(width, height)).add_gridspec(nrows, ncols, hspace=0.3, wspace=0.3,
                                                             top=1 - 0.25 / height, bottom=0.45 / height)
    fig = outer.figure
    for j, (g, L, runs) in enumerate(panels):
        inner = outer[j // ncols, j % ncols].subgridspec(2, 1, hspace=0.0, height_ratios=(1.4, 1))
        ax = fig.add_subplot(inner[0])
        axt = fig.add_subplot(inner[1], sharex=ax)
        colour = _beta_colours(b for b, _ in runs)
        xmax, low = 5.0, 0.0
        for beta, t in runs:
            a = q_autocorrelation(t)
            if a.frozen:
                ax.plot([], [], color=colour[beta], lw=0.9, label=rf"$\beta = {_fmt_beta(beta)}$: every chain frozen")
                continue
            label = rf"$\beta = {_fmt_beta(beta)}$: $\tau_\mathrm{{int}} = {a.tau_int:.3g}$, $W = {a.window}$"
            shown, rho_min = _draw_run(ax, axt, a, colour[beta], label)
            xmax, low = max(xmax, shown), min(low, rho_min)
        ax.axhline(0, color="black", lw=0.6, zorder=0)
        ax.set_xlim(0, xmax)
        ax.set_ylim(min(-0.3, low - 0.08), 1.25)  # no tick label at the edge it shares with tau_int(W)
        ax.set_title(rf"{GROUP_LABEL.get(g, g)},  $L = {L}$,  HMC", loc="left", pad=3)
        ax.legend(loc="upper right", fontsize=6.3, handlelength=1.2)
        ax.tick_params(labelbottom=False)
        axt.set_ylim(0, axt.get_ylim()[1] * 1.12)
        axt.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=5))
        axt.set_xlabel("lag $t$ [stored configurations]")
        if j % ncols == 0:
            ax.set_ylabel(r"$\rho_Q(t)$")
            axt.set_ylabel(r"$\tau_\mathrm{int}(W)$")
    return fig
