"""Process setup for a campaign job: torch threads, the C allocator, the compile cache.

One call, ``setup``, at the start of every command (``campaign.cli.main``) and workflow
job, so that ``campaign hmc`` runs the way ``benchmarks/hmc.py`` measures it:

* threads: an explicit count, else ``SLURM_CPUS_PER_TASK`` (a cluster job's share), else
  torch's default (all cores).  Under load, every OpenMP region waits for its slowest
  thread: a job that uses more threads than it was given stalls (30-50x per trajectory
  seen with 2 threads on a busy 2-core machine).
* allocator: glibc keeps freed blocks up to ``MALLOC_THRESHOLD_BYTES`` instead of
  returning them to the system and faulting fresh pages in for every large temporary
  (1.2x for U(1) HMC; the benchmark's ``--malloc tuned``).  Values set in the environment
  (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``) are left alone.
* compile cache: inductor's cache (compiled kernels, FX graphs) in a directory shared by
  every job of a campaign (the workflow uses ``<campaign>/.cache/torch``), so the first
  job compiles and the others load.  Given as an argument or ``CAMPAIGN_COMPILE_CACHE``;
  otherwise torch's default (``/tmp/torchinductor_$USER``).  The fields' kernels go there
  compiled ahead of time (``campaign.fields.aot``): a later job loads them without
  dynamo.  Whether a job compiles at all stays ``campaign.fields``' decision (the run's length).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MALLOC_THRESHOLD_BYTES = 512 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
CACHE_ENV = "CAMPAIGN_COMPILE_CACHE"


def thread_count(requested: int | None = None) -> int | None:
    """The torch threads for this process, None for torch's default."""
    if requested is not None:
        return max(1, int(requested))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    return max(1, int(slurm)) if slurm.isdigit() else None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds; False where there is no glibc or the
    environment already decides."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_THRESHOLD_BYTES)
                    and libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def use_compile_cache(directory: str | os.PathLike | None = None) -> str | None:
    """Point inductor's cache at directory (else ``CAMPAIGN_COMPILE_CACHE``); the path
    used, or None for torch's default."""
    directory = directory or os.environ.get(CACHE_ENV) or None
    if directory is None:
        return None
    path = Path(directory).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    os.environ[CACHE_ENV] = str(path)  # campaign.fields keeps its ahead-of-time kernels there
    return str(path)


def setup(threads: int | None = None, compile_cache: str | os.PathLike | None = None) -> dict:
    """Threads, allocator and compile cache for this process; returns what was set."""
    import torch

    n = thread_count(threads)
    if n is not None:
        torch.set_num_threads(n)
    return {"threads": torch.get_num_threads(), "allocator_tuned": tune_allocator(),
            "compile_cache": use_compile_cache(compile_cache)}
