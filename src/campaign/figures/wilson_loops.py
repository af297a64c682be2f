"""Figure 1: Wilson loops W(R,T) against the area RT, with pulls, one panel per (group, beta)."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..theories.observables import LOOP_RE
from .data import _exact_for_loop, _pulls, _significant
from .style import (
    EXACT_STYLE,
    FULL_WIDTH,
    GROUP_LABEL,
    _alg_order,
    _alg_style,
    _errorbar,
    _fmt_beta,
    _group_order,
    _no_data,
    _pull_axes,
    _tidy_log,
)


def _slots(w: pd.DataFrame, rows: list) -> tuple[list, int, int]:
    """(row, column, group, L, beta) per panel: one row (or more, if many couplings) per
    (group, L) of ``rows``, couplings along the row; and the grid size."""
    betas = {(g, L): sorted({float(b) for b in w.loc[(w["group"] == g) & (w["L"] == L), "beta"]}) for g, L in rows}
    ncols = min(5, max(len(b) for b in betas.values()))
    slots, row = [], 0
    for g, L in rows:
        for k, b in enumerate(betas[(g, L)]):
            slots.append((row + k // ncols, k % ncols, g, L, b))
        row += math.ceil(len(betas[(g, L)]) / ncols)
    return slots, row, ncols


def _exact_by_area(sub: pd.DataFrame, g: str, beta: float, L: int, exact_curves: bool) -> pd.Series:
    """Exact W per loop area: from the table, else (``exact_curves``) from campaign.exact."""
    ex = sub.groupby("area")["exact"].mean()
    if not np.isfinite(ex.to_numpy()).any() and exact_curves:
        ex = pd.Series({a: _exact_for_loop(g, beta, L, r, t)
                        for a, r, t in sub[["area", "R", "T"]].drop_duplicates("area").itertuples(index=False)})
    return ex[np.isfinite(ex.to_numpy()) & (ex.to_numpy() > 0)].sort_index()


def _draw_data(ax, axp, sub: pd.DataFrame, ex: pd.Series, others: dict, legend_handles: dict):
    """Significant loops on ``ax``, every pull on ``axp``; returns (pulls, [(value, error)])."""
    pulls_all, shown = [], []
    algs = _alg_order(sub["algorithm"])
    span = max(1.0, float(sub["area"].max()))
    for j, alg in enumerate(algs):
        st = _alg_style(alg, others)
        s = sub[sub["algorithm"] == alg].sort_values("area")
        dx = (j - (len(algs) - 1) / 2) * 0.015 * span
        x = s["area"].to_numpy() + dx
        v, e = s["value"].to_numpy(float), s["error"].to_numpy(float)
        keep = _significant(v, e)
        h = _errorbar(ax, x[keep], v[keep], e[keep], st, label=st["label"])
        legend_handles.setdefault(st["label"], h)
        shown.extend(zip(v[keep], np.nan_to_num(e[keep])))
        exact = s["exact"].to_numpy(float)
        if not np.isfinite(exact).any() and len(ex):
            exact = ex.reindex(s["area"]).to_numpy()
        p = _pulls(v, e, exact)
        pulls_all.extend(p)
        _errorbar(axp, x, p, np.ones_like(p), st)
    return pulls_all, shown


def _log_limits(ax, shown) -> None:
    """Log axis spanning the shown points with their errors."""
    ax.set_yscale("log")
    if shown:
        lo = min(max(v - err, 0.5 * v) for v, err in shown)
        hi = max(v + err for v, err in shown)
        ax.set_ylim(lo / 1.6, hi * 1.5)
    _tidy_log(ax)


def _loop_grid(w: pd.DataFrame, rows: list, exact_curves: bool, panel_title):
    """The panels of (group, L) ``rows``, couplings along each row; ``panel_title(g, L, beta)``."""
    slots, nrows, ncols = _slots(w, rows)
    width = FULL_WIDTH if ncols >= 3 else 2.0 * ncols + 0.6
    height = 2.05 * nrows + 0.45
    fig = plt.figure(figsize=(width, height))
    outer = fig.add_gridspec(nrows, ncols, hspace=0.32, wspace=0.32, top=1 - 0.42 / height,
                             bottom=0.45 / height, left=0.7 / width, right=1 - 0.1 / width)
    occupied = {(r, c) for r, c, *_ in slots}
    others: dict = {}
    legend_handles: dict = {}
    for r, c, g, L, beta in slots:
        inner = outer[r, c].subgridspec(2, 1, height_ratios=(3, 1.15), hspace=0.0)
        ax = fig.add_subplot(inner[0])
        axp = fig.add_subplot(inner[1], sharex=ax)
        sub = w[(w["group"] == g) & (w["L"] == L) & (w["beta"] == beta)]
        ex = _exact_by_area(sub, g, beta, L, exact_curves)
        if len(ex):
            (h,) = ax.plot(ex.index, ex.to_numpy(), **EXACT_STYLE, label="exact")
            legend_handles.setdefault("exact", h)
        pulls_all, shown = _draw_data(ax, axp, sub, ex, others, legend_handles)
        _log_limits(ax, shown)
        ax.set_title(panel_title(g, L, beta), pad=3)
        ax.tick_params(labelbottom=False)
        _pull_axes(axp, pulls_all)
        if not np.isfinite(np.asarray(pulls_all, float)).any():
            axp.text(0.5, 0.5, "no exact value", transform=axp.transAxes, ha="center", va="center",
                     fontsize=6.5, color="0.4")
        if c == 0:
            ax.set_ylabel(r"$\langle W(R,T)\rangle$")
        else:
            axp.set_ylabel("")
        if (r + 1, c) not in occupied:  # nothing below this panel
            axp.set_xlabel(r"area $RT\ [a^2]$")
        axp.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=5))
    labels = list(legend_handles)
    fig.legend([legend_handles[k] for k in labels], labels, loc="upper center", ncol=len(labels),
               bbox_to_anchor=(0.5, 1.0))
    return fig, height


def fig_wilson_loops(df: pd.DataFrame, L: int | None, exact_curves: bool = True):
    title = "Wilson loops vs area"
    w = df[df["observable"].astype(str).str.match(LOOP_RE) & (df["L"] == L)] if L is not None else df.iloc[0:0]
    w = w[np.isfinite(w["value"])]
    if not len(w):
        return _no_data(title, "no Wilson-loop measurements" + (f" at L = {L}" if L is not None else ""), FULL_WIDTH)
    rows = [(g, L) for g in _group_order(w["group"])]
    fig, height = _loop_grid(w, rows, exact_curves,
                             lambda g, L, beta: rf"{GROUP_LABEL.get(g, g)},  $\beta = {_fmt_beta(beta)}$")
    fig.text(0.012, 1.0 - 0.04 / height, f"$L = {L}$", ha="left", va="top", fontsize=9.5)
    return fig


def fig_wilson_loops_all_L(df: pd.DataFrame, exact_curves: bool = True):
    """The Wilson-loop panels of every lattice size: one row (or more) per (group, L)."""
    title = "Wilson loops vs area, every L"
    w = df[df["observable"].astype(str).str.match(LOOP_RE)]
    w = w[np.isfinite(w["value"])]
    if not len(w):
        return _no_data(title, "no Wilson-loop measurements", FULL_WIDTH)
    rows = [(g, L) for g in _group_order(w["group"]) for L in sorted({int(v) for v in w.loc[w["group"] == g, "L"]})]
    fig, _ = _loop_grid(w, rows, exact_curves,
                        lambda g, L, beta: rf"{GROUP_LABEL.get(g, g)},  $L = {L}$,  $\beta = {_fmt_beta(beta)}$")
    return fig
