"""Coulomb-gas temperature and level statistics of every (lr, B) point of one model:
campaign.weights.analysis.analyse_model."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.weights.analysis import analyse_model

analyse_model(
    list(snakemake.input),  # noqa: F821
    snakemake.output.summary,  # noqa: F821
    snakemake.output.hist,  # noqa: F821
    stationary_fraction=snakemake.params.stationary_fraction,  # noqa: F821
    n_blocks=snakemake.params.n_blocks,  # noqa: F821
)
