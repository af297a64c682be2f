"""One SGD run logging weight-matrix spectra: campaign.weights.training.train_run."""

from _common import device, start

start(snakemake)  # noqa: F821

from campaign.weights.training import train_run

w = snakemake.wildcards  # noqa: F821
train_run(
    snakemake.output[0],  # noqa: F821
    w.wmodel,
    lr=float(w.lr),
    batch_size=int(w.B),
    seed=snakemake.params.seed,  # noqa: F821
    settings=snakemake.params.settings,  # noqa: F821
    **snakemake.params.train,  # noqa: F821  steps, log_every, optimizer
    device=device(snakemake),  # noqa: F821
    dtype=snakemake.params.dtype,  # noqa: F821
    checkpoint_interval=snakemake.config["checkpoint_interval"],  # noqa: F821
    resume=True,  # a retried job continues from <output>.ckpt
    progress=True,
)
