"""Figure 2: plaquette, W(2,2) and chi_t against beta per target L, with exact curves and pulls."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..theories.observables import OBSERVABLES, loop_name
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


@dataclass
class _Setup:
    """What every panel of one group's figure shares."""

    group: str
    Ls: list
    algs: list
    colour: dict
    dense: tuple
    span: float
    exact_curves: bool
    others: dict = field(default_factory=dict)

    @property
    def slots(self) -> list:
        return [(L, a) for L in self.Ls for a in self.algs]


def _panels(group: str) -> list[tuple[str, str, str]]:
    """(table observable, axis label, y scale) of each column."""
    panels = [("plaquette", OBSERVABLES["plaquette"].label, "linear"),
              (loop_name(2, 2), r"$\langle W(2,2)\rangle$", "log")]
    if group in TOPOLOGICAL:
        panels.append(("chi_t", OBSERVABLES["chi_t"].label, "log"))
    return panels


def _draw_exact(ax, sl: pd.DataFrame, obs: str, L: int, setup: _Setup) -> None:
    """The dense exact curve, or (without one) the table's exact values through the data."""
    curve = _exact_curve(obs, setup.group, L, setup.dense) if setup.exact_curves else None
    if curve is not None:
        ax.plot(setup.dense, curve, color=setup.colour[L], lw=0.9, zorder=1)
        return
    ex = sl.groupby("beta")["exact"].mean()
    ex = ex[np.isfinite(ex.to_numpy())]
    if len(ex):
        ax.plot(ex.index, ex.to_numpy(), color=setup.colour[L], lw=0.8, ls="--", zorder=1)


def _draw_panel(ax, axp, sub: pd.DataFrame, obs: str, setup: _Setup) -> list:
    """Exact curves, data and pulls of one observable; returns the pulls."""
    pulls_all: list = []
    slots = setup.slots
    for L in setup.Ls:
        sl = sub[sub["L"] == L]
        _draw_exact(ax, sl, obs, L, setup)
        for alg in setup.algs:
            s = sl[sl["algorithm"] == alg].sort_values("beta")
            if not len(s):
                continue
            st = _open(_alg_style(alg, setup.others), setup.colour[L])
            dx = (slots.index((L, alg)) - (len(slots) - 1) / 2) * 0.01 * setup.span
            x = s["beta"].to_numpy(float) + dx
            _errorbar(ax, x, s["value"], s["error"], st)
            p = _pulls(s["value"], s["error"], s["exact"])
            pulls_all.extend(p)
            _errorbar(axp, x, p, np.ones_like(p), st)
    return pulls_all


def _legend_handles(setup: _Setup, beta0s, L0s) -> list:
    handles = [Line2D([], [], color=setup.colour[L], lw=0.9, label=f"$L = {L}$") for L in setup.Ls]
    for alg in setup.algs:
        st = _alg_style(alg, setup.others)
        handles.append(Line2D([], [], ls="none", marker=st["marker"], color="0.25",
                              mfc="white" if st.get("mfc") == "white" else "0.25", label=st["label"]))
    handles.append(Line2D([], [], color="0.25", lw=0.9, label="exact" if setup.exact_curves else "exact (at data)",
                          ls="-" if setup.exact_curves else "--"))
    if beta0s:
        L0 = f", $L_0 = {L0s[0]}$" if len(L0s) == 1 else ""
        b0 = ", ".join(_fmt_beta(b) for b in beta0s)
        handles.append(Line2D([], [], **{k: v for k, v in BETA0_STYLE.items() if k != "zorder"},
                              label=rf"training $\beta_0 = {b0}${L0}"))
    return handles


def fig_beta_extrapolation(df: pd.DataFrame, group: str, exact_curves: bool = True):
    label = GROUP_LABEL.get(group, group)
    title = f"{label}: extrapolation in beta"
    panels = _panels(group)
    g = df[(df["group"] == group) & df["observable"].isin([k[0] for k in panels])]
    g = g[np.isfinite(g["value"])]
    if not len(g):
        return _no_data(title, f"no {label} measurements")
    Ls = sorted({int(v) for v in g["L"]})
    beta0s = _beta0_values(df[df["group"] == group])
    L0s = _L0_values(df[df["group"] == group])
    setup = _Setup(group, Ls, _alg_order(g["algorithm"]), _L_colours(Ls), _dense_betas(g["beta"], beta0s),
                   max(1.0, float(g["beta"].max() - g["beta"].min())), exact_curves)
    n = len(panels)
    width = FULL_WIDTH if n == 3 else FULL_WIDTH * 0.72
    n_handles = len(Ls) + len(setup.algs) + 1 + (1 if beta0s else 0)
    ncol = n_handles if n == 3 and n_handles <= 7 else math.ceil(n_handles / 2)
    top_in = 0.2 + 0.16 * math.ceil(n_handles / ncol) + 0.22
    height = 2.4 + top_in
    fig = plt.figure(figsize=(width, height))
    gs = fig.add_gridspec(2, n, height_ratios=(3, 1.15), hspace=0.0, wspace=0.42, top=1 - top_in / height,
                          bottom=0.45 / height, left=0.75 / width, right=1 - 0.1 / width)
    for col, (obs, ylabel, scale) in enumerate(panels):
        ax = fig.add_subplot(gs[0, col])
        axp = fig.add_subplot(gs[1, col], sharex=ax)
        pulls_all = _draw_panel(ax, axp, g[g["observable"] == obs], obs, setup)
        _mark_beta0(ax, beta0s, label=False)
        _mark_beta0(axp, beta0s, label=False)
        if scale == "log":
            ax.set_yscale("log", nonpositive="mask")
            _tidy_log(ax)
        ax.set_ylabel(ylabel)
        ax.tick_params(labelbottom=False)
        _pull_axes(axp, pulls_all)
        axp.set_xlabel(r"$\beta$")
    fig.legend(handles=_legend_handles(setup, beta0s, L0s), loc="upper center", ncol=ncol,
               bbox_to_anchor=(0.5, 1.0), columnspacing=1.2)
    fig.axes[0].set_title(label, loc="left", pad=4, fontsize=10)
    return fig
