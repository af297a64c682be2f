"""Train one model on its HMC ensemble: campaign.training.train_model."""

from _common import device, start

start(snakemake)  # noqa: F821

from campaign.training import TrainSettings, train_model

settings = TrainSettings(
    **snakemake.params.settings,  # noqa: F821  the model's config entry: steps, batch_size, lr, ...
    seed=snakemake.params.seed,  # noqa: F821
    device=device(snakemake),  # noqa: F821
    dtype=snakemake.params.dtype,  # noqa: F821
    checkpoint_interval=snakemake.config["checkpoint_interval"],  # noqa: F821
)
# resume: a retried job continues from <model>.parts/
train_model(snakemake.input[0], snakemake.output.model, settings, loss_log=snakemake.output.loss,  # noqa: F821
            resume=True, progress=True)
