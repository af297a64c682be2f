"""measure_file: the per-configuration table and the JSON summary of one ensemble or sample file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CampaignError
from .diagnostics import algorithm_diagnostics
from .summaries import summarize_table
from .tables import _json_safe, _truthy, write_json_atomic, write_table


def _read_chunk_configs(L: int, N: int) -> int:
    per_config = 16 * 2 * L * L * N * N
    return max(1, (128 * 2**20) // per_config)


def _measure_links(h5_path: Path, group, L: int, n: int, max_loop: int) -> dict[str, list[np.ndarray]]:
    """Read the links in chunks of bounded memory and measure them: {column: [arrays]}."""
    import torch  # here, not at module level: tables and figures use campaign.analysis without torch

    from .. import io
    from ..observables import measure_links

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
    return columns


def _configuration_table(head, columns: dict, names: list[str], has_topology: bool) -> pd.DataFrame:
    n = int(len(head.chain))
    table = pd.DataFrame({
        "config": np.arange(n, dtype=np.int64),
        "chain": np.asarray(head.chain, dtype=np.int64),
        "step": np.asarray(head.step, dtype=np.int64),
    })
    for key in names:
        table[key] = np.concatenate(columns[key]) if key in columns else np.zeros(0)
    if has_topology:
        table["Q"] = table["Q"].round().astype(np.int64)
    if head.log_weights is not None:  # weighted samples: the per-configuration weights go along
        table["log_weight"] = np.asarray(head.log_weights, dtype=np.float64)
        table["weight_block"] = np.asarray(head.weight_block if head.weight_block is not None else np.zeros(n),
                                           dtype=np.int64)
    return table


def _summary(h5_path, out_table, head, group, max_loop: int, stats: dict, independent: bool) -> dict:
    from .. import io

    attrs, n = head.attrs, int(len(head.chain))
    chi = stats.pop("chi_t", None)
    summary = {
        "file": str(h5_path),
        "table": str(out_table),
        "group": group.name,
        "beta": float(attrs["beta"]),
        "L": int(attrs["L"]),
        "algorithm": str(attrs["algorithm"]),
        "n_configs": n,
        "n_chains": int(len(np.unique(head.chain))) if n else 0,
        "independent": independent,
        "weighted": head.log_weights is not None,
        "max_loop": max_loop,
        "observables": stats,
    }
    if chi is not None:
        summary["chi_t"] = chi
    summary["diagnostics"] = algorithm_diagnostics(summary["algorithm"], head.history, attrs)
    summary["attrs"] = attrs
    summary["measured"] = io.provenance()
    return _json_safe(summary)


def measure_file(h5_path, out_table, max_loop: int | None = None, summary_path=None) -> dict:
    """Measure every configuration of an ensemble/sample file.

    Writes the per-configuration table ``out_table`` (csv or parquet by extension; columns
    config, chain, step, plaquette, W_RxT (R <= T <= max_loop), Q for u1/u2, and for weighted
    samples log_weight and weight_block), and the JSON
    summary to ``summary_path`` if given; returns the summary (module docstring).
    ``max_loop`` defaults to ``campaign.observables.default_max_loop(L)`` = min(8, L//2).
    Raises campaign.io.EnsembleFileError for a missing or bad file."""
    from .. import io
    from ..groups import get_group
    from ..observables import default_max_loop, loop_names

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
    columns = _measure_links(h5_path, group, L, n, max_loop)
    names = ["plaquette", *loop_names(max_loop)] + (["Q"] if group.has_topology else [])
    table = _configuration_table(head, columns, names, group.has_topology)
    write_table(table, out_table)

    independent = _truthy(attrs.get("independent", False))
    if head.log_weights is not None and len(head.log_weights) != n:
        raise io.EnsembleFileError(f"{h5_path}: {len(head.log_weights)} log weights for {n} configurations")
    stats = summarize_table(table, float(L * L), independent, columns=names, log_weights=head.log_weights,
                            blocks=head.weight_block, independent_blocks=float(attrs.get("resample_ess", 1)) == 0)
    summary = _summary(h5_path, out_table, head, group, max_loop, stats, independent)
    if summary_path is not None:
        write_json_atomic(summary, summary_path)
    return summary
