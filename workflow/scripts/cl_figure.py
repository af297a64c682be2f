"""CL histogram, DM draws and (where known) the exact P(x, y): pipeline.point_figure."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.complex_langevin.pipeline import point_figure

point_figure(snakemake.input.cl, snakemake.input.dm, snakemake.output[0],  # noqa: F821
             title=snakemake.wildcards.clpoint)  # noqa: F821
