"""make_figures: every figure of the campaign, one file (PDF, PNG) and caption per stem."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .autocorrelation_cost import fig_autocorrelation_cost
from .beta_extrapolation import fig_beta_extrapolation
from .captions import _caption_rst, captions
from .data import _load_table, _PerConfig, _sample_histories, choose_L
from .diffusion_sampler import fig_diffusion_sampler
from .diffusion_sampler_levels import fig_diffusion_sampler_levels
from .plaquette_history_histogram import fig_plaquette_history_histogram
from .q_autocorrelation import fig_q_autocorrelation
from .style import GROUP_ORDER, STYLE, _group_order, _no_data, _save
from .topology import fig_topology
from .training_loss import fig_training_loss
from .wilson_loops import fig_wilson_loops, fig_wilson_loops_all_L


def make_figures(
    table,
    outdir,
    per_config_tables=None,
    loss_logs=None,
    *,
    L: int | None = None,
    groups=None,
    exact_curves: bool = True,
    formats=("pdf", "png"),
    write_captions: bool = True,
    only=None,
    sample_files=None,
) -> dict[str, list[Path]]:
    """Write every figure into ``outdir``; returns {figure name: [paths]} (module doc).

    ``L``: lattice size of the single-L figures (default ``choose_L``); ``groups``: groups
    that get a ``beta_extrapolation_<g>`` figure (default: those in the table);
    ``exact_curves``: compute dense exact curves with campaign.exact; ``only``: draw just
    these stems (``figure_stems``), e.g. one figure as a Snakemake target; ``sample_files``:
    the diffusion sample files whose level history is drawn (None: the table's ``file``
    column)."""
    if only is not None:
        only = {only} if isinstance(only, str) else set(only)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    df = _load_table(table)
    L = choose_L(df) if L is None else int(L)
    groups = _group_order(df["group"]) if groups is None else [str(g).lower() for g in groups]
    per_config = _PerConfig(per_config_tables)
    caps = captions(L, groups or GROUP_ORDER)
    out: dict[str, list[Path]] = {}

    def emit(name, stem, draw):
        if only is not None and stem not in only:
            return  # not asked for: not drawn
        out.setdefault(name, []).extend(_save(draw(), outdir, stem, formats))
        if write_captions:
            from ..io import atomic_path

            text = caps.get(stem) or caps.get(name, "")
            with atomic_path(outdir / f"{stem}.rst", suffix=".rst") as tmp:
                tmp.write_text(_caption_rst(text))

    with plt.rc_context(STYLE):
        emit("wilson_loops", "wilson_loops", lambda: fig_wilson_loops(df, L, exact_curves))
        emit("wilson_loops_all_L", "wilson_loops_all_L", lambda: fig_wilson_loops_all_L(df, exact_curves))
        if groups:
            for g in groups:
                emit("beta_extrapolation", f"beta_extrapolation_{g}",
                     lambda g=g: fig_beta_extrapolation(df, g, exact_curves))
        else:
            caps["beta_extrapolation"] = "Extrapolation in beta (no data yet)."
            emit("beta_extrapolation", "beta_extrapolation", lambda: _no_data("Extrapolation in beta", "empty table"))
        emit("diffusion_sampler", "diffusion_sampler", lambda: fig_diffusion_sampler(df))
        emit("diffusion_sampler_levels", "diffusion_sampler_levels",
             lambda: fig_diffusion_sampler_levels(_sample_histories(df, sample_files)))
        emit("topology", "topology", lambda: fig_topology(df, per_config, L))
        emit("plaquette_history_histogram", "plaquette_history_histogram",
             lambda: fig_plaquette_history_histogram(df, per_config, L))
        emit("autocorrelation_cost", "autocorrelation_cost", lambda: fig_autocorrelation_cost(df))
        emit("q_autocorrelation", "q_autocorrelation", lambda: fig_q_autocorrelation(df, per_config))
        emit("training_loss", "training_loss", lambda: fig_training_loss(loss_logs))
    return out
