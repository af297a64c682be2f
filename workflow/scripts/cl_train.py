"""The diffusion model of one CL ensemble: campaign.complex_langevin.pipeline.train_dm."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.complex_langevin.diffusion import CLDiffusionSettings
from campaign.complex_langevin.pipeline import train_dm

train_dm(
    snakemake.input[0],  # noqa: F821
    snakemake.output[0],  # noqa: F821
    CLDiffusionSettings(**snakemake.params.settings),  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
)
