"""Memory layout of the fast fields: the chain axis innermost in memory, and lattice
shifts on the (..., x, y, chains) view."""

from __future__ import annotations

import torch


def chains_last(t: torch.Tensor) -> torch.Tensor:
    """Same values and shape (chain axis first), chain axis innermost in memory."""
    return t.movedim(0, -1).contiguous().movedim(-1, 0)


def _phys(t):
    """View with the chain axis last: (..., x, y, chains); contiguous for chains_last t."""
    return t.movedim(0, -1)


def _up(f, mu):
    """f(x + mu_hat) for a field laid out (..., x, y, chains)."""
    return torch.roll(f, -1, f.ndim - 3 + mu)


def _down(f, mu):
    """f(x - mu_hat)"""
    return torch.roll(f, 1, f.ndim - 3 + mu)
