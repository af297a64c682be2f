"""Kernels compiled ahead of time (AOTInductor) and kept in the campaign's compile cache.

torch.compile traces every kernel with dynamo in every process, even when inductor's
cache holds the compiled code: about 7 s per U(1) job on a 2-core machine (two thirds in
the Threefry kernel), against 2.5% of that for 32 trajectories.  An AOTInductor package
is a shared library with the kernel and its C++ wrapper; loading one and calling it
skips dynamo and AOT autograd altogether (tens of milliseconds per kernel).  So, when a
campaign names a compile cache (``CAMPAIGN_COMPILE_CACHE``, set by ``campaign.runtime``),
the first job exports each kernel for each argument signature it meets and packages it
(``<cache>/aoti/``); every later job loads the package, and jobs that start together wait
for the one building it (``build_once``).  The package is the same inductor
code torch.compile runs, with the same options: the results are bit-identical to the
torch.compile path (tests/test_fields.py checks it).

The key of a package: the kernel's name, the sources of ``campaign.fields`` (an edited
kernel gets a new package), torch's version, the inductor options, the device and the
CPU's instruction-set flags (a package from a node with other vector units is not
loaded), and every argument: shape, strides and dtype of tensors (the package has them
built in), the value of anything else."""

from __future__ import annotations

import hashlib
import os
import platform
import warnings
from functools import cache
from pathlib import Path

import torch

CACHE_ENV = "CAMPAIGN_COMPILE_CACHE"
_broken: str | None = None  # why packages are not used in this process (None while they work)


def store() -> Path | None:
    """The directory of the packages, None when no campaign compile cache is named or
    packaging failed in this process."""
    directory = os.environ.get(CACHE_ENV, "")
    if _broken is not None or not directory.strip():
        return None
    return _packages_in(directory)


@cache
def _packages_in(directory: str) -> Path:
    # asked on every kernel call: building the Path each time cost 5% of a U(1) trajectory
    return Path(directory.strip()) / "aoti"


@cache
def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@cache
def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return ""


def _signature(arg) -> str:
    if torch.is_tensor(arg):
        return f"T{tuple(arg.shape)}{arg.stride()}{arg.dtype}{arg.device.type}"
    return repr(arg)


def package_key(name: str, options: dict, args) -> str:
    parts = [name, _sources_digest(), torch.__version__, repr(sorted(options.items())), platform.machine(),
             _cpu_flags(), *map(_signature, args)]
    return f"{name}-{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:32]}"


class _Bound(torch.nn.Module):
    """The kernel with its non-tensor arguments fixed: export takes tensors only."""

    def __init__(self, fn, args):
        super().__init__()
        self.fn, self.args = fn, args

    def forward(self, *tensors):
        it = iter(tensors)
        return self.fn(*(next(it) if torch.is_tensor(a) else a for a in self.args))


def load_or_build(directory: Path, fn, name: str, options: dict, args):
    """The package for fn at these arguments (built and written atomically if missing), as
    a callable of the tensor arguments."""
    path = directory / f"{package_key(name, options, args)}.pt2"

    def build(partial: Path) -> None:
        tensors = tuple(a for a in args if torch.is_tensor(a))
        exported = torch.export.export(_Bound(fn, args), tensors)
        torch._inductor.aoti_compile_and_package(exported, package_path=str(partial),
                                                 inductor_configs=dict(options))

    build_once(path, build)
    return _Package(path)


def build_once(path: Path, build) -> None:
    """Make ``path`` with ``build(partial)`` unless it exists.  Concurrent jobs of a campaign
    wait for the one that builds (a lock beside the package: a killed builder releases it),
    so the first wave of jobs builds each package once instead of once per job."""
    import fcntl

    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX)
        except OSError:  # a file system without locks: every job builds, the last one's package stays
            pass
        if path.exists():  # built by the job that held the lock
            return
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial{path.suffix}")
        build(partial)
        os.replace(partial, path)


class _Package:
    """A loaded package, called with the kernel's tensor arguments.  The loader directly,
    not ``torch._inductor.aoti_load_package``: that probes the compiler for every vector
    instruction set in every process (subprocesses, seconds) only to warn on a mismatch
    the package key already excludes, and unpacks the call spec on every call."""

    def __init__(self, path: Path):
        from torch.utils import _pytree as pytree

        self.loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        self.out_spec = pytree.treespec_loads(self.loader.get_call_spec()[1])
        self._unflatten = pytree.tree_unflatten

    def __call__(self, *tensors):
        return self._unflatten(self.loader.boxed_run(list(tensors)), self.out_spec)


def disable(exc: BaseException, name: str) -> None:
    """Stop using packages in this process (torch.compile takes over), with one warning."""
    global _broken
    msg = str(exc).strip().splitlines()
    _broken = f"{type(exc).__name__}: {msg[0] if msg else ''}"
    warnings.warn(f"campaign.fields: ahead-of-time compilation failed for {name} ({_broken[:300]}); "
                  "using torch.compile from now on", RuntimeWarning, stacklevel=4)
