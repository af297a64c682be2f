"""Figures of the phi^4 campaign (matplotlib, the style of campaign.figures), one PNG and
one PDF per figure in results/phi4/figures (``make_figures``).  Each ``fig_*`` function
takes the data (the campaign table of ``campaign.phi4.stages.collect``, the measurement
tables and summaries, the cumulant rows) and returns the figure; the tests read the plotted
arrays back.

================  ================================================================
phi4_histograms   M histograms, HMC against the diffusion-driven chain, per sampled
                  (kappa, L): both vacua in the broken phase
phi4_binder_chi   Binder cumulant U and chi = V(<M^2> - <|M|>^2) against kappa, per L
phi4_correlator   G(t) per sampled (kappa, L), HMC and the diffusion chain
phi4_autocorrelation  tau_int(|M|) and wall time per independent sample against kappa
phi4_cumulants    kappa_n(M) against sigma, forward (data + noise) and backward (the
                  model's reverse process), with the VE law
================  ================================================================
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..figures.style import BLUE, FULL_WIDTH, GREEN, ORANGE, PURPLE, STYLE, VERMILLION  # noqa: E402

SOURCE_STYLE = {
    "hmc": {"label": "HMC", "color": BLUE, "marker": "s", "mfc": "white"},
    "dm": {"label": "diffusion-driven MH", "color": VERMILLION, "marker": "o"},
}
L_COLOURS = (BLUE, VERMILLION, GREEN, PURPLE, ORANGE, "#000000")
HIST_BINS = 41
CUMULANT_ORDERS = (2, 3, 4)


def _label(source: str, L: int) -> str:
    return f"{SOURCE_STYLE[source]['label']} L={L}"


def fig_histograms(measured: dict) -> plt.Figure:
    """measured: {(source, kappa, L): per-configuration DataFrame with column M}; one panel
    per (kappa, L) that has a diffusion sample, HMC and DM densities on the same bins."""
    points = sorted({(k, L) for (s, k, L) in measured if s == "dm"})
    fig, axes = plt.subplots(1, max(len(points), 1), figsize=(FULL_WIDTH, 2.3), squeeze=False)
    for ax, (kappa, L) in zip(axes[0], points):
        both = [measured[(s, kappa, L)]["M"].to_numpy() for s in ("hmc", "dm") if (s, kappa, L) in measured]
        lim = max(float(np.max(np.abs(m))) for m in both)
        edges = np.linspace(-lim, lim, HIST_BINS + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for source in ("hmc", "dm"):
            if (source, kappa, L) not in measured:
                continue
            density, _ = np.histogram(measured[(source, kappa, L)]["M"].to_numpy(), bins=edges, density=True)
            st = SOURCE_STYLE[source]
            ax.plot(centres, density, drawstyle="steps-mid", color=st["color"], label=_label(source, L),
                    gid=f"{source}_k{kappa:g}_L{L}")
        ax.set_title(rf"$\kappa={kappa:g}$, $L={L}$")
        ax.set_xlabel(r"$M$")
    axes[0][0].set_ylabel("density")
    axes[0][0].legend(frameon=False)
    return fig


def _errorbars(ax, df: pd.DataFrame, x: str, y: str, gid_prefix: str) -> None:
    for (source, L), part in df.groupby(["source", "L"], sort=True):
        part = part.sort_values(x)
        st = SOURCE_STYLE[source]
        # colour: L; marker and fill: the algorithm (HMC open squares, diffusion filled circles)
        colour = L_COLOURS[sorted(df.L.unique()).index(L) % len(L_COLOURS)]
        yerr = part[f"{y}_err"] if f"{y}_err" in part else None
        c = ax.errorbar(part[x], part[y], yerr=yerr, color=colour, marker=st["marker"], mfc=st.get("mfc", colour),
                        ms=4, lw=0.9, capsize=2, label=_label(source, int(L)))
        c.lines[0].set_gid(f"{gid_prefix}_{source}_L{int(L)}")  # the data line, read back by the tests


def fig_binder_chi(table: pd.DataFrame) -> plt.Figure:
    fig, (a, b) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.6))
    _errorbars(a, table, "kappa", "binder", "binder")
    _errorbars(b, table, "kappa", "chi", "chi")
    a.set_ylabel(r"Binder $U = 1 - \langle M^4\rangle / 3\langle M^2\rangle^2$")
    b.set_ylabel(r"$\chi = V(\langle M^2\rangle - \langle |M|\rangle^2)$")
    for ax in (a, b):
        ax.set_xlabel(r"$\kappa$")
    a.legend(frameon=False)
    return fig


def fig_correlator(summaries: dict) -> plt.Figure:
    """summaries: {(source, kappa, L): measurement summary}; one panel per sampled (kappa, L)."""
    points = sorted({(k, L) for (s, k, L) in summaries if s == "dm"})
    fig, axes = plt.subplots(1, max(len(points), 1), figsize=(FULL_WIDTH, 2.3), squeeze=False)
    for ax, (kappa, L) in zip(axes[0], points):
        for source in ("hmc", "dm"):
            if (source, kappa, L) not in summaries:
                continue
            G = summaries[(source, kappa, L)]["G"]
            st = SOURCE_STYLE[source]
            c = ax.errorbar(np.arange(len(G)), [g["value"] for g in G], yerr=[g["error"] for g in G],
                            color=st["color"], marker=st["marker"], mfc=st.get("mfc", st["color"]), ms=3.5, lw=0.8,
                            capsize=2, label=_label(source, L))
            c.lines[0].set_gid(f"G_{source}_k{kappa:g}_L{L}")
        ax.set_title(rf"$\kappa={kappa:g}$, $L={L}$")
        ax.set_xlabel(r"$t$")
    axes[0][0].set_ylabel(r"$G(t)$")
    axes[0][0].legend(frameon=False)
    return fig


def fig_autocorrelation(table: pd.DataFrame) -> plt.Figure:
    fig, (a, b) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.6))
    t = table.rename(columns={"tau_absM": "tau", "tau_absM_err": "tau_err", "cost_per_independent_s": "cost"})
    _errorbars(a, t, "kappa", "tau", "tau")
    _errorbars(b, t, "kappa", "cost", "cost")
    a.set_ylabel(r"$\tau_{\mathrm{int}}(|M|)$ [configurations]")
    b.set_ylabel("wall time per independent sample [s]")
    for ax in (a, b):
        ax.set_xlabel(r"$\kappa$")
        ax.set_yscale("log")
    a.legend(frameon=False)
    return fig


def fig_cumulants(rows: pd.DataFrame, observable: str = "M") -> plt.Figure:
    """kappa_n against sigma, forward and backward, with the VE law from the forward sigma = 0."""
    rows = rows[rows.observable == observable]
    fig, axes = plt.subplots(1, len(CUMULANT_ORDERS), figsize=(FULL_WIDTH, 2.4))
    positive = rows.sigma[rows.sigma > 0]
    floor = float(positive.min()) if len(positive) else 1.0
    for ax, n in zip(axes, CUMULANT_ORDERS):
        for direction, colour, marker in (("forward", BLUE, "s"), ("backward", VERMILLION, "o")):
            part = rows[(rows.direction == direction) & (rows.n == n)].sort_values("sigma")
            c = ax.errorbar(part.sigma, part.value, yerr=part.error, color=colour, marker=marker, ms=3.5, lw=0.8,
                            capsize=2, ls="none", label=direction)
            c.lines[0].set_gid(f"kappa{n}_{direction}")
        data = rows[(rows.direction == "forward") & (rows.n == n) & (rows.sigma == 0)]
        if len(data):
            s = np.geomspace(floor / 2, max(float(rows.sigma.max()), floor), 100)
            weight = float(data.noise_weight.iloc[0])
            law = float(data.value.iloc[0]) + (weight * s**2 if n == 2 else 0 * s)
            ax.plot(s, law, color="black", lw=0.9, label="VE law", gid=f"kappa{n}_law")
        ax.set_xscale("symlog", linthresh=floor)
        ax.set_xlabel(r"$\sigma$")
        ax.set_title(rf"$\kappa_{n}({observable})$")
    axes[0].legend(frameon=False)
    return fig


FIGURES = {"phi4_histograms": "measured", "phi4_binder_chi": "table", "phi4_correlator": "summaries",
           "phi4_autocorrelation": "table", "phi4_cumulants": "cumulants"}
_MAKERS = {"phi4_histograms": fig_histograms, "phi4_binder_chi": fig_binder_chi, "phi4_correlator": fig_correlator,
           "phi4_autocorrelation": fig_autocorrelation, "phi4_cumulants": fig_cumulants}


def _key(summary: dict) -> tuple:
    return summary["source"], float(summary["kappa"]), int(summary["L"])


def load_inputs(table, measured, cumulants) -> dict:
    """The figures' data from the files: the table, {(source, kappa, L): per-configuration
    table} and {(source, kappa, L): summary} (the summary JSON beside each CSV), the cumulants."""
    per_config, summaries = {}, {}
    for path in measured:
        with open(Path(path).with_suffix(".json")) as f:
            s = json.load(f)
        per_config[_key(s)] = pd.read_csv(path)
        summaries[_key(s)] = s
    return {"table": pd.read_csv(table), "measured": per_config, "summaries": summaries,
            "cumulants": pd.read_csv(cumulants) if cumulants else None}


def make_figures(outdir, table, measured, cumulants=None) -> list[Path]:
    """Every figure of ``FIGURES`` as PNG and PDF in ``outdir``."""
    from ..io import atomic_path

    data = load_inputs(table, measured, cumulants)
    outdir = Path(outdir)
    paths = []
    with plt.rc_context(STYLE):
        for name, needs in FIGURES.items():
            if data[needs] is None:
                continue
            fig = _MAKERS[name](data[needs])
            fig.tight_layout()
            for fmt in ("png", "pdf"):
                with atomic_path(outdir / f"{name}.{fmt}", suffix=f".{fmt}") as tmp:
                    fig.savefig(tmp, format=fmt, dpi=200)
                paths.append(outdir / f"{name}.{fmt}")
            plt.close(fig)
    return paths
