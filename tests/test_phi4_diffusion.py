"""phi^4 diffusion (campaign.phi4.diffusion): exact symmetries of the score network and the
exactness of the model-driven Metropolis chain against the free field."""

import math

import numpy as np
import pytest
import torch

from campaign import flat_diffusion as fd
from campaign.errors import CampaignError
from campaign.phi4 import Phi4Couplings
from campaign.phi4 import exact
from campaign.phi4.diffusion import Phi4Score, free_field_samples, importance_weights, independence_metropolis
from campaign.phi4.observables import magnetisation, phi2
from campaign.stats import chain_summary


def trained_looking(net, std=0.3):
    """Random non-zero output layer: the symmetries must hold for any weights, not only zero."""
    torch.manual_seed(7)
    with torch.no_grad():
        net.out.weight.normal_(0, std)
        for p in net.film.parameters():
            p.normal_(0, 0.5)
    return net


@pytest.mark.parametrize("d,shape", [(1, (6,)), (2, (4, 4)), (2, (6, 6)), (3, (3, 3, 3))])
def test_score_is_odd_translation_and_point_group_equivariant(d, shape):
    net = trained_looking(Phi4Score(d=d, channels=4, layers=2).double())
    gen = torch.Generator().manual_seed(0)
    phi = torch.randn((5, *shape), generator=gen, dtype=torch.float64)
    sigma = torch.exp(torch.randn(5, generator=gen, dtype=torch.float64))
    with torch.no_grad():
        s = net(phi, sigma)
        assert torch.equal(net(-phi, sigma), -s)  # Z2: exact
        axes = tuple(range(1, d + 1))
        shift = net(torch.roll(phi, (1,) * d, axes), sigma)
        assert torch.allclose(shift, torch.roll(s, (1,) * d, axes), atol=1e-13)
        for a in axes:  # reflections
            assert torch.allclose(net(torch.flip(phi, (a,)), sigma), torch.flip(s, (a,)), atol=1e-13)
        if d >= 2:  # rotation by 90 degrees in the (1, 2) plane
            rot = net(torch.rot90(phi, 1, (1, 2)), sigma)
            assert torch.allclose(rot, torch.rot90(s, 1, (1, 2)), atol=1e-13)
        assert s.abs().max() > 0 and not torch.allclose(s, -phi / (sigma.reshape(-1, *[1] * d) ** 2 + 1))


def test_score_works_on_any_extent_and_rejects_wrong_rank():
    net = Phi4Score(d=2, channels=2, layers=1).double()
    for shape in ((2, 2), (5, 7), (8, 8)):
        assert net(torch.zeros(3, *shape, dtype=torch.float64), torch.ones(3, dtype=torch.float64)).shape == (3, *shape)
    with pytest.raises(CampaignError, match="lattice axes"):
        net(torch.zeros(3, 4, dtype=torch.float64), torch.ones(3, dtype=torch.float64))


def test_free_field_samples_have_the_exact_propagator():
    gen = torch.Generator().manual_seed(1)
    phi = free_field_samples(0.2, (4, 4), 20000, generator=gen)
    g = exact.free_propagator(0.2, (4, 4))
    emp = np.mean([(phi * torch.roll(phi, (0, t), (1, 2))).mean().item() for t in range(1)])
    assert abs(emp - g[0, 0]) < 4 * g[0, 0] * math.sqrt(2 / 20000)
    m = magnetisation(phi).numpy()
    s2 = exact.free_magnetisation(0.2, (4, 4))["M2"]
    assert abs(np.mean(m**2) - s2) < 4 * s2 * math.sqrt(2 / 20000)


KAPPA, L = 0.15, 4


def model_proposals(net, n, chains, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x, log_q = fd.sample_flow(net, (L, L), 8, n * chains, sigma_min=0.05, sigma_max=10.0, generator=gen)
    return x.reshape(n, chains, L, L), log_q.reshape(n, chains)


def test_model_driven_metropolis_is_exact_on_the_free_field():
    """An untrained but valid model (iid-ish N(0,1) sites plus a random odd perturbation) is a
    poor proposal for the free field at kappa = 0.15, L = 4: the raw samples miss <phi^2> by
    many sigma (the power check), the Metropolis chain with the flow likelihood does not."""
    # a small random odd perturbation: a large one at sigma ~ sigma_max makes the coarse
    # Heun map fold (non-injective), where log q is no longer the density of the samples
    net = trained_looking(Phi4Score(d=2, channels=2, layers=1), std=0.03).double().requires_grad_(False)
    n, chains = 100, 8
    props, log_q = model_proposals(net, n, chains, seed=2)
    c = Phi4Couplings(KAPPA, 0.0)
    out = independence_metropolis(props, log_q, c, generator=torch.Generator().manual_seed(3))
    assert 0.05 < out["acceptance"] < 0.95
    ref = exact.free_magnetisation(KAPPA, (L, L))
    exact_phi2 = exact.free_phi2(KAPPA, (L, L))
    phi = out["phi"]
    flat = phi.reshape(n * chains, L, L)
    m = magnetisation(flat).reshape(n, chains).numpy()
    p2 = phi2(flat).reshape(n, chains).numpy()
    for values, target in ((np.abs(m), ref["absM"]), (p2, exact_phi2)):
        s = chain_summary([values[:, k] for k in range(chains)])
        assert abs(s["value"] - target) < 3 * s["error"], (s["value"], target, s["error"])
    # power: the raw proposals (every one accepted, no correction) are far off
    raw = phi2(props.reshape(n * chains, L, L)).numpy()
    pull = (raw.mean() - exact_phi2) / (raw.std() / math.sqrt(raw.size))
    assert abs(pull) > 10, pull
    w = importance_weights(props.reshape(n * chains, L, L), log_q.reshape(-1), c)
    assert 0.0 < w["ess_per_sample"] < 1.0
    lw = w["log_w"] - w["log_w"].max()
    reweighted = float(np.sum(np.exp(lw) * raw) / np.sum(np.exp(lw)))
    assert abs(reweighted - exact_phi2) < 0.1 * exact_phi2


@pytest.mark.parametrize("d,shape", [(1, (12,)), (2, (10, 6)), (2, (3, 3))])
def test_coloured_flow_density_equals_the_dense_jacobian(d, shape):
    """The local (one backward pass per colour) Jacobian of the flow map gives the same
    samples and the same log q, to rounding, as the D vector-Jacobian products; (10, 6) with
    radius 2 compresses one axis only, (3, 3) neither (extents below the colour period)."""
    net = trained_looking(Phi4Score(d=d, channels=3, layers=1).double()).requires_grad_(False)
    assert net.receptive_radius == 2

    def dense(x, sigma):  # the same network without the locality hint
        return net(x, sigma)

    kw = dict(sigma_min=0.05, sigma_max=10.0)
    x, log_q = fd.sample_flow(net, shape, 6, 5, generator=torch.Generator().manual_seed(1), **kw)
    x_ref, log_q_ref = fd.sample_flow(dense, shape, 6, 5, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(x, x_ref)
    assert torch.allclose(log_q, log_q_ref, rtol=0, atol=1e-10)
    colour, near = fd._colouring(shape, 2)
    assert int(colour.max()) + 1 == {(12,): 6, (10, 6): 30, (3, 3): 9}[shape]
    # no two sites of a colour are both near a third: the decompression is unambiguous
    one_hot = (colour[None, :] == torch.arange(int(colour.max()) + 1)[:, None]).double()
    assert int((one_hot @ near.double()).max()) == 1


def test_coloured_exact_divergence_equals_the_dense_one():
    net = trained_looking(Phi4Score(d=2, channels=3, layers=1).double()).requires_grad_(False)
    x = torch.randn((3, 10, 10), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    kw = dict(sigma_min=0.05, sigma_max=10.0, n_steps=4)
    got = fd.flow_log_likelihood(net, x, **kw)
    ref = fd.flow_log_likelihood(lambda y, sigma: net(y, sigma), x, **kw)
    assert torch.allclose(got, ref, rtol=0, atol=1e-10)
