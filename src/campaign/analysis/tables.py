"""Table and JSON files: csv / parquet chosen by the file name, atomic writes, JSON without NaN."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import CampaignError

TABLE_COLUMNS = [
    "source", "file", "table", "group", "beta", "L", "algorithm", "approximate", "weighted", "beta0", "L0",
    "independent", "n_configs", "n_chains", "observable", "R", "T", "area",
    "value", "error", "tau_int", "tau_int_error", "n_eff", "exact", "pull", "reliable", "note",
    "wall_time_s", "cost_per_independent_sample_s",
]
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
    from ..io import atomic_path

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
    from ..io import atomic_path

    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(_json_safe(obj), indent=1, allow_nan=False) + "\n")
    return Path(path)


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v)
