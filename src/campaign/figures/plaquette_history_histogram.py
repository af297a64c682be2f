"""W(1x1) at the largest coupling: histograms (HMC; diffusion importance-weighted) and the
Monte Carlo history of the HMC chains, with the exact value."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data import _exact_for_loop, _PerConfig
from .style import (
    EXACT_STYLE,
    FULL_WIDTH,
    GROUP_LABEL,
    L_COLOURS,
    SKY,
    _alg_order,
    _alg_style,
    _fmt_beta,
    _group_order,
    _no_data,
)

COLUMN = "W_1x1"
HISTORY_CHAINS = 8  # HMC chains drawn in the history, one after the other
HISTORY_MAX = 2000  # configurations drawn in all


def _rows(df: pd.DataFrame, per_config: _PerConfig, L: int | None) -> list:
    """[(group, beta, L, {algorithm: table}, exact)] at the largest coupling that HMC and a
    diffusion sampler share (else the largest with data), per group."""
    rows = []
    for g in _group_order(df["group"]):
        sub = df[(df["group"] == g) & (df["observable"] == COLUMN)]
        if L is not None and (sub["L"] == L).any():
            sub = sub[sub["L"] == L]
        tables = {}
        for _, row in sub.iterrows():
            t = per_config.get(row)
            if t is not None and COLUMN in t and len(t):
                tables[(row["algorithm"], float(row["beta"]), int(row["L"]))] = (t, float(row["exact"]))
        if not tables:
            continue
        both = [b for b in {k[1] for k in tables} if len({k[0] for k in tables if k[1] == b}) > 1]
        beta = max(both) if both else max(k[1] for k in tables)
        Lsel = max(k[2] for k in tables if k[1] == beta)
        chosen = {k[0]: v[0] for k, v in tables.items() if k[1] == beta and k[2] == Lsel}
        exact = [v[1] for k, v in tables.items() if k[1] == beta and k[2] == Lsel and np.isfinite(v[1])]
        rows.append((g, beta, Lsel, chosen, exact[0] if exact else _exact_for_loop(g, beta, Lsel, 1, 1)))
    return rows


def w11_edges(table: pd.DataFrame) -> np.ndarray:
    """Bins of one sample's W(1x1): its own range (0.2 to 99.8 percent) in 2 n^(1/3) bins
    (Rice's rule, 10 to 40), so that two samples of different width both show their shape."""
    x = table[COLUMN].to_numpy(float)
    lo, hi = np.percentile(x, [0.2, 99.8])
    if hi <= lo:
        lo, hi = lo - 1e-3, hi + 1e-3
    return np.linspace(lo, hi, int(np.clip(round(2 * len(x) ** (1 / 3)), 10, 40)) + 1)


def w11_density(table: pd.DataFrame, edges) -> np.ndarray:
    """Normalised density of W(1x1) on the bins, importance-weighted where the table has
    ``log_weight`` (the exact sampler's samples), plain otherwise."""
    w = None
    if "log_weight" in table:
        lw = table["log_weight"].to_numpy(float)
        w = np.exp(lw - lw.max())
    hist, _ = np.histogram(table[COLUMN].to_numpy(float), bins=edges, weights=w, density=True)
    return hist


def _histogram(ah, chosen: dict, exact: float, others: dict) -> None:
    for a in _alg_order(chosen):
        st = _alg_style(a, others)
        edges = w11_edges(chosen[a])
        weighted = ", weighted" if "log_weight" in chosen[a] else ""
        ah.stairs(w11_density(chosen[a], edges), edges, color=st["color"], lw=1.0,
                  label=f"{st['label']}: {len(chosen[a])}{weighted}")
    if np.isfinite(exact):
        ah.axvline(exact, **EXACT_STYLE, label="exact")
    ah.set_ylim(0, ah.get_ylim()[1] * 1.6)
    ah.set_xlabel(r"$W(1{\times}1)$")
    ah.set_ylabel("density")
    ah.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))
    ah.legend(loc="upper left", fontsize=6.3, handlelength=1.2, frameon=True, framealpha=1, edgecolor="none")


def hmc_histories(table: pd.DataFrame) -> list[tuple[int, np.ndarray]]:
    """[(chain, W(1x1) in Monte Carlo order)] of the first ``HISTORY_CHAINS`` chains, each cut
    to an equal share of ``HISTORY_MAX`` configurations."""
    chains = list(table.sort_values(["chain", "step"], kind="stable").groupby("chain", sort=True))[:HISTORY_CHAINS]
    share = HISTORY_MAX // max(1, len(chains))
    return [(int(c), g[COLUMN].to_numpy(float)[:share]) for c, g in chains]


def _history(at, table, exact: float) -> None:
    """The HMC chains one after the other (dotted lines between them), the exact value."""
    if table is None:
        at.text(0.5, 0.5, "no HMC chains at this coupling", transform=at.transAxes, ha="center", va="center",
                color="0.4")
        return
    start = 0
    for k, (c, w) in enumerate(hmc_histories(table)):
        x = start + np.arange(len(w))
        at.plot(x, w, color=L_COLOURS[0] if k % 2 == 0 else SKY, lw=0.5)
        if k:
            at.axvline(start - 0.5, color="0.5", ls=":", lw=0.7, zorder=0)
        at.text(start + 0.5 * len(w), 1.0, f"chain {c}", transform=at.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=6.0, color="0.3")
        start += len(w)
    if np.isfinite(exact):
        at.axhline(exact, **EXACT_STYLE)
    at.set_xlim(0, start)
    at.set_xlabel("configuration in Monte Carlo order, chain after chain")
    at.set_ylabel(r"$W(1{\times}1)$")


def fig_plaquette_history_histogram(df: pd.DataFrame, per_config: _PerConfig, L: int | None):
    title = "W(1x1) history and histogram"
    rows = _rows(df, per_config, L)
    if not rows:
        return _no_data(title, "no per-configuration tables with W_1x1", FULL_WIDTH)
    height = 2.2 * len(rows) + 0.1
    fig = plt.figure(figsize=(FULL_WIDTH, height))
    grid = fig.add_gridspec(len(rows), 2, width_ratios=(1, 1.7), wspace=0.25, hspace=0.5,
                            top=1 - 0.25 / height, bottom=0.45 / height)
    others: dict = {}
    for r, (g, beta, Lsel, chosen, exact) in enumerate(rows):
        ah, at = fig.add_subplot(grid[r, 0]), fig.add_subplot(grid[r, 1])
        _histogram(ah, chosen, exact, others)
        _history(at, chosen.get("hmc"), exact)
        if math.isfinite(exact):
            ah.set_xlim(min(ah.get_xlim()[0], exact), max(ah.get_xlim()[1], exact))
        ah.set_title(rf"{GROUP_LABEL.get(g, g)},  $\beta = {_fmt_beta(beta)}$,  $L = {Lsel}$", loc="left", pad=3)
        at.set_title("HMC history", loc="left", pad=10)
    return fig
