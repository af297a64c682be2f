"""torch.compile for the fields' kernels: when to compile (``CAMPAIGN_COMPILE``), the
inductor options, and ``_Kernel``, a pure tensor function run compiled or eagerly, with a
fall-back to eager for the rest of the process when compilation is broken here."""

from __future__ import annotations

import os
import warnings

import torch

from . import aot

COMPILE_MIN_LINKS = 8192  # links x chains from which "auto" compiles (L=16 x 16 chains)
# "auto" compiles a run only if it would take longer than this uncompiled: without a
# campaign compile cache, dynamo traces every kernel in every process (U(1), L = 32: about
# 5-7 s on a 2-core machine), and a cold cache's first job builds the ahead-of-time
# packages (``aot``: 40-90 s); a warm cache loads them in milliseconds.
COMPILE_MIN_EAGER_S = 30.0
# Uncompiled throughput, link force evaluations per second on one thread (HMC with
# CAMPAIGN_COMPILE=never, Omelyan, L = 32 x 64 chains for U(1), L = 16 x 16 for SU(2)
# and U(2), measured on a loaded 2-core machine; benchmarks/hmc.py): the estimate of how
# long a run takes eagerly.  A faster machine runs shorter than estimated: the threshold
# leaves it several times the warm compile time.
EAGER_LINK_FORCES_PER_S = {
    ("u1-angles", "float32"): 1.4e8, ("u1-angles", "float64"): 4.6e7,
    ("su2-quaternions", "float32"): 4.5e6, ("su2-quaternions", "float64"): 3.8e6,
    ("u2-phase-quaternions", "float32"): 4.1e6, ("u2-phase-quaternions", "float64"): 3.3e6,
}


INDUCTOR_OPTIONS = {
    # let gcc fuse a * b + c into FMA instructions (inductor compiles with -ffp-contract=off):
    # the polynomials and quaternion products run ~1.5x faster, results change by rounding
    "cpp.enable_floating_point_contract_flag": "fast",
}
_compile_disabled_reason: str | None = None


def compile_mode() -> str:
    mode = os.environ.get("CAMPAIGN_COMPILE", "auto").strip().lower()
    if mode in ("0", "no", "off", "false", "never"):
        return "never"
    if mode in ("1", "yes", "on", "true", "always"):
        return "always"
    return "auto"


def compile_pays(field_name: str, dtype: torch.dtype, link_force_evaluations: float) -> bool:
    """Whether a run of this many link force evaluations (links x chains x force
    evaluations per trajectory x trajectories) would take COMPILE_MIN_EAGER_S or more
    uncompiled."""
    return long_enough(EAGER_LINK_FORCES_PER_S, (field_name, str(dtype).removeprefix("torch.")),
                       link_force_evaluations, COMPILE_MIN_EAGER_S)


def long_enough(eager_rates: dict, key, work: float, min_eager_s: float) -> bool:
    """The compile rule of every compiled path (the fields' kernels, the L-CNN): compile
    when ``work`` at the measured eager rate ``eager_rates[key]`` (work per second) would
    take ``min_eager_s`` or more uncompiled; an unmeasured case compiles."""
    rate = eager_rates.get(key)
    return rate is None or work / rate >= min_eager_s


def compile_disabled_reason() -> str | None:
    """Why compilation was switched off in this process (None while it works)."""
    return _compile_disabled_reason


def disable_compilation(exc: BaseException, owner: str, what: str) -> None:
    """Compilation is broken in this process (a compiled call raised where the eager one
    did not): record why and warn once; every compiled path (the fields' kernels, the
    L-CNN) runs eagerly from now on."""
    global _compile_disabled_reason
    msg = str(exc).strip().splitlines()
    _compile_disabled_reason = f"{type(exc).__name__}: {msg[0] if msg else ''}"
    warnings.warn(f"{owner}: torch.compile failed for {what} ({_compile_disabled_reason[:300]}); "
                  "running eagerly from now on", RuntimeWarning, stacklevel=4)


class _Kernel:
    """A pure tensor function run through torch.compile when asked, eagerly otherwise.

    If the compiled call raises where the eager call succeeds, compilation is broken here
    (no C++ compiler, no Triton, unsupported Python): warn once and stay eager for the
    rest of the process.  An error the eager call raises too is the caller's and is
    re-raised unchanged."""

    def __init__(self, fn, dynamic: bool | None = None, options: dict | None = None):
        self.fn = fn
        self.name = fn.__name__.lstrip("_")
        self.dynamic = dynamic
        self.options = {**INDUCTOR_OPTIONS, **(options or {})}
        self._compiled = None
        self._packages: dict = {}  # argument signature -> loaded AOTInductor package

    def __call__(self, use_compiled: bool, *args):
        if not use_compiled or _compile_disabled_reason is not None:
            return self.fn(*args)
        args = tuple(map(canonical_single_chain, args))
        directory = aot.store()
        if directory is not None:
            try:
                return self._call_package(directory, args)
            except Exception as exc:  # noqa: BLE001 - torch.compile below decides
                aot.disable(exc, self.name)
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.fn, options=self.options, dynamic=self.dynamic)
            return self._compiled(*args)
        except Exception as exc:  # noqa: BLE001 - decided below by the eager call
            out = self.fn(*args)  # raises the caller's own errors
            disable_compilation(exc, "campaign.fields", self.name)
            return out

    def _call_package(self, directory, args):
        """The kernel from its ahead-of-time package (``aot``): no dynamo in the call."""
        key = tuple((a.shape, a.stride(), a.dtype, a.device) if torch.is_tensor(a) else a for a in args)
        package = self._packages.get(key)
        if package is None:
            package = self._packages[key] = aot.load_or_build(directory, self.fn, self.name, self.options, args)
        return package(*(a for a in args if torch.is_tensor(a)))


def canonical_single_chain(t):
    """With one chain, the chain axis's stride is arbitrary (chains_last makes it 1, a
    kernel's output has it numel): one canonical value, or every other call fails
    dynamo's stride guard and recompiles (a minute per kernel for U(2) at L = 64)."""
    if torch.is_tensor(t) and t.ndim > 1 and t.shape[0] == 1 and t.stride(0) != t[0].numel():
        # an alias through set_, not a view: dynamo would guard on a view's base strides
        alias = torch.empty(0, dtype=t.dtype, device=t.device)
        return alias.set_(t.untyped_storage(), t.storage_offset(), t.shape, (t[0].numel(), *t.stride()[1:]))
    return t
