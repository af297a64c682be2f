"""Figure 6: the denoising score-matching loss against optimiser step, one curve per model."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import GROUP_LABEL, HALF_WIDTH, L_COLOURS, _no_data, _tidy_log


def _loss_label(path: Path, taken: set) -> str:
    stem = re.sub(r"[_-]?loss$", "", path.stem) or path.stem
    label = stem
    if label in taken or path.parent.name not in ("", "."):
        label = f"{GROUP_LABEL.get(path.parent.name, path.parent.name)}: {stem}" if path.parent.name else stem
    taken.add(label)
    return label


def _load_losses(loss_logs) -> list[tuple[str, pd.DataFrame]]:
    out = []
    if not loss_logs:
        return out
    items = loss_logs.items() if isinstance(loss_logs, Mapping) else [(None, p) for p in loss_logs]
    taken: set = set()
    for label, src in items:
        if isinstance(src, pd.DataFrame):
            d = src
            label = label or f"model {len(out) + 1}"
        else:
            p = Path(src)
            try:
                d = pd.read_csv(p)
            except (OSError, ValueError, pd.errors.ParserError) as exc:
                warnings.warn(f"loss log {p} skipped: {exc}")
                continue
            label = label or _loss_label(p, taken)
        if "loss" not in d or not len(d):
            warnings.warn(f"loss log {label} has no 'loss' column or no rows; skipped")
            continue
        out.append((str(label), d))
    return out


def fig_training_loss(loss_logs):
    title = "Training loss"
    logs = _load_losses(loss_logs)
    if not logs:
        return _no_data(title, "no training loss logs")
    fig, ax = plt.subplots(figsize=(HALF_WIDTH, 2.4))
    all_pos = True
    for i, (label, d) in enumerate(logs):
        c = L_COLOURS[i % len(L_COLOURS)]
        x = d["step"].to_numpy(float) if "step" in d else np.arange(len(d), dtype=float)
        y = pd.to_numeric(d["loss"], errors="coerce").to_numpy(float)
        ok = np.isfinite(y)
        all_pos &= bool((y[ok] > 0).all())
        win = max(1, len(y) // 40)
        smooth = pd.Series(y).rolling(win, min_periods=1, center=True).mean().to_numpy()
        if win > 1:
            ax.plot(x, y, color=c, lw=0.4, alpha=0.35)
        ax.plot(x, smooth, color=c, lw=1.1, label=label)
        for col in d.columns:
            if col.startswith("val") and "loss" in col:
                ax.plot(x, pd.to_numeric(d[col], errors="coerce"), color=c, lw=0.9, ls="--",
                        label=f"{label} (validation)")
    if all_pos:
        ax.set_yscale("log")
        _tidy_log(ax)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("DSM loss")
    # above the axes: the raw curves fill the panel
    n_curves = len(ax.get_legend_handles_labels()[1])
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(3, max(1, n_curves)), fontsize=6.5,
              handlelength=1.2, columnspacing=1.0)
    return fig
