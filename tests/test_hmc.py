"""HMC integrators and the Metropolis step: second-order error, reversibility, area
preservation through <exp(-dH)> = 1."""

import math

import numpy as np
import pytest
import torch

from campaign.fields import field_for
from campaign.hmc import force_evaluations, hamiltonian, integrate, trajectory


def thermalised(group, beta, L=6, chains=16, n_traj=30, seed=5):
    fld = field_for(group)
    gen = torch.Generator().manual_seed(seed)
    b = torch.tensor(beta, dtype=torch.float64)
    q = fld.cold_start(chains, L)
    for _ in range(n_traj):
        q, _ = trajectory(fld, q, b, 0.1, 10, "omelyan", gen)
    return fld, q, b, gen


def mean_abs_dh(fld, q, p, beta, n_steps, integrator, tau=1.0):
    q1, p1 = integrate(fld, q, p, beta, tau / n_steps, n_steps, integrator)
    return (hamiltonian(fld, q1, p1, beta) - hamiltonian(fld, q, p, beta)).abs().mean().item()


def test_dh_scales_as_eps_squared_and_omelyan_is_better(group):
    fld, q, beta, gen = thermalised(group, 2.0)
    p = fld.momenta(q, gen)
    steps = np.array([8, 16, 32, 64])
    eps = 1.0 / steps
    dh = {name: np.array([mean_abs_dh(fld, q, p, beta, int(n), name) for n in steps])
          for name in ("leapfrog", "omelyan")}
    for name, values in dh.items():
        slope = np.polyfit(np.log(eps), np.log(values), 1)[0]
        assert abs(slope - 2.0) < 0.15, (name, slope, values)
    coefficient = {name: np.mean(values / eps**2) for name, values in dh.items()}
    assert coefficient["omelyan"] < 0.3 * coefficient["leapfrog"], coefficient


def test_integrators_are_reversible(group):
    fld, q, beta, gen = thermalised(group, 1.5)
    p = fld.momenta(q, gen)
    for integrator in ("leapfrog", "omelyan"):
        q1, p1 = integrate(fld, q, p, beta, 0.1, 10, integrator)
        q2, p2 = integrate(fld, q1, -p1, beta, 0.1, 10, integrator)
        assert (fld.to_links(q2) - fld.to_links(q)).abs().max() < 1e-11
        assert (p2 + p).abs().max() < 1e-11


def textbook_integrate(fld, q, p, beta, eps, n_steps, integrator):
    """The integrators as written in the literature, one drift or kick at a time."""
    lam = 0.1931833275037836
    first, pairs = (0.5, [(1.0, 1.0)]) if integrator == "leapfrog" else (lam, [(0.5, 1 - 2 * lam), (0.5, 2 * lam)])
    p = p - first * eps * fld.force(q, beta)
    for i in range(n_steps):
        for k, (h, c) in enumerate(pairs):
            q = fld.drift(q, p, h * eps)
            if i == n_steps - 1 and k == len(pairs) - 1:
                c = first  # the last kick is the first one's mirror image
            p = p - c * eps * fld.force(q, beta)
    return q, p


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
@pytest.mark.parametrize("n_steps", [1, 2, 5])
def test_integrate_is_the_textbook_schedule(group, integrator, n_steps):
    """integrate takes (drift, kick) pairs two at a time (fused kernels); odd and even
    step counts must give the textbook sequence."""
    fld, q, beta, gen = thermalised(group, 1.5, n_traj=3)
    p = fld.momenta(q, gen)
    q1, p1 = integrate(fld, q, p, beta, 0.13, n_steps, integrator)
    q2, p2 = textbook_integrate(fld, q, p, beta, 0.13, n_steps, integrator)
    assert (fld.to_links(q1) - fld.to_links(q2)).abs().max() < 1e-13
    assert (p1 - p2).abs().max() < 1e-12


def test_force_evaluation_count():
    assert force_evaluations("leapfrog", 10) == 11
    assert force_evaluations("omelyan", 10) == 21


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_mean_exp_minus_dh_is_one(group, integrator):
    """Creutz's equality <exp(-dH)> = 1 holds for an exactly reversible, area-preserving
    integrator; coarse steps (acceptance ~ 0.6-0.8) make it a sharp test."""
    fld, q, beta, gen = thermalised(group, 2.0, chains=32)
    n_steps = 3 if integrator == "leapfrog" else 2
    values = []
    for _ in range(40):
        q, diag = trajectory(fld, q, beta, 1.0 / n_steps, n_steps, integrator, gen)
        values.append(torch.exp(-diag["dH"]).numpy())
    x = np.concatenate(values)
    # trajectories of different chains are independent; successive dH of one chain are
    # nearly so (dH depends on fresh momenta), so block over time to be safe
    per_chain = np.stack(values).reshape(8, 5, -1).mean(1).ravel()
    err = per_chain.std(ddof=1) / math.sqrt(per_chain.size)
    acc = np.minimum(1, x).mean()
    assert 0.3 < acc < 0.98, acc
    assert abs(x.mean() - 1.0) < 3.5 * err, (x.mean(), err)
