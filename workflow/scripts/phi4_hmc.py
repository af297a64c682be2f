"""phi^4 HMC ensemble: campaign.phi4.hmc.generate_ensemble."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.phi4.hmc import Phi4HMCSettings, generate_ensemble

settings = Phi4HMCSettings(**snakemake.params.settings, seed=snakemake.params.seed)  # noqa: F821
generate_ensemble(snakemake.output[0], settings,  # noqa: F821
                  checkpoint_interval=snakemake.config["checkpoint_interval"], progress=True)  # noqa: F821
