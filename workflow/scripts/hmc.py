"""HMC reference ensemble: snakemake object -> campaign.hmc.generate_ensemble."""

import os

from _common import device, start

start(snakemake)  # noqa: F821 (the snakemake object is injected)

from campaign import runtime
from campaign.hmc import generate_ensemble

# the allocator settings of the benchmark, and one compile cache for every job of the
# campaign (the workflow runs in the campaign directory): the first job compiles
runtime.setup(snakemake.threads, os.environ.get(runtime.CACHE_ENV) or ".cache/torch")  # noqa: F821

w = snakemake.wildcards  # noqa: F821
generate_ensemble(
    snakemake.output[0],  # noqa: F821
    w.group,
    float(w.beta),
    int(w.L),
    **snakemake.params.settings,  # noqa: F821  n_configs, chains, therm, sep, ...
    seed=snakemake.params.seed,  # noqa: F821
    device=device(snakemake),  # noqa: F821
    dtype=snakemake.params.dtype,  # noqa: F821
    checkpoint_interval=snakemake.config["checkpoint_interval"],  # noqa: F821
    progress=True,
)
