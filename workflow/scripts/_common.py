"""Shared by the workflow scripts: job plumbing only (logs, threads, device), no physics."""

from __future__ import annotations

import os
import sys


def start(snakemake) -> None:
    """Send everything this job prints (Python and C level) to its log file, if it has
    one, and let torch use exactly the job's threads."""
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
    try:
        import torch

        torch.set_num_threads(max(1, int(snakemake.threads)))
    except ImportError:
        pass


def device(snakemake) -> str:
    """The config's device ("auto" resolved); read from the config, not from params, so
    moving a campaign to a GPU does not trigger reruns."""
    from campaign.config import resolve_device

    return resolve_device(snakemake.config["device"])
