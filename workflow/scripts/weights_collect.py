"""The weights points table: campaign.weights.analysis.write_points_table."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.weights.analysis import write_points_table

write_points_table(list(snakemake.input), snakemake.output[0])  # noqa: F821
