"""Flat VE diffusion (campaign.flat_diffusion): samplers and likelihoods against the exact
score of a Gaussian, and a tiny trained model on a 1D two-Gaussian mixture."""

import math

import pytest
import torch

from campaign import flat_diffusion as fd
from campaign.errors import CampaignError

MU, VAR = 0.5, 0.6  # data N(MU, VAR) in every dimension


def gaussian_score(x, sigma):
    """Exact score of N(MU, VAR) * N(0, sigma^2)."""
    s = sigma.reshape(-1, *([1] * (x.ndim - 1)))
    return -(x - MU) / (VAR + s * s)


def gaussian_log_density(x, sigma):
    d = x[0].numel()
    v = VAR + sigma**2
    r2 = ((x - MU).reshape(x.shape[0], -1).double() ** 2).sum(1)
    return -0.5 * r2 / v - 0.5 * d * math.log(2 * math.pi * v)


def within(value, exact, error, n_sigma=3.0):
    assert abs(value - exact) < n_sigma * error, f"{value} vs {exact} +- {error}"


@pytest.mark.parametrize("corrector", [0, 1])
def test_reverse_sampler_reproduces_gaussian(corrector):
    gen = torch.Generator().manual_seed(1)
    n, smin = 8000, 0.01
    x = fd.sample_reverse(gaussian_score, (2,), 1000, n, sigma_min=smin, sigma_max=30.0,
                          corrector_steps=corrector, generator=gen).reshape(-1)
    var = VAR + smin**2
    within(float(x.mean()), MU, math.sqrt(var / x.numel()))
    within(float(x.var()), var, var * math.sqrt(2.0 / x.numel()))


def test_flow_log_likelihood_matches_gaussian():
    gen = torch.Generator().manual_seed(2)
    x = MU + math.sqrt(VAR) * torch.randn(16, 3, generator=gen, dtype=torch.float64)
    exact = gaussian_log_density(x, 0.01)
    for method in ("exact", "hutchinson"):  # diagonal Jacobian: Hutchinson is exact here too
        got = fd.flow_log_likelihood(gaussian_score, x, sigma_min=0.01, sigma_max=100.0, n_steps=200,
                                     divergence=method, generator=gen)
        assert torch.allclose(got, exact, atol=0.03), (method, (got - exact).abs().max())


def test_sample_flow_log_density_is_that_of_its_samples():
    """The discrete Heun map of a linear score is affine, so its samples are Gaussian; their
    log q must agree with the ODE likelihood, and the samples with the data's moments."""
    gen = torch.Generator().manual_seed(3)
    x, log_q = fd.sample_flow(gaussian_score, (2,), 200, 4000, sigma_min=0.01, sigma_max=100.0, generator=gen)
    log_p = gaussian_log_density(x, 0.01)
    assert float((log_q - log_p).abs().median()) < 0.02  # close to the ODE's limit (O(h^2))
    # q is the normalised density of its own samples: E_q[p/q] = 1 for the normalised p
    w = torch.exp(log_p - log_q)
    within(float(w.mean()), 1.0, float(w.std()) / math.sqrt(w.numel()))
    flat = x.reshape(-1)
    within(float(flat.mean()), MU, math.sqrt(VAR / flat.numel()))
    within(float(flat.var()), VAR, VAR * math.sqrt(2.0 / flat.numel()))


class TinyScore(torch.nn.Module):
    """score = -x / (sigma^2 + 1) + mlp(x / sqrt(sigma^2 + 1), log sigma) / sigma."""

    def __init__(self, width=48):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.SiLU(), torch.nn.Linear(width, width),
                                       torch.nn.SiLU(), torch.nn.Linear(width, 1))

    def forward(self, x, sigma):
        s = sigma.reshape(-1, 1)
        c = torch.sqrt(s * s + 1.0)
        return -x / (c * c) + self.mlp(torch.cat([x / c, torch.log(s)], 1)) / s


def test_trained_model_reproduces_mixture_moments(tmp_path):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4)
    n = 4000
    side = torch.rand(n, generator=gen) < 0.3
    data = torch.where(side, -1.0 + 0.3 * torch.randn(n, generator=gen), 1.2 + 0.4 * torch.randn(n, generator=gen))
    data = data.reshape(n, 1).double()
    net = TinyScore(32).double()
    settings = fd.DSMSettings(steps=500, batch_size=128, lr=5e-3, sigma_min=0.01, sigma_max=10.0,
                              checkpoint_every=500)
    fd.train_dsm(net, data, settings, seed=0, checkpoint=tmp_path / "ck.pt")
    with torch.no_grad():
        x = fd.sample_reverse(net, (1,), 100, 4000, sigma_min=0.01, sigma_max=10.0, generator=gen).reshape(-1)
    d = data.reshape(-1)
    for k in (1, 2):
        m_model, m_data = float((x**k).mean()), float((d**k).mean())
        err = math.sqrt(float((x**k).var()) / x.numel() + float((d**k).var()) / d.numel())
        within(m_model, m_data, err)


def test_train_dsm_resumes_bit_identically(tmp_path):
    data = torch.randn(64, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    settings = fd.DSMSettings(steps=30, batch_size=16, checkpoint_every=10)

    def fresh():
        torch.manual_seed(0)
        return TinyScore(8).double()

    ref = fresh()
    fd.train_dsm(ref, data, settings, seed=1)
    # kill after 20 steps: a progress callback that raises
    def kill(step, loss):
        if step == 20:
            raise KeyboardInterrupt
    killed = fresh()
    with pytest.raises(KeyboardInterrupt):
        fd.train_dsm(killed, data, settings, seed=1, checkpoint=tmp_path / "ck.pt", progress=kill)
    resumed = fresh()
    losses = fd.train_dsm(resumed, data, settings, seed=1, checkpoint=tmp_path / "ck.pt")
    assert len(losses) == 30
    for a, b in zip(ref.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(CampaignError, match="different settings"):
        fd.train_dsm(fresh(), data, fd.DSMSettings(steps=31, batch_size=16, checkpoint_every=10), seed=1,
                     checkpoint=tmp_path / "ck.pt")


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(CampaignError, match="sigma_min"):
        fd.sigma_schedule(1.0, 0.5, 10)
    with pytest.raises(CampaignError, match="divergence"):
        fd.flow_log_likelihood(gaussian_score, torch.zeros(2, 2, dtype=torch.float64), divergence="bogus")


def test_hutchinson_log_likelihood_is_unbiased_and_its_spread_measured():
    """Correlated Gaussian (non-diagonal Jacobian): the Hutchinson log-likelihood scatters
    around the exact-divergence one (log p is linear in the divergence estimates, so no bias
    in log p); exp(log p) is then biased upward by ~ var/2, which is why the Metropolis
    proposals use the exact Jacobian."""
    A = torch.tensor([[1.0, 0.6, 0.0], [0.6, 1.0, 0.5], [0.0, 0.5, 1.0]], dtype=torch.float64)

    def score(x, sigma):
        cov = A + sigma.reshape(-1, 1, 1) ** 2 * torch.eye(3, dtype=torch.float64)
        return -torch.linalg.solve(cov, x.unsqueeze(-1)).squeeze(-1)

    x = torch.tensor([[0.3, -0.5, 1.0]], dtype=torch.float64).expand(100, 3).contiguous()
    kw = dict(sigma_min=0.01, sigma_max=50.0, n_steps=80)
    exact = fd.flow_log_likelihood(score, x[:1], **kw)
    gen = torch.Generator().manual_seed(6)
    hutch = fd.flow_log_likelihood(score, x, divergence="hutchinson", generator=gen, **kw)
    spread = float(hutch.std())
    assert spread > 1e-3  # the estimator is genuinely noisy here
    within(float(hutch.mean()), float(exact), spread / math.sqrt(hutch.numel()))
    analytic = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64),
                                                      A + 1e-4 * torch.eye(3, dtype=torch.float64)).log_prob(x[:1])
    assert abs(float(exact - analytic)) < 0.06  # O(h^2) of 80 Heun steps
