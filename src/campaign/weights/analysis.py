"""The spectra stage: from the run files of one (model, lr, batch size) point to the
fitted Coulomb-gas temperature, spacing statistics and Marchenko-Pastur fits, and the
campaign table of all points.

``analyse_model(run_paths, out_json, out_hist, stationary_fraction=0.5, ...)`` analyses
every (lr, batch size) point of one model (``analyse_point``, all seeds of a point
together):

* Stationary window: the snapshots with ``step >= (1 - stationary_fraction) * steps``.
  Every replica of every seed is an independent Markov chain (a pyerrors replica).
* Temperature (models with a ``curvature`` in their theory): per snapshot
  ``coulomb_gas.temperature_series`` of the primary spectrum; value and error by the
  Gamma method over all chains (campaign.stats.chain_summary: autocorrelation along
  training included), tau_int in snapshots.  ``drift_pull`` compares the first and second
  half of the window (|pull| >~ 3: not stationary, lengthen the run).  Compared with the
  linear prediction ``g lr / B`` (``ratio_to_linear``) and, for the teacher-student model,
  with the exact finite-lr expectation (``pull_exact``).
* Spacing ratio: per snapshot the mean of all ratios of the primary spectrum, Gamma
  method over chains; reference values: the Gaussian beta = 1 ensemble with the same
  number of levels (exact sampling) and Poisson ``2 ln 2 - 1``; ``beta_dyson`` is the
  Dyson index whose ensemble matches the measured mean ratio.  Models without a
  potential (not stationary: the nano-GPT) use the last snapshot of every followed
  matrix with as many levels instead, with errors from the scatter between matrices
  (``levels`` says which).
* Unfolding (theory key ``unfolding``): ``pooled`` (default; one mean staircase of the
  stationary window, each spectrum centred) or ``local`` / ``local_log`` (each spectrum
  with its own Gaussian-broadened staircase, in ln x for ``local_log``: for spectra that
  are not stationary, the nano-GPT's); the GOE reference is unfolded the same way.
* Histograms with errors from ``n_blocks`` consecutive blocks of the window (blocking;
  the blocks are much longer than tau_int in the shipped campaigns): unfolded spacings,
  spacing ratios, and the centred stationary density in units of ``sqrt(T / kappa)``
  (where the Coulomb gas at the fitted T is the parameter-free beta = 1 ensemble), each
  next to the same statistic of exactly sampled beta = 1 ensembles of the same size
  (series ``goe``); and the initial (step 0; kind ``initial``, density in lambda) and
  final (kind ``final_log``, density in ln lambda) spectra of every matrix kind whose
  theory has an initial Marchenko-Pastur law (layers pooled), with the fitted law in the
  summary (``init_mp``).

Summary JSON keys: see ``analyse_point``; histogram table columns ``HIST_COLUMNS``.
``collect_points(json_paths)`` gives one row per point (``TABLE_COLUMNS``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import write_json_atomic, write_table
from ..stats import chain_summary
from ..errors import CampaignError
from ..io import provenance
from . import coulomb_gas, rmt
from .io import read_run

HIST_COLUMNS = ["spectrum", "kind", "series", "x", "lo", "hi", "density", "error"]
TABLE_COLUMNS = [
    "model", "lr", "batch_size", "lr_over_B", "n_seeds", "n_chains", "n_levels", "temperature", "temperature_error",
    "tau_int", "tau_int_error", "n_eff", "temperature_coefficient", "temperature_linear", "ratio_to_linear",
    "ratio_to_linear_error", "temperature_exact", "pull_exact", "drift_pull", "r_mean", "r_mean_error", "r_goe",
    "r_poisson", "beta_dyson", "beta_dyson_error", "loss_final", "val_loss", "wall_time_s", "source",
]
SPACING_BINS = np.linspace(0.0, 4.0, 25)
RATIO_BINS = np.linspace(0.0, 1.0, 21)
DENSITY_BINS = np.linspace(-9.0, 9.0, 37)
REFERENCE_SIZE = 4000


def _same_point(runs) -> None:
    keys = ("model", "lr", "batch_size", "steps", "log_every", "optimizer", "settings")
    first = runs[0].attrs
    for r in runs[1:]:
        diff = [k for k in keys if r.attrs.get(k) != first.get(k)]
        if diff:
            raise CampaignError(f"{r.path} and {runs[0].path} differ in {', '.join(diff)}: not one point")


def _window(run, stationary_fraction: float) -> np.ndarray:
    start = (1.0 - stationary_fraction) * int(run.attrs["steps"])
    return np.asarray(run.step) >= start


def _chains(per_run: list[np.ndarray]) -> list[np.ndarray]:
    """(n_snap, R) arrays of every run -> list of per-chain series."""
    return [a[:, r] for a in per_run for r in range(a.shape[1])]


def _blocked_histogram(samples_per_block: list[np.ndarray], bins) -> tuple[np.ndarray, np.ndarray]:
    """Density histogram: mean over blocks, error = std / sqrt(blocks)."""
    dens = []
    for s in samples_per_block:
        s = s[np.isfinite(s)]
        if len(s):
            h, _ = np.histogram(s, bins=bins)
            dens.append(h / (len(s) * np.diff(bins)))
    dens = np.array(dens)
    if len(dens) == 0:
        return np.full(len(bins) - 1, np.nan), np.full(len(bins) - 1, np.nan)
    err = dens.std(axis=0, ddof=1) / math.sqrt(len(dens)) if len(dens) > 1 else np.full(dens.shape[1], np.nan)
    return dens.mean(axis=0), err


def _rows(spectrum, kind, series, bins, density, error) -> list[dict]:
    centres = 0.5 * (bins[1:] + bins[:-1])
    return [
        {"spectrum": spectrum, "kind": kind, "series": series, "x": float(c), "lo": float(lo), "hi": float(hi),
         "density": float(d), "error": float(e)}
        for c, lo, hi, d, e in zip(centres, bins[:-1], bins[1:], density, error)
    ]


def _blocks(window_spectra: list[np.ndarray], n_blocks: int) -> list[np.ndarray]:
    """Split each run's (n_snap, R, k) window into n_blocks consecutive blocks in time and
    pool each block over runs and replicas -> list of (m, k) arrays."""
    out = []
    for b in range(n_blocks):
        parts = []
        for a in window_spectra:
            idx = np.array_split(np.arange(a.shape[0]), n_blocks)[b]
            if len(idx):
                parts.append(a[idx].reshape(-1, a.shape[-1]))
        if parts:
            out.append(np.concatenate(parts))
    return out


def analyse_point(run_paths, *, stationary_fraction: float = 0.5, n_blocks: int = 8,
                  reference_seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Analyse the runs (all seeds) of one (model, lr, batch size) point: returns the
    summary and the histogram table (columns ``HIST_COLUMNS``)."""
    if not 0 < stationary_fraction <= 1:
        raise CampaignError(f"stationary_fraction must lie in (0, 1], got {stationary_fraction}")
    runs = [read_run(p) for p in run_paths]
    if not runs:
        raise CampaignError("analyse_point: no run files")
    _same_point(runs)
    primary = runs[0].theory["primary"]
    windows = [_window(r, stationary_fraction) for r in runs]
    x_win = [r.spectra[primary][w] for r, w in zip(runs, windows)]  # (n_snap, R, n)
    n_snap = int(x_win[0].shape[0])
    if n_snap < 10:
        raise CampaignError(f"only {n_snap} snapshots in the stationary window; log more often or run longer")
    n_levels = int(x_win[0].shape[-1])
    # exact samples of the beta = 1 Coulomb gas with as many levels: the reference of every
    # statistic below (seeded: the same reference for every point with this n)
    ref = rmt.gaussian_beta_ensemble(n_levels, 1.0, REFERENCE_SIZE, np.random.default_rng(reference_seed))
    out = _point_header(runs, run_paths, windows, x_win, stationary_fraction)
    hist: list[dict] = []
    if runs[0].theory.get("curvature") is not None:
        hist += _temperature_and_density(out, runs, x_win, ref, n_blocks)
    blocks = _level_statistics(out, runs, x_win, n_blocks, reference_seed)
    hist += _spacing_histograms(out, primary, blocks, ref, n_blocks, runs[0].theory.get("unfolding", "pooled"))
    mp_out, mp_hist = _marchenko_pastur(runs, runs[0].theory.get("init_mp") or {})
    out["init_mp"] = mp_out
    return out, pd.DataFrame(hist + mp_hist, columns=HIST_COLUMNS)


def _point_header(runs, run_paths, windows, x_win, stationary_fraction) -> dict:
    a0, theory = runs[0].attrs, runs[0].theory
    lr, B = float(a0["lr"]), int(a0["batch_size"])
    return {
        "model": a0["model"], "lr": lr, "batch_size": B, "lr_over_B": lr / B,
        "seeds": [int(r.attrs["seed"]) for r in runs], "n_chains": int(sum(x.shape[1] for x in x_win)),
        "n_levels": int(x_win[0].shape[-1]), "primary": theory["primary"], "matrix": theory.get("matrix"),
        "window": {"stationary_fraction": stationary_fraction, "start_step": int(runs[0].step[windows[0]][0]),
                   "n_snapshots": int(x_win[0].shape[0]), "log_every": int(a0["log_every"])},
        "settings": a0.get("settings"), "optimizer": a0.get("optimizer"), "theory": theory,
        "runs": [str(p) for p in run_paths],
        "loss_final": float(np.mean([r.loss[-1] for r in runs])),
        "evaluation": {k: float(np.mean([r.attrs.get("evaluation", {}).get(k, math.nan) for r in runs]))
                       for k in (a0.get("evaluation") or {})},
        "wall_time_s": float(sum(float(r.attrs.get("wall_time_s", math.nan)) for r in runs)),
    }


def _temperature_and_density(out: dict, runs, x_win, ref, n_blocks: int) -> list[dict]:
    """The Coulomb-gas temperature (with its drift between window halves and, where known,
    the linear and exact predictions), and the level density in units of sqrt(T / kappa)."""
    a0, theory = runs[0].attrs, runs[0].theory
    kappa, primary, n_snap = theory["curvature"], theory["primary"], int(x_win[0].shape[0])
    lr, B = out["lr"], out["batch_size"]
    t_series = [coulomb_gas.temperature_series(x, kappa) for x in x_win]  # (n_snap, R)
    chains = _chains(t_series)
    temp = chain_summary(chains)
    half = n_snap // 2
    first, second = chain_summary([c[:half] for c in chains]), chain_summary([c[half:] for c in chains])
    out["temperature"] = temp
    out["drift_pull"] = (second["value"] - first["value"]) / math.hypot(first["error"], second["error"])
    g = theory.get("temperature_coefficient")
    if g is not None:
        lin = g * lr / B
        out["temperature_coefficient"] = g
        out["temperature_linear"] = lin
        out["ratio_to_linear"] = {"value": temp["value"] / lin, "error": temp["error"] / lin}
    if a0["model"] == "teacher_student" and a0.get("optimizer", "sgd") == "sgd":
        from .teacher_student import exact_temperature_estimate

        s = a0["settings"]
        exact = exact_temperature_estimate(int(s["n"]), lr, B, float(s["noise"]))
        out["temperature_exact"] = exact
        out["pull_exact"] = (temp["value"] - exact) / temp["error"]
    # stationary density in units of sqrt(T / kappa): the fitted gas is the standard ensemble
    scale = math.sqrt(temp["value"] / kappa)
    blocks = _blocks(x_win, n_blocks)
    dens, err = _blocked_histogram([((b - b.mean(axis=1, keepdims=True)) / scale).ravel() for b in blocks],
                                   DENSITY_BINS)
    hist = _rows(primary, "density", "data", DENSITY_BINS, dens, err)
    ref_blocks = np.array_split(ref - ref.mean(axis=1, keepdims=True), n_blocks)
    dens, err = _blocked_histogram([b.ravel() for b in ref_blocks], DENSITY_BINS)
    hist += _rows(primary, "density", "goe", DENSITY_BINS, dens, err)
    out["semicircle_radius"] = coulomb_gas.semicircle_radius(out["n_levels"], temp["value"], kappa)
    return hist


def _level_statistics(out: dict, runs, x_win, n_blocks: int, reference_seed: int) -> list[np.ndarray]:
    """Mean spacing ratio against GOE and Poisson, and the fitted Dyson index; returns the
    blocks of spectra the histograms are made of.

    A Coulomb gas (a model with a potential) is stationary: its window's snapshots are the
    sample, with Gamma-method / blocked errors along training.  A model without one (the
    nano-GPT) is still learning and its spectra move slowly, so snapshots of one matrix are
    not independent: its sample is the last snapshot of every followed matrix with as many
    levels, and errors come from the scatter between matrices."""
    primary, n_levels = out["primary"], out["n_levels"]
    if runs[0].theory.get("curvature") is not None:
        out["levels"] = f"{primary}, stationary window"
        r_mean = chain_summary(_chains([rmt.mean_spacing_ratio(x) for x in x_win]))  # (n_snap, R) each
        blocks = _blocks(x_win, n_blocks)
    else:
        names = [k for k in runs[0].spectra if runs[0].spectra[k].shape[-1] == n_levels]
        finals = np.concatenate([r.spectra[k][-1] for r in runs for k in names])  # (matrices, n)
        out["levels"] = f"last snapshot of {len(finals)} matrices"
        per = rmt.mean_spacing_ratio(finals)
        r_mean = {"value": float(per.mean()), "error": float(per.std(ddof=1) / math.sqrt(len(per))),
                  "tau_int": math.nan, "tau_int_error": math.nan, "n_eff": float(len(per))}
        blocks = [b for b in np.array_split(finals, min(n_blocks, len(finals))) if len(b)]
    out["r_mean"] = r_mean
    ref_r, ref_r_err = coulomb_gas.ratio_reference(n_levels, 1.0, max(2000, 200000 // n_levels), reference_seed + 1)
    out["r_goe"] = {"value": ref_r, "error": ref_r_err, "n_levels": n_levels}
    out["r_goe_large_n"] = rmt.R_MEAN["goe"]
    out["r_poisson"] = rmt.R_MEAN["poisson"]
    out["beta_dyson"] = coulomb_gas.fit_dyson_beta(r_mean["value"], r_mean["error"], n_levels, seed=reference_seed + 2)
    return blocks


def _spacing_histograms(out: dict, primary: str, blocks, ref, n_blocks: int, unfolding: str) -> list[dict]:
    """Histograms of unfolded spacings and of spacing ratios (blocked errors), each with its
    sampled GOE reference."""
    hist: list[dict] = []
    if out["n_levels"] >= 5:
        out["unfolding"] = unfolding
        ref_blocks = np.array_split(ref, n_blocks)
        if unfolding == "pooled":
            s_data, s_ref = _unfold_blocks(np.concatenate(blocks), blocks), _unfold_blocks(ref, ref_blocks)
        else:  # "local" or "local_log": each spectrum with its own smooth staircase
            log = unfolding == "local_log"
            s_data = _normalised([rmt.unfold_local(b, log=log, normalise=False) for b in blocks])
            # the GOE reference is unfolded the same way (in x: its levels are not positive)
            s_ref = _normalised([rmt.unfold_local(b, normalise=False) for b in ref_blocks])
        dens, err = _blocked_histogram(s_data, SPACING_BINS)
        hist += _rows(primary, "spacing", "data", SPACING_BINS, dens, err)
        dens, err = _blocked_histogram(s_ref, SPACING_BINS)
        hist += _rows(primary, "spacing", "goe", SPACING_BINS, dens, err)
    dens, err = _blocked_histogram([rmt.spacing_ratios(b).ravel() for b in blocks], RATIO_BINS)
    hist += _rows(primary, "ratio", "data", RATIO_BINS, dens, err)
    dens, err = _blocked_histogram([rmt.spacing_ratios(b).ravel() for b in np.array_split(ref, n_blocks)], RATIO_BINS)
    hist += _rows(primary, "ratio", "goe", RATIO_BINS, dens, err)
    return hist


def _marchenko_pastur(runs, init_mp: dict) -> tuple[dict, list[dict]]:
    """Initial and final spectra, Marchenko-Pastur at initialisation; matrices of the same kind
    in different layers (l0.key, l1.key, ...) with the same initial law are pooled."""
    mp_out, hist = {}, []
    for kind_name, names in _matrix_kinds(init_mp).items():
        law = init_mp[names[0]]
        init = np.concatenate([r.spectra[n][0].ravel() for r in runs for n in names])
        final = np.concatenate([r.spectra[n][-1].ravel() for r in runs for n in names])
        fit = rmt.fit_marchenko_pastur(init, law.get("n_long"))
        upper_edge = rmt.mp_edges(law["q"], law["sigma2"])[1]
        mp_out[kind_name] = {
            **fit, "matrices": names, "q_exact": law["q"], "sigma2_exact": law["sigma2"], "n_long": law.get("n_long"),
            "n_eigenvalues": int(len(init)), "init_max": float(init.max()), "mp_upper_edge": upper_edge,
            "final_max": float(final.max()), "final_mean": float(final.mean()),
            "final_fraction_above_edge": float(np.mean(final > upper_edge)),
        }
        n_bins = int(np.clip(1.5 * math.sqrt(len(init)), 8, 30))
        # counting errors: the eigenvalues of one snapshot are not independent draws (they
        # repel), so these errors are rough; the figure shows them as a guide only
        bins = np.linspace(0.0, float(init.max()) * 1.02, n_bins + 1)
        h, _ = np.histogram(init, bins=bins)
        norm = len(init) * np.diff(bins)
        hist += _rows(kind_name, "initial", "data", bins, h / norm, np.sqrt(h) / norm)
        pos = final[final > 0]
        bins = np.linspace(math.log(pos.min()) - 0.05, math.log(pos.max()) + 0.05, n_bins + 1)
        h, _ = np.histogram(np.log(pos), bins=bins)
        norm = len(pos) * np.diff(bins)
        hist += _rows(kind_name, "final_log", "data", bins, h / norm, np.sqrt(h) / norm)
    return mp_out, hist


def analyse_model(run_paths, out_json=None, out_hist=None, **kw) -> dict:
    """Analyse every (lr, batch size) point of one model from its run files (all points,
    all seeds): the summary JSON ``{"model", "points": [analyse_point summaries]}`` and one
    histogram table with the point's ``model``, ``lr`` and ``batch_size`` as extra columns."""
    from .io import read_run_attrs

    groups: dict[tuple, list] = {}
    for p in run_paths:
        a = read_run_attrs(p)
        groups.setdefault((a["model"], float(a["lr"]), int(a["batch_size"])), []).append(p)
    if len({k[0] for k in groups}) > 1:
        raise CampaignError(f"analyse_model: run files of several models ({sorted({k[0] for k in groups})})")
    points, tables = [], []
    for (model, lr, b), paths in sorted(groups.items()):
        summary, hist = analyse_point(sorted(paths), **kw)
        points.append(summary)
        tables.append(hist.assign(model=model, lr=lr, batch_size=b))
    out = {"model": next(iter(groups))[0] if groups else None, "points": points, "analysed": provenance()}
    if out_json is not None:
        write_json_atomic(out, out_json)
    if out_hist is not None:
        cols = ["model", "lr", "batch_size", *HIST_COLUMNS]
        write_table(pd.concat(tables, ignore_index=True)[cols] if tables else pd.DataFrame(columns=cols), out_hist)
    return out


def _matrix_kinds(init_mp: dict) -> dict[str, list[str]]:
    """Group spectra names by matrix kind (``l0.key``, ``l1.key`` -> ``key``) when their
    initial laws agree; other names stay alone."""
    import re

    out: dict[str, list[str]] = {}
    for name in init_mp:
        kind = re.sub(r"^l\d+\.", "", name)
        if kind in out and init_mp[out[kind][0]] != init_mp[name]:
            kind = name
        out.setdefault(kind, []).append(name)
    return out


def _unfold_blocks(pooled: np.ndarray, blocks: list[np.ndarray], bulk: float = 0.8) -> list[np.ndarray]:
    """Unfolded spacings of each block with one mean staircase from all blocks (the
    staircase of a short block alone would be noisy), normalised to mean 1 overall."""
    return _normalised([rmt.unfold(b, bulk, reference=pooled, normalise=False) for b in blocks])


def _normalised(spacing_blocks: list[np.ndarray]) -> list[np.ndarray]:
    norm = float(np.mean(np.concatenate(spacing_blocks)))
    return [s / norm for s in spacing_blocks]


# ------------------------------------------------------------------ the table
def _val(d, key="value"):
    if isinstance(d, dict):
        v = d.get(key)
        return math.nan if v is None else float(v)
    return math.nan if d is None else float(d)


def collect_points(json_paths) -> pd.DataFrame:
    """One row per (model, lr, batch size) point of the ``analyse_model`` summaries,
    columns ``TABLE_COLUMNS``."""
    rows = []
    for p, s in ((p, s) for p in json_paths for s in read_summary(p)["points"]):
        t = s.get("temperature") or {}
        rows.append({
            "model": s["model"], "lr": s["lr"], "batch_size": s["batch_size"], "lr_over_B": s["lr_over_B"],
            "n_seeds": len(s.get("seeds", [])), "n_chains": s.get("n_chains"), "n_levels": s.get("n_levels"),
            "temperature": _val(t), "temperature_error": _val(t, "error"), "tau_int": _val(t, "tau_int"),
            "tau_int_error": _val(t, "tau_int_error"), "n_eff": _val(t, "n_eff"),
            "temperature_coefficient": _val(s.get("temperature_coefficient")),
            "temperature_linear": _val(s.get("temperature_linear")),
            "ratio_to_linear": _val(s.get("ratio_to_linear")),
            "ratio_to_linear_error": _val(s.get("ratio_to_linear"), "error"),
            "temperature_exact": _val(s.get("temperature_exact")), "pull_exact": _val(s.get("pull_exact")),
            "drift_pull": _val(s.get("drift_pull")),
            "r_mean": _val(s.get("r_mean")), "r_mean_error": _val(s.get("r_mean"), "error"),
            "r_goe": _val(s.get("r_goe")), "r_poisson": _val(s.get("r_poisson")),
            "beta_dyson": _val(s.get("beta_dyson")), "beta_dyson_error": _val(s.get("beta_dyson"), "error"),
            "loss_final": _val(s.get("loss_final")), "val_loss": _val((s.get("evaluation") or {}).get("val_loss")),
            "wall_time_s": _val(s.get("wall_time_s")), "source": str(p),
        })
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if len(df):
        df = df.sort_values(["model", "lr_over_B", "lr"], kind="stable").reset_index(drop=True)
    return df


def read_summary(path) -> dict:
    """An ``analyse_model`` summary JSON."""
    import json

    try:
        s = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise CampaignError(f"cannot read spectra summary {path}: {exc}") from None
    if not isinstance(s, dict) or "points" not in s:
        raise CampaignError(f"{path} is not a weights spectra summary")
    return s


def write_points_table(json_paths, out) -> pd.DataFrame:
    df = collect_points(json_paths)
    write_table(df, out)
    return df
