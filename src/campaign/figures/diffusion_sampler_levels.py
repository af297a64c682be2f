"""The diffusion sampler along its noise levels: ESS/N, acceptance and step size per level,
from the sample files' ``history`` group, one row per (group, L), one curve per beta."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from .style import FULL_WIDTH, GROUP_LABEL, _beta_colours, _fmt_beta, _group_order, _no_data, _tidy_log

# (history key, axis label, y scale); ESS only where the file has it (SMC, not MAALA)
LEVEL_COLUMNS = (
    ("level_ess", "ESS / N", "linear"),
    ("level_acceptance", "acceptance", "linear"),
    ("level_eps", r"step size $\epsilon$", "log"),
)


def level_curve(history: dict, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(sigma, mean over batches, the batches' quartiles or None) of a per-level quantity."""
    sigma = np.asarray(history["level_sigma"], float)
    v = np.asarray(history[key], float)
    if v.ndim == 1:
        return sigma, v, None
    return sigma, v.mean(axis=-1), np.percentile(v, [25, 75], axis=-1)


def _draw_row(axes, entries: list, colour: dict) -> None:
    for e in entries:
        c = colour[e["beta"]]
        ls = "-" if e["method"] == "smc" else "--"
        label = rf"$\beta = {_fmt_beta(e['beta'])}$" + ("" if e["method"] == "smc" else f" ({e['method']})")
        for ax, (key, _, _) in zip(axes, LEVEL_COLUMNS):
            if key not in e["history"]:
                continue
            sigma, mean, band = level_curve(e["history"], key)
            ax.plot(sigma, mean, color=c, lw=0.9, ls=ls, label=label)
            if band is not None:
                ax.fill_between(sigma, band[0], band[1], color=c, alpha=0.15, lw=0)
    a = entries[0]["attrs"]
    for ax, (key, _, _), value in zip(axes, LEVEL_COLUMNS, (a.get("resample_ess"), a.get("target_acceptance"), None)):
        if value is not None and np.isfinite(float(value)):
            ax.axhline(float(value), color="0.45", ls=":", lw=0.8, zorder=0)


def fig_diffusion_sampler_levels(entries: list):
    title = "Diffusion sampler per noise level"
    if not entries:
        return _no_data(title, "no diffusion sample files with a level history", FULL_WIDTH)
    rows = [(g, L) for g in _group_order(e["group"] for e in entries)
            for L in sorted({e["L"] for e in entries if e["group"] == g})]
    legend_lines = max(math.ceil(len({e["beta"] for e in entries if e["group"] == g}) / 4) for g, _ in rows)
    height = (1.75 + 0.13 * legend_lines) * len(rows) + 0.45
    fig, axes = plt.subplots(len(rows), len(LEVEL_COLUMNS), figsize=(FULL_WIDTH, height), squeeze=False,
                             sharex=True, gridspec_kw={"wspace": 0.32, "hspace": 0.2 + 0.12 * legend_lines,
                                                       "right": 0.98,
                                                       "top": 1 - 0.25 / height, "bottom": 0.45 / height})
    for r, (g, L) in enumerate(rows):
        row = [e for e in entries if e["group"] == g and e["L"] == L]
        colour = _beta_colours(e["beta"] for e in entries if e["group"] == g)
        _draw_row(axes[r], row, colour)
        for ax, (key, ylabel, scale) in zip(axes[r], LEVEL_COLUMNS):
            ax.set_ylabel(ylabel)
            if scale == "log" and ax.get_lines():
                ax.set_yscale("log")
                _tidy_log(ax)
            elif key != "level_eps":
                ax.set_ylim(0, 1.04)
            if not ax.get_lines():
                ax.text(0.5, 0.5, "not recorded\n(MAALA)", transform=ax.transAxes, ha="center", va="center",
                        fontsize=6.5, color="0.4")
        axes[r][0].set_title(rf"{GROUP_LABEL.get(g, g)},  $L = {L}$", loc="left", pad=3)
        handles, labels = axes[r][-1].get_legend_handles_labels()
        axes[r][-1].legend(handles, labels, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(4, len(labels)),
                           fontsize=6.5, handlelength=1.4, columnspacing=1.0, borderaxespad=0.2)
    sigmas = np.concatenate([np.asarray(e["history"]["level_sigma"], float) for e in entries])
    axes[0][0].set_xscale("log")  # shared by every panel
    axes[0][0].set_xlim(sigmas.max() * 1.15, sigmas.min() / 1.15)  # sampling runs from large to small noise
    for ax in axes[-1]:
        ax.set_xlabel(r"noise level $\sigma$")
    return fig
