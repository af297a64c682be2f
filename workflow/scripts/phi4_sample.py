"""Diffusion-driven independence Metropolis at one (kappa, L): campaign.phi4.jobs.sample."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.phi4.jobs import Phi4SampleSettings, sample

p = snakemake.params  # noqa: F821
sample(snakemake.input[0], snakemake.output[0],  # noqa: F821
       Phi4SampleSettings(**{**p.settings, "shape": tuple(p.settings["shape"])}, seed=p.seed), progress=True)
