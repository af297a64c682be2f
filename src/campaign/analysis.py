"""Statistics and tables: measure ensembles, Gamma-method summaries, the tidy campaign table.

Statistics
----------
* Markov chains (file attr ``independent`` false or absent): every chain is a replica of one
  pyerrors ensemble; ``gamma_method`` (automatic windowing, S = 2) gives value, error,
  tau_int (in units of stored configurations) with its error, and n_eff = n / (2 tau_int).
  pyerrors needs >= 5 entries per replica: chains shorter than that are concatenated, in
  chain order, into one extra replica (chains are mutually independent, so this only drops
  the lags that would cross a junction); with fewer than 5 configurations in all the
  plain standard error is reported with tau_int = NaN.
* chi_t = <Q^2> / V (V = L^2) is a derived pyerrors observable, so its error includes the
  autocorrelation of Q^2.
* Independent samples (attr ``independent`` true): error = std(ddof=1)/sqrt(n), plus
  ``error_bootstrap`` (1000 resamples of the mean, fixed seed), tau_int = 0.5,
  tau_int_error = 0, n_eff = n.

measure_file summary (JSON, NaN written as null)
------------------------------------------------
``{"file", "table", "group", "beta", "L", "algorithm", "n_configs", "n_chains",
"independent", "max_loop", "observables": {name: {"value", "error", "tau_int",
"tau_int_error", "n_eff"[, "error_bootstrap"]}}, "chi_t": {...same keys} (u1/u2 only),
"diagnostics": {...}, "attrs": {every root attr of the file}, "measured": provenance()}``.

Diagnostics from the file's ``history/`` group:
* HMC (``accept_prob``, ``accepted``, ``dH`` of shape (trajectories, chains); the first
  ``attrs["therm"]`` trajectories are dropped): ``acceptance`` (mean Metropolis
  probability), ``acceptance_rate`` (fraction accepted), ``exp_minus_dH`` (<exp(-dH)>,
  which must be 1), each {"value", "error", "tau_int", ...}, and ``n_trajectories``.
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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import CampaignError

MIN_REPLICA = 5  # pyerrors' minimum number of entries per replica
N_BOOT = 1000
S_TAU = 2.0  # Wolff's S parameter for the automatic windowing
TAIL_ACCEPT_KEYS = ("tail_acceptance", "tail_accept_prob", "accept_prob", "acceptance", "accepted")

TABLE_COLUMNS = [
    "source", "file", "table", "group", "beta", "L", "algorithm", "beta0", "L0",
    "independent", "n_configs", "n_chains", "observable", "R", "T", "area",
    "value", "error", "tau_int", "tau_int_error", "n_eff", "exact", "pull",
    "wall_time_s", "cost_per_independent_sample_s",
]
_DIAGNOSTIC_ROWS = ("acceptance", "exp_minus_dH", "tail_step_size", "annealed_plaquette", "tail_q_changed")
# the exact value a row is shown against (None: none); rows not listed use their own name
_EXACT_OF = {"acceptance": None, "tail_step_size": None, "tail_q_changed": None, "annealed_plaquette": "plaquette"}
_NO_PULL = ("annealed_plaquette",)  # biased by design: its distance from exact is the diagnostic
_LOOP_RE = re.compile(r"^W_(\d+)x(\d+)$")


# ------------------------------------------------------------------------ statistics
def _nan_summary(n: int) -> dict:
    nan = math.nan
    return {"value": nan, "error": nan, "tau_int": nan, "tau_int_error": nan, "n_eff": 0.0 if n == 0 else nan}


def _replicas(chains: list[np.ndarray]) -> list[np.ndarray]:
    """Chains long enough for pyerrors stay replicas; short ones are concatenated."""
    chains = [np.asarray(c, dtype=np.float64) for c in chains if len(c)]
    long = [c for c in chains if len(c) >= MIN_REPLICA]
    short = [c for c in chains if len(c) < MIN_REPLICA]
    if short:
        joined = np.concatenate(short)
        if len(joined) >= MIN_REPLICA:
            long.append(joined)
        elif long:
            warnings.warn(f"dropping {len(joined)} configuration(s) of chains shorter than {MIN_REPLICA}")
    return long


def _obs(replicas: list[np.ndarray], name: str = "ensemble"):
    with warnings.catch_warnings():  # pyerrors imports the deprecated scipy.odr
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyerrors as pe

    return pe.Obs(replicas, [f"{name}|r{i:04d}" for i in range(len(replicas))])


def _gm(obs, n: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obs.gamma_method(S=S_TAU)
    name = obs.e_names[0]
    tau = float(obs.e_tauint[name])
    dtau = float(obs.e_dtauint[name])
    return {
        "value": float(obs.value),
        "error": float(obs.dvalue),
        "tau_int": tau,
        "tau_int_error": dtau,
        "n_eff": float(n / (2 * tau)) if tau > 0 else float(n),
    }


def _plain(x: np.ndarray) -> dict:
    n = len(x)
    if n == 0:
        return _nan_summary(0)
    err = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"value": float(np.mean(x)), "error": err, "tau_int": math.nan, "tau_int_error": math.nan, "n_eff": math.nan}


def gamma_summary(chains: list[np.ndarray]) -> dict:
    """Gamma-method summary of one observable measured on several Markov chains
    (each array in Monte Carlo order).  Keys: value, error, tau_int, tau_int_error, n_eff."""
    reps = _replicas(chains)
    n = int(sum(len(r) for r in reps))
    if not reps:
        return _plain(np.concatenate([np.asarray(c, float) for c in chains]) if chains else np.zeros(0))
    return _gm(_obs(reps), n)


def chi_t_summary(q_chains: list[np.ndarray], volume: float) -> dict:
    """chi_t = <Q^2>/V as a derived pyerrors observable (errors include autocorrelations)."""
    reps = _replicas([np.asarray(q, float) ** 2 for q in q_chains])
    n = int(sum(len(r) for r in reps))
    if not reps:
        out = _plain(np.concatenate([np.asarray(q, float) ** 2 for q in q_chains]) if q_chains else np.zeros(0))
        return {**out, "value": out["value"] / volume, "error": out["error"] / volume}
    q2 = _obs(reps, "Q2")
    return _gm(q2 / float(volume), n)


def bootstrap_errors(x: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Bootstrap standard errors of the column means of x (n,) or (n, k); one set of
    resamples shared by all columns, drawn in batches to bound memory."""
    x = np.asarray(x, dtype=np.float64)
    squeeze = x.ndim == 1
    x = x.reshape(len(x), -1)
    n, k = x.shape
    if n < 2:
        out = np.full(k, np.nan)
        return out[0] if squeeze else out
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_boot, int(2e7 // max(1, n * k))))
    means = []
    done = 0
    while done < n_boot:
        b = min(batch, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        means.append(x[idx].mean(axis=1))
        done += b
    err = np.concatenate(means).std(axis=0, ddof=1)
    return float(err[0]) if squeeze else err


def independent_summary(x: np.ndarray, bootstrap_error: float | None = None) -> dict:
    """Summary of independent draws: standard error, bootstrap error, tau_int = 0.5."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return {**_nan_summary(0), "error_bootstrap": math.nan}
    if bootstrap_error is None:
        bootstrap_error = bootstrap_errors(x)
    return {
        "value": float(x.mean()),
        "error": float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
        "tau_int": 0.5,
        "tau_int_error": 0.0,
        "n_eff": float(n),
        "error_bootstrap": float(bootstrap_error),
    }


def summarize_table(df: pd.DataFrame, volume: float, independent: bool, columns=None) -> dict:
    """Summaries of the per-config table columns (+ "chi_t" if a Q column exists).
    Markov chains are split by ``chain`` and ordered by ``step``."""
    columns = [c for c in (columns or df.columns) if c not in ("config", "chain", "step")]
    out: dict = {}
    if independent:
        data = df[columns].to_numpy(dtype=np.float64)
        extra = "Q" in columns
        if extra:
            data = np.column_stack([data, df["Q"].to_numpy(float) ** 2 / volume])
        boot = bootstrap_errors(data) if len(df) else np.full(data.shape[1], np.nan)
        for j, c in enumerate(columns):
            out[c] = independent_summary(data[:, j], boot[j])
        if extra:
            out["chi_t"] = independent_summary(data[:, -1], boot[-1])
        return out
    order = df.sort_values(["chain", "step"], kind="stable")
    groups = [g for _, g in order.groupby("chain", sort=True)]
    for c in columns:
        out[c] = gamma_summary([g[c].to_numpy(float) for g in groups])
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


def algorithm_diagnostics(algorithm: str, history: dict, attrs: dict) -> dict:
    """Acceptance and energy-violation diagnostics from the file's history (see module doc)."""
    diag: dict = {}
    if str(algorithm).lower() == "hmc":
        therm = int(attrs.get("therm", 0) or 0)
        for key, name in (("accept_prob", "acceptance"), ("accepted", "acceptance_rate")):
            if key in history and np.size(history[key]):
                diag[name] = gamma_summary(_per_chain_columns(history[key], therm))
        if "dH" in history and np.size(history["dH"]):
            dh = np.asarray(history["dH"], dtype=np.float64)
            with np.errstate(over="ignore"):
                diag["exp_minus_dH"] = gamma_summary(_per_chain_columns(np.exp(-dh), therm))
            diag["n_trajectories"] = int(dh.shape[0] - therm if dh.shape[0] > therm else dh.shape[0])
        return diag
    for key in TAIL_ACCEPT_KEYS:
        if key in history and np.size(history[key]):
            vals = np.asarray(history[key], dtype=np.float64).ravel()
            vals = vals[np.isfinite(vals)]
            diag["tail_acceptance"] = {**_plain(vals), "source": f"history/{key}"}
            break
    else:
        for key in ("tail_acceptance", "acceptance"):
            if key in attrs and isinstance(attrs[key], (int, float)) and not isinstance(attrs[key], bool):
                diag["tail_acceptance"] = {"value": float(attrs[key]), "error": math.nan, "source": f"attrs/{key}"}
                break
    for key, value in history.items():
        if "accept" in key and np.size(value):
            vals = np.asarray(value, dtype=np.float64).ravel()
            diag[f"history_{key}"] = _plain(vals[np.isfinite(vals)])
    if "tail_acceptance" in diag:
        diag["acceptance"] = diag["tail_acceptance"]
    if "batch_eps" in history and np.size(history["batch_eps"]):
        diag["tail_step_size"] = _plain(np.asarray(history["batch_eps"], dtype=np.float64).ravel())
    if "tail_q_changed" in history and np.size(history["tail_q_changed"]):
        diag["tail_q_changed"] = _plain(np.asarray(history["tail_q_changed"], dtype=np.float64).ravel())
    tp = np.asarray(history.get("tail_plaquette", []), dtype=np.float64)
    if tp.ndim >= 1 and len(tp):
        diag["annealed_plaquette"] = _plain(np.atleast_1d(tp[0]).ravel())
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
    config, chain, step, plaquette, W_RxT (R <= T <= max_loop), Q for u1/u2), and the JSON
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
    write_table(table, out_table)

    independent = _truthy(attrs.get("independent", False))
    stats = summarize_table(table, float(L * L), independent, columns=names)
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
                "exact": ex_val, "pull": pull, "wall_time_s": wall,
                "cost_per_independent_sample_s": (
                    wall / n_eff if name not in _DIAGNOSTIC_ROWS and n_eff > 0 else math.nan
                ),
            })
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if len(df):
        df = df.sort_values(["group", "algorithm", "L", "beta", "source"], kind="stable").reset_index(drop=True)
    return df
