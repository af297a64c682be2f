"""Figure 2: plaquette, W(2,2) and chi_t against beta per target L, with exact curves and pulls."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .data import _beta0_values, _dense_betas, _exact_curve, _L0_values, _pulls
from .style import (
    BETA0_STYLE,
    FULL_WIDTH,
    GROUP_LABEL,
    TOPOLOGICAL,
    _alg_order,
    _alg_style,
    _errorbar,
    _fmt_beta,
    _L_colours,
    _mark_beta0,
    _no_data,
    _open,
    _pull_axes,
    _tidy_log,
)


def fig_beta_extrapolation(df: pd.DataFrame, group: str, exact_curves: bool = True):
    label = GROUP_LABEL.get(group, group)
    title = f"{label}: extrapolation in beta"
    kinds = [("plaquette", "plaquette", r"$\langle P\rangle = \langle W(1,1)\rangle$", "linear"),
             ("W_2x2", "wilson", r"$\langle W(2,2)\rangle$", "log")]
    if group in TOPOLOGICAL:
        kinds.append(("chi_t", "chi_t", r"$\chi_t = \langle Q^2\rangle/V$", "log"))
    g = df[(df["group"] == group) & df["observable"].isin([k[0] for k in kinds])]
    g = g[np.isfinite(g["value"])]
    if not len(g):
        return _no_data(title, f"no {label} measurements")
    Ls = sorted({int(v) for v in g["L"]})
    colour = _L_colours(Ls)
    beta0s = _beta0_values(df[df["group"] == group])
    L0s = _L0_values(df[df["group"] == group])
    algs = _alg_order(g["algorithm"])
    others: dict = {}
    n = len(kinds)
    width = FULL_WIDTH if n == 3 else FULL_WIDTH * 0.72
    n_handles = len(Ls) + len(algs) + 1 + (1 if beta0s else 0)
    ncol = n_handles if n == 3 and n_handles <= 7 else math.ceil(n_handles / 2)
    legend_rows = math.ceil(n_handles / ncol)
    top_in = 0.2 + 0.16 * legend_rows + 0.22
    height = 2.4 + top_in
    fig = plt.figure(figsize=(width, height))
    gs = fig.add_gridspec(2, n, height_ratios=(3, 1.15), hspace=0.0, wspace=0.42, top=1 - top_in / height,
                          bottom=0.45 / height, left=0.75 / width, right=1 - 0.1 / width)
    dense = _dense_betas(g["beta"], beta0s)
    span = max(1.0, float(g["beta"].max() - g["beta"].min()))
    slots = [(L, a) for L in Ls for a in algs]
    for col, (obs, kind, ylabel, scale) in enumerate(kinds):
        ax = fig.add_subplot(gs[0, col])
        axp = fig.add_subplot(gs[1, col], sharex=ax)
        sub = g[g["observable"] == obs]
        pulls_all = []
        for L in Ls:
            sl = sub[sub["L"] == L]
            curve = None
            if exact_curves:
                R = T = 2 if obs == "W_2x2" else 1
                curve = _exact_curve(kind, group, L, dense, R, T)
            if curve is not None:
                ax.plot(dense, curve, color=colour[L], lw=0.9, zorder=1)
            else:
                ex = sl.groupby("beta")["exact"].mean()
                ex = ex[np.isfinite(ex.to_numpy())]
                if len(ex):
                    ax.plot(ex.index, ex.to_numpy(), color=colour[L], lw=0.8, ls="--", zorder=1)
            for alg in algs:
                s = sl[sl["algorithm"] == alg].sort_values("beta")
                if not len(s):
                    continue
                st = _open(_alg_style(alg, others), colour[L])
                dx = (slots.index((L, alg)) - (len(slots) - 1) / 2) * 0.01 * span
                x = s["beta"].to_numpy(float) + dx
                _errorbar(ax, x, s["value"], s["error"], st)
                p = _pulls(s["value"], s["error"], s["exact"])
                pulls_all.extend(p)
                _errorbar(axp, x, p, np.ones_like(p), st)
        _mark_beta0(ax, beta0s, label=False)
        _mark_beta0(axp, beta0s, label=False)
        if scale == "log":
            ax.set_yscale("log", nonpositive="mask")
            _tidy_log(ax)
        ax.set_ylabel(ylabel)
        ax.tick_params(labelbottom=False)
        _pull_axes(axp, pulls_all)
        axp.set_xlabel(r"$\beta$")
    handles = [Line2D([], [], color=colour[L], lw=0.9, label=f"$L = {L}$") for L in Ls]
    for alg in algs:
        st = _alg_style(alg, others)
        handles.append(Line2D([], [], ls="none", marker=st["marker"], color="0.25",
                              mfc="white" if st.get("mfc") == "white" else "0.25", label=st["label"]))
    handles.append(Line2D([], [], color="0.25", lw=0.9, label="exact" if exact_curves else "exact (at data)",
                          ls="-" if exact_curves else "--"))
    if beta0s:
        L0 = f", $L_0 = {L0s[0]}$" if len(L0s) == 1 else ""
        b0 = ", ".join(_fmt_beta(b) for b in beta0s)
        handles.append(Line2D([], [], **{k: v for k, v in BETA0_STYLE.items() if k != "zorder"},
                              label=rf"training $\beta_0 = {b0}${L0}"))
    fig.legend(handles=handles, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, 1.0), columnspacing=1.2)
    fig.axes[0].set_title(label, loc="left", pad=4, fontsize=10)
    return fig
