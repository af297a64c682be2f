"""Figures from the campaign table: campaign.figures.make_figures."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.figures import make_figures

make_figures(
    snakemake.input.table,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    per_config_tables=list(snakemake.input.per_config),  # noqa: F821
    loss_logs=list(snakemake.input.loss),  # noqa: F821
    groups=snakemake.params.groups,  # noqa: F821
)
