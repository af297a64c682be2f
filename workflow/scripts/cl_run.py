"""One complex Langevin ensemble: campaign.complex_langevin.job.generate_cl_ensemble."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.complex_langevin.job import generate_cl_ensemble
from campaign.complex_langevin.langevin import CLSettings
from campaign.complex_langevin.models import make_model

model = make_model(snakemake.params.model, **snakemake.params.values)  # noqa: F821
settings = CLSettings(**{**snakemake.params.settings, "seed": snakemake.params.seed})  # noqa: F821
generate_cl_ensemble(
    snakemake.output[0],  # noqa: F821
    model,
    settings,
    checkpoint_interval=snakemake.config["checkpoint_interval"],  # noqa: F821
    progress=True,
)
