import math

import torch

from campaign.actions import wilson_action, wilson_force
from campaign.fields import MatrixField, U1AngleField
from campaign.groups import U1, matmul
from campaign.lattice import gauge_transform, plaquettes, transform_link_algebra, wilson_loop, wilson_loop_grid


def random_field(group, gen, chains=3, L=6):
    return group.haar((chains, 2, L, L), generator=gen)


def test_action_gauge_invariant(group, gen):
    U = random_field(group, gen)
    omega = group.haar((3, 6, 6), generator=gen)
    s0, s1 = wilson_action(U, 2.3), wilson_action(gauge_transform(U, omega), 2.3)
    assert torch.allclose(s0, s1, rtol=1e-13)


def test_wilson_loops_gauge_invariant(group, gen):
    U = random_field(group, gen)
    omega = group.haar((3, 6, 6), generator=gen)
    assert torch.allclose(wilson_loop_grid(U, 3), wilson_loop_grid(gauge_transform(U, omega), 3), atol=1e-13)


def test_force_equals_autograd_gradient(group, gen):
    U = random_field(group, gen)
    beta = 1.7
    t = torch.zeros((*U.shape[:-2], group.algebra_dim), dtype=torch.float64, requires_grad=True)
    wilson_action(matmul(group.exp(group.from_coords(t)), U), beta).sum().backward()
    force = group.to_coords(wilson_force(group, U, beta))
    assert torch.allclose(force, t.grad, atol=1e-12)
    assert force.abs().max() > 0.1  # not trivially zero


def test_force_transforms_covariantly(group, gen):
    U = random_field(group, gen)
    omega = group.haar((3, 6, 6), generator=gen)
    f = wilson_force(group, U, 1.1)
    f_rot = wilson_force(group, gauge_transform(U, omega), 1.1)
    assert torch.allclose(f_rot, transform_link_algebra(f, omega), atol=1e-13)


def test_cold_configuration_has_zero_action_and_unit_loops(group):
    U = group.identity((2, 2, 4, 4))
    assert torch.all(wilson_action(U, 3.0) == 0)
    assert torch.allclose(wilson_loop_grid(U, 4), torch.ones(2, 4, 4, dtype=torch.float64))


def test_wilson_loop_of_constant_abelian_field():
    """U(1) field with constant flux phi per plaquette: W(R,T) = cos(R T phi)."""
    L, k = 8, 1
    phi = 2 * torch.pi * k / L**2
    x = torch.arange(L, dtype=torch.float64)
    theta = torch.zeros(2, L, L, dtype=torch.float64)
    theta[1] = phi * x[:, None]  # U_1(x, y) = exp(i phi x)
    theta[0, L - 1, :] = -phi * L * x  # close the flux through the boundary
    U = torch.polar(torch.ones_like(theta), theta)[None, ..., None, None]
    plaq = plaquettes(U)[0, ..., 0, 0]
    assert torch.allclose(torch.angle(plaq), torch.full((L, L), phi, dtype=torch.float64), atol=1e-12)
    for r, t in ((1, 1), (2, 3), (3, 3)):
        assert abs(wilson_loop(U, r, t).item() - math.cos(r * t * phi)) < 1e-12


def test_u1_angle_field_matches_matrix_field(gen):
    fast, ref = U1AngleField(), MatrixField(U1)
    q = 2 * torch.pi * torch.rand((3, 2, 6, 6), generator=gen, dtype=torch.float64)
    U = fast.to_links(q)
    beta = torch.tensor(1.3, dtype=torch.float64)
    assert torch.allclose(fast.action(q, beta), ref.action(U, beta), rtol=1e-13)
    f_ref = U1.to_coords(ref.force(U, beta))[..., 0]
    assert torch.allclose(fast.force(q, beta), f_ref, atol=1e-13)
    assert torch.allclose(fast.from_links(U), torch.remainder(q + torch.pi, 2 * torch.pi) - torch.pi, atol=1e-13)
