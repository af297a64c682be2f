"""Data for the figures: the tidy table loaded and typed, the per-configuration tables matched
to its rows, exact curves from campaign.exact, and the selections several figures share."""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..theories.observables import LOOP_RE, get_observable, loop_name, parse_loop
from .style import DIFFUSION

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


@functools.lru_cache(maxsize=256)
def _exact_curve(observable: str, group: str, L: int, betas: tuple):
    """Exact values of a table observable ("plaquette", "W_2x2", "chi_t") at ``betas``, from
    campaign.exact through the observable registry.  Where the exact solution refuses or fails
    (out of range, not converged) it warns once and returns None: the figure then draws the
    table's exact values instead."""
    exact = get_observable(observable).exact_function()
    loop = parse_loop(observable) or ()
    try:
        vals = [float(exact(group, b, L, *loop)) for b in betas]
    except (ValueError, RuntimeError, ArithmeticError) as exc:
        _warn_once((observable, group), f"exact {observable} for {group} failed ({type(exc).__name__}: {exc}); "
                   "curve skipped")
        return None
    return np.asarray(vals)


def _exact_for_loop(group, beta, L, R, T):
    vals = _exact_curve(loop_name(int(R), int(T)), group, int(L), (float(beta),))
    return float(vals[0]) if vals is not None else math.nan


# ----------------------------------------------------------------------- loading
def _load_table(table) -> pd.DataFrame:
    if table is None:
        df = pd.DataFrame()
    elif isinstance(table, pd.DataFrame):
        df = table.copy()
    else:
        from ..analysis import read_table

        path = Path(table)
        df = read_table(path) if path.exists() and path.stat().st_size else pd.DataFrame()
    from ..analysis import TABLE_COLUMNS

    for col in TABLE_COLUMNS:
        if col not in df:
            df[col] = np.nan
    df["algorithm"] = df["algorithm"].astype(str).str.lower()
    df["group"] = df["group"].astype(str).str.lower()
    df["observable"] = df["observable"].astype(str)
    for col in ("beta", "L", "value", "error", "exact", "beta0", "L0", "R", "T", "area",
                "tau_int", "tau_int_error", "n_eff", "wall_time_s", "cost_per_independent_sample_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    m = df["observable"].str.extract(LOOP_RE)
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
            from ..analysis import read_table
            from ..errors import CampaignError

            try:
                self.cache[path] = read_table(src)
            except CampaignError as exc:
                warnings.warn(f"per-configuration table skipped: {exc}")
                self.cache[path] = None
        return self.cache[path]


def _significant(values, errors):
    v, e = np.asarray(values, float), np.asarray(errors, float)
    return np.isfinite(v) & (v > 0) & ~(v <= 2 * np.where(np.isfinite(e), e, 0.0))


def _dense_betas(betas, beta0s) -> tuple:
    pts = [b for b in list(betas) + list(beta0s) if np.isfinite(b)]
    lo, hi = min(pts), max(pts)
    pad = 0.05 * (hi - lo if hi > lo else max(hi, 1.0))
    return tuple(np.linspace(max(1e-3, lo - pad), hi + pad, 40).round(6))


# ------------------------------------------------------------ sample-file histories
def _sample_histories(df: pd.DataFrame, sample_files=None) -> list[dict]:
    """The ``history`` group and attributes of the diffusion sample files: ``sample_files``
    (paths), or (None) the table's ``file`` column of its diffusion rows where that file exists.
    Each entry: {group, beta, L, method, history, attrs}; unreadable files are skipped with a
    warning (the figure says what is missing)."""
    from ..errors import CampaignError
    from ..io import read_ensemble

    if sample_files is None:
        rows = df[df["algorithm"].isin(DIFFUSION)] if len(df) else df
        paths = [p for p in dict.fromkeys(rows.get("file", pd.Series(dtype=str)))
                 if isinstance(p, str) and Path(p).exists()]
    else:
        paths = list(sample_files)
    out = []
    for p in paths:
        try:
            ens = read_ensemble(p, load_links=False)
        except CampaignError as exc:
            warnings.warn(f"sample file skipped: {exc}")
            continue
        a = ens.attrs
        if "level_sigma" not in ens.history:
            continue  # an HMC ensemble: no annealing levels
        out.append({"group": str(a["group"]).lower(), "beta": float(a["beta"]), "L": int(a["L"]),
                    "method": str(a.get("method", a.get("algorithm", "smc"))).lower(),
                    "history": ens.history, "attrs": a, "path": str(p)})
    return sorted(out, key=lambda e: (e["group"], e["L"], e["beta"]))
