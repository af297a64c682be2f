"""The observable registry: one entry per measured quantity with its table name, label, the
per-configuration function (``campaign.observables``) and the exact function
(``campaign.exact``); and the one spelling of a Wilson-loop name.

A Wilson loop is called ``W_{R}x{T}`` everywhere in the package (per-configuration tables,
summaries, the tidy table).  The exact JSON files keep their own key, ``"{R}x{T}"`` inside
``"wilson_loops"``; ``exact_loop_key`` and ``exact_value`` translate, and ``parse_loop`` is the
only parser of the name.

The functions are named, not imported ("module:function", resolved when called), so that
tables and figures can use this registry without loading torch or scipy.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass

LOOP_RE = re.compile(r"^W_(\d+)x(\d+)$")


def loop_name(R: int, T: int) -> str:
    """Table name of the R x T Wilson loop."""
    return f"W_{R}x{T}"


def parse_loop(name: str) -> tuple[int, int] | None:
    """(R, T) of a Wilson-loop name, None for any other observable."""
    m = LOOP_RE.match(str(name))
    return (int(m.group(1)), int(m.group(2))) if m else None


def exact_loop_key(R: int, T: int) -> str:
    """Key of the R x T loop in the ``wilson_loops`` mapping of an exact JSON file."""
    return f"{R}x{T}"


def _resolve(ref: str | None):
    if ref is None:
        return None
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Observable:
    """``measure``: per-configuration function of the links; ``exact``: exact expectation on
    the torus, called as (group, beta, L) or, for loops, (group, beta, L, R, T); ``exact_value``
    of a quantity without a function (<Q> = 0)."""

    name: str  # table name; for loops the pattern W_{R}x{T}
    label: str  # axis label (matplotlib TeX)
    measure: str | None
    exact: str | None
    topological: bool = False  # only for theories with a charge
    exact_value: float | None = None

    def measure_function(self):
        return _resolve(self.measure)

    def exact_function(self):
        return _resolve(self.exact)


OBSERVABLES: dict[str, Observable] = {o.name: o for o in (
    Observable("plaquette", r"$\langle P\rangle = \langle W(1,1)\rangle$", "campaign.observables:plaquette",
               "campaign.exact:plaquette"),
    Observable("W_RxT", r"$\langle W(R,T)\rangle$", "campaign.observables:wilson_loops", "campaign.exact:wilson_loop"),
    Observable("Q", r"$Q$", "campaign.observables:topological_charge", None, topological=True, exact_value=0.0),
    Observable("chi_t", r"$\chi_t = \langle Q^2\rangle/V$", None, "campaign.exact:chi_t", topological=True),
)}


def get_observable(name: str) -> Observable:
    """The registry entry of a table name (any ``W_RxT`` gives the Wilson-loop entry)."""
    return OBSERVABLES["W_RxT" if parse_loop(name) else name]


def exact_value(exact: dict | None, observable: str) -> float:
    """The exact value of a table observable from an exact JSON dict (``exact_observables``
    format); NaN where the file has none.  <Q> = 0 needs no file."""
    entry = OBSERVABLES.get(observable)
    if entry is not None and entry.exact_value is not None:
        return entry.exact_value
    if not exact:
        return math.nan
    loop = parse_loop(observable)
    if loop:
        loops = exact.get("wilson_loops") or {}
        r, t = loop
        return _number(loops.get(exact_loop_key(r, t), loops.get(exact_loop_key(t, r))))
    return _number(exact.get(observable)) if entry is not None else math.nan


def _number(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan
