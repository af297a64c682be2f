"""Figure 5: tau_int and the wall-clock cost per independent sample against beta."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .style import (
    FULL_WIDTH,
    GROUP_LABEL,
    TOPOLOGICAL,
    _alg_order,
    _alg_style,
    _errorbar,
    _group_order,
    _L_colours,
    _no_data,
    _open,
    _tidy_log,
)


def fig_autocorrelation_cost(df: pd.DataFrame):
    title = "Autocorrelation and cost"
    rows = []
    for g in _group_order(df["group"]):
        obs = "Q" if g in TOPOLOGICAL else "plaquette"
        s = df[(df["group"] == g) & (df["observable"] == obs) & np.isfinite(df["tau_int"])]
        if len(s):
            rows.append((g, obs, s))
    if not rows:
        return _no_data(title, "no autocorrelation times in the table", FULL_WIDTH)
    height = 2.0 * len(rows) + 0.35
    fig = plt.figure(figsize=(FULL_WIDTH * 0.85, height))
    gs = fig.add_gridspec(len(rows), 2, wspace=0.3, hspace=0.5, top=1 - 0.42 / height, bottom=0.45 / height)
    others: dict = {}
    colour = _L_colours({int(v) for v in df.loc[np.isfinite(df["tau_int"]), "L"]})
    alg_seen: list = []
    for r, (g, obs, s) in enumerate(rows):
        at, ac = fig.add_subplot(gs[r, 0]), fig.add_subplot(gs[r, 1])
        obs_tex = "Q" if obs == "Q" else r"P"
        any_cost = False
        algs = _alg_order(s["algorithm"])
        slots = [(L, a) for L in sorted(colour) for a in algs]
        span = max(1.0, float(s["beta"].max() - s["beta"].min()))
        for alg in algs:
            if alg not in alg_seen:
                alg_seen.append(alg)
            for L in sorted(colour):
                d = s[(s["algorithm"] == alg) & (s["L"] == L)].sort_values("beta")
                if not len(d):
                    continue
                st = _open(_alg_style(alg, others), colour[L])
                ls = "--" if alg == "hmc" else "-"
                x = d["beta"].to_numpy(float) + (slots.index((L, alg)) - (len(slots) - 1) / 2) * 0.008 * span
                _errorbar(at, x, d["tau_int"], d["tau_int_error"], st)
                at.plot(x, d["tau_int"], color=colour[L], lw=0.7, ls=ls, zorder=1)
                c = d["cost_per_independent_sample_s"].to_numpy(float)
                if np.isfinite(c).any():
                    any_cost = True
                    with np.errstate(divide="ignore", invalid="ignore"):
                        cerr = c * d["tau_int_error"].to_numpy(float) / d["tau_int"].to_numpy(float)
                    _errorbar(ac, x, c, cerr, st)
                    ac.plot(x, c, color=colour[L], lw=0.7, ls=ls, zorder=1)
        at.set_yscale("log", nonpositive="mask")
        at.axhline(0.5, color="0.6", lw=0.6, ls=":", zorder=0)
        lo, hi = at.get_ylim()
        at.set_ylim(min(lo, 0.35), max(hi, 2.0))
        _tidy_log(at)
        at.set_ylabel(rf"$\tau_\mathrm{{int}}({obs_tex})$")
        ac.set_ylabel(r"$t_\mathrm{wall}/n_\mathrm{eff}$ [s]")
        for ax in (at, ac):
            ax.set_xlabel(r"$\beta$")
        at.set_title(f"{GROUP_LABEL.get(g, g)}: autocorrelation of ${obs_tex}$", loc="left", pad=3)
        ac.set_title(f"{GROUP_LABEL.get(g, g)}: cost per independent ${obs_tex}$", loc="left", pad=3)
        if any_cost:
            ac.set_yscale("log", nonpositive="mask")
            _tidy_log(ac)
        else:
            ac.text(0.5, 0.5, "no wall time recorded", transform=ac.transAxes, ha="center", va="center", color="0.4")
    handles = [Line2D([], [], color=colour[L], lw=0.9, label=f"$L = {L}$") for L in sorted(colour)]
    for alg in alg_seen:
        st = _alg_style(alg, others)
        mfc = "white" if st.get("mfc") == "white" else "0.25"
        handles.append(Line2D([], [], color="0.25", marker=st["marker"], mfc=mfc,
                              ls="--" if alg == "hmc" else "-", lw=0.7, label=st["label"]))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0))
    return fig
