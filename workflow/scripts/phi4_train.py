"""phi^4 score model on one HMC ensemble: campaign.phi4.jobs.train."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.flat_diffusion import DSMSettings
from campaign.phi4.jobs import Phi4NetSettings, train

p = snakemake.params  # noqa: F821
# a retried job resumes from <output>.parts/
train(snakemake.input[0], snakemake.output[0], DSMSettings(**p.dsm), Phi4NetSettings(**p.net),  # noqa: F821
      seed=p.seed, progress=True)
