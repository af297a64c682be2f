"""Figures of the weights campaign (matplotlib, the style of campaign.figures), one file
pair (PDF, PNG) per figure, each with its caption (``captions()``).

``make_figure(name, out_png, table=, hists=, summaries=)`` writes ``out_png`` and the PDF
beside it; ``name`` is one of ``FIGURE_NAMES``:

=========================  ==============================================================
temperature_collapse       fitted Coulomb-gas temperature over g against lr / B (linear
                           rule: the diagonal) for the teacher-student model and the RBM,
                           the teacher-student exact finite-lr values, and underneath the
                           ratio to the linear rule (collapse, and where it breaks)
stationary_density         stationary eigenvalue density (centred, in units of
                           sqrt(T / kappa)) against the Coulomb gas at the fitted T
                           (sampled, same n) and the Wigner semicircle
spacing_wigner             unfolded spacings against the Wigner surmise and Poisson, and
                           spacing ratios against the beta = 1 surmise and Poisson, with the
                           same statistics of sampled GOE spectra of the same size
nanogpt_marchenko_pastur   nano-GPT: initial spectra against Marchenko-Pastur (exact and
                           fitted) and the end-of-training spectra
=========================  ==============================================================

Inputs: the points table (``analysis.collect_points``), the histogram tables and summary
JSONs of ``analysis.analyse_model`` (one per model).  A figure without data says so instead of failing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..figures.style import BLUE, FULL_WIDTH, GREEN, ORANGE, PURPLE, SKY, STYLE, VERMILLION, _no_data, _save
from . import rmt

FIGURE_NAMES = ("temperature_collapse", "stationary_density", "spacing_wigner", "nanogpt_marchenko_pastur")
MODEL_STYLE = {
    "teacher_student": {"label": "teacher-student", "marker": "o"},
    "rbm": {"label": "Gaussian RBM", "marker": "s"},
    "nanogpt": {"label": "nano-GPT", "marker": "^"},
}
LR_COLOURS = (BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, "#000000")
THEORY = {"color": "black", "lw": 1.0, "zorder": 3}
POISSON = {"color": "0.45", "lw": 0.9, "ls": "--", "zorder": 3}
GOE_REF = {"color": ORANGE, "lw": 1.0, "ls": "-", "zorder": 2}


def captions() -> dict[str, str]:
    return {
        "temperature_collapse": (
            "Effective temperature of the weight-matrix Coulomb gas against lr/B. Top: fitted T (Gamma-method "
            "errors over independent replicas and seeds, autocorrelation along training included) divided by "
            "the model constant g of the prediction T = g lr/B; the diagonal is the linear scaling rule; colours "
            "distinguish learning rates, so a collapse means points of equal lr/B agree. Open symbols: the exact "
            "finite-lr expectation for the teacher-student model. Bottom: ratio to the linear rule, which "
            "shows where it breaks (teacher-student: time discretisation and multiplicative noise; RBM: "
            "anharmonic potential and state-dependent noise)."),
        "stationary_density": (
            "Stationary eigenvalue density of the followed matrix (teacher-student: W; RBM: X = W^T W), each "
            "spectrum centred on its mean and scaled by sqrt(T/kappa) with the point's fitted temperature T, one "
            "curve per (lr, B) point (shifted slightly along x for visibility), against exact samples of the "
            "beta = 1 Coulomb gas with the same number of levels (orange) and the large-n Wigner semicircle of "
            "radius sqrt(2n). The teacher-student gas is Gaussian; the RBM's is skewed by its anharmonic potential "
            "and state-dependent noise (non-universal), more so at larger lr/B. Error bars: blocks in training time."),
        "spacing_wigner": (
            "Level statistics in the stationary window of the followed matrix (teacher-student: W; RBM: W^T W), "
            "pooled over the grid points; nano-GPT: the end-of-training spectra of all its weight matrices, each "
            "unfolded on its own in ln(lambda). Top: unfolded nearest-neighbour spacings against the Wigner "
            "surmise (beta = 1, black), Poisson (dashed) and sampled GOE spectra of the same size unfolded the "
            "same way (orange). Bottom: spacing ratios (no unfolding) against the beta = 1 ratio surmise and "
            "Poisson. Error bars: blocks in training time (nano-GPT: groups of matrices)."),
        "nanogpt_marchenko_pastur": (
            "nano-GPT weight spectra (squared singular values; key matrices: eigenvalues of K^T K), the matrices "
            "of one kind pooled over the layers, for the grid point with the lowest validation loss: the key "
            "matrices (left; under plain SGD their gradient is small while the attention logits are small, so a "
            "short run barely moves them) and the kind whose spectrum moved furthest beyond its initial edge. Top: at "
            "initialisation, against the Marchenko-Pastur law of the initial weights (black) and the "
            "Marchenko-Pastur fit (orange, dashed). Bottom: the same matrices at the end of training as a density "
            "in ln(lambda), against the initial Marchenko-Pastur law: the bulk spreads and outliers leave it."),
    }


def _read_hists(hists) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in hists or ()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_points(summaries) -> list[dict]:
    from .analysis import read_summary

    return [pt for p in summaries or () for pt in read_summary(p)["points"]]


def _pooled(h: pd.DataFrame) -> pd.DataFrame:
    """Average a histogram over the (lr, batch size) points that share its bins."""
    g = h.groupby(["lo", "hi"], sort=True)
    out = g.agg(x=("x", "first"), density=("density", "mean"), n=("density", "size")).reset_index()
    err = g["error"].apply(lambda e: float(np.sqrt(np.nansum(np.square(e)))) / max(len(e), 1))
    out["error"] = err.to_numpy()
    return out


def _steps(ax, h: pd.DataFrame, **kw):
    edges = np.r_[h["lo"].to_numpy(), h["hi"].to_numpy()[-1]]
    return ax.stairs(h["density"].to_numpy(), edges, **kw)


def _bars(ax, h: pd.DataFrame, colour, label=None):
    return ax.errorbar(h["x"], h["density"], yerr=np.nan_to_num(h["error"].to_numpy()), ls="none", marker="o",
                       ms=2.6, color=colour, mfc=colour, elinewidth=0.8, label=label, zorder=4)


# ------------------------------------------------------------------------- figures
def fig_temperature_collapse(table: pd.DataFrame):
    import matplotlib.pyplot as plt

    df = table[table["model"].isin(["teacher_student", "rbm"]) & np.isfinite(table["temperature_coefficient"])]
    if df.empty:
        return _no_data("Temperature vs lr/B", "no teacher-student or exact-RBM points")
    fig, (ax, ar) = plt.subplots(2, 1, figsize=(0.62 * FULL_WIDTH, 0.62 * FULL_WIDTH), sharex=True,
                                 gridspec_kw={"height_ratios": [2.2, 1.3], "hspace": 0.06})
    lrs = sorted(df["lr"].unique())
    colour = {lr: LR_COLOURS[i % len(LR_COLOURS)] for i, lr in enumerate(lrs)}
    x_all = df["lr_over_B"].to_numpy()
    xs = np.geomspace(x_all.min() / 1.5, x_all.max() * 1.5, 50)
    ax.plot(xs, xs, **THEORY, label=r"linear rule $T = g\,\alpha/|B|$")
    ar.axhline(1.0, **THEORY)
    for model, sub in df.groupby("model", sort=False):
        st = MODEL_STYLE[model]
        for lr, s in sub.groupby("lr"):
            g = s["temperature_coefficient"].to_numpy()
            kw = dict(ls="none", marker=st["marker"], color=colour[lr], mec=colour[lr], elinewidth=0.8, ms=4)
            ax.errorbar(s["lr_over_B"], s["temperature"] / g, yerr=s["temperature_error"] / g, mfc=colour[lr], **kw)
            ar.errorbar(s["lr_over_B"], s["ratio_to_linear"], yerr=s["ratio_to_linear_error"], mfc=colour[lr], **kw)
            if model == "teacher_student" and np.isfinite(s["temperature_exact"]).any():
                ex = s["temperature_exact"].to_numpy() / g
                ax.plot(s["lr_over_B"], ex, ls="none", marker=st["marker"], ms=7, mfc="none", mec=colour[lr], mew=0.7)
                ar.plot(s["lr_over_B"], ex / s["lr_over_B"], ls="none", marker=st["marker"], ms=7, mfc="none",
                        mec=colour[lr], mew=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ar.xaxis, ar.get_xlim()), (ax.yaxis, ax.get_ylim())):
        decades = math.log10(hi / lo)
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(r"$T_\mathrm{fit} / g$")
    ar.set_xlabel(r"$\alpha / |B|$ (learning rate / batch size)")
    ar.set_ylabel(r"$T_\mathrm{fit} / (g\,\alpha/|B|)$")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], **{k: v for k, v in THEORY.items() if k != "zorder"}, label="linear rule")]
    for model in df["model"].unique():
        handles.append(Line2D([], [], ls="none", marker=MODEL_STYLE[model]["marker"], color="0.3",
                              label=MODEL_STYLE[model]["label"]))
    if (df["model"] == "teacher_student").any():
        handles.append(Line2D([], [], ls="none", marker="o", ms=7, mfc="none", mec="0.3",
                              label="teacher-student exact"))
    for lr in lrs:
        handles.append(Line2D([], [], ls="none", marker="s", ms=4, color=colour[lr], label=rf"$\alpha = {lr:g}$"))
    ax.legend(handles=handles, loc="upper left", ncol=2, fontsize=6.5)
    return fig


def fig_stationary_density(hists: pd.DataFrame):
    import matplotlib.pyplot as plt

    h = hists[hists["kind"] == "density"] if len(hists) else hists
    models = [m for m in ("teacher_student", "rbm") if len(h) and (h["model"] == m).any()]
    if not models:
        return _no_data("Stationary density", "no Coulomb-gas spectra")
    fig, axes = plt.subplots(1, len(models), figsize=(0.42 * FULL_WIDTH * len(models), 0.38 * FULL_WIDTH),
                             squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        sub = h[h["model"] == model]
        n = int(sub["n_levels"].iloc[0])
        _steps(ax, _pooled(sub[sub["series"] == "goe"]), **GOE_REF, label=f"Coulomb gas $\\beta=1$, $n = {n}$")
        data = sub[sub["series"] == "data"]
        points = sorted({(b_lr / b, b_lr, b) for b_lr, b in zip(data["lr"], data["batch_size"])})
        for i, (ratio, lr, b) in enumerate(points):
            d = data[(data["lr"] == lr) & (data["batch_size"] == b)].sort_values("lo")
            c = LR_COLOURS[i % len(LR_COLOURS)]
            ax.errorbar(d["x"] + 0.06 * (i - (len(points) - 1) / 2), d["density"], yerr=np.nan_to_num(d["error"]),
                        ls="-", lw=0.5, marker="o", ms=2.0, color=c, elinewidth=0.7, zorder=4,
                        label=rf"$\alpha={lr:g}$, $|B|={b}$")
        z = np.linspace(-9, 9, 400)
        ax.plot(z, rmt.semicircle_density(z, 0.0, math.sqrt(2 * n)), **THEORY, label="semicircle")
        ax.set_title(f"{MODEL_STYLE[model]['label']} ({sub['primary'].iloc[0]})", loc="left")
        ax.set_xlabel(r"$(x - \bar x)\,/\sqrt{T_\mathrm{fit}/\kappa}$")
        ax.set_xlim(-8.5, 8.5)
        ax.legend(loc="upper left", fontsize=5.5)
    axes[0][0].set_ylabel("density")
    return fig


def fig_spacing_wigner(hists: pd.DataFrame):
    import matplotlib.pyplot as plt

    h = hists[hists["kind"].isin(["spacing", "ratio"])] if len(hists) else hists
    models = [m for m in ("teacher_student", "rbm", "nanogpt") if len(h) and (h["model"] == m).any()]
    if not models:
        return _no_data("Level spacings", "no spectra")
    fig, axes = plt.subplots(2, len(models), figsize=(0.34 * FULL_WIDTH * len(models) + 0.4, 0.56 * FULL_WIDTH),
                             squeeze=False, gridspec_kw={"hspace": 0.38})
    s = np.linspace(0, 4, 400)
    r = np.linspace(0, 1, 400)
    for col, model in enumerate(models):
        sub = h[h["model"] == model]
        ax, axr = axes[0][col], axes[1][col]
        sp = sub[sub["kind"] == "spacing"]
        if len(sp):
            _steps(ax, _pooled(sp[sp["series"] == "goe"]), **GOE_REF, label="GOE, same $n$")
            _bars(ax, _pooled(sp[sp["series"] == "data"]), BLUE, label="SGD")
        ax.plot(s, rmt.wigner_surmise(s, 1), **THEORY, label=r"Wigner surmise $\beta=1$")
        ax.plot(s, rmt.poisson_spacing(s), **POISSON, label="Poisson")
        ax.set_xlabel(r"unfolded spacing $s$")
        ax.set_title(f"{MODEL_STYLE[model]['label']}, n = {int(sub['n_levels'].iloc[0])}", loc="left")
        ax.text(0.98, 0.40, (sub["levels"] if "levels" in sub else sub["primary"]).iloc[0], transform=ax.transAxes, ha="right", va="top", fontsize=5.5,
                color="0.3")
        ra = sub[sub["kind"] == "ratio"]
        _steps(axr, _pooled(ra[ra["series"] == "goe"]), **GOE_REF, label="GOE, same $n$")
        _bars(axr, _pooled(ra[ra["series"] == "data"]), BLUE, label="SGD")
        axr.plot(r, rmt.ratio_surmise(r, 1.0), **THEORY, label=r"surmise $\beta=1$")
        axr.plot(r, rmt.ratio_surmise(r, 0.0), **POISSON, label="Poisson")
        axr.set_xlabel(r"spacing ratio $\tilde r$")
        ax.set_ylim(0, 1.25)
        axr.set_ylim(0, 2.3)
    axes[0][0].set_ylabel(r"$P(s)$")
    axes[1][0].set_ylabel(r"$P(\tilde r)$")
    axes[0][0].legend(loc="upper right", fontsize=6)
    axes[1][0].legend(loc="upper right", fontsize=6)
    return fig


def fig_nanogpt_mp(hists: pd.DataFrame, points: list[dict], matrices=None):
    """Initial and final spectra of the key matrices (the papers' choice) and of the matrix
    kind whose final spectrum reaches furthest beyond its initial MP edge (``matrices``
    overrides the choice)."""
    import matplotlib.pyplot as plt

    gpt = [s for s in points if s.get("model") == "nanogpt"]
    if not gpt or not len(hists):
        return _no_data("nano-GPT spectra", "no nano-GPT runs")
    best = min(gpt, key=lambda s: (s.get("evaluation") or {}).get("val_loss", math.inf))
    h = hists[(hists["model"] == "nanogpt") & (hists["lr"] == best["lr"]) & (hists["batch_size"] == best["batch_size"])]
    laws = best.get("init_mp", {})
    if matrices is None:
        moved = max((k for k in laws if k != "key"), key=lambda k: laws[k]["final_max"] / laws[k]["mp_upper_edge"],
                    default=None)
        matrices = [m for m in ("key", moved) if m]
    mats = [m for m in matrices if m in laws]
    fig, axes = plt.subplots(2, len(mats), figsize=(0.38 * FULL_WIDTH * len(mats) + 0.3, 0.56 * FULL_WIDTH),
                             squeeze=False, gridspec_kw={"hspace": 0.45, "wspace": 0.38})
    for col, name in enumerate(mats):
        mp = best["init_mp"][name]
        q, s2 = mp["q_exact"], mp["sigma2_exact"]
        layers = f"{len(mp.get('matrices', [name]))} layers"
        ax = axes[0][col]
        d = h[(h["spectrum"] == name) & (h["kind"] == "initial")].sort_values("lo")
        _steps(ax, d, color=BLUE, lw=0.8, fill=True, alpha=0.35, label="initial weights")
        xs = np.linspace(0, max(rmt.mp_edges(q, s2)[1], float(d["hi"].max())) * 1.03, 800)
        ax.plot(xs, rmt.mp_density(xs, q, s2), **THEORY, label=rf"MP, $q = {q:.3g}$")
        ax.plot(xs, rmt.mp_density(xs, mp["q"], mp["sigma2"]), color=ORANGE, lw=1.0, ls="--", zorder=4,
                label=rf"MP fit, $q = {mp['q']:.2f}$")
        ax.set_title(f"{name} ({layers}): initialisation", loc="left", fontsize=7)
        ax.set_xlabel(r"$\lambda$ (squared singular value)")
        ax.set_ylabel(r"density in $\lambda$")
        if q >= 0.99:  # hard edge: the density diverges at 0
            ax.set_ylim(0, 2.5 * float(d["density"].iloc[len(d) // 2:].max() or 1.0) + 1e-12)
        ax.legend(loc="upper right", fontsize=6)
        ax = axes[1][col]
        d = h[(h["spectrum"] == name) & (h["kind"] == "final_log")].sort_values("lo")
        edges = np.exp(np.r_[d["lo"].to_numpy(), d["hi"].to_numpy()[-1]])
        ax.stairs(d["density"].to_numpy(), edges, color=BLUE, lw=0.8, fill=True, alpha=0.35, label="end of training")
        a, b = rmt.mp_edges(q, s2)
        lam = np.geomspace(max(a, b * 1e-4), b, 600)
        ax.plot(lam, lam * rmt.mp_density(lam, q, s2), **THEORY, label="initial MP law")
        ax.set_xscale("log")
        ax.set_title(f"{name}: end of training", loc="left", fontsize=7)
        ax.set_xlabel(r"$\lambda$ (squared singular value)")
        ax.set_ylabel(r"density in $\ln\lambda$")
        ax.legend(loc="upper left", fontsize=6)
    fig.suptitle(f"nano-GPT, {best.get('optimizer', 'sgd')}, lr = {best['lr']:g}, B = {best['batch_size']}, "
                 f"validation loss {best.get('evaluation', {}).get('val_loss', math.nan):.2f} nats/char "
                 f"(uniform {best.get('evaluation', {}).get('uniform_loss', math.nan):.2f})", fontsize=7.5, y=0.995)
    return fig


# ------------------------------------------------------------------------- driver
def make_figure(name: str, out_png, *, table=None, hists=(), summaries=(), write_caption: bool = True) -> list[Path]:
    """Write figure ``name`` as ``out_png`` and the PDF beside it (and its caption as
    ``.rst``); returns the paths."""
    import matplotlib.pyplot as plt

    if name not in FIGURE_NAMES:
        from ..errors import CampaignError

        raise CampaignError(f"unknown weights figure {name!r}; choose one of {', '.join(FIGURE_NAMES)}")
    out_png = Path(out_png)
    points = _read_points(summaries)
    h = _read_hists(hists)
    if len(h):
        meta = {(p["model"], float(p["lr"]), int(p["batch_size"])): p for p in points}
        keys = list(zip(h["model"], h["lr"].astype(float), h["batch_size"].astype(int)))
        h["n_levels"] = [meta[k]["n_levels"] if k in meta else np.nan for k in keys]
        h["primary"] = [meta[k]["primary"] if k in meta else "" for k in keys]
        h["levels"] = [meta[k].get("levels", meta[k]["primary"]) if k in meta else "" for k in keys]
    with plt.rc_context(STYLE):
        if name == "temperature_collapse":
            fig = fig_temperature_collapse(pd.read_csv(table) if not isinstance(table, pd.DataFrame) else table)
        elif name == "stationary_density":
            fig = fig_stationary_density(h)
        elif name == "spacing_wigner":
            fig = fig_spacing_wigner(h)
        else:
            fig = fig_nanogpt_mp(h, points)
        paths = _save(fig, out_png.parent, out_png.stem, ("pdf", "png"))
    if write_caption:
        from ..io import atomic_path

        with atomic_path(out_png.with_suffix(".rst"), suffix=".rst") as tmp:
            tmp.write_text(captions()[name] + "\n")
        paths.append(out_png.with_suffix(".rst"))
    return paths
