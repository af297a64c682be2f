import math

import pytest
import torch

from campaign.groups import SU2, U1, U2, UnknownGroupError, dagger, get_group, gram_schmidt_2x2, matmul, trace


def test_basis_orthonormal(group):
    b = group.basis()
    gram = -torch.einsum("aij,bji->ab", b, b).real
    assert torch.allclose(gram, torch.eye(group.algebra_dim, dtype=gram.dtype), atol=1e-14)
    assert torch.allclose(b + dagger(b), torch.zeros_like(b))


def test_haar_elements_are_unitary(group, gen):
    u = group.haar((500,), generator=gen)
    eye = torch.eye(group.N, dtype=u.dtype)
    assert torch.allclose(matmul(u, dagger(u)), eye.expand_as(u), atol=1e-13)
    if group.special:
        det = torch.linalg.det(u)
        assert torch.allclose(det, torch.ones_like(det), atol=1e-13)


def test_haar_moments(group, gen):
    """Haar measure: <tr U> = 0 and <|tr U|^2> = 1 for the fundamental representation
    of U(1), SU(2), U(2) (orthogonality of characters)."""
    n = 200_000
    tr = trace(group.haar((n,), generator=gen))
    assert abs(tr.mean()) < 5 * math.sqrt(group.N / n)
    second = (tr.abs() ** 2).mean().item()
    # |tr U|^2 has variance <|tr U|^4> - 1 = 1 (U(1): 0; SU(2): 2 - 1; U(2): 2 - 1)
    assert abs(second - 1.0) < 5 * math.sqrt(1.0 / n) + 1e-12


def test_haar_left_invariance_of_class_angle_distribution(gen):
    """SU(2) Haar class angle t (tr U = 2 cos t) has density (2/pi) sin^2 t: mean of
    cos^2 t is 1/4."""
    u = SU2.haar((200_000,), generator=gen)
    c = trace(u).real / 2
    assert abs((c**2).mean().item() - 0.25) < 5 * math.sqrt(0.125**2 / 2e5) * 3


def test_exp_log_roundtrip_and_unitarity(group, gen):
    x = 0.7 * group.random_algebra((1000,), generator=gen)
    u = group.exp(x)
    eye = torch.eye(group.N, dtype=u.dtype)
    assert torch.allclose(matmul(u, dagger(u)), eye.expand_as(u), atol=1e-13)
    assert torch.allclose(group.log(u), x, atol=1e-12)
    assert torch.allclose(u, torch.linalg.matrix_exp(x), atol=1e-13)


def test_exp_small_argument_series(group, gen):
    x = 1e-5 * group.random_algebra((100,), generator=gen)
    assert torch.allclose(group.exp(x), torch.linalg.matrix_exp(x), atol=1e-15)


def test_projection_is_orthogonal(group, gen):
    m = torch.randn((50, group.N, group.N), dtype=torch.complex128, generator=gen)
    x = group.project_algebra(m)
    # idempotent, lands in the algebra, and the remainder is orthogonal to the basis
    assert torch.allclose(group.project_algebra(x), x)
    assert torch.allclose(group.from_coords(group.to_coords(x)), x, atol=1e-14)
    rest = m - x
    overlaps = -torch.einsum("aij,nji->na", group.basis(), rest).real
    assert overlaps.abs().max() < 1e-13


def test_reunitarize_projects_onto_group(group, gen):
    u = group.haar((100,), generator=gen)
    noisy = u + 1e-6 * torch.randn(u.shape, dtype=u.dtype, generator=gen)
    r = group.reunitarize(noisy)
    eye = torch.eye(group.N, dtype=u.dtype)
    assert torch.allclose(matmul(r, dagger(r)), eye.expand_as(r), atol=1e-14)
    assert (r - u).abs().max() < 1e-5


@pytest.mark.parametrize("scale", [1e-6, 0.5])
def test_gram_schmidt_is_lapack_qr_with_positive_diagonal(gen, scale):
    """The written-out U(2) projection is Q of the QR decomposition whose R has a real
    positive diagonal (an independent computation: LAPACK's QR, phases fixed), also far
    from the group."""
    u = get_group("u2").haar((200,), generator=gen)
    m = u + scale * torch.randn(u.shape, dtype=u.dtype, generator=gen)
    q, r = torch.linalg.qr(m)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    expect = q * (d / d.abs())[..., None, :]
    assert (gram_schmidt_2x2(m) - expect).abs().max() < 1e-13
    assert (gram_schmidt_2x2(m.to(torch.complex64)) - expect).abs().max() < 1e-5


def test_float32_supported(group, gen):
    u = group.haar((10,), generator=gen, dtype=torch.float32)
    assert u.dtype == torch.complex64
    x = group.random_algebra((10,), generator=gen, dtype=torch.float32)
    assert group.exp(x).dtype == torch.complex64


def test_unknown_group():
    assert get_group("SU2") is SU2 and get_group(U1) is U1 and get_group("u2") is U2
    with pytest.raises(UnknownGroupError, match="unknown gauge group 'su3'"):
        get_group("su3")
