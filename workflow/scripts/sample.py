"""MAALA samples at one (beta, L) from a trained model: campaign.sampler.sample_to_file."""

from _common import device, start

start(snakemake)  # noqa: F821

from campaign.sampler import sample_to_file

w = snakemake.wildcards  # noqa: F821
sample_to_file(
    snakemake.input.model,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    float(w.beta),
    int(w.L),
    **snakemake.params.settings,  # noqa: F821  n_samples, ...
    seed=snakemake.params.seed,  # noqa: F821
    device=device(snakemake),  # noqa: F821
    dtype=snakemake.params.dtype,  # noqa: F821
    progress=True,
)
