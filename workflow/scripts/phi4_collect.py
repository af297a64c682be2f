"""The phi^4 campaign table: campaign.phi4.stages.collect."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.phi4.stages import collect

collect(list(snakemake.input), snakemake.output[0])  # noqa: F821
