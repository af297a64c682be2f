"""Observables of one phi^4 ensemble or sample file: campaign.phi4.stages.measure_ensemble."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.phi4.stages import measure_ensemble

out = snakemake.output  # noqa: F821
measure_ensemble(snakemake.input[0], out.table, out.summary)  # noqa: F821
