"""Wilson gauge action and its Lie-algebra force.

S = beta sum_P (1 - (1/N) Re tr U_P)  (U(1): beta sum_P (1 - cos theta_P)).
The force is the left derivative F = sum_a (d_a S) T_a (see ``campaign.groups``); HMC
evolves dP/dtau = -F and the small-noise diffusion score tends to -F.
"""

from __future__ import annotations

import torch

from .groups import Group, trace
from .lattice import adjoint, links, plaquettes, shift


def plaquette_action_density(plaq: torch.Tensor) -> torch.Tensor:
    """1 - (1/N) Re tr U_P per plaquette."""
    return 1.0 - trace(plaq).real / plaq.shape[-1]


def wilson_action(U: torch.Tensor, beta) -> torch.Tensor:
    """Action per configuration, shape U.shape[:-5].  beta may be a tensor broadcasting
    against the batch axes."""
    s = plaquette_action_density(plaquettes(U)).sum((-1, -2))
    return beta * s


def force_from_plaquettes(group: Group, U: torch.Tensor, plaq: torch.Tensor, beta) -> torch.Tensor:
    """Force from precomputed plaquettes.

    Each link sits in two plaquettes: for U_0(x) the one at x and the one at x - 1_hat,
    for U_1(x) the one at x and the one at x - 0_hat.  The second is brought to the
    link's base point by conjugating with the link that connects them, so the whole
    force costs two matrix products per link beyond the plaquettes themselves.
    """
    n = U.shape[-1]
    proj = group.project_algebra(plaq)
    u0, u1 = links(U, 0), links(U, 1)
    f0 = proj - adjoint(shift(u1, 1, -1), shift(proj, 1, -1))
    f1 = adjoint(shift(u0, 0, -1), shift(proj, 0, -1)) - proj
    f = torch.stack((f0, f1), -5)
    if torch.is_tensor(beta) and beta.ndim:
        beta = beta.reshape(*beta.shape, *([1] * 5))
    return (beta / n) * f


def wilson_force(group: Group, U: torch.Tensor, beta) -> torch.Tensor:
    return force_from_plaquettes(group, U, plaquettes(U), beta)
