"""HMC against the exact 2D solution on the torus (Gamma-method errors).

These are the physics acceptance tests of the Monte Carlo: plaquette and W(2,2) for
every group at two couplings on L = 8, and chi_t for U(1)."""

import numpy as np
import pyerrors as pe
import pytest

from campaign import exact
from campaign.hmc import generate_ensemble
from campaign.io import read_ensemble
from campaign.lattice import wilson_loop

pytestmark = pytest.mark.slow

CASES = [("u1", 1.0), ("u1", 3.0), ("su2", 2.0), ("su2", 4.0), ("u2", 2.0), ("u2", 4.0)]


def gamma_method(values, chain):
    """Mean and error of a per-configuration series, chains as replicas."""
    samples = [values[chain == c] for c in np.unique(chain)]
    obs = pe.Obs(samples, [f"hmc|r{c}" for c in range(len(samples))])
    obs.gamma_method()
    return obs.value, obs.dvalue


def run(tmp_path, group, beta, n_configs=2400, chains=16, seed=0):
    out = tmp_path / f"{group}_{beta}.h5"
    generate_ensemble(out, group, beta, 8, n_configs, chains=chains, therm=100, sep=1,
                      seed=seed, progress=False)
    return read_ensemble(out)


@pytest.mark.parametrize("group, beta", CASES)
def test_plaquette_and_w22_agree_with_exact_torus(tmp_path, group, beta):
    ens = run(tmp_path, group, beta)
    for (r, t) in ((1, 1), (2, 2)):
        value, error = gamma_method(wilson_loop(ens.links, r, t).numpy(), ens.chain)
        expected = exact.wilson_loop(group, beta, 8, r, t)
        assert error < 0.02, error  # the test has teeth
        assert abs(value - expected) < 3 * error, (r, t, value, error, expected)


def test_u1_topological_susceptibility_agrees_with_exact(tmp_path):
    from campaign.observables import topological_charge

    ens = run(tmp_path, "u1", 2.0, n_configs=8000, chains=32, seed=3)
    q = topological_charge("u1", ens.links).numpy()
    assert np.allclose(q, np.round(q))
    samples = [q[ens.chain == c] ** 2 / 64 for c in np.unique(ens.chain)]
    obs = pe.Obs(samples, [f"hmc|r{c}" for c in range(len(samples))])
    obs.gamma_method()
    expected = exact.chi_t("u1", 2.0, 8)
    assert obs.dvalue < 0.15 * expected
    assert abs(obs.value - expected) < 3 * obs.dvalue, (obs.value, obs.dvalue, expected)
