"""phi^4 (campaign.phi4): action and force, observables on hand-made configurations, the
exact references against independent computations, and HMC against them (free field on
the torus, one-site theory by quadrature), each with a power check: the same comparison
at a wrong coupling must fail."""

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import cli_errors, write_foreign_h5

from campaign.cumulants import cumulants_from_moments, forward_cumulants, ve_cumulant_law
from campaign.cli import main
from campaign.errors import CampaignError
from campaign.io import read_scalar_ensemble
from campaign.phi4 import Phi4Couplings, action, force, from_mass_form, to_mass_form
from campaign.phi4.exact import (free_magnetisation, free_phi2, free_propagator, free_zero_momentum_correlator,
                                 one_site_moments)
from campaign.phi4.hmc import Phi4HMCRun, Phi4HMCSettings, generate_ensemble, run_hmc
from campaign.phi4.observables import (magnetisation, measure, phi2, pull, summarise, two_point_function,
                                       zero_momentum_correlator)
from campaign.stats import chain_summary

FREE_KAPPA, FREE_SHAPE = 0.2, (8, 8)  # K(0) = 0.4: chi_full = 2.5, well inside the stable region
SITE_LAMBDA = 1.5  # one-site double well: 1 - 2 lambda < 0, minima at phi^2 = 2/3


# ------------------------------------------------------------------ action and force
@pytest.mark.parametrize("shape", [(), (6,), (4, 5), (3, 4, 2)])
def test_force_is_the_gradient_of_the_action(shape):
    gen = torch.Generator().manual_seed(1)
    phi = torch.randn((3, *shape), generator=gen, dtype=torch.float64, requires_grad=True)
    c = Phi4Couplings(0.17, 0.8)
    (grad,) = torch.autograd.grad(action(phi, c).sum(), phi)
    torch.testing.assert_close(force(phi.detach(), c), grad, rtol=1e-12, atol=1e-12)


def test_action_of_hand_made_fields():
    L, a, c = 6, 0.7, Phi4Couplings(0.3, 0.4)
    V, d = L * L, 2
    const = torch.full((1, L, L), a, dtype=torch.float64)
    site = a * a + c.lam * (a * a - 1) ** 2
    assert float(action(const, c)) == pytest.approx(V * (-2 * c.kappa * d * a * a + site), rel=1e-14)
    # checkerboard: every neighbour has the opposite sign, the hopping term flips
    x, y = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
    board = a * (1 - 2 * ((x + y) % 2)).to(torch.float64)[None]
    assert float(action(board, c)) == pytest.approx(V * (2 * c.kappa * d * a * a + site), rel=1e-14)
    # one site: no hopping at all
    assert float(action(torch.tensor([a], dtype=torch.float64), c)[0]) == pytest.approx(site, rel=1e-14)


def test_mass_form_round_trip_and_action():
    c = Phi4Couplings(0.26, 0.02)
    m2, g = to_mass_form(c, d=2)
    back = from_mass_form(m2, g, d=2)
    assert back.kappa == pytest.approx(c.kappa, rel=1e-12) and back.lam == pytest.approx(c.lam, rel=1e-12)
    # the mass form of the same field, varphi = sqrt(2 kappa) phi, equals S up to lambda V
    phi = torch.randn(2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    v = math.sqrt(2 * c.kappa) * phi
    kinetic = sum(0.5 * (torch.roll(v, -1, ax) - v) ** 2 for ax in (1, 2))
    s_mass = (kinetic + 0.5 * m2 * v**2 + g / 24 * v**4).sum((1, 2))
    torch.testing.assert_close(s_mass + c.lam * 20, action(phi, c), rtol=1e-12, atol=1e-12)


def test_bad_couplings_are_user_errors():
    with pytest.raises(CampaignError):
        Phi4Couplings(-0.1, 0.0)
    with pytest.raises(CampaignError):
        Phi4Couplings(0.1, float("nan"))
    with pytest.raises(CampaignError):
        free_phi2(0.25, (8, 8))  # kappa = 1/(2d): the zero mode is massless
    with pytest.raises(CampaignError):
        run_hmc(Phi4HMCSettings(0.1, 0.0, (8, 1), 10))


# ------------------------------------------------------------------ observables
def test_observables_of_hand_made_fields():
    Ls, Lt, a = 4, 6, 0.5
    const = torch.full((1, Ls, Lt), a, dtype=torch.float64)
    assert float(magnetisation(const)) == pytest.approx(a)
    assert float(phi2(const)) == pytest.approx(a * a)
    # constant field: S(tau) = Ls a, g(t) = Lt (Ls a)^2 / V = Ls a^2 for every t
    np.testing.assert_allclose(zero_momentum_correlator(const)[0].numpy(), Ls * a * a, rtol=1e-13)
    np.testing.assert_allclose(two_point_function(const)[0].numpy(), a * a, rtol=1e-13)
    # a plane wave in time: M = 0, g(t) = (Ls / 2) cos(2 pi t / Lt)
    t = torch.arange(Lt, dtype=torch.float64)
    wave = torch.cos(2 * math.pi * t / Lt).expand(1, Ls, Lt)
    assert abs(float(magnetisation(wave))) < 1e-15
    np.testing.assert_allclose(zero_momentum_correlator(wave)[0].numpy(),
                               Ls / 2 * np.cos(2 * np.pi * np.arange(Lt) / Lt), atol=1e-13)
    # ... and <phi_0 phi_x> = cos(2 pi x_t / Lt) / 2 at every spatial displacement
    np.testing.assert_allclose(two_point_function(wave)[0].numpy(),
                               np.broadcast_to(np.cos(2 * np.pi * np.arange(Lt) / Lt) / 2, (Ls, Lt)), atol=1e-13)


def test_summaries_of_a_two_valued_magnetisation():
    """M = +-m at random: |M| and M^2 never fluctuate, so chi = 0 and U = 2/3 exactly;
    the cumulants approach those of +-m (kappa_2 = m^2, kappa_4 = -2 m^4, kappa_6 = 16 m^6)."""
    m, V = 0.3, 16
    rng = np.random.default_rng(3)
    M = m * rng.choice([-1.0, 1.0], size=(4000, 4))
    s = summarise({"M": M, "phi2": M**2}, volume=V)
    assert s["chi"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert s["binder"]["value"] == pytest.approx(2 / 3, rel=1e-12)
    assert s["absM"]["value"] == pytest.approx(m, rel=1e-12)
    for n, exact in ((2, m**2), (4, -2 * m**4), (6, 16 * m**6)):
        assert abs(pull(s[f"kappa_{n}"], exact)) < 4, n


def test_connected_correlator_of_a_frozen_vacuum():
    """Chains stuck in one vacuum, phi = a + small noise: G(t) ~ L_s a^2, connected ~ 0."""
    Ls, Lt, a = 4, 4, 0.8
    gen = torch.Generator().manual_seed(6)
    phi = a + 0.01 * torch.randn((50, 3, Ls, Lt), generator=gen, dtype=torch.float64)
    s = summarise(measure(phi), volume=Ls * Lt, orders=(2,))
    for t in range(Lt):
        assert s["G"][t]["value"] == pytest.approx(Ls * a * a, rel=1e-2)
        assert abs(s["G_connected"][t]["value"]) < 1e-3


def test_cumulants_from_exact_moments():
    k = cumulants_from_moments([1, 0, 1, 0, 1, 0, 1])  # +-1 with equal weight
    assert k[2] == 1 and k[4] == -2 and k[6] == 16 and k[3] == k[5] == 0
    k = cumulants_from_moments([1, 0, 1, 0, 3, 0, 15])  # standard normal
    assert k[2:] == [1, 0, 0, 0, 0]
    k = cumulants_from_moments([1, 1, 2, 6, 24, 120, 720])  # exponential: kappa_n = (n-1)!
    assert k[1:] == [1, 1, 2, 6, 24, 120]


# ------------------------------------------------------------------ exact references
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (6,)])
def test_free_propagator_is_the_inverse_hessian_of_the_action(shape):
    """Independent of the momentum sum: invert the Hessian of S (lambda = 0) in real space."""
    kappa = 0.11
    V = math.prod(shape)
    hess = torch.autograd.functional.hessian(
        lambda f: action(f.reshape(1, *shape), Phi4Couplings(kappa, 0.0)).sum(),
        torch.zeros(V, dtype=torch.float64))
    cov = torch.linalg.inv(hess).numpy()
    np.testing.assert_allclose(free_propagator(kappa, shape).reshape(-1), cov[0], rtol=1e-12, atol=1e-14)
    ex = free_magnetisation(kappa, shape)
    assert ex["M2"] == pytest.approx(cov.sum() / V**2, rel=1e-12)
    assert free_phi2(kappa, shape) == pytest.approx(cov[0, 0], rel=1e-12)


def test_one_site_quadrature_at_lambda_zero_is_gaussian():
    np.testing.assert_allclose(one_site_moments(0.0), [1, 0, 0.5, 0, 0.75, 0, 1.875], rtol=1e-10)


# ------------------------------------------------------------------ HMC against exact
@pytest.fixture(scope="module")
def free_run():
    settings = Phi4HMCSettings(FREE_KAPPA, 0.0, FREE_SHAPE, configs_per_chain=500, chains=32, therm=100, seed=11)
    ens = run_hmc(settings)
    return ens, summarise(measure(ens.phi), ens.volume)


@pytest.fixture(scope="module")
def free_summary(free_run):
    return free_run[1]


def test_hmc_is_area_preserving_and_reversible(free_run):
    """Creutz: <exp(-dH)> = 1 exactly for a reversible, area-preserving integrator."""
    ens = free_run[0]
    w = torch.exp(-ens.history["dH"][ens.attrs["therm"]:]).numpy()
    s = chain_summary([w[:, c] for c in range(w.shape[1])])
    print(f"<exp(-dH)> = {s['value']:.4f} +- {s['error']:.4f}")
    assert abs(pull(s, 1.0)) < 3


def _free_pulls(s, kappa):
    ex = free_magnetisation(kappa, FREE_SHAPE)
    G = free_zero_momentum_correlator(kappa, FREE_SHAPE)
    pulls = {"phi2": pull(s["phi2"], free_phi2(kappa, FREE_SHAPE))}
    pulls.update({k: pull(s[k], ex[k]) for k in ("absM", "M2", "chi", "chi_full", "binder", "kappa_2")})
    pulls.update({f"G({t})": pull(s["G"][t], G[t]) for t in range(FREE_SHAPE[-1] // 2 + 1)})
    pulls.update({f"G_c({t})": pull(s["G_connected"][t], G[t]) for t in (0, 1)})  # <phi> = 0: G_c = G
    return pulls


def test_free_field_hmc_matches_the_torus_propagator(free_summary):
    pulls = _free_pulls(free_summary, FREE_KAPPA)
    print("free-field pulls:", {k: round(float(v), 2) for k, v in pulls.items()})
    assert all(abs(p) < 3 for p in pulls.values()), pulls
    assert free_summary["phi2"]["reliable"], free_summary["phi2"]["note"]


def test_free_field_hmc_matches_the_propagator_in_position_space(free_run):
    """<phi_0 phi_x> at displacements along an axis, a diagonal and across the torus."""
    ens = free_run[0]
    n, chains = ens.phi.shape[:2]
    g = two_point_function(ens.phi.reshape(n * chains, *FREE_SHAPE)).reshape(n, chains, *FREE_SHAPE).numpy()
    exact = free_propagator(FREE_KAPPA, FREE_SHAPE)
    pulls = {x: pull(chain_summary([g[:, c][(slice(None), *x)] for c in range(chains)]), exact[x])
             for x in ((1, 0), (0, 1), (1, 1), (3, 0), (4, 4))}
    print("free-field propagator pulls:", {x: round(float(p), 2) for x, p in pulls.items()})
    assert all(abs(p) < 3 for p in pulls.values()), pulls


def test_free_field_comparison_has_power(free_summary):
    """The same data against the exact values at kappa 10% off must fail clearly."""
    pulls = _free_pulls(free_summary, 0.9 * FREE_KAPPA)
    print("free-field pulls at the wrong kappa:", {k: round(float(v), 1) for k, v in pulls.items()})
    assert max(abs(pulls[k]) for k in ("phi2", "chi_full", "G(0)")) > 10


@pytest.fixture(scope="module")
def site_data():
    ens = run_hmc(Phi4HMCSettings(0.0, SITE_LAMBDA, (), configs_per_chain=1000, chains=64, therm=100, seed=5))
    m = measure(ens.phi)
    s = summarise(m, volume=1, orders=(2, 4, 6))
    s["phi4"] = chain_summary([m["M"][:, c] ** 4 for c in range(m["M"].shape[1])])
    return s


def _site_pulls(s, lam):
    mom = one_site_moments(lam)
    k = cumulants_from_moments(mom)
    pulls = {"phi^2": pull(s["M2"], mom[2]), "phi^4": pull(s["phi4"], mom[4])}
    pulls.update({f"kappa_{n}": pull(s[f"kappa_{n}"], k[n]) for n in (2, 4, 6)})
    return pulls


def test_one_site_hmc_matches_quadrature(site_data):
    pulls = _site_pulls(site_data, SITE_LAMBDA)
    print("one-site pulls:", {k: round(float(v), 2) for k, v in pulls.items()})
    assert all(abs(p) < 3 for p in pulls.values()), pulls


def test_one_site_comparison_has_power(site_data):
    pulls = _site_pulls(site_data, SITE_LAMBDA - 0.2)
    print("one-site pulls at the wrong lambda:", {k: round(float(v), 1) for k, v in pulls.items()})
    assert max(abs(p) for p in pulls.values()) > 6


# ------------------------------------------------------------------ interacting, with hopping
TWO_SITE = Phi4Couplings(0.3, 1.0)


def _two_site_exact(c: Phi4Couplings) -> dict:
    """The periodic lattice of two sites (shape (2,)): both forward neighbours of a site
    are the other site, S = -4 kappa phi_0 phi_1 + sum_i [phi_i^2 + lambda (phi_i^2 - 1)^2].
    A uniform-grid (trapezoid) quadrature of this smooth, fast-decaying weight is exact to
    far below the Monte Carlo errors."""
    x = np.linspace(-5.0, 5.0, 1001)
    a, b = np.meshgrid(x, x, indexing="ij")
    S = -4 * c.kappa * a * b + a * a + b * b + c.lam * ((a * a - 1) ** 2 + (b * b - 1) ** 2)
    w = np.exp(-(S - S.min()))
    w /= w.sum()
    M = (a + b) / 2
    m2, m4, absm = (w * M**2).sum(), (w * M**4).sum(), (w * np.abs(M)).sum()
    return {"phi2": (w * (a * a + b * b) / 2).sum(), "M2": m2, "absM": absm, "chi": 2 * (m2 - absm**2),
            "binder": 1 - m4 / (3 * m2**2), "kappa_4": m4 - 3 * m2**2}


@pytest.fixture(scope="module")
def two_site_run():
    c = TWO_SITE
    return run_hmc(Phi4HMCSettings(c.kappa, c.lam, (2,), configs_per_chain=1000, chains=64, therm=100, seed=3))


@pytest.fixture(scope="module")
def two_site_summary(two_site_run):
    return summarise(measure(two_site_run.phi), two_site_run.volume, orders=(2, 4))


def test_two_site_hmc_with_hopping_and_coupling_matches_quadrature(two_site_summary):
    ex = _two_site_exact(TWO_SITE)
    pulls = {k: pull(two_site_summary[k], v) for k, v in ex.items()}
    print("two-site pulls:", {k: round(float(v), 2) for k, v in pulls.items()})
    assert all(abs(p) < 3 for p in pulls.values()), pulls


def test_two_site_comparison_has_power(two_site_summary):
    ex = _two_site_exact(Phi4Couplings(0.9 * TWO_SITE.kappa, TWO_SITE.lam))
    pulls = {k: pull(two_site_summary[k], v) for k, v in ex.items()}
    print("two-site pulls at the wrong kappa:", {k: round(float(v), 1) for k, v in pulls.items()})
    assert max(abs(p) for p in pulls.values()) > 6


def test_hmc_is_seeded_and_runs_every_integrator_and_dtype():
    base = dict(kappa=0.2, lam=0.5, shape=(4, 4), configs_per_chain=5, chains=3, therm=4, seed=21)
    a, b = run_hmc(Phi4HMCSettings(**base)), run_hmc(Phi4HMCSettings(**base))
    assert torch.equal(a.phi, b.phi)
    assert not torch.equal(a.phi[:, 0], a.phi[:, 1])  # chains are distinct streams
    assert not torch.equal(run_hmc(Phi4HMCSettings(**{**base, "seed": 22})).phi, a.phi)
    for extra in ({"integrator": "leapfrog", "n_leapfrog": 8}, {"dtype": "float32"}):
        ens = run_hmc(Phi4HMCSettings(**{**base, **extra}))
        assert ens.phi.shape == (5, 3, 4, 4) and torch.isfinite(ens.phi).all()
        assert ens.history["accept_prob"].mean() > 0.5, extra
    assert ens.phi.dtype == torch.float32


def test_ve_forward_process_on_an_hmc_ensemble(two_site_run):
    """The VE law on lattice data, through the path the diagnostic stage uses (chains of
    configurations, M per configuration): kappa_4(M) stays at its exact nonzero value,
    kappa_2(M) grows by sigma^2 / V."""
    ex = _two_site_exact(TWO_SITE)
    kappa0 = {2: ex["M2"], 3: 0.0, 4: ex["kappa_4"]}
    chains = [two_site_run.phi[:, c] for c in range(two_site_run.phi.shape[1])]
    sigmas = (0.5, 1.0)
    along = forward_cumulants(chains, sigmas, magnetisation, torch.Generator().manual_seed(4), (2, 3, 4))
    for sigma, s in zip(sigmas, along):
        law = ve_cumulant_law(kappa0, sigma, noise_weight=1.0 / two_site_run.volume)
        pulls = {n: pull(s[n], law[n]) for n in law}
        print(f"two-site VE sigma = {sigma}: kappa_4 = {s[4]['value']:.3f} +- {s[4]['error']:.3f}"
              f" (exact {ex['kappa_4']:.3f}), pulls", {n: round(float(p), 2) for n, p in pulls.items()})
        assert all(abs(p) < 3 for p in pulls.values()), (sigma, pulls)
    assert abs(pull(along[0][4], 0.0)) > 10  # kappa_4 is resolved away from zero (Gaussian)


# ------------------------------------------------------------------ files and command line
class _StopAt:
    """A progress sink that kills the run (as a signal would) after trajectory k."""

    def __init__(self, k):
        self.k = k

    def update(self, done, extra="", force=False):
        if done == self.k:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_identical_ensemble(tmp_path, capsys):
    settings = Phi4HMCSettings(0.22, 0.3, (4, 4), configs_per_chain=12, chains=3, therm=6, sep=2, seed=4)
    reference = run_hmc(settings)
    out = tmp_path / "run.h5"
    parts = tmp_path / "run.h5.parts"
    with pytest.raises(KeyboardInterrupt):
        Phi4HMCRun(settings, parts).run(checkpoint_interval=0.0, progress=_StopAt(17))
    assert (parts / "state.pt").exists() and not out.exists()
    with pytest.raises(CampaignError, match="different settings"):
        Phi4HMCRun(Phi4HMCSettings(**{**asdict(settings), "seed": 5}), parts).run()
    generate_ensemble(out, settings, checkpoint_interval=0.0, progress=True)
    assert "resuming" in capsys.readouterr().err
    data = read_scalar_ensemble(out)
    assert torch.equal(data["phi"], reference.phi)
    assert np.array_equal(data["step"], reference.step.numpy())
    for key, value in reference.history.items():
        assert np.array_equal(data["history"][key], value.numpy()), key
    assert not parts.exists()


def test_cli_writes_the_ensemble_with_provenance(tmp_path):
    out = tmp_path / "phi4.h5"
    argv = ["phi4-hmc", "--kappa", "0.2", "--lam", "0.5", "--L", "4", "--configs-per-chain", "6", "--chains", "3",
            "--therm", "4", "--seed", "9", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    data = read_scalar_ensemble(out)
    reference = run_hmc(Phi4HMCSettings(0.2, 0.5, (4, 4), configs_per_chain=6, chains=3, therm=4, seed=9))
    assert torch.equal(data["phi"], reference.phi)
    a = data["attrs"]
    assert a["theory"] == "phi4" and a["kappa"] == 0.2 and a["lam"] == 0.5 and list(a["shape"]) == [4, 4]
    assert a["code_commit"] and a["created"] and a["n_leapfrog"] == reference.attrs["n_leapfrog"]
    assert data["history"]["dH"].shape == (4 + 6, 3)
    assert not (tmp_path / "phi4.h5.parts").exists()


@pytest.mark.parametrize("extra, message", [(["--kappa", "-1"], "kappa"), (["--L", "1"], "L"),
                                            (["--target-acceptance", "2"], "target acceptance")])
def test_cli_bad_arguments_are_one_line(tmp_path, capsys, extra, message):
    argv = ["phi4-hmc", "--kappa", "0.2", "--lam", "0.5", "--L", "4", "--configs-per-chain", "2",
            "--out", str(tmp_path / "x.h5"), *extra]
    rc, err = cli_errors(main, argv, capsys)
    assert rc != 0 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "x.h5").exists()


def test_reading_a_foreign_file_is_a_user_error(tmp_path):
    path = write_foreign_h5(tmp_path / "foreign.h5", x=np.arange(3))
    with pytest.raises(CampaignError, match="not a campaign scalar-field ensemble"):
        read_scalar_ensemble(path)
