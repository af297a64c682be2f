"""One figure of the campaign (the stem in the figure wildcard): campaign.figures.make_figures."""

from pathlib import Path

from _common import start

start(snakemake)  # noqa: F821

from campaign.figures import make_figures

inp = snakemake.input  # noqa: F821
make_figures(
    inp.table if hasattr(inp, "table") else None,  # training_loss reads no table
    Path(snakemake.output.pdf).parent,  # noqa: F821
    per_config_tables=list(inp.per_config),
    loss_logs=list(inp.loss),
    sample_files=list(inp.samples),
    groups=snakemake.params.groups,  # noqa: F821
    only=snakemake.wildcards.figure,  # noqa: F821
)
