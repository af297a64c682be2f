"""CL verdict and CL / DM observables against the exact values: pipeline.measure_point."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.complex_langevin.pipeline import measure_point

res = measure_point(snakemake.input.cl, snakemake.input.dm, snakemake.output[0])  # noqa: F821
print(res["cl"]["statement"])
