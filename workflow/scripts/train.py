"""Train one model on its HMC ensemble: campaign.training.train_model."""

from _common import device, start

start(snakemake)  # noqa: F821

from campaign.training import train_model

train_model(
    snakemake.input[0],  # noqa: F821
    snakemake.output.model,  # noqa: F821
    **snakemake.params.settings,  # noqa: F821  steps, batch_size, lr, ...
    seed=snakemake.params.seed,  # noqa: F821
    device=device(snakemake),  # noqa: F821
    dtype=snakemake.params.dtype,  # noqa: F821
    loss_log=snakemake.output.loss,  # noqa: F821
    checkpoint_interval=snakemake.config["checkpoint_interval"],  # noqa: F821
    resume=True,  # a retried job continues from <model>.ckpt
    progress=True,
)
