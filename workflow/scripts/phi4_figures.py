"""The phi^4 figures: campaign.phi4.figures.make_figures."""

from _common import start

start(snakemake)  # noqa: F821

from pathlib import Path

from campaign.phi4.figures import make_figures

inp = snakemake.input  # noqa: F821
make_figures(Path(snakemake.output[0]).parent, table=inp.table, measured=list(inp.measured),  # noqa: F821
             cumulants=inp.cumulants[0] if inp.cumulants else None)
