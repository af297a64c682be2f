"""Statistics and tables: measure ensembles, Gamma-method summaries, the tidy campaign table.

Statistics (``campaign.stats``)
-------------------------------
* Markov chains (file attr ``independent`` false or absent): ``chain_summary``, the Gamma
  method with every chain a replica, plus the scatter between chains; marked unreliable
  where a chain is frozen, shorter than 50 tau_int, or the chains disagree.
* chi_t = <Q^2> / V (V = L^2): the same analysis of Q^2 / V.
* Independent samples (attr ``independent`` true): ``independent_summary``.
* Weighted samples (dataset ``log_weights``, e.g. the smc sampler): ``weighted_summary``,
  the self-normalised estimator with jackknife errors over the independent blocks
  (dataset ``weight_block``); n_eff is the effective sample size.

measure_file summary (JSON, NaN written as null)
------------------------------------------------
``{"file", "table", "group", "beta", "L", "algorithm", "n_configs", "n_chains",
"independent", "weighted", "max_loop", "observables": {name: {"value", "error", "tau_int",
"tau_int_error", "n_eff", "reliable", "note", ...}}, "chi_t": {...same keys} (u1/u2 only),
"diagnostics": {...}, "attrs": {every root attr of the file}, "measured": provenance()}``.

Diagnostics from the file's ``history/`` group:
* HMC (``accept_prob``, ``accepted``, ``dH`` of shape (trajectories, chains); the first
  ``attrs["therm"]`` trajectories are dropped): ``acceptance`` (mean Metropolis
  probability), ``acceptance_rate`` (fraction accepted), ``exp_minus_dH`` (<exp(-dH)>,
  which must be 1), each {"value", "error", "tau_int", ...}, and ``n_trajectories``.
* smc (weighted): ``ess`` and ``ess_per_sample`` (of the whole file), ``tail_step_size``
  (the pilot-tuned step size at the target, at the fixed target acceptance: larger means
  a better drift), ``level_acceptance_min`` (worst level), ``resamplings`` per batch,
  ``log_z``.
* MAALA and other samplers: ``tail_acceptance`` (and the alias ``acceptance``) from the
  first history key among ``tail_acceptance, tail_accept_prob, accept_prob, acceptance,
  accepted``, else from the attr ``tail_acceptance`` / ``acceptance``; every other history key
  containing "accept" is reported as ``history_<key>``.  MAALA files also give
  ``tail_step_size`` (the frozen MH step size, mean over batches, from ``batch_eps``) and
  ``annealed_plaquette`` (plaquette after the first tail step, from ``tail_plaquette``:
  how close the annealing alone lands to the target) and, for U(1)/U(2),
  ``tail_q_changed`` (fraction of chains whose topological charge the corrected tail
  changed: near 0, Q is inherited from the annealing).

Tidy table (``collect_summaries``)
----------------------------------
One row per (summary file, observable); columns ``TABLE_COLUMNS``.  Observables: the
measured ones (plaquette, W_RxT, Q), ``chi_t``, and the diagnostics ``acceptance``
(HMC: mean acceptance probability; MAALA: tail acceptance) and ``exp_minus_dH`` (HMC).
``exact`` comes from the exact JSONs (``campaign.exact.exact_observables`` format; <Q> = 0
and <exp(-dH)> = 1 are exact without them); ``pull`` = (value - exact) / error;
``cost_per_independent_sample_s`` = wall_time_s / n_eff.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CampaignError
from .stats import (
    bootstrap_errors,
    chain_summary,
    chi_t_summary,
    independent_summary,
    kish_ess,
    weighted_summary,
)

TAIL_ACCEPT_KEYS = ("tail_acceptance", "tail_accept_prob", "accept_prob", "acceptance", "accepted")

TABLE_COLUMNS = [
    "source", "file", "table", "group", "beta", "L", "algorithm", "approximate", "weighted", "beta0", "L0",
    "independent", "n_configs", "n_chains", "observable", "R", "T", "area",
    "value", "error", "tau_int", "tau_int_error", "n_eff", "exact", "pull", "reliable", "note",
    "wall_time_s", "cost_per_independent_sample_s",
]
_DIAGNOSTIC_ROWS = ("acceptance", "exp_minus_dH", "tail_step_size", "annealed_plaquette", "tail_q_changed",
                    "ess_per_sample", "level_acceptance_min", "resamplings")
# the exact value a row is shown against (None: none); rows not listed use their own name
_EXACT_OF = {"acceptance": None, "tail_step_size": None, "tail_q_changed": None, "annealed_plaquette": "plaquette",
             "ess_per_sample": None, "level_acceptance_min": None, "resamplings": None}
_NO_PULL = ("annealed_plaquette",)  # biased by design: its distance from exact is the diagnostic
_LOOP_RE = re.compile(r"^W_(\d+)x(\d+)$")


def summarize_table(df: pd.DataFrame, volume: float, independent: bool, columns=None,
                    log_weights=None, blocks=None, independent_blocks: bool = False) -> dict:
    """Summaries of the per-config table columns (+ "chi_t" if a Q column exists).
    Markov chains are split by ``chain`` and ordered by ``step``; with ``log_weights`` the
    rows are weighted samples in independent ``blocks``."""
    columns = [c for c in (columns or df.columns) if c not in ("config", "chain", "step", "log_weight", "weight_block")]
    out: dict = {}
    data = {c: df[c].to_numpy(dtype=np.float64) for c in columns}
    if "Q" in columns:
        data["chi_t"] = data["Q"] ** 2 / volume
    if log_weights is not None:
        lw = np.asarray(log_weights, dtype=np.float64)
        return {c: weighted_summary(v, lw, blocks, independent_within_blocks=independent_blocks)
                for c, v in data.items()}
    if independent:
        names = list(data)
        mat = np.column_stack([data[c] for c in names]) if names else np.zeros((len(df), 0))
        boot = bootstrap_errors(mat) if len(df) else np.full(len(names), np.nan)
        return {c: independent_summary(data[c], boot[j]) for j, c in enumerate(names)}
    order = df.sort_values(["chain", "step"], kind="stable")
    groups = [g for _, g in order.groupby("chain", sort=True)]
    for c in columns:
        out[c] = chain_summary([g[c].to_numpy(float) for g in groups])
    if "Q" in columns:
        out["chi_t"] = chi_t_summary([g["Q"].to_numpy(float) for g in groups], volume)
    return out


# ----------------------------------------------------------------------- diagnostics
def _per_chain_columns(arr: np.ndarray, skip: int) -> list[np.ndarray]:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] > skip:
        arr = arr[skip:]
    cols = [arr[:, j] for j in range(arr.shape[1])]
    return [c[np.isfinite(c)] for c in cols]


def _mean_of(values) -> dict:
    """Plain mean and standard error of diagnostic numbers (not a Monte Carlo estimate)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"value": math.nan, "error": math.nan, "n": 0}
    return {"value": float(x.mean()), "error": float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan, "n": n}


def algorithm_diagnostics(algorithm: str, history: dict, attrs: dict) -> dict:
    """Acceptance, energy-violation and importance-weight diagnostics (module docstring)."""
    diag: dict = {}
    algorithm = str(algorithm).lower()
    if algorithm == "hmc":
        therm = int(attrs.get("therm", 0) or 0)
        for key, name in (("accept_prob", "acceptance"), ("accepted", "acceptance_rate")):
            if key in history and np.size(history[key]):
                diag[name] = chain_summary(_per_chain_columns(history[key], therm))
        if "dH" in history and np.size(history["dH"]):
            dh = np.asarray(history["dH"], dtype=np.float64)
            with np.errstate(over="ignore"):
                diag["exp_minus_dH"] = chain_summary(_per_chain_columns(np.exp(-dh), therm))
            diag["n_trajectories"] = int(dh.shape[0] - therm if dh.shape[0] > therm else dh.shape[0])
        return diag
    if algorithm == "smc":
        for key in ("ess", "ess_per_sample", "tail_step_size", "level_acceptance_min", "log_z"):
            if isinstance(attrs.get(key), (int, float)) and not isinstance(attrs.get(key), bool):
                diag[key] = {"value": float(attrs[key]), "error": math.nan}
        if "batch_resamplings" in history:
            diag["resamplings"] = _mean_of(history["batch_resamplings"])
        if "tail_acceptance" in history and np.size(history["tail_acceptance"]):
            diag["acceptance"] = _mean_of(history["tail_acceptance"])
        return diag
    for key in TAIL_ACCEPT_KEYS:
        if key in history and np.size(history[key]):
            diag["tail_acceptance"] = {**_mean_of(history[key]), "source": f"history/{key}"}
            break
    else:
        for key in ("tail_acceptance", "acceptance"):
            if key in attrs and isinstance(attrs[key], (int, float)) and not isinstance(attrs[key], bool):
                diag["tail_acceptance"] = {"value": float(attrs[key]), "error": math.nan, "source": f"attrs/{key}"}
                break
    for key, value in history.items():
        if "accept" in key and np.size(value):
            diag[f"history_{key}"] = _mean_of(value)
    if "tail_acceptance" in diag:
        diag["acceptance"] = diag["tail_acceptance"]
    if "batch_eps" in history and np.size(history["batch_eps"]):
        diag["tail_step_size"] = _mean_of(history["batch_eps"])
    if "tail_q_changed" in history and np.size(history["tail_q_changed"]):
        diag["tail_q_changed"] = _mean_of(history["tail_q_changed"])
    tp = np.asarray(history.get("tail_plaquette", []), dtype=np.float64)
    if tp.ndim >= 1 and len(tp):
        diag["annealed_plaquette"] = _mean_of(np.atleast_1d(tp[0]))
    return diag


# ------------------------------------------------------------------------ file I/O
def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def _table_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if re.search(r"\.csv(\.(gz|bz2|xz|zst))?$", name):
        return "csv"
    raise CampaignError(f"table {path}: unknown format; use a .csv or .parquet file name")


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table atomically, csv or parquet chosen by the file extension."""
    from .io import atomic_path

    path = Path(path)
    fmt = _table_format(path)
    suffix = "".join(path.suffixes[-2:]) if fmt == "csv" else path.suffix
    with atomic_path(path, suffix=suffix) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            try:
                df.to_parquet(tmp, index=False)
            except ImportError as exc:
                raise CampaignError(f"cannot write parquet {path}: {exc}; use a .csv name") from None
    return path


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by ``write_table``."""
    path = Path(path)
    if not path.exists():
        raise CampaignError(f"table not found: {path}")
    fmt = _table_format(path)
    try:
        return pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    except ImportError as exc:
        raise CampaignError(f"cannot read parquet {path}: {exc}") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise CampaignError(f"cannot read table {path}: {exc}") from None


def write_json_atomic(obj: dict, path: str | os.PathLike) -> Path:
    from .io import atomic_path

    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(_json_safe(obj), indent=1, allow_nan=False) + "\n")
    return Path(path)


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)


def _read_chunk_configs(L: int, N: int) -> int:
    per_config = 16 * 2 * L * L * N * N
    return max(1, (128 * 2**20) // per_config)


def measure_file(h5_path, out_table, max_loop: int | None = None, summary_path=None) -> dict:
    """Measure every configuration of an ensemble/sample file.

    Writes the per-configuration table ``out_table`` (csv or parquet by extension; columns
    config, chain, step, plaquette, W_RxT (R <= T <= max_loop), Q for u1/u2, and for weighted
    samples log_weight and weight_block), and the JSON
    summary to ``summary_path`` if given; returns the summary (module docstring).
    ``max_loop`` defaults to ``campaign.observables.default_max_loop(L)`` = min(8, L//2).
    Raises campaign.io.EnsembleFileError for a missing or bad file."""
    import torch

    from . import io
    from .groups import get_group
    from .observables import default_max_loop, loop_names, measure_links

    h5_path = Path(h5_path)
    head = io.read_ensemble(h5_path, load_links=False)
    attrs = head.attrs
    try:
        group = get_group(attrs["group"])
    except ValueError as exc:
        raise io.EnsembleFileError(f"{h5_path}: {exc}") from None
    L = int(attrs["L"])
    n = int(len(head.chain))
    max_loop = default_max_loop(L) if max_loop is None else int(max_loop)
    if not 1 <= max_loop <= L:
        raise CampaignError(f"max_loop must lie in [1, L={L}], got {max_loop}")
    chunk = _read_chunk_configs(L, group.N)
    columns: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, chunk):
        part = io.read_ensemble(h5_path, configs=slice(start, min(n, start + chunk)), dtype=torch.float64)
        if part.links.shape[-1] != group.N:
            raise io.EnsembleFileError(
                f"{h5_path}: links have N={part.links.shape[-1]}, group {group.name} needs N={group.N}"
            )
        try:
            meas = measure_links(group, part.links, max_loop)
        except ValueError as exc:
            raise io.EnsembleFileError(f"{h5_path}: configurations {start}..: {exc}") from None
        for key, value in meas.items():
            columns.setdefault(key, []).append(value.cpu().numpy())
    table = pd.DataFrame({
        "config": np.arange(n, dtype=np.int64),
        "chain": np.asarray(head.chain, dtype=np.int64),
        "step": np.asarray(head.step, dtype=np.int64),
    })
    names = ["plaquette", *loop_names(max_loop)] + (["Q"] if group.has_topology else [])
    for key in names:
        table[key] = np.concatenate(columns[key]) if key in columns else np.zeros(0)
    if group.has_topology:
        table["Q"] = table["Q"].round().astype(np.int64)
    if head.log_weights is not None:  # weighted samples: the per-configuration weights go along
        table["log_weight"] = np.asarray(head.log_weights, dtype=np.float64)
        table["weight_block"] = np.asarray(head.weight_block if head.weight_block is not None else np.zeros(n),
                                           dtype=np.int64)
    write_table(table, out_table)

    independent = _truthy(attrs.get("independent", False))
    weighted = head.log_weights is not None
    if weighted and len(head.log_weights) != n:
        raise io.EnsembleFileError(f"{h5_path}: {len(head.log_weights)} log weights for {n} configurations")
    stats = summarize_table(table, float(L * L), independent, columns=names, log_weights=head.log_weights,
                            blocks=head.weight_block, independent_blocks=float(attrs.get("resample_ess", 1)) == 0)
    chi = stats.pop("chi_t", None)
    summary = {
        "file": str(h5_path),
        "table": str(out_table),
        "group": group.name,
        "beta": float(attrs["beta"]),
        "L": L,
        "algorithm": str(attrs["algorithm"]),
        "n_configs": n,
        "n_chains": int(len(np.unique(head.chain))) if n else 0,
        "independent": independent,
        "weighted": weighted,
        "max_loop": max_loop,
        "observables": stats,
    }
    if chi is not None:
        summary["chi_t"] = chi
    summary["diagnostics"] = algorithm_diagnostics(summary["algorithm"], head.history, attrs)
    summary["attrs"] = attrs
    summary["measured"] = io.provenance()
    summary = _json_safe(summary)
    if summary_path is not None:
        write_json_atomic(summary, summary_path)
    return summary


# ------------------------------------------------------------------- tidy table
def _load_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CampaignError(f"summary file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path} is not valid JSON: {exc}") from None


def _key(group, beta, L):
    return (str(group).lower(), round(float(beta), 9), int(L))


def _num(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _exact_lookup(exact: dict | None, observable: str):
    if observable == "Q":
        return 0.0
    if observable == "exp_minus_dH":
        return 1.0
    if not exact:
        return math.nan
    if observable in ("plaquette", "chi_t"):
        return _num(exact.get(observable))
    m = _LOOP_RE.match(observable)
    if m:
        loops = exact.get("wilson_loops") or {}
        r, t = m.groups()
        return _num(loops.get(f"{r}x{t}", loops.get(f"{t}x{r}")))
    return math.nan


def collect_summaries(summary_paths, exact_paths=None) -> pd.DataFrame:
    """Tidy table, one row per (summary file, observable); columns ``TABLE_COLUMNS``."""
    exact = {}
    for p in exact_paths or ():
        e = _load_json(p)
        try:
            exact[_key(e["group"], e["beta"], e["L"])] = e
        except KeyError as exc:
            raise CampaignError(f"exact file {p} lacks {exc}") from None
    rows = []
    for p in summary_paths:
        s = _load_json(p)
        attrs = s.get("attrs") or {}
        group, beta, L = s["group"], float(s["beta"]), int(s["L"])
        alg = str(s.get("algorithm", attrs.get("algorithm", ""))).lower()
        wall = _num(attrs.get("wall_time_s"))
        ex = exact.get(_key(group, beta, L))
        base = {
            "source": str(p), "file": s.get("file"), "table": s.get("table"),
            "group": str(group).lower(), "beta": beta, "L": L, "algorithm": alg,
            "beta0": _num(attrs.get("model_beta0")), "L0": _num(attrs.get("model_L0")),
            "approximate": _truthy(attrs.get("approximate", False)),
            "weighted": bool(s.get("weighted", False)),
            "independent": bool(s.get("independent", False)),
            "n_configs": int(s.get("n_configs", 0)), "n_chains": int(s.get("n_chains", 0)),
        }
        entries = dict(s.get("observables") or {})
        if s.get("chi_t"):
            entries["chi_t"] = s["chi_t"]
        diag = s.get("diagnostics") or {}
        for key in _DIAGNOSTIC_ROWS:
            if isinstance(diag.get(key), dict):
                entries[key] = diag[key]
        for name, st in entries.items():
            m = _LOOP_RE.match(name)
            r, t = (int(m.group(1)), int(m.group(2))) if m else (math.nan, math.nan)
            value, error = _num(st.get("value")), _num(st.get("error"))
            n_eff = _num(st.get("n_eff"))
            exact_name = _EXACT_OF.get(name, name)
            ex_val = _exact_lookup(ex, exact_name) if exact_name else math.nan
            if name == "Q" and base["group"] == "su2":
                ex_val = math.nan
            pull = (value - ex_val) / error if (
                error and math.isfinite(error) and error > 0 and name not in _NO_PULL) else math.nan
            rows.append({
                **base, "observable": name, "R": r, "T": t, "area": r * t if m else math.nan,
                "value": value, "error": error, "tau_int": _num(st.get("tau_int")),
                "tau_int_error": _num(st.get("tau_int_error")), "n_eff": n_eff,
                "exact": ex_val, "pull": pull,
                "reliable": bool(st.get("reliable", name in _DIAGNOSTIC_ROWS)), "note": st.get("note") or "",
                "wall_time_s": wall,
                "cost_per_independent_sample_s": (
                    wall / n_eff if name not in _DIAGNOSTIC_ROWS and n_eff > 0 else math.nan
                ),
            })
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if len(df):
        df = df.sort_values(["group", "algorithm", "L", "beta", "source"], kind="stable").reset_index(drop=True)
    return df
