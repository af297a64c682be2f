"""The lattice model with a sign problem (issue 19): the 0+1D relativistic Bose gas at
nonzero chemical potential.  Exact charge-sector transfer matrices against the free theory
and against d ln Z / d mu; complex Langevin against the exact values; the diffusion model
of the complexified field against CL."""

import math

import numpy as np
import pytest
import torch

from campaign.complex_langevin import CLSettings, run_cl, verdict
from campaign.complex_langevin.bose_gas import BoseGas, _exact
from campaign.complex_langevin.models import make_model, model_from_params
from campaign.complex_langevin.store import read_cl_ensemble, write_cl_ensemble
from campaign.errors import CampaignError


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def free_theory(n_t, m, mu):
    """<phi^2> and <n> of the lam = 0 theory from the complex quadratic form S = phi^T M phi / 2
    (M from the action's Hessian): <phi^2> = Tr M^-1 / N_t, <n> = -Tr(M^-1 dM/dmu) / (2 N_t)."""
    def matrix(mu_):
        g = BoseGas(n_t, m, 1.0, mu_)
        g.lam = 0.0  # past the validation: the Gaussian integral exists for m^2 + 2 > 2 cosh mu

        def part(f):
            return torch.autograd.functional.hessian(
                lambda v: f(g.action(v.to(torch.complex128).reshape(n_t, 2))), torch.zeros(2 * n_t, dtype=torch.float64))

        return (part(lambda s: s.real) + 1j * part(lambda s: s.imag)).numpy()

    h = 1e-6
    m_inv = np.linalg.inv(matrix(mu))
    dm = (matrix(mu + h) - matrix(mu - h)) / (2 * h)
    return np.trace(m_inv).real / n_t, -0.5 * np.trace(m_inv @ dm).real / n_t


def test_exact_transfer_matrix_matches_free_theory_and_d_log_z():
    for mu in (0.0, 0.5):
        phi2, n, _ = _exact(4, 1.0, 1e-9, mu)
        free_phi2, free_n = free_theory(4, 1.0, mu)
        assert phi2 == pytest.approx(free_phi2, abs=1e-6) and n == pytest.approx(free_n, abs=1e-6)
    g = BoseGas(4, 1.0, 1.0, 0.7)
    h = 1e-5
    assert (g.log_z(0.7 + h) - g.log_z(0.7 - h)) / (2 * h) / 4 == pytest.approx(g.exact_observable("n").real, abs=1e-7)
    assert BoseGas(4, 1.0, 1.0, 0.0).exact_observable("n") == pytest.approx(0, abs=1e-12)
    # converged in the radial grid and the charge sectors
    assert np.allclose(_exact(6, 1.0, 1.0, 1.0), _exact(6, 1.0, 1.0, 1.0, points=160, charge_max=100), atol=1e-10)


def test_drift_is_minus_the_holomorphic_derivative_of_the_action():
    g = BoseGas(5, 0.8, 0.6, 0.9)
    gen = torch.Generator().manual_seed(0)
    phi = torch.complex(torch.randn(5, 2, generator=gen, dtype=torch.float64),
                        0.3 * torch.randn(5, 2, generator=gen, dtype=torch.float64))
    h = 1e-6
    numeric = torch.zeros_like(phi)
    for t in range(5):
        for a in range(2):
            e = torch.zeros_like(phi)
            e[t, a] = h
            numeric[t, a] = -(g.action(phi + e) - g.action(phi - e)) / (2 * h)
    assert torch.allclose(g.drift(phi), numeric, atol=1e-7)
    assert abs(g.action(phi.real.to(torch.complex128)).imag) > 1e-3  # mu != 0: a sign problem


@pytest.mark.parametrize("mu,seed", [(0.5, 1), (1.0, 2)])
def test_cl_matches_exact_density_and_phi2(mu, seed):
    # m = lam = 1, N_t = 4: CL correct at mu = 0.5 and 1 (the density grows eightfold in between)
    g = BoseGas(4, 1.0, 1.0, mu)
    r = run_cl(g, CLSettings(n_chains=512, n_meas=60, tau_meas=1.0, tau_therm=5.0, seed=seed))
    v = verdict(g, r["z"].numpy(), r["drift_abs"].numpy())
    assert set(v["moments"]) == {"phi^2", "n"}
    for name, m in v["moments"].items():
        assert abs(m["pull_re"]) < 3 and abs(m["pull_im"]) < 3, (mu, name, m)
        assert m["re"]["error"] < 0.005, (mu, name)  # a real test, not a wide error bar
    assert v["correct"], v["statement"]


def test_lattice_fields_store_round_trip_and_model_registry(tmp_path):
    g = make_model("bose-gas", n_t=3, m=1.0, lam=0.5, mu=0.4)
    settings = CLSettings(n_chains=8, n_meas=5, tau_therm=0.5)
    r = run_cl(g, settings)
    assert r["z"].shape == (5, 8, 3, 2) and r["drift_abs"].shape == (5, 8)
    back = read_cl_ensemble(write_cl_ensemble(tmp_path / "b.h5", g, settings, r))
    assert np.array_equal(back["z"], r["z"].numpy()) and back["model"] == g
    assert back["attrs"]["theory"] == "complex-langevin-lattice"
    assert model_from_params(g.params()) == g
    with pytest.raises(CampaignError, match="lam > 0"):
        BoseGas(4, 1.0, 0.0, 0.5)
    with pytest.raises(CampaignError, match="n_t"):
        BoseGas(1)
    with pytest.raises(CampaignError, match="observables"):
        g.exact_observable("z^2")


@pytest.mark.slow
def test_diffusion_model_of_the_complexified_field_reproduces_cl():
    # ~2 CPU-minutes on a loaded machine: 16 real coordinates (4 sites x 2 components x re/im)
    from campaign.complex_langevin.diagnostics import independent_observable_summary
    from campaign.complex_langevin.diffusion import CLDiffusionSettings, sample_cl_diffusion, train_cl_diffusion

    g = BoseGas(4, 1.0, 1.0, 1.0)
    r = run_cl(g, CLSettings(n_chains=1024, n_meas=20, tau_meas=1.0, tau_therm=5.0, seed=1))
    z = r["z"].numpy()
    cl = verdict(g, z, r["drift_abs"].numpy())["moments"]
    settings = CLDiffusionSettings()
    net, _ = train_cl_diffusion(z, settings, seed=0, field_shape=g.field_shape)
    z_dm = sample_cl_diffusion(net, 10_000, settings, seed=1, field_shape=g.field_shape)
    assert z_dm.shape == (10_000, 4, 2)
    for name, values in g.observables(z_dm).items():
        dm = independent_observable_summary(values)
        for part in ("re", "im"):
            err = math.hypot(dm[part]["error"], cl[name][part]["error"])
            assert abs(dm[part]["value"] - cl[name][part]["value"]) < 3 * err, (name, part, dm, cl[name])
        assert dm["re"]["error"] < 0.01
    # power: the density at a different mu is far outside the DM's error
    assert abs(independent_observable_summary(g.observables(z_dm)["n"])["re"]["value"]
               - BoseGas(4, 1.0, 1.0, 0.7).exact_observable("n").real) > 0.1
