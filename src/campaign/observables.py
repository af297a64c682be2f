"""Per-configuration observables of 2D lattice gauge fields (physics only: no files).

Links ``U`` are complex tensors ``(B, 2, L, L, N, N)`` (see ``campaign.lattice``); every
function here returns one value per configuration, shape ``(B,)`` (or ``(B, R, T)`` for the
Wilson-loop grid), as float64.

* ``plaquette(U)``: (1/N) Re tr U_P averaged over sites, = W(1, 1).
* ``wilson_loops(U, max_extent)``: W(R, T) grid from ``campaign.lattice.wilson_loop_grid``
  (averaged over sites and both orientations, hence symmetric in R, T).
* ``topological_charge(group, U)``: U(1): Q = (1/2pi) sum_P arg U_P; U(2):
  Q = (1/2pi) sum_P arg det U_P, with arg wrapped into (-pi, pi].  The sum of the unwrapped
  angles vanishes on the torus, so Q is an integer by construction; it is rounded only after
  checking that it lies within ``INTEGER_TOLERANCE`` of one (else ValueError: the field is
  not a group-valued gauge field).  SU(2) has no 2D topology: ValueError.
* ``measure_links(group, U, max_loop)``: dict ``{"plaquette", "W_{R}x{T}" (1 <= R <= T <=
  max_loop), "Q" (u1/u2)}`` of float64 tensors ``(B,)``, computed in chunks of
  configurations so that memory stays bounded for large L and max_loop.

Everything is computed in complex128 whatever the input precision (a complex64 field is
promoted first), so Q stays integral to ~1e-12 even on large lattices.
"""

from __future__ import annotations

import math

import torch

from .groups import Group, get_group, trace
from .lattice import plaquettes, wilson_loop_grid
from .theories.observables import loop_name

INTEGER_TOLERANCE = 1e-6
# working-set budget of measure_links per chunk (bytes); the Wilson-loop grid keeps
# 2 * max_loop straight lines plus a few loop fields per configuration alive at once
CHUNK_BYTES = 256 * 2**20


def default_max_loop(L: int) -> int:
    """Largest loop extent measured by default: min(8, L // 2), at least 1."""
    return max(1, min(8, int(L) // 2))


def loop_names(max_loop: int) -> list[str]:
    """Column names "W_{R}x{T}" for 1 <= R <= T <= max_loop, ordered by R then T."""
    return [loop_name(r, t) for r in range(1, max_loop + 1) for t in range(r, max_loop + 1)]


def _c128(U: torch.Tensor) -> torch.Tensor:
    if not torch.is_complex(U):
        raise TypeError(f"links must be a complex tensor, got dtype {U.dtype}")
    return U.to(torch.complex128)


def _check_links(U: torch.Tensor) -> None:
    if U.dim() < 5 or U.shape[-5] != 2 or U.shape[-4] != U.shape[-3] or U.shape[-1] != U.shape[-2]:
        raise ValueError(f"links must have shape (..., 2, L, L, N, N), got {tuple(U.shape)}")


def plaquette(U: torch.Tensor) -> torch.Tensor:
    """Average plaquette (1/N) Re tr U_P per configuration, shape U.shape[:-5]."""
    _check_links(U)
    U = _c128(U)
    return (trace(plaquettes(U)).real / U.shape[-1]).mean((-1, -2))


def wilson_loops(U: torch.Tensor, max_extent: int) -> torch.Tensor:
    """W(R, T) for 1 <= R, T <= max_extent, shape (..., max_extent, max_extent); entry
    [..., R-1, T-1] is W(R, T)."""
    _check_links(U)
    return wilson_loop_grid(_c128(U), int(max_extent))


def plaquette_phases(group: Group | str, U: torch.Tensor) -> torch.Tensor:
    """arg U_P (U(1)) or arg det U_P (U(2)) per plaquette, wrapped into (-pi, pi];
    shape (..., L, L).  Gauge invariant."""
    group = get_group(group)
    if not group.has_topology:
        raise ValueError(f"{group.name} has no topological charge in two dimensions")
    _check_links(U)
    plaq = plaquettes(_c128(U))
    if group.N == 1:
        z = plaq[..., 0, 0]
    else:
        z = torch.linalg.det(plaq) if group.N > 2 else (
            plaq[..., 0, 0] * plaq[..., 1, 1] - plaq[..., 0, 1] * plaq[..., 1, 0]
        )
    phase = torch.angle(z)  # [-pi, pi]; -pi only for a negative-zero imaginary part
    return torch.where(phase <= -math.pi, phase + 2 * math.pi, phase)


def topological_charge(group: Group | str, U: torch.Tensor, tol: float | None = INTEGER_TOLERANCE) -> torch.Tensor:
    """Integer topological charge per configuration (float64 tensor of integers).

    Raises ValueError for SU(2), or if the raw charge is further than ``tol`` from an
    integer (links that are not group elements, or a corrupted field).  ``tol=None``
    skips that check, which reads the result on the host (a sync inside device loops)."""
    raw = plaquette_phases(group, U).sum((-1, -2)) / (2 * math.pi)
    q = torch.round(raw)
    if tol is None:
        return q + 0.0
    dev = (raw - q).abs()
    bad = ~(dev <= tol)  # NaN counts as bad
    if bool(bad.any()):
        worst = int(torch.argmax(torch.where(bad, torch.nan_to_num(dev, nan=math.inf), 0).reshape(-1)))
        raise ValueError(
            f"topological charge is not integral (raw value {float(raw.reshape(-1)[worst]):.9f} "
            f"is not within {tol:g} of an integer); are the links finite group elements?"
        )
    return q + 0.0  # turns -0.0 into 0.0


def _chunk_size(U: torch.Tensor, max_loop: int) -> int:
    L, n = U.shape[-3], U.shape[-1]
    per_config = 16 * L * L * n * n * (2 * max_loop + 10)
    return max(1, CHUNK_BYTES // per_config)


def measure_links(
    group: Group | str, U: torch.Tensor, max_loop: int, chunk_size: int | None = None
) -> dict[str, torch.Tensor]:
    """All per-configuration observables of a batch ``U`` (B, 2, L, L, N, N).

    Returns {"plaquette": (B,), "W_{R}x{T}": (B,) for 1 <= R <= T <= max_loop,
    "Q": (B,) for u1/u2}, float64 on U's device."""
    group = get_group(group)
    _check_links(U)
    if U.dim() != 6:
        raise ValueError(f"measure_links wants a batch (B, 2, L, L, N, N), got {tuple(U.shape)}")
    if U.shape[-1] != group.N:
        raise ValueError(f"links have N={U.shape[-1]} but group {group.name} has N={group.N}")
    L = U.shape[-3]
    max_loop = int(max_loop)
    if not 1 <= max_loop <= L:
        raise ValueError(f"max_loop must lie in [1, L={L}], got {max_loop}")
    chunk = chunk_size or _chunk_size(U, max_loop)
    names = loop_names(max_loop)
    parts: dict[str, list[torch.Tensor]] = {"plaquette": [], **{k: [] for k in names}}
    if group.has_topology:
        parts["Q"] = []
    for start in range(0, U.shape[0], chunk):
        u = _c128(U[start : start + chunk])
        grid = wilson_loop_grid(u, max_loop)
        parts["plaquette"].append(grid[:, 0, 0])
        for r in range(1, max_loop + 1):
            for t in range(r, max_loop + 1):
                parts[loop_name(r, t)].append(grid[:, r - 1, t - 1])
        if group.has_topology:
            parts["Q"].append(topological_charge(group, u))
    empty = torch.zeros(0, dtype=torch.float64, device=U.device)
    return {k: torch.cat(v) if v else empty for k, v in parts.items()}
