"""Geometry of the periodic 2D L x L lattice for link fields.

A gauge field is a tensor ``U`` of shape ``(..., 2, L, L, N, N)``: any leading batch axes
(chains, configurations), then the direction mu (0 = x, 1 = y), the sites x, y and the
colour matrix.  Site fields (plaquettes, gauge transformations) have shape
``(..., L, L, N, N)``.
"""

from __future__ import annotations

import torch

from .groups import dagger, matmul, matmul_dagger, trace

SITE_DIMS = (-4, -3)  # x, y axes of a site field with trailing N x N matrix


def shift(field: torch.Tensor, mu: int, steps: int = 1) -> torch.Tensor:
    """Site field f(x + steps * mu_hat) for a field with trailing N x N matrix axes."""
    return torch.roll(field, shifts=-steps, dims=SITE_DIMS[mu])


def links(U: torch.Tensor, mu: int) -> torch.Tensor:
    return U[..., mu, :, :, :, :]


def plaquettes(U: torch.Tensor) -> torch.Tensor:
    """U_P(x) = U_0(x) U_1(x+0) U_0(x+1)^dag U_1(x)^dag, shape (..., L, L, N, N)."""
    u0, u1 = links(U, 0), links(U, 1)
    return matmul_dagger(matmul(u0, shift(u1, 0)), matmul(u1, shift(u0, 1)))


def line(U: torch.Tensor, mu: int, length: int) -> torch.Tensor:
    """Straight Wilson line of ``length`` links along mu starting at every site."""
    u = links(U, mu)
    out = u
    for step in range(1, length):
        out = matmul(out, shift(u, mu, step))
    return out


def rectangle(line_x: torch.Tensor, line_y: torch.Tensor, r: int, t: int) -> torch.Tensor:
    """R x T loop (R along x, T along y) from straight lines of those lengths."""
    return matmul_dagger(matmul(line_x, shift(line_y, 0, r)), matmul(line_y, shift(line_x, 1, t)))


def wilson_loop_grid(U: torch.Tensor, max_extent: int) -> torch.Tensor:
    """W(R, T) for 1 <= R, T <= max_extent: (1/N) Re tr of the loop, averaged over sites
    and both orientations (R along x and along y).  Shape (..., max_extent, max_extent)."""
    n = U.shape[-1]
    L = U.shape[-3]
    if not 1 <= max_extent <= L:
        raise ValueError(f"max_extent must lie in [1, L={L}], got {max_extent}")
    lines = [[], []]
    for mu in (0, 1):
        cur = links(U, mu)
        lines[mu].append(cur)
        for step in range(1, max_extent):
            cur = matmul(cur, shift(links(U, mu), mu, step))
            lines[mu].append(cur)
    rows = []
    for r in range(1, max_extent + 1):
        row = []
        for t in range(1, max_extent + 1):
            w_xy = trace(rectangle(lines[0][r - 1], lines[1][t - 1], r, t)).real
            w_yx = trace(rectangle(lines[0][t - 1], lines[1][r - 1], t, r)).real
            row.append(0.5 * (w_xy + w_yx).mean((-1, -2)) / n)
        rows.append(torch.stack(row, -1))
    return torch.stack(rows, -2)


def wilson_loop(U: torch.Tensor, r: int, t: int) -> torch.Tensor:
    """Single W(R, T) per configuration, shape (...)."""
    n = U.shape[-1]
    lx_r, ly_t = line(U, 0, r), line(U, 1, t)
    lx_t, ly_r = line(U, 0, t), line(U, 1, r)
    w = trace(rectangle(lx_r, ly_t, r, t)).real + trace(rectangle(lx_t, ly_r, t, r)).real
    return 0.5 * w.mean((-1, -2)) / n


def gauge_transform(U: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """U_mu(x) -> Omega(x) U_mu(x) Omega(x + mu)^dag; omega shape (..., L, L, N, N)."""
    out = [matmul_dagger(matmul(omega, links(U, mu)), shift(omega, mu)) for mu in (0, 1)]
    return torch.stack(out, -5)


def transform_site_field(field: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """Adjoint action Omega(x) f(x) Omega(x)^dag on a site field."""
    return matmul_dagger(matmul(omega, field), omega)


def transform_link_algebra(X: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """How link-attached algebra elements (forces, scores) transform: Omega(x) X_mu(x) Omega(x)^dag."""
    return torch.stack([transform_site_field(X[..., mu, :, :, :, :], omega) for mu in (0, 1)], -5)


def adjoint(v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """v^dag m v"""
    return matmul(dagger(v), matmul(m, v))
