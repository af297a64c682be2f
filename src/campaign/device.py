"""Device and precision names -> torch objects: the one resolver of every stage.

A device name is "auto" (cuda when torch sees a GPU, else cpu) or anything ``torch.device``
accepts; a precision name is "float64" or "float32" (the real dtype; complex fields take
the matching complex dtype, ``groups.complex_dtype``).  Every failure is a one-line
``CampaignError``.
"""

from __future__ import annotations

import sys

import torch

from .errors import CampaignError

DTYPES = ("float64", "float32")
_REAL = {"float64": torch.float64, "float32": torch.float32}


def device_name(name: str | None) -> str:
    """"auto" (or None) -> "cuda" when torch sees a GPU, else "cpu"; anything else unchanged."""
    name = "auto" if name is None else str(name)
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device of ``name`` ("auto" resolved), checked to be usable here."""
    text = device_name(None if name is None else str(name))
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise CampaignError(f"unknown torch device {text!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CampaignError(f"device {text!r} requested but torch sees no CUDA GPU")
    try:  # an index beyond the visible GPUs, or a backend this build lacks
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, ValueError) as exc:
        raise CampaignError(f"device {text!r} is not available: {exc}") from None
    return dev


def real_dtype(name: str | torch.dtype) -> torch.dtype:
    """torch.float64 / torch.float32 from "float64" / "float32" (or the dtype itself)."""
    if isinstance(name, torch.dtype) and name in _REAL.values():
        return name
    if name not in _REAL:
        raise CampaignError(f"dtype must be float64 or float32, got {name!r}")
    return _REAL[name]


def dtype_name(dtype: torch.dtype) -> str:
    """"float64" for torch.float64 (the spelling files and settings record)."""
    return str(dtype).replace("torch.", "")


def restore_generator(generator: torch.Generator, state: torch.Tensor, reseed: int, what: str) -> bool:
    """Load a checkpoint's random state into ``generator``; True when it continues that stream.

    The CPU's generator (Mersenne twister) and CUDA's (Philox) keep states of different
    kinds, so a checkpoint moved to the other kind of device cannot continue its random
    stream: the generator is seeded with ``reseed`` instead and a note says so.  The chain
    still continues from its saved state (fields, counters, step size, optimiser); only its
    later random numbers differ from those of an uninterrupted run on the first device."""
    if state.numel() == generator.get_state().numel():
        generator.set_state(state)
        return True
    print(f"{what}: note: the checkpoint's random state belongs to another kind of device than "
          f"{generator.device.type}; the chain continues with a fresh random stream (seed {reseed})",
          file=sys.stderr, flush=True)
    generator.manual_seed(reseed)
    return False
