"""Shared by the workflow scripts: job plumbing only (logs, threads, device), no physics."""

from __future__ import annotations

import os
import sys


def start(snakemake) -> None:
    """Send everything this job prints (Python and C level) to its log file, if it has
    one, let torch use exactly the job's threads, and make the log's first line say where
    the job runs: device, dtype and torch threads (a GPU stage whose device is "cuda" but
    sees no GPU stops here with one line)."""
    if snakemake.log:
        path = str(snakemake.log[0])
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    one_line_errors(snakemake.rule)
    import torch

    torch.set_num_threads(max(1, int(snakemake.threads)))
    print(job_header(snakemake), flush=True)


def one_line_errors(rule: str) -> None:
    """How a job ends on an exception it does not catch.  Stopped by the scheduler's signal
    (``campaign.preemption.Preempted``, its checkpoint written): one line and EXIT_PREEMPTED,
    which Snakemake retries.  A user error (``campaign.errors.CampaignError``: a bad input, an
    output locked by another run, ...): one line in its log, as on the command line, exit
    status 1.  Anything else keeps its traceback."""
    from campaign.errors import CampaignError
    from campaign.preemption import EXIT_PREEMPTED, Preempted

    default = sys.excepthook

    def hook(kind, exc, tb):
        if issubclass(kind, Preempted):
            print(f"{rule}: stopped: {exc}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_PREEMPTED)  # the job's finally blocks have run: its files are closed
        if issubclass(kind, CampaignError):
            print(f"{rule}: error: {exc}", file=sys.stderr, flush=True)
        else:
            default(kind, exc, tb)

    sys.excepthook = hook


def uses_device(snakemake) -> bool:
    """The GPU-capable stages (hmc, train, sample, weights_train) pass the config's dtype;
    the others compute on the CPU in float64."""
    return "dtype" in snakemake.params.keys()


def job_header(snakemake) -> str:
    """One line: rule, device (with the GPU's name), dtype, torch threads, SLURM job."""
    import torch

    if uses_device(snakemake):
        dev, dtype = device(snakemake), snakemake.params.dtype
    else:
        dev, dtype = "cpu", "float64"
    where = dev
    if dev.startswith("cuda"):
        where = f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
    slurm = os.environ.get("SLURM_JOB_ID")
    return (f"{snakemake.rule}: device={where} dtype={dtype} torch_threads={torch.get_num_threads()}"
            + (f" slurm_job={slurm} node={os.environ.get('SLURMD_NODENAME', '?')}" if slurm else ""))


def device(snakemake) -> str:
    """The config's device ("auto" resolved); read from the config, not from params, so
    moving a campaign to a GPU does not trigger reruns.  "cuda" without a visible GPU
    ends the job at once with one line (not a CPU fallback, not a traceback later)."""
    from campaign.device import device_name

    name = snakemake.config["device"]
    dev = device_name(name)
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"error: device: {name}, but this job sees no GPU (CUDA_VISIBLE_DEVICES="
                  f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); run it on a GPU node "
                  "or set device: auto or cpu", file=sys.stderr, flush=True)
            sys.exit(1)
    return dev
