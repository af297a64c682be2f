"""Figure 4: Q histograms and Q histories, HMC against diffusion, at the largest beta."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data import _PerConfig
from .style import (
    EXACT_STYLE,
    FULL_WIDTH,
    GROUP_LABEL,
    TOPOLOGICAL,
    _alg_order,
    _alg_style,
    _fmt_beta,
    _group_order,
    _no_data,
)

HISTORY_MAX = 600  # configurations shown in a Q history


def _topology_rows(df: pd.DataFrame, per_config: _PerConfig, L: int | None):
    rows = []
    for g in _group_order(df["group"]):
        if g not in TOPOLOGICAL:
            continue
        sub = df[(df["group"] == g) & (df["observable"] == "Q")]
        if L is not None and (sub["L"] == L).any():
            sub = sub[sub["L"] == L]
        tables = {}
        for _, row in sub.iterrows():
            t = per_config.get(row)
            if t is not None and "Q" in t and len(t):
                tables[(row["algorithm"], float(row["beta"]), int(row["L"]))] = t
        if not tables:
            continue
        both = [b for b in {k[1] for k in tables} if len({k[0] for k in tables if k[1] == b}) > 1]
        beta = max(both) if both else max(k[1] for k in tables)
        Lsel = max(k[2] for k in tables if k[1] == beta)
        chosen = {k[0]: v for k, v in tables.items() if k[1] == beta and k[2] == Lsel}
        ex = df[(df["group"] == g) & (df["observable"] == "chi_t") & (df["beta"] == beta) & (df["L"] == Lsel)]["exact"]
        ex = ex.dropna()
        rows.append((g, beta, Lsel, chosen, float(ex.iloc[0]) if len(ex) else math.nan))
    return rows


def _first_chain(t: pd.DataFrame) -> pd.DataFrame:
    """The first Markov chain in order; independent samples (one per chain) all, in order."""
    if "chain" in t and "step" in t and len(t):
        first = t[t["chain"] == t["chain"].min()]
        if len(first) > 1:
            return first.sort_values("step")
        return t.sort_values(["chain", "step"], kind="stable")
    return t


def _q_distribution(table: pd.DataFrame, edges) -> np.ndarray:
    """P(Q) on the bins: weighted by the importance weights where the samples carry them
    (column ``log_weight``), plain frequencies otherwise."""
    q = table["Q"].to_numpy(float)
    w = None
    if "log_weight" in table:
        lw = table["log_weight"].to_numpy(float)
        w = np.exp(lw - lw.max())
    hist, _ = np.histogram(q, bins=edges, weights=w)
    total = w.sum() if w is not None else len(q)
    return hist / max(total, 1e-300)


def fig_topology(df: pd.DataFrame, per_config: _PerConfig, L: int | None):
    title = "Topological charge"
    rows = _topology_rows(df, per_config, L)
    if not rows:
        return _no_data(title, "no per-configuration tables with Q (U(1)/U(2))", FULL_WIDTH)
    height = 2.3 * len(rows) + 0.1
    fig = plt.figure(figsize=(FULL_WIDTH, height))
    outer = fig.add_gridspec(len(rows), 2, width_ratios=(1, 1.7), wspace=0.22, hspace=0.42,
                             top=1 - 0.25 / height, bottom=0.45 / height)
    others: dict = {}
    for r, (g, beta, Lsel, chosen, chi_exact) in enumerate(rows):
        algs = _alg_order(chosen)
        qs = {a: chosen[a]["Q"].to_numpy(float) for a in algs}
        qmax = max(2, int(max(np.max(np.abs(q)) for q in qs.values())))
        var = chi_exact * Lsel * Lsel if np.isfinite(chi_exact) and chi_exact > 0 else math.nan
        if np.isfinite(var):
            qmax = max(qmax, int(math.ceil(3 * math.sqrt(var))))
        ah = fig.add_subplot(outer[r, 0])
        edges = np.arange(-qmax - 0.5, qmax + 1.5)
        width = 0.8 / len(algs)
        for j, a in enumerate(algs):
            st = _alg_style(a, others)
            hist = _q_distribution(chosen[a], edges)
            centres = edges[:-1] + 0.5 + (j - (len(algs) - 1) / 2) * width
            ah.bar(centres, hist, width=width, color=st["color"], alpha=0.8, lw=0,
                   label=f"{st['label']} ({len(qs[a])})")
        if np.isfinite(var):
            qq = np.linspace(-qmax - 0.5, qmax + 0.5, 400)
            ah.plot(qq, np.exp(-qq**2 / (2 * var)) / math.sqrt(2 * math.pi * var), **EXACT_STYLE,
                    label=r"Gaussian, exact $\chi_t V$")
        ah.set_xlim(-qmax - 0.7, qmax + 0.7)
        ah.set_xlabel(r"$Q$")
        ah.set_ylabel(r"$P(Q)$")
        ah.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=7))
        ah.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ah.set_ylim(0, ah.get_ylim()[1] * 1.45)
        ah.legend(loc="upper left", fontsize=6.3, handlelength=1.2)
        ah.set_title(rf"{GROUP_LABEL[g]},  $\beta = {_fmt_beta(beta)}$,  $L = {Lsel}$", loc="left", pad=3)
        inner = outer[r, 1].subgridspec(len(algs), 1, hspace=0.0)
        histories = {a: _first_chain(chosen[a])["Q"].to_numpy(float)[:HISTORY_MAX] for a in algs}
        lim = max(1.0, max(np.max(np.abs(q)) for q in histories.values())) + 0.8
        first = None
        for k, a in enumerate(algs):
            at = fig.add_subplot(inner[k], sharex=first, sharey=first)
            first = first or at
            st = _alg_style(a, others)
            q = histories[a]
            at.plot(np.arange(len(q)), q, color=st["color"], lw=0.6, drawstyle="steps-mid")
            at.axhline(0, color="0.7", lw=0.5, zorder=0)
            name = st["label"] + (" (chain 0)" if a == "hmc" else "")
            at.text(0.01, 0.93, name, transform=at.transAxes, ha="left", va="top", fontsize=6.5,
                    color=st["color"])
            at.set_ylim(-lim, lim)
            at.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=4, symmetric=True))
            at.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            at.set_ylabel(r"$Q$")
            if k < len(algs) - 1:
                at.tick_params(labelbottom=False)
            else:
                at.set_xlabel("configuration index")
    return fig
