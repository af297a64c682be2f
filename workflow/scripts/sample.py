"""Diffusion samples at one (beta, L) from a trained model: campaign.samplers.job.sample_to_file."""

from _common import device, start

start(snakemake)  # noqa: F821

from campaign.samplers.job import sample_to_file
from campaign.samplers.settings import SampleSettings

w = snakemake.wildcards  # noqa: F821
settings = SampleSettings(
    beta=float(w.beta),
    L=int(w.L),
    **snakemake.params.settings,  # noqa: F821  the config's sample section: n_samples, method, ...
    seed=snakemake.params.seed,  # noqa: F821
    device=device(snakemake),  # noqa: F821
    dtype=snakemake.params.dtype,  # noqa: F821
)
# the group wildcard is the target: a model of another group copied into its folder is refused
sample_to_file(snakemake.input.model, snakemake.output[0], settings, group=w.group, progress=True)  # noqa: F821
