"""One weights figure: campaign.weights.figures.make_figure."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.weights.figures import make_figure

inp = snakemake.input  # noqa: F821
make_figure(
    snakemake.wildcards.wfigure,  # noqa: F821
    snakemake.output.png,  # noqa: F821
    table=inp.table if hasattr(inp, "table") else None,
    hists=list(inp.hists),
    summaries=list(inp.summaries),
)
