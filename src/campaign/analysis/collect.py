"""collect_summaries: the tidy campaign table from the measure summaries and the exact JSONs."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

from ..errors import CampaignError
from ..theories import THEORIES
from .tables import TABLE_COLUMNS, _truthy

_DIAGNOSTIC_ROWS = ("acceptance", "exp_minus_dH", "tail_step_size", "annealed_plaquette", "tail_q_changed",
                    "ess_per_sample", "level_acceptance_min", "resamplings")
# the exact value a row is shown against (None: none); rows not listed use their own name
_EXACT_OF = {"acceptance": None, "tail_step_size": None, "tail_q_changed": None, "annealed_plaquette": "plaquette",
             "ess_per_sample": None, "level_acceptance_min": None, "resamplings": None}
_NO_PULL = ("annealed_plaquette",)  # biased by design: its distance from exact is the diagnostic
_LOOP_RE = re.compile(r"^W_(\d+)x(\d+)$")

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
            if name == "Q" and not _has_topology(base["group"]):
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
