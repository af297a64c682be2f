"""Cumulants through the diffusion, forward and backward: campaign.phi4.stages.cumulant_flow."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.phi4.stages import cumulant_flow

inp = snakemake.input  # noqa: F821
cumulant_flow(inp.ensemble, inp.model, snakemake.output[0], seed=snakemake.params.seed,  # noqa: F821
              **snakemake.params.settings)  # noqa: F821  sigmas, reverse_steps, n_samples, replicas
