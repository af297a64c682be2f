"""The campaign table: campaign.analysis.collect_summaries -> write_table."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.analysis import collect_summaries, write_table

df = collect_summaries(list(snakemake.input.summaries), list(snakemake.input.exact))  # noqa: F821
write_table(df, snakemake.output[0])  # noqa: F821
