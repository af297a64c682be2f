"""Measure one ensemble or sample file: campaign.analysis.measure_file."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.analysis import measure_file

measure_file(
    snakemake.input[0],  # noqa: F821
    snakemake.output.table,  # noqa: F821
    max_loop=snakemake.params.max_loop,  # noqa: F821
    summary_path=snakemake.output.summary,  # noqa: F821
)
