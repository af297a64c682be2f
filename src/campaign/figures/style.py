"""House style of the figures: palette, marker per algorithm, rc parameters, sizes, and the
small drawing helpers every figure shares (error bars, pull panels, log ticks, saving)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from ..theories import THEORIES, THEORY_NAMES, topological_names

FIGURES = (
    "wilson_loops", "wilson_loops_all_L", "beta_extrapolation", "diffusion_sampler", "diffusion_sampler_levels",
    "topology", "plaquette_history_histogram", "autocorrelation_cost", "q_autocorrelation", "training_loss",
)
# from the theory registry: its order, printed names and which theories have a charge Q
GROUP_ORDER = THEORY_NAMES
GROUP_LABEL = {name: theory.label for name, theory in THEORIES.items()}
TOPOLOGICAL = topological_names()

# Okabe-Ito colour-blind safe palette
BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, YELLOW = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
)
L_COLOURS = (BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, "#000000")
ALG_STYLE = {
    "hmc": {"label": "HMC", "color": BLUE, "marker": "s", "mfc": "white"},
    "smc": {"label": "diffusion SMC (exact)", "color": VERMILLION, "marker": "o", "mfc": VERMILLION},
    "maala": {"label": "diffusion MAALA (approx.)", "color": ORANGE, "marker": "D", "mfc": "white"},
}
DIFFUSION = ("smc", "maala")
_OTHER_ALG = ({"color": GREEN, "marker": "^"}, {"color": PURPLE, "marker": "D"}, {"color": ORANGE, "marker": "v"})
EXACT_STYLE = {"color": "black", "lw": 0.9, "zorder": 1}
BETA0_STYLE = {"color": "0.45", "ls": ":", "lw": 0.9, "zorder": 0}

STYLE = {
    "font.family": "serif",
    "font.serif": ["DejaVu Serif"],
    "mathtext.fontset": "dejavuserif",
    "font.size": 8,
    "axes.labelsize": 9,
    "axes.titlesize": 8.5,
    "legend.fontsize": 7,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "xtick.minor.visible": True,
    "ytick.minor.visible": True,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "lines.linewidth": 1.0,
    "lines.markersize": 3.8,
    "errorbar.capsize": 1.8,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "savefig.dpi": 220,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "figure.dpi": 110,
}
FULL_WIDTH = 7.0  # inches, two-column paper width
HALF_WIDTH = 3.4

# --------------------------------------------------------------------- helpers
def _alg_style(alg: str, others: dict) -> dict:
    if alg in ALG_STYLE:
        return dict(ALG_STYLE[alg])
    if alg not in others:
        st = _OTHER_ALG[len(others) % len(_OTHER_ALG)]
        others[alg] = {"label": alg, **st, "mfc": st["color"]}
    return dict(others[alg])


def _alg_order(algs) -> list[str]:
    algs = list(dict.fromkeys(algs))
    known = [a for a in ("hmc", *DIFFUSION) if a in algs]
    return known + sorted(a for a in algs if a not in known)


def _group_order(groups) -> list[str]:
    groups = list(dict.fromkeys(groups))
    return [g for g in GROUP_ORDER if g in groups] + sorted(g for g in groups if g not in GROUP_ORDER)


def _fmt_beta(b: float) -> str:
    return f"{b:g}"


def _save(fig, outdir: Path, stem: str, formats) -> list[Path]:
    from ..io import atomic_path

    paths = []
    for fmt in formats:
        path = outdir / f"{stem}.{fmt}"
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt)
        paths.append(path)
    plt.close(fig)
    return paths


def _no_data(title: str, reason: str, width: float = HALF_WIDTH):
    fig, ax = plt.subplots(figsize=(width, 0.55 * width))
    ax.set_axis_off()
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=10, transform=ax.transAxes)
    ax.text(0.5, 0.38, f"no data yet: {reason}", ha="center", va="center", fontsize=8,
            color="0.35", transform=ax.transAxes, wrap=True)
    return fig


def _errorbar(ax, x, y, yerr, st: dict, label=None, **kw):
    yerr = np.where(np.isfinite(yerr), yerr, 0.0) if yerr is not None else None
    return ax.errorbar(
        x, y, yerr=yerr, ls="none", marker=st["marker"], color=st["color"], mfc=st.get("mfc", st["color"]),
        mec=st["color"], mew=0.8, elinewidth=0.8, label=label, **kw,
    )


def _pull_axes(ax, pulls):
    """Pull panel: +-1 band, +-2 lines, symmetric limits of at least 3; a few labelled ticks,
    none at the edges (the panel is short, and the panel above has its own labels)."""
    ax.axhspan(-1, 1, color="0.9", lw=0, zorder=0)
    for v in (-2, 2):
        ax.axhline(v, color="0.6", ls=":", lw=0.6, zorder=0)
    ax.axhline(0, color="black", lw=0.6, zorder=1)
    ax.set_ylabel("pull")
    pulls = np.asarray([p for p in pulls if np.isfinite(p)])
    m = max(3.2, float(np.max(np.abs(pulls))) * 1.2 + 1.0) if len(pulls) else 3.2
    ax.set_ylim(-m, m)
    if m < 6:
        locator = matplotlib.ticker.MultipleLocator(2)
    else:
        locator = matplotlib.ticker.MaxNLocator(nbins=3, symmetric=True, integer=True)
    ticks = [t for t in locator.tick_values(-m, m) if abs(t) <= m]
    inner = [t for t in ticks if abs(t) <= 0.8 * m]  # a label at the top edge meets the panel above
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(inner if len(inner) >= 3 else ticks))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def _tidy_log(ax):
    """Readable log-y ticks: decades when at least two fit in the range, else 1-2-5 (or
    1..9) ticks labelled plainly; minor ticks never labelled."""
    lo, hi = ax.get_ylim()
    if not (lo > 0 and hi > lo):
        return
    n_decades = math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1
    yax = ax.yaxis
    if n_decades < 2:
        subs = (1, 2, 5) if math.log10(hi / lo) >= 0.6 else (1, 2, 3, 4, 5, 6, 7, 8, 9)
        yax.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs))
        yax.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
    yax.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _mark_beta0(ax, beta0s, label=True):
    handles = []
    for i, b in enumerate(beta0s):
        h = ax.axvline(b, **BETA0_STYLE, label=r"training $\beta_0$" if (label and i == 0) else None)
        handles.append(h)
    return handles


def _L_colours(Ls) -> dict:
    return {L: L_COLOURS[i % len(L_COLOURS)] for i, L in enumerate(sorted(Ls))}


def _beta_colours(betas) -> dict:
    """Couplings on a sequential scale (light: small beta, dark: large)."""
    betas = sorted(set(betas))
    cmap = matplotlib.colormaps["viridis"]
    if len(betas) == 1:
        return {betas[0]: cmap(0.4)}  # one coupling: a colour that reads on white
    return {b: cmap(0.85 * (1 - i / (len(betas) - 1))) for i, b in enumerate(betas)}


def _open(st: dict, colour) -> dict:
    """Per-L colour; HMC keeps open markers, diffusion filled ones."""
    return {**st, "color": colour, "mfc": "white" if st.get("mfc") == "white" else colour}
