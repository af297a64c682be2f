"""Gamma-method / bootstrap / weighted summaries of a per-configuration table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import (
    bootstrap_errors,
    chain_summary,
    chi_t_summary,
    independent_summary,
    weighted_summary,
)


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
