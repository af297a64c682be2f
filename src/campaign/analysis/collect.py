"""collect_summaries: the tidy campaign table from the measure summaries and the exact JSONs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..errors import CampaignError
from ..theories import THEORIES
from ..theories.observables import exact_value, parse_loop
from .tables import TABLE_COLUMNS, _truthy

_DIAGNOSTIC_ROWS = ("acceptance", "exp_minus_dH", "tail_step_size", "annealed_plaquette", "tail_q_changed",
                    "ess_per_sample", "level_acceptance_min", "resamplings")
# the exact value a row is shown against (None: none); rows not listed use their own name
_EXACT_OF = {"acceptance": None, "tail_step_size": None, "tail_q_changed": None, "annealed_plaquette": "plaquette",
             "ess_per_sample": None, "level_acceptance_min": None, "resamplings": None}
_EXACT_CONSTANT = {"exp_minus_dH": 1.0}  # <exp(-dH)> = 1 for any reversible, area-preserving integrator
_NO_PULL = ("annealed_plaquette",)  # biased by design: its distance from exact is the diagnostic


def _load_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CampaignError(f"summary file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CampaignError(f"{path} is not valid JSON: {exc}") from None


def _has_topology(group: str) -> bool:
    """A registered theory without a charge has no <Q>; an unknown name keeps <Q> = 0."""
    theory = THEORIES.get(group)
    return theory is None or theory.has_topology


def _key(group, beta, L):
    return (str(group).lower(), round(float(beta), 9), int(L))


def _num(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _exact_for_row(exact: dict | None, name: str, group: str) -> float:
    exact_name = _EXACT_OF.get(name, name)
    if exact_name is None or (name == "Q" and not _has_topology(group)):
        return math.nan
    if exact_name in _EXACT_CONSTANT:
        return _EXACT_CONSTANT[exact_name]
    return exact_value(exact, exact_name)


def _load_exact(exact_paths) -> dict:
    exact = {}
    for p in exact_paths or ():
        e = _load_json(p)
        try:
            exact[_key(e["group"], e["beta"], e["L"])] = e
        except KeyError as exc:
            raise CampaignError(f"exact file {p} lacks {exc}") from None
    return exact


def _base_columns(path, s: dict) -> dict:
    """The columns every row of one summary file shares."""
    attrs = s.get("attrs") or {}
    return {
        "source": str(path), "file": s.get("file"), "table": s.get("table"),
        "group": str(s["group"]).lower(), "beta": float(s["beta"]), "L": int(s["L"]),
        "algorithm": str(s.get("algorithm", attrs.get("algorithm", ""))).lower(),
        "beta0": _num(attrs.get("model_beta0")), "L0": _num(attrs.get("model_L0")),
        "approximate": _truthy(attrs.get("approximate", False)),
        "weighted": bool(s.get("weighted", False)),
        "independent": bool(s.get("independent", False)),
        "n_configs": int(s.get("n_configs", 0)), "n_chains": int(s.get("n_chains", 0)),
    }


def _entries(s: dict) -> dict:
    """{row name: statistics}: the observables, chi_t and the diagnostics shown as rows."""
    entries = dict(s.get("observables") or {})
    if s.get("chi_t"):
        entries["chi_t"] = s["chi_t"]
    diag = s.get("diagnostics") or {}
    for key in _DIAGNOSTIC_ROWS:
        if isinstance(diag.get(key), dict):
            entries[key] = diag[key]
    return entries


def _row(base: dict, name: str, st: dict, ex_val: float, wall: float) -> dict:
    loop = parse_loop(name)
    r, t = loop if loop else (math.nan, math.nan)
    value, error = _num(st.get("value")), _num(st.get("error"))
    n_eff = _num(st.get("n_eff"))
    pull = (value - ex_val) / error if (
        error and math.isfinite(error) and error > 0 and name not in _NO_PULL) else math.nan
    return {
        **base, "observable": name, "R": r, "T": t, "area": r * t if loop else math.nan,
        "value": value, "error": error, "tau_int": _num(st.get("tau_int")),
        "tau_int_error": _num(st.get("tau_int_error")), "n_eff": n_eff,
        "exact": ex_val, "pull": pull,
        "reliable": bool(st.get("reliable", name in _DIAGNOSTIC_ROWS)), "note": st.get("note") or "",
        "wall_time_s": wall,
        "cost_per_independent_sample_s": (
            wall / n_eff if name not in _DIAGNOSTIC_ROWS and n_eff > 0 else math.nan
        ),
    }


def collect_summaries(summary_paths, exact_paths=None) -> pd.DataFrame:
    """Tidy table, one row per (summary file, observable); columns ``TABLE_COLUMNS``."""
    exact = _load_exact(exact_paths)
    rows = []
    for p in summary_paths:
        s = _load_json(p)
        base = _base_columns(p, s)
        wall = _num((s.get("attrs") or {}).get("wall_time_s"))
        ex = exact.get(_key(s["group"], s["beta"], s["L"]))
        for name, st in _entries(s).items():
            rows.append(_row(base, name, st, _exact_for_row(ex, name, base["group"]), wall))
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if len(df):
        df = df.sort_values(["group", "algorithm", "L", "beta", "source"], kind="stable").reset_index(drop=True)
    return df
