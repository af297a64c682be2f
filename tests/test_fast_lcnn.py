"""The quaternion-representation L-CNN (``FastLCNN``, the default) against the
complex-matrix reference (``LCNN``): the same function for the same parameters (float64,
relative error < 1e-12), in its building blocks and end to end, with gradients; model
files written with the reference load into the default ScoreModel, same scores."""

import pytest
import torch

from campaign import io
from campaign.diffusion import ScoreModel
from campaign.diffusion.fast_lcnn import (
    FastLCNN, adjoint_matrix, algebra_to_matrix, quaternion_product, to_quaternion,
)
from campaign.diffusion.lcnn import LCNN
from campaign.groups import dagger
from campaign.lattice import gauge_transform, transform_link_algebra

TOL = 1e-12


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def pair(group, **kw):
    torch.manual_seed(2)
    ref = LCNN(group, **kw).double()
    for p in ref.embed.parameters():  # make sigma matter
        torch.nn.init.normal_(p, std=0.3)
    fast = FastLCNN(group, **kw).double()
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def test_quaternion_algebra(gen):
    A = torch.randn(7, 2, 2, dtype=torch.complex128, generator=gen)
    B = torch.randn(7, 2, 2, dtype=torch.complex128, generator=gen)
    qa, qb = to_quaternion(A)[..., None], to_quaternion(B)[..., None]  # (batch, K, one channel)
    assert rel(quaternion_product(qa, qb)[..., 0], to_quaternion(A @ B)) < TOL
    assert rel(algebra_to_matrix(torch.zeros(7, 4, dtype=torch.float64), 2), torch.zeros_like(A)) == 0
    c = torch.randn(7, 4, dtype=torch.float64, generator=gen)
    X = algebra_to_matrix(c, 2)
    assert rel(X, -dagger(X)) < TOL
    q = to_quaternion(X)
    assert rel(q[..., 1:].real, c[..., 1:]) < TOL and rel(q[..., 0].imag, c[..., 0]) < TOL
    assert float(q.real[..., 0].abs().max() + q.imag[..., 1:].abs().max()) < 1e-15


@pytest.mark.parametrize("name", ["su2", "u2"])
def test_adjoint_matrix_is_conjugation(name, gen):
    from campaign.groups import get_group

    u = get_group(name).haar((9,), generator=gen)
    W = torch.randn(9, 2, 2, dtype=torch.complex128, generator=gen)
    R = adjoint_matrix(u)
    assert rel(R.to(W.dtype) @ to_quaternion(W)[..., None], to_quaternion(u @ W @ dagger(u))[..., None]) < TOL
    assert rel(R @ R.transpose(-1, -2), torch.eye(4, dtype=R.dtype).expand_as(R)) < TOL


@pytest.mark.parametrize("kernel_size,loops", [(1, "plaquette"), (2, "plaquette"), (3, "rect")])
def test_equals_reference(group, gen, kernel_size, loops):
    ref, fast = pair(group, channels=4, layers=3, kernel_size=kernel_size, loops=loops)
    U = group.haar((3, 2, 6, 6), generator=gen)
    sigma = torch.tensor([0.02, 0.5, 3.0], dtype=torch.float64)
    a, b = fast(U, sigma), ref(U, sigma)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert rel(a, b) < TOL
    # gradients with respect to every parameter (training runs through them)
    (a.real.square().sum() + a.imag.sum()).backward()
    (b.real.square().sum() + b.imag.sum()).backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        assert rel(p.grad, q.grad) < 1e-10, name


def test_float32_close_to_reference(group, gen):
    ref, fast = pair(group, channels=6, layers=2)
    fast = fast.float()
    U = group.haar((2, 2, 8, 8), generator=gen)
    sigma = torch.tensor([0.1, 1.0], dtype=torch.float64)
    a = fast(U.to(torch.complex64), sigma.float())
    assert a.dtype == torch.complex64
    assert rel(a.to(torch.complex128), ref(U, sigma)) < 1e-4


def test_fast_network_gauge_equivariant(group, gen):
    _, fast = pair(group, channels=4, layers=2, kernel_size=3, loops="rect")
    U = group.haar((2, 2, 5, 5), generator=gen)
    omega = group.haar((2, 5, 5), generator=gen)
    sigma = torch.tensor([0.05, 2.0], dtype=torch.float64)
    assert rel(fast(gauge_transform(U, omega), sigma), transform_link_algebra(fast(U, sigma), omega)) < 1e-10


def test_reference_model_file_loads_with_same_scores(group, gen, tmp_path):
    """A model file written by the complex-matrix ScoreModel (every model trained before
    FastLCNN) loads into the default one unchanged (same state_dict), same scores."""
    torch.manual_seed(5)
    old = ScoreModel(group, 1.5, 8, 0.01, 4.0, arch={"channels": 4}, fast=False).double()
    for p in old.net.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    path = io.save_model(tmp_path / "m.pt", old)
    loaded = io.load_model(path).double()
    assert isinstance(loaded.net, FastLCNN) and not isinstance(old.net, FastLCNN)
    U = group.haar((2, 2, 8, 8), generator=gen)
    sigma = torch.tensor([0.03, 1.2], dtype=torch.float64)
    assert rel(loaded(U, sigma), old(U, sigma)) < TOL
