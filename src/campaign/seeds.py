"""Deterministic seeds from wildcards, so every random stream of a campaign is
reproducible from its config alone."""

from __future__ import annotations

import hashlib


def seed_from(*parts, base: int = 0) -> int:
    """A 63-bit seed from any sequence of labels, e.g. ("hmc", "su2", 2.0, 16)."""
    text = "/".join([str(base), *(_canonical(p) for p in parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def _canonical(part) -> str:
    """Numbers by value, so the wildcard "2" and the config's 2.0 give the same seed."""
    try:
        return repr(float(part))
    except (TypeError, ValueError):
        return str(part)
