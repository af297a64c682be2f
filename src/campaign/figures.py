"""The papers' figures from the campaign tables (matplotlib, Agg backend).

Inputs: the tidy table of ``campaign.analysis.collect_summaries`` (DataFrame or a csv /
parquet path), the per-configuration tables of ``measure_file`` (for topology), and the
training loss logs (csv with columns ``step, loss, ...``).

``make_figures(table, outdir, per_config_tables=None, loss_logs=None, *, L=None,
groups=None, exact_curves=True, formats=("pdf", "png"), write_captions=True)`` writes

=========================  ==============================================================
stem                        content
=========================  ==============================================================
wilson_loops                W(R,T) vs area RT (log y), HMC vs diffusion vs exact, one panel
                            per (group, beta) at one L, with a pull panel underneath
beta_extrapolation_<g>      plaquette, W(2,2), chi_t (u1/u2) vs beta per target L, exact
                            curves, training beta0 marked; one figure per group
diffusion_sampler           the diffusion sampler's figure of merit vs beta, one curve per
                            L, one column per group: effective sample size per sample and
                            the step size at the fixed target acceptance (exact SMC), the
                            resamplings per batch
topology                    Q histograms and Q histories, HMC vs diffusion at the largest
                            beta (u1/u2), from the per-configuration tables
autocorrelation_cost        tau_int(Q) (plaquette for SU(2)) and sampling cost per
                            independent sample vs beta, HMC vs diffusion
training_loss               training loss vs optimiser step, one curve per model
=========================  ==============================================================

and returns ``{figure name: [paths]}`` (keys ``FIGURES``; every figure as PDF and PNG).
``figure_stems(groups)`` lists the stems; ``only=`` draws a subset (the workflow makes one
figure per job, so each file is a target of its own).
A stage that has not run yet gives a figure that says "no data yet" instead of an error.

Captions: ``captions(L=None, groups=...)`` returns ``{stem: text}``; ``make_figures`` also
writes each caption as ``<stem>.rst`` next to the figure (reStructuredText, for a
Snakemake report).

Per-configuration tables are matched to the table rows by their path (the ``table`` column
written by ``measure_file``): ``per_config_tables`` may be a list of paths, a mapping
{path or (group, algorithm, beta, L): path or DataFrame}, or None (then the ``table``
column is used where that file exists).

Exact curves on a dense beta grid come from ``campaign.exact`` (``plaquette``,
``wilson_loop``, ``chi_t``), imported lazily; if it is unavailable or fails the figure
falls back to the exact values stored in the table (drawn through the measured betas) and
a warning is issued.
"""

from __future__ import annotations

import functools
import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

FIGURES = (
    "wilson_loops", "beta_extrapolation", "diffusion_sampler", "topology",
    "autocorrelation_cost", "training_loss",
)
GROUP_ORDER = ("u1", "su2", "u2")
GROUP_LABEL = {"u1": "U(1)", "su2": "SU(2)", "u2": "U(2)"}
TOPOLOGICAL = ("u1", "u2")

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

_LOOP_RE = re.compile(r"^W_(\d+)x(\d+)$")


# ---------------------------------------------------------------------- captions
def figure_stems(groups) -> list[str]:
    """The file stems ``make_figures`` writes for a campaign with these groups, in order
    (one ``beta_extrapolation_<g>`` per group; a placeholder without groups)."""
    groups = [str(g).lower() for g in groups]
    extrapolation = [f"beta_extrapolation_{g}" for g in groups] or ["beta_extrapolation"]
    return ["wilson_loops", *extrapolation, "diffusion_sampler", "topology",
            "autocorrelation_cost", "training_loss"]


# the inputs each figure reads besides the campaign table (the Snakemake rule asks for them)
NEEDS_PER_CONFIG = ("topology",)
NEEDS_LOSS = ("training_loss",)
NEEDS_NO_TABLE = ("training_loss",)


def captions(L: int | None = None, groups=GROUP_ORDER) -> dict[str, str]:
    """Caption text per figure stem (``beta_extrapolation_<g>`` for each group)."""
    at_L = f"L = {L}" if L is not None else "one lattice size"
    exact = "Black lines: exact finite-torus results from the character expansion."
    out = {
        "wilson_loops": (
            f"Wilson loops W(R,T) against the loop area RT at {at_L}; rows: gauge groups, "
            "columns: couplings beta. HMC (open squares) and the diffusion model (filled circles: "
            "exact importance-weighted SMC; open diamonds: the papers' MAALA, approximate); loops "
            f"not significantly above zero (W < 2 sigma) are "
            f"left out of the upper panels. {exact} Lower panels: pulls (value - exact)/error of "
            "every loop; the shaded band is +-1, the dotted lines +-2."
        ),
        "diffusion_sampler": (
            "The exact diffusion sampler (importance-weighted SMC along the model's noise levels) "
            "against the target coupling beta, one curve per lattice size L, one column per group; "
            "the dotted line marks the training coupling beta0. Top: effective sample size per "
            "sample, ESS/N of the importance weights of the whole file -- the model's quality "
            "shows up here, never as bias. Middle: the Metropolis step size at the target, tuned "
            "by the pilot run to the fixed target acceptance (a better drift allows larger "
            "steps); open diamonds: the approximate MAALA tail's step size where it ran. Bottom: "
            "resampling events per SMC batch."
        ),
        "topology": (
            f"Topological charge at the largest coupling with data ({at_L}). Left: normalised "
            "histograms of Q for HMC and for the diffusion model (importance-weighted for the exact "
            "sampler); the black curve is a Gaussian "
            "with the exact variance chi_t V. Right: Monte Carlo history of Q (HMC: first chain; "
            "diffusion: samples in order). Frozen HMC histories show topological freezing."
        ),
        "autocorrelation_cost": (
            "Left: integrated autocorrelation time tau_int of the topological charge Q (of the "
            "plaquette for SU(2), which has no topology) in units of stored configurations, from "
            "the Gamma method; independent diffusion samples have tau_int = 1/2. Right: wall-clock "
            "cost per independent sample, wall time / n_eff, excluding training. Colours: lattice "
            "size L; open squares HMC, filled circles diffusion."
        ),
        "training_loss": (
            "Denoising score-matching loss against optimiser step for each trained model "
            "(thin: raw, thick: running mean)."
        ),
    }
    for g in groups:
        topo = " and the topological susceptibility chi_t = <Q^2>/V" if g in TOPOLOGICAL else ""
        out[f"beta_extrapolation_{g}"] = (
            f"{GROUP_LABEL.get(g, g)}: average plaquette, W(2,2){topo} against the coupling beta for "
            "every target lattice size L (colours); open squares HMC, filled circles the diffusion "
            f"model trained at beta0 (dotted line) and sampled exactly (weighted SMC); open diamonds "
            f"the approximate MAALA where it ran. {exact} Lower panels: "
            "pulls (value - exact)/error."
        )
    return out


def _caption_rst(text: str) -> str:
    return text.replace("chi_t", ":math:`\\chi_t`").replace("tau_int", ":math:`\\tau_\\mathrm{int}`") + "\n"


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
    from .io import atomic_path

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
    """Pull panel: +-1 band, +-2 lines, symmetric limits of at least 3."""
    ax.axhspan(-1, 1, color="0.9", lw=0, zorder=0)
    for v in (-2, 2):
        ax.axhline(v, color="0.6", ls=":", lw=0.6, zorder=0)
    ax.axhline(0, color="black", lw=0.6, zorder=1)
    ax.set_ylabel("pull")
    pulls = np.asarray([p for p in pulls if np.isfinite(p)])
    m = max(3.2, float(np.max(np.abs(pulls))) * 1.2 + 1.0) if len(pulls) else 3.2
    ax.set_ylim(-m, m)
    step = 2 if m < 6 else (5 if m < 15 else None)
    if step:
        ax.yaxis.set_major_locator(matplotlib.ticker.MultipleLocator(step))
    else:
        ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=3, symmetric=True, integer=True))
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


def _pulls(values, errors, exact):
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.asarray(values, float) - np.asarray(exact, float)) / np.asarray(errors, float)
    return np.where(np.isfinite(p), p, np.nan)


def _beta0_values(df: pd.DataFrame) -> list[float]:
    if "beta0" not in df:
        return []
    return sorted({float(b) for b in df["beta0"].dropna()})


def _L0_values(df: pd.DataFrame) -> list[int]:
    if "L0" not in df:
        return []
    return sorted({int(v) for v in df["L0"].dropna()})


def _mark_beta0(ax, beta0s, label=True):
    handles = []
    for i, b in enumerate(beta0s):
        h = ax.axvline(b, **BETA0_STYLE, label=r"training $\beta_0$" if (label and i == 0) else None)
        handles.append(h)
    return handles


def choose_L(df: pd.DataFrame) -> int | None:
    """Default lattice size for single-L figures: the L with most diffusion rows, else the
    most common L; ties go to the largest."""
    if df is None or not len(df):
        return None
    sub = df[df["algorithm"].isin(DIFFUSION)]
    sub = sub if len(sub) else df
    counts = sub.groupby("L").size()
    best = counts.max()
    return int(max(counts[counts == best].index))


# ------------------------------------------------------------------- exact curves
_EXACT_WARNED: set = set()


def _warn_once(key, text):
    if key not in _EXACT_WARNED:
        _EXACT_WARNED.add(key)
        warnings.warn(text, stacklevel=3)


def _exact_module():
    try:
        import importlib

        return importlib.import_module("campaign.exact")
    except Exception as exc:  # module being written, or broken: figures still come out
        _warn_once("import", f"campaign.exact unavailable ({type(exc).__name__}: {exc}); "
                   "exact curves drawn through the table's exact values only")
        return None


@functools.lru_cache(maxsize=256)
def _exact_curve(kind: str, group: str, L: int, betas: tuple, R: int = 1, T: int = 1):
    mod = _exact_module()
    if mod is None:
        return None
    try:
        if kind == "plaquette":
            vals = [float(mod.plaquette(group, b, L)) for b in betas]
        elif kind == "chi_t":
            vals = [float(mod.chi_t(group, b, L)) for b in betas]
        else:
            vals = [float(mod.wilson_loop(group, b, L, R, T)) for b in betas]
    except Exception as exc:
        _warn_once((kind, group), f"exact {kind} for {group} failed ({type(exc).__name__}: {exc}); curve skipped")
        return None
    return np.asarray(vals)


def _exact_for_loop(group, beta, L, R, T):
    vals = _exact_curve("wilson", group, int(L), (float(beta),), int(R), int(T))
    return float(vals[0]) if vals is not None else math.nan


# ----------------------------------------------------------------------- loading
def _load_table(table) -> pd.DataFrame:
    if table is None:
        df = pd.DataFrame()
    elif isinstance(table, pd.DataFrame):
        df = table.copy()
    else:
        from .analysis import read_table

        path = Path(table)
        df = read_table(path) if path.exists() and path.stat().st_size else pd.DataFrame()
    from .analysis import TABLE_COLUMNS

    for col in TABLE_COLUMNS:
        if col not in df:
            df[col] = np.nan
    df["algorithm"] = df["algorithm"].astype(str).str.lower()
    df["group"] = df["group"].astype(str).str.lower()
    df["observable"] = df["observable"].astype(str)
    for col in ("beta", "L", "value", "error", "exact", "beta0", "L0", "R", "T", "area",
                "tau_int", "tau_int_error", "n_eff", "wall_time_s", "cost_per_independent_sample_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    m = df["observable"].str.extract(_LOOP_RE)
    df["R"] = df["R"].fillna(pd.to_numeric(m[0], errors="coerce"))
    df["T"] = df["T"].fillna(pd.to_numeric(m[1], errors="coerce"))
    df["area"] = df["area"].fillna(df["R"] * df["T"])
    return df


def _norm(p) -> str:
    return os.path.normpath(os.path.abspath(str(p)))


class _PerConfig:
    """Finds and caches the per-configuration table for a row of the tidy table."""

    def __init__(self, spec):
        self.by_key: dict = {}
        self.by_path: dict = {}
        self.by_name: dict = {}
        self.use_column = spec is None
        if isinstance(spec, Mapping):
            for k, v in spec.items():
                if isinstance(k, tuple):
                    g, a, b, L = k
                    self.by_key[(str(g).lower(), str(a).lower(), round(float(b), 9), int(L))] = v
                else:
                    self.by_path[_norm(k)] = v
                    self.by_name.setdefault(Path(str(k)).name, v)
        elif spec is not None:
            for p in spec:
                self.by_path[_norm(p)] = p
        self.cache: dict = {}

    def get(self, row) -> pd.DataFrame | None:
        key = (row["group"], row["algorithm"], round(float(row["beta"]), 9), int(row["L"]))
        src = self.by_key.get(key)
        for col in ("table", "source", "file"):
            if src is None and isinstance(row.get(col), str):
                src = self.by_path.get(_norm(row[col]))
        if src is None and self.use_column and isinstance(row.get("table"), str) and Path(row["table"]).exists():
            src = row["table"]
        if src is None:
            return None
        if isinstance(src, pd.DataFrame):
            return src
        path = _norm(src)
        if path not in self.cache:
            from .analysis import read_table
            from .errors import CampaignError

            try:
                self.cache[path] = read_table(src)
            except CampaignError as exc:
                warnings.warn(f"per-configuration table skipped: {exc}")
                self.cache[path] = None
        return self.cache[path]


# ------------------------------------------------------------------- figure 1
def _significant(values, errors):
    v, e = np.asarray(values, float), np.asarray(errors, float)
    return np.isfinite(v) & (v > 0) & ~(v <= 2 * np.where(np.isfinite(e), e, 0.0))


def fig_wilson_loops(df: pd.DataFrame, L: int | None, exact_curves: bool = True):
    title = "Wilson loops vs area"
    w = df[df["observable"].astype(str).str.match(_LOOP_RE) & (df["L"] == L)] if L is not None else df.iloc[0:0]
    w = w[np.isfinite(w["value"])]
    if not len(w):
        return _no_data(title, "no Wilson-loop measurements" + (f" at L = {L}" if L is not None else ""), FULL_WIDTH)
    order = _group_order(w["group"])
    betas = {g: sorted({float(b) for b in w.loc[w["group"] == g, "beta"]}) for g in order}
    ncols = min(5, max(len(b) for b in betas.values()))
    # one row (or more, if many couplings) per group, couplings along the row
    slots, row = [], 0
    for g in order:
        for k, b in enumerate(betas[g]):
            slots.append((row + k // ncols, k % ncols, g, b))
        row += math.ceil(len(betas[g]) / ncols)
    nrows = row
    width = FULL_WIDTH if ncols >= 3 else 2.0 * ncols + 0.6
    height = 2.05 * nrows + 0.45
    fig = plt.figure(figsize=(width, height))
    outer = fig.add_gridspec(nrows, ncols, hspace=0.32, wspace=0.32, top=1 - 0.42 / height,
                             bottom=0.45 / height, left=0.7 / width, right=1 - 0.1 / width)
    occupied = {(r, c) for r, c, _, _ in slots}
    others: dict = {}
    legend_handles: dict = {}
    for r, c, g, beta in slots:
        inner = outer[r, c].subgridspec(2, 1, height_ratios=(3, 1.15), hspace=0.0)
        ax = fig.add_subplot(inner[0])
        axp = fig.add_subplot(inner[1], sharex=ax)
        sub = w[(w["group"] == g) & (w["beta"] == beta)]
        algs = _alg_order(sub["algorithm"])
        ex = sub.groupby("area")["exact"].mean()
        if not np.isfinite(ex.to_numpy()).any() and exact_curves:
            ex = pd.Series({a: _exact_for_loop(g, beta, L, r, t)
                            for a, r, t in sub[["area", "R", "T"]].drop_duplicates("area").itertuples(index=False)})
        ex = ex[np.isfinite(ex.to_numpy()) & (ex.to_numpy() > 0)].sort_index()
        if len(ex):
            (h,) = ax.plot(ex.index, ex.to_numpy(), **EXACT_STYLE, label="exact")
            legend_handles.setdefault("exact", h)
        pulls_all, shown = [], []
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
        ax.set_yscale("log")
        if shown:
            lo = min(max(v - err, 0.5 * v) for v, err in shown)
            hi = max(v + err for v, err in shown)
            ax.set_ylim(lo / 1.6, hi * 1.5)
        _tidy_log(ax)
        ax.set_title(rf"{GROUP_LABEL.get(g, g)},  $\beta = {_fmt_beta(beta)}$", pad=3)
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
    fig.text(0.012, 1.0 - 0.04 / height, f"$L = {L}$", ha="left", va="top", fontsize=9.5)
    return fig


# ------------------------------------------------------------------- figure 2
def _dense_betas(betas, beta0s) -> tuple:
    pts = [b for b in list(betas) + list(beta0s) if np.isfinite(b)]
    lo, hi = min(pts), max(pts)
    pad = 0.05 * (hi - lo if hi > lo else max(hi, 1.0))
    return tuple(np.linspace(max(1e-3, lo - pad), hi + pad, 40).round(6))


def _L_colours(Ls) -> dict:
    return {L: L_COLOURS[i % len(L_COLOURS)] for i, L in enumerate(sorted(Ls))}


def _open(st: dict, colour) -> dict:
    """Per-L colour; HMC keeps open markers, diffusion filled ones."""
    return {**st, "color": colour, "mfc": "white" if st.get("mfc") == "white" else colour}


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


# ------------------------------------------------------------------- figure 3
SAMPLER_ROWS = (
    ("ess_per_sample", "ESS / N", ("smc",)),
    ("tail_step_size", "step size $\\epsilon$ at\nthe target acceptance", DIFFUSION),
    ("resamplings", "resamplings\nper batch", ("smc",)),
)


def fig_diffusion_sampler(df: pd.DataFrame):
    title = "Diffusion sampler"
    m = df[df["algorithm"].isin(DIFFUSION) & np.isfinite(df["value"])]
    rows = [r for r in SAMPLER_ROWS if len(m[(m["observable"] == r[0]) & m["algorithm"].isin(r[2])])]
    if not rows:
        return _no_data(title, "no diffusion samples measured")
    groups = _group_order(m[m["observable"].isin([r[0] for r in rows])]["group"])
    n = len(groups)
    fig, axes = plt.subplots(len(rows), n, figsize=(max(HALF_WIDTH, 2.3 * n + 0.5), 0.4 + 1.75 * len(rows)),
                             sharex="col", sharey="row", squeeze=False,
                             gridspec_kw={"wspace": 0.08, "hspace": 0.12})
    colour = _L_colours({int(v) for v in m["L"]})
    others: dict = {}
    for j, g in enumerate(groups):
        for i, (obs, label, algs) in enumerate(rows):
            ax = axes[i][j]
            for alg in [a for a in DIFFUSION if a in algs]:
                st = _alg_style(alg, others)
                sg = m[(m["group"] == g) & (m["observable"] == obs) & (m["algorithm"] == alg)]
                for L in sorted(colour):
                    s = sg[sg["L"] == L].sort_values("beta")
                    if not len(s):
                        continue
                    ax.errorbar(s["beta"], s["value"], yerr=np.nan_to_num(s["error"].to_numpy(float)),
                                color=colour[L], marker=st["marker"], mfc=colour[L] if alg == "smc" else "white",
                                ms=3.5, lw=0.9, ls="-" if alg == "smc" else ":",
                                label=f"$L = {L}$" if alg == "smc" else f"$L = {L}$ ({st['label']})")
            _mark_beta0(ax, _beta0_values(m[m["group"] == g]), label=(i == 0))
            if obs == "ess_per_sample":
                ax.set_ylim(0, 1.04)
                L0s = _L0_values(m[m["group"] == g])
                ax.set_title(GROUP_LABEL.get(g, g) + (f"  (trained at $L_0 = {L0s[0]}$)" if len(L0s) == 1 else ""),
                             pad=3)
                h, lab = ax.get_legend_handles_labels()
                order = sorted(range(len(lab)), key=lambda k: lab[k].startswith("training"))
                ax.legend([h[k] for k in order], [lab[k] for k in order], loc="lower left")
            elif obs == "tail_step_size":
                ax.set_yscale("log")
            if j == 0:
                ax.set_ylabel(label)
        axes[-1][j].set_xlabel(r"$\beta$")
    return fig


# ------------------------------------------------------------------- figure 4
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


# ------------------------------------------------------------------- figure 5
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


# ------------------------------------------------------------------- figure 6
def _loss_label(path: Path, taken: set) -> str:
    stem = re.sub(r"[_-]?loss$", "", path.stem) or path.stem
    label = stem
    if label in taken or path.parent.name not in ("", "."):
        label = f"{GROUP_LABEL.get(path.parent.name, path.parent.name)}: {stem}" if path.parent.name else stem
    taken.add(label)
    return label


def _load_losses(loss_logs) -> list[tuple[str, pd.DataFrame]]:
    out = []
    if not loss_logs:
        return out
    items = loss_logs.items() if isinstance(loss_logs, Mapping) else [(None, p) for p in loss_logs]
    taken: set = set()
    for label, src in items:
        if isinstance(src, pd.DataFrame):
            d = src
            label = label or f"model {len(out) + 1}"
        else:
            p = Path(src)
            try:
                d = pd.read_csv(p)
            except (OSError, ValueError, pd.errors.ParserError) as exc:
                warnings.warn(f"loss log {p} skipped: {exc}")
                continue
            label = label or _loss_label(p, taken)
        if "loss" not in d or not len(d):
            warnings.warn(f"loss log {label} has no 'loss' column or no rows; skipped")
            continue
        out.append((str(label), d))
    return out


def fig_training_loss(loss_logs):
    title = "Training loss"
    logs = _load_losses(loss_logs)
    if not logs:
        return _no_data(title, "no training loss logs")
    fig, ax = plt.subplots(figsize=(HALF_WIDTH, 2.4))
    all_pos = True
    for i, (label, d) in enumerate(logs):
        c = L_COLOURS[i % len(L_COLOURS)]
        x = d["step"].to_numpy(float) if "step" in d else np.arange(len(d), dtype=float)
        y = pd.to_numeric(d["loss"], errors="coerce").to_numpy(float)
        ok = np.isfinite(y)
        all_pos &= bool((y[ok] > 0).all())
        win = max(1, len(y) // 40)
        smooth = pd.Series(y).rolling(win, min_periods=1, center=True).mean().to_numpy()
        if win > 1:
            ax.plot(x, y, color=c, lw=0.4, alpha=0.35)
        ax.plot(x, smooth, color=c, lw=1.1, label=label)
        for col in d.columns:
            if col.startswith("val") and "loss" in col:
                ax.plot(x, pd.to_numeric(d[col], errors="coerce"), color=c, lw=0.9, ls="--",
                        label=f"{label} (validation)")
    if all_pos:
        ax.set_yscale("log")
        _tidy_log(ax)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("DSM loss")
    # above the axes: the raw curves fill the panel
    n_curves = len(ax.get_legend_handles_labels()[1])
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(3, max(1, n_curves)), fontsize=6.5,
              handlelength=1.2, columnspacing=1.0)
    return fig


# ----------------------------------------------------------------------- driver
def make_figures(
    table,
    outdir,
    per_config_tables=None,
    loss_logs=None,
    *,
    L: int | None = None,
    groups=None,
    exact_curves: bool = True,
    formats=("pdf", "png"),
    write_captions: bool = True,
    only=None,
) -> dict[str, list[Path]]:
    """Write every figure into ``outdir``; returns {figure name: [paths]} (module doc).

    ``L``: lattice size of the single-L figures (default ``choose_L``); ``groups``: groups
    that get a ``beta_extrapolation_<g>`` figure (default: those in the table);
    ``exact_curves``: compute dense exact curves with campaign.exact; ``only``: draw just
    these stems (``figure_stems``), e.g. one figure as a Snakemake target."""
    if only is not None:
        only = {only} if isinstance(only, str) else set(only)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    df = _load_table(table)
    L = choose_L(df) if L is None else int(L)
    groups = _group_order(df["group"]) if groups is None else [str(g).lower() for g in groups]
    per_config = _PerConfig(per_config_tables)
    caps = captions(L, groups or GROUP_ORDER)
    out: dict[str, list[Path]] = {}

    def emit(name, stem, draw):
        if only is not None and stem not in only:
            return  # not asked for: not drawn
        out.setdefault(name, []).extend(_save(draw(), outdir, stem, formats))
        if write_captions:
            from .io import atomic_path

            text = caps.get(stem) or caps.get(name, "")
            with atomic_path(outdir / f"{stem}.rst", suffix=".rst") as tmp:
                tmp.write_text(_caption_rst(text))

    with plt.rc_context(STYLE):
        emit("wilson_loops", "wilson_loops", lambda: fig_wilson_loops(df, L, exact_curves))
        if groups:
            for g in groups:
                emit("beta_extrapolation", f"beta_extrapolation_{g}",
                     lambda g=g: fig_beta_extrapolation(df, g, exact_curves))
        else:
            caps["beta_extrapolation"] = "Extrapolation in beta (no data yet)."
            emit("beta_extrapolation", "beta_extrapolation", lambda: _no_data("Extrapolation in beta", "empty table"))
        emit("diffusion_sampler", "diffusion_sampler", lambda: fig_diffusion_sampler(df))
        emit("topology", "topology", lambda: fig_topology(df, per_config, L))
        emit("autocorrelation_cost", "autocorrelation_cost", lambda: fig_autocorrelation_cost(df))
        emit("training_loss", "training_loss", lambda: fig_training_loss(loss_logs))
    return out
