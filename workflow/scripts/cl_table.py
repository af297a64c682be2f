"""Moments table CL / DM / exact over the grid: pipeline.moments_table."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.complex_langevin.pipeline import moments_table

points = [tuple(p) for p in snakemake.params.points]  # noqa: F821
moments_table(dict(zip(points, snakemake.input)), snakemake.output[0])  # noqa: F821
