"""Independent draws of a CL diffusion model: campaign.complex_langevin.pipeline.sample_dm."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.complex_langevin.pipeline import sample_dm

sample_dm(
    snakemake.input[0],  # noqa: F821
    snakemake.output[0],  # noqa: F821
    snakemake.params.n_samples,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
)
