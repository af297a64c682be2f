"""The VE cumulant law (arXiv 2410.21212) on a non-Gaussian toy distribution with known
cumulants: along x_sigma = x_0 + sigma z, kappa_3 and kappa_4 stay constant within errors
and kappa_2 grows by sigma^2 (sigma^2 / V for a site average).  Power checks: a process
with drift (variance preserving) and a kappa_2 that is assumed not to grow must fail."""

import math

import numpy as np
import pytest
import torch

from campaign.cumulants import cumulant_summaries, derived_summaries, forward_cumulants, ve_cumulant_law

SHAPE_K = 2.0  # Gamma(k, 1): kappa_n = k (n - 1)!, i.e. 2, 4, 12 for n = 2, 3, 4
ORDERS = (2, 3, 4)
SIGMAS = (0.0, 0.5, 1.0, 2.0)
EXACT = {n: SHAPE_K * math.factorial(n - 1) for n in ORDERS}


def _gamma_draws(shape, seed):
    # numpy's generator: torch's Gamma sampler takes no generator
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.gamma(SHAPE_K, 1.0, size=shape))


def _pulls(summaries, expected):
    return {n: (summaries[n]["value"] - expected[n]) / summaries[n]["error"] for n in expected}


@pytest.fixture(scope="module")
def toy():
    return _gamma_draws((100_000,), seed=7)


def test_gamma_toy_has_the_known_cumulants(toy):
    s = cumulant_summaries([toy.numpy()], ORDERS)
    pulls = _pulls(s, EXACT)
    print("sigma = 0 pulls:", {n: round(float(p), 2) for n, p in pulls.items()})
    assert all(abs(p) < 3 for p in pulls.values())


def test_ve_forward_conserves_higher_cumulants(toy):
    gen = torch.Generator().manual_seed(8)
    along = forward_cumulants([toy], SIGMAS, lambda x: x, gen, ORDERS)
    for sigma, s in zip(SIGMAS, along):
        pulls = _pulls(s, ve_cumulant_law(EXACT, sigma))
        print(f"VE sigma = {sigma}: kappa =", {n: round(s[n]["value"], 3) for n in ORDERS},
              "+-", {n: round(s[n]["error"], 3) for n in ORDERS},
              "pulls", {n: round(float(p), 2) for n, p in pulls.items()})
        assert all(abs(p) < 3 for p in pulls.values()), (sigma, pulls)
    # the growth of kappa_2 is resolved: sigma = 2 is far from "kappa_2 conserved"
    assert (along[-1][2]["value"] - EXACT[2]) / along[-1][2]["error"] > 20


def test_ve_law_for_a_site_average():
    """M = mean of V = 4 independent components: kappa_n(M) = kappa_n(x) / V^(n-1) and the
    noise adds sigma^2 / V to kappa_2(M) only."""
    V = 4
    x0 = _gamma_draws((50_000, V), seed=9)
    gen = torch.Generator().manual_seed(10)
    exact_M = {n: EXACT[n] / V ** (n - 1) for n in ORDERS}
    for sigma, s in zip((0.0, 1.5), forward_cumulants([x0], (0.0, 1.5), lambda x: x.mean(1), gen, ORDERS)):
        pulls = _pulls(s, ve_cumulant_law(exact_M, sigma, noise_weight=1.0 / V))
        print(f"site average, sigma = {sigma}: pulls", {n: round(float(p), 2) for n, p in pulls.items()})
        assert all(abs(p) < 3 for p in pulls.values()), (sigma, pulls)


def test_ve_law_test_has_power(toy):
    """A drift (variance preserving, x = sqrt(1 - b) x_0 + sqrt(b) z, b = 0.36) shrinks
    kappa_3 by 0.8^3 and kappa_4 by 0.8^4: compared with the VE law they must fail."""
    b = 0.36
    gen = torch.Generator().manual_seed(11)
    z = torch.randn(toy.shape, generator=gen, dtype=toy.dtype)
    s = cumulant_summaries([(math.sqrt(1 - b) * toy + math.sqrt(b) * z).numpy()], ORDERS)
    pulls = _pulls(s, EXACT)
    print("VP (b = 0.36) against conserved cumulants: pulls", {n: round(float(p), 1) for n, p in pulls.items()})
    assert pulls[3] < -10 and pulls[4] < -5
    # ... while the VP law itself holds for them
    vp = {n: EXACT[n] * (1 - b) ** (n / 2) for n in (3, 4)}
    assert all(abs(p) < 3 for p in _pulls(s, vp).values())


def _ar1(rng, n, rho):
    x = np.empty(n)
    x[0] = rng.normal()
    noise = rng.normal(size=n) * math.sqrt(1 - rho**2)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + noise[i]
    return x


def test_cumulant_errors_on_autocorrelated_chains_agree_with_a_blocked_jackknife():
    """Skewed AR(1) chains (tau_int ~ 1-5): the Gamma-method errors of kappa_2 and kappa_3
    agree with an independent blocked jackknife (blocks of 200 >> tau), and a difference
    of two perfectly correlated primaries has no error (correlations are propagated)."""
    rng = np.random.default_rng(0)
    chains = [_ar1(rng, 4000, 0.8) ** 2 + _ar1(rng, 4000, 0.8) for _ in range(4)]
    s = cumulant_summaries(chains, (2, 3))
    blocks = [c[i:i + 200] for c in chains for i in range(0, 4000, 200)]
    nb = len(blocks)
    for n, f in ((2, np.var), (3, lambda x: np.mean((x - x.mean()) ** 3))):
        jk = np.array([f(np.concatenate(blocks[:i] + blocks[i + 1:])) for i in range(nb)])
        err = math.sqrt((nb - 1) / nb * np.sum((jk - jk.mean()) ** 2))
        print(f"kappa_{n}: Gamma error {s[n]['error']:.4f}, blocked jackknife {err:.4f}")
        assert s[n]["value"] == pytest.approx(f(np.concatenate(chains)), rel=1e-10)
        assert 0.7 < s[n]["error"] / err < 1.4
    d = derived_summaries({"A": chains, "B": [c + 3.0 for c in chains]}, lambda o: {"diff": o["A"] - o["B"]})
    assert d["diff"]["value"] == pytest.approx(-3.0) and d["diff"]["error"] < 1e-12
