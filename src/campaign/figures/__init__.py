"""The papers' figures from the campaign tables (matplotlib, Agg backend).

Inputs: the tidy table of ``campaign.analysis.collect_summaries`` (DataFrame or a csv /
parquet path), the per-configuration tables of ``measure_file`` (topology, W(1x1) histories,
Q autocorrelation), the diffusion sample files (their ``history`` group: per noise level) and
the training loss logs (csv with columns ``step, loss, ...``).

``make_figures(table, outdir, per_config_tables=None, loss_logs=None, *, L=None,
groups=None, exact_curves=True, formats=("pdf", "png"), write_captions=True, only=None,
sample_files=None)`` writes

============================  ==============================================================
stem                          content
============================  ==============================================================
wilson_loops                  W(R,T) vs area RT (log y), HMC vs diffusion vs exact, one panel
                              per (group, beta) at one L, with a pull panel underneath
wilson_loops_all_L            the same for every L: one row (or more) per (group, L)
beta_extrapolation_<g>        plaquette, W(2,2), chi_t (u1/u2) vs beta per target L, exact
                              curves, training beta0 marked; one figure per group
diffusion_sampler             the diffusion sampler's figure of merit vs beta, one curve per
                              L, one column per group: effective sample size per sample and
                              the step size at the fixed target acceptance (exact SMC), the
                              resamplings per batch
diffusion_sampler_levels      ESS/N, acceptance and step size per noise level (annealing
                              level) from the sample files' history, per (group, L), one curve
                              per beta
plaquette_history_histogram   W(1x1) histograms (diffusion weighted) and HMC chain histories
                              at the largest beta, exact value marked
topology                      Q histograms and Q histories, HMC vs diffusion at the largest
                              beta (u1/u2), from the per-configuration tables
autocorrelation_cost          tau_int(Q) (plaquette for SU(2)) and sampling cost per
                              independent sample vs beta, HMC vs diffusion
q_autocorrelation             autocorrelation function rho_Q(t) against the lag and tau_int(W),
                              window marked, HMC chains at the largest betas, per (group, L)
training_loss                 training loss vs optimiser step, one curve per model
============================  ==============================================================

and returns ``{figure name: [paths]}`` (keys ``FIGURES``; every figure as PDF and PNG).
``figure_stems(groups)`` lists the stems; ``only=`` draws a subset (the workflow makes one
figure per job, so each file is a target of its own).
A stage that has not run yet gives a figure that says "no data yet" instead of an error.

Captions: ``captions(L=None, groups=...)`` returns ``{stem: text}``; ``make_figures`` also
writes each caption as ``<stem>.rst`` next to the figure (reStructuredText, for a
Snakemake report).

Per-configuration tables are matched to the table rows by their path (the ``table`` column
written by ``measure_file``): ``per_config_tables`` may be a list of paths, a mapping
{path or (group, algorithm, beta, L): path or DataFrame}, or None (then the ``table``
column is used where that file exists).

Exact curves on a dense beta grid come from ``campaign.exact`` through the observable
registry (``campaign.theories.observables``); where the exact solution refuses a point or
does not converge, the figure falls back to the exact values stored in the table (drawn
through the measured betas) and a warning is issued.

Modules: ``style`` (palette, rc parameters, shared drawing helpers), ``captions``, ``data``
(table loading, per-configuration lookup, exact curves), one module per figure, ``make``.
Group labels, order and topology come from the theory registry (``campaign.theories``).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)

from .autocorrelation_cost import fig_autocorrelation_cost  # noqa: E402
from .beta_extrapolation import fig_beta_extrapolation  # noqa: E402
from .captions import (  # noqa: E402
    NEEDS_LOSS,
    NEEDS_NO_TABLE,
    NEEDS_PER_CONFIG,
    NEEDS_SAMPLES,
    captions,
    figure_stems,
)
from .data import choose_L  # noqa: E402
from .diffusion_sampler import fig_diffusion_sampler  # noqa: E402
from .diffusion_sampler_levels import fig_diffusion_sampler_levels  # noqa: E402
from .make import make_figures  # noqa: E402
from .style import FIGURES, GROUP_LABEL, GROUP_ORDER, STYLE, TOPOLOGICAL  # noqa: E402
from .plaquette_history_histogram import fig_plaquette_history_histogram  # noqa: E402
from .q_autocorrelation import fig_q_autocorrelation  # noqa: E402
from .topology import fig_topology  # noqa: E402
from .training_loss import fig_training_loss  # noqa: E402
from .wilson_loops import fig_wilson_loops, fig_wilson_loops_all_L  # noqa: E402

__all__ = [
    "FIGURES", "GROUP_LABEL", "GROUP_ORDER", "NEEDS_LOSS", "NEEDS_NO_TABLE", "NEEDS_PER_CONFIG", "NEEDS_SAMPLES",
    "STYLE", "TOPOLOGICAL", "captions", "choose_L", "fig_autocorrelation_cost", "fig_beta_extrapolation",
    "fig_diffusion_sampler", "fig_diffusion_sampler_levels", "fig_plaquette_history_histogram",
    "fig_q_autocorrelation", "fig_topology", "fig_training_loss", "fig_wilson_loops", "fig_wilson_loops_all_L",
    "figure_stems", "make_figures",
]
