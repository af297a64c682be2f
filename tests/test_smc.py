"""The exact diffusion sampler (campaign.samplers.smc): importance-weighted estimates match
the exact torus values whatever the model, the same runs' unweighted estimates do not
(the tests have power), the batch estimates of Z are unbiased, files and resume."""

import math
import textwrap

import numpy as np
import pytest
import torch
from conftest import WrongBetaScore, assert_same_history, killed_and_resumed, start_script

from campaign import exact, io
from campaign.analysis import measure_file
from campaign.diffusion import ScoreModel
from campaign.errors import CampaignError
from campaign.groups import get_group
from campaign.lattice import wilson_loop
from campaign.observables import topological_charge
from campaign.samplers.job import sample_to_file
from campaign.samplers.scores import PhysicsScore, ZeroScore, coupling_fraction
from campaign.samplers.settings import SampleSettings
from campaign.samplers.smc import _SMCRun, allocate_steps, initial_path, systematic_resample
from campaign.stats import weighted_summary


pytestmark = pytest.mark.usefixtures("one_thread")


def smc(model, out, beta, L, n, *, progress=False, **kw):
    return sample_to_file(model, out, SampleSettings(beta=beta, L=L, n_samples=n, **kw), progress=progress)


def observables(path, group):
    ens = io.read_ensemble(path)
    U = ens.links
    obs = {"plaquette": wilson_loop(U, 1, 1).numpy(), "W(2,2)": wilson_loop(U, 2, 2).numpy()}
    if get_group(group).has_topology:
        obs["chi_t"] = topological_charge(group, U).numpy() ** 2 / (U.shape[-3] ** 2)
    return ens, obs


def exact_values(group, beta, L):
    ex = {"plaquette": exact.plaquette(group, beta, L), "W(2,2)": exact.wilson_loop(group, beta, L, 2, 2)}
    if get_group(group).has_topology:
        ex["chi_t"] = exact.chi_t(group, beta, L)
    return ex


def assert_weighted_exact(ens, obs, ex):
    """Every weighted estimate within 3 errors of exact, each error small enough to mean
    something, and (power) the same particles without their weights far off."""
    for name, x in obs.items():
        w = weighted_summary(x, ens.log_weights, ens.weight_block)
        assert w["reliable"], (name, w["note"])
        pull = (w["value"] - ex[name]) / w["error"]
        assert abs(pull) < 3, f"{name}: weighted {w['value']:.5f} +- {w['error']:.5f} vs exact {ex[name]:.5f}"
        bound = 0.35 * ex[name] if name == "chi_t" else {"plaquette": 0.02, "W(2,2)": 0.04}[name]
        assert w["error"] < bound, f"{name}: error {w['error']} too large for the test to mean much"
    plaq = obs["plaquette"]
    unweighted_pull = (plaq.mean() - ex["plaquette"]) / (plaq.std(ddof=1) / math.sqrt(len(plaq)))
    assert abs(unweighted_pull) > 5, f"unweighted plaquette pull only {unweighted_pull:.1f}: the test has no power"


# One Metropolis move per level and no tail leave the particles far from
# equilibrium, so only the weights can make the estimates right.
COARSE = dict(n_levels=100, steps_per_level=1, tail_steps=0, batch=64, pilot_chains=64, seed=11, drift="model")


@pytest.mark.slow
@pytest.mark.parametrize("group,beta", [("u1", 2.0), ("su2", 3.0), ("u2", 3.0)])
@pytest.mark.parametrize("model_kind", ["untrained", "wrong_beta"])
def test_weighted_estimates_are_exact_and_unweighted_ones_are_not(tmp_path, group, beta, model_kind):
    L, n = 4, 1536
    model = (ZeroScore if model_kind == "untrained" else WrongBetaScore)(group, beta0=1.0, L0=8,
                                                                        sigma_min=0.01, sigma_max=3.0)
    path = smc(model, tmp_path / "s.h5", beta, L, n, **COARSE)
    ens, obs = observables(path, group)
    assert ens.attrs["weighted"] and not ens.attrs["approximate"] and ens.attrs["algorithm"] == "smc"
    lw, blocks = ens.log_weights, ens.weight_block
    assert lw.dtype == np.float64 and len(np.unique(blocks)) == n // COARSE["batch"]
    assert_weighted_exact(ens, obs, exact_values(group, beta, L))


def test_batches_side_by_side_are_exact(tmp_path):
    """All 24 batches in one vectorised pass (issue 16): each is still its own SMC run, so
    the weighted estimates stay exact, with the error analysis over the 24 batches."""
    group, beta, L, n = "u1", 2.0, 4, 1536
    path = smc(ZeroScore(group, 1.0, 8, 0.01, 3.0), tmp_path / "p.h5", beta, L, n, batches_per_pass=24, **COARSE)
    ens, obs = observables(path, group)
    assert len(np.unique(ens.weight_block)) == n // COARSE["batch"]
    assert_weighted_exact(ens, obs, exact_values(group, beta, L))


@pytest.mark.slow
def test_float32_sampling_with_the_network_is_exact(tmp_path):
    """The speed path (issue 16): the real score network (FastLCNN, untrained, its skip force
    at beta0 = 1) and the whole sampler in float32, weights accumulated in float64.  Rounding
    must not bias the weighted estimates; the unweighted ones are far off (power)."""
    group, beta, L, n = "u2", 3.0, 4, 1536
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ScoreModel(group, 1.0, 8, 0.01, 3.0)
    path = smc(model, tmp_path / "f32.h5", beta, L, n, dtype="float32", **COARSE)
    ens, obs = observables(path, group)
    assert ens.links.dtype == torch.complex64 and ens.log_weights.dtype == np.float64
    assert_weighted_exact(ens, obs, exact_values(group, beta, L))


@pytest.mark.parametrize("batches_per_pass", [1, 16])
def test_batch_estimates_of_the_partition_function_are_unbiased(tmp_path, batches_per_pass):
    """E[Zhat_b] = Z exactly for every batch size: the mean of the batches' Zhat against
    the character-expansion Z (and log Zhat is biased low, by about var(log Zhat)/2); also
    with batches run side by side, each resampled within itself."""
    group, beta, L = "u1", 1.5, 4
    path = smc(ZeroScore(group, 1.0, 8, 0.01, 3.0), tmp_path / "z.h5", beta, L, 32 * 48, n_levels=100,
               steps_per_level=1, tail_steps=0, batch=32, pilot_chains=32, seed=5, batches_per_pass=batches_per_pass)
    log_z_b = io.read_ensemble(path).history["batch_log_z"]
    log_z = exact.log_partition_function(group, beta, L)
    ratio = np.exp(log_z_b - log_z)
    mean, err = ratio.mean(), ratio.std(ddof=1) / math.sqrt(len(ratio))
    assert err < 0.1 and abs(mean - 1) < 3 * err, (mean, err)


def test_systematic_resampling_follows_the_weights():
    gen = torch.Generator().manual_seed(0)
    logw = torch.log(torch.tensor([0.1, 0.0, 0.6, 0.3], dtype=torch.float64))
    counts = torch.zeros(4, dtype=torch.float64)
    for _ in range(2000):
        counts += torch.bincount(systematic_resample(logw, gen), minlength=4)
    assert torch.allclose(counts / counts.sum(), torch.exp(logw), atol=0.01)
    idx = systematic_resample(logw, gen)
    assert torch.all(idx[1:] >= idx[:-1]) and 1 not in idx.tolist()


def test_systematic_resampling_of_rows_is_one_resampling_per_row():
    gen = torch.Generator().manual_seed(1)
    logw = torch.log(torch.tensor([[0.1, 0.0, 0.6, 0.3], [0.7, 0.1, 0.1, 0.1]], dtype=torch.float64))
    counts = torch.zeros(2, 4, dtype=torch.float64)
    for _ in range(2000):
        idx = systematic_resample(logw, gen)
        counts += torch.stack([torch.bincount(row, minlength=4) for row in idx])
    assert torch.allclose(counts / counts.sum(-1, keepdim=True), torch.exp(logw), atol=0.01)


def test_batches_side_by_side_resample_within_themselves():
    """Three populations of four particles in one pass, each with all its weight on one
    particle: after resampling every population holds copies of its own heavy particle, and
    each adds its own mean weight to its own log Z."""
    s = SampleSettings(beta=1.0, L=4, n_samples=12, n_levels=5, batch=4, batches_per_pass=3, sigma_min=0.01,
                       sigma_max=3.0)
    score = ZeroScore("u1", 1.0, 8, 0.01, 3.0)
    run = _SMCRun(score, s, initial_path(score, s), 12, torch.Generator().manual_seed(0), torch.device("cpu"),
                  None, 0, False, populations=3)
    run.start()
    before = run.U.clone()
    heavy = [1, 2, 0]
    run.logw = torch.full((3, 4), -60.0, dtype=torch.float64)
    for k, i in enumerate(heavy):
        run.logw[k, i] = math.log(4.0) * (k + 1)
    run.beta_prev = 0.0
    run.reweight_and_resample(0, 0.0)
    for k, i in enumerate(heavy):
        assert torch.equal(run.U[4 * k:4 * k + 4], before[4 * k + i].expand(4, *before.shape[1:])), k
    assert torch.allclose(run.log_z, torch.tensor([0.0, math.log(4.0), 2 * math.log(4.0)], dtype=torch.float64))
    assert run.hist["level_resampled"][0].tolist() == [1.0, 1.0, 1.0]
    assert run.hist["level_unique"][0].tolist() == [1.0, 1.0, 1.0]


def test_passes_group_equal_batches():
    s = SampleSettings(beta=1.0, L=4, n_samples=100, batch=16, batches_per_pass=4)
    assert s.batch_sizes == [16] * 6 + [4] and s.passes == [[0, 1, 2, 3], [4, 5], [6]]
    assert SampleSettings(beta=1.0, L=4, n_samples=40, batch=16).passes == [[0], [1], [2]]
    with pytest.raises(CampaignError, match="batches_per_pass"):
        SampleSettings(beta=1.0, L=4, n_samples=40, method="maala", batches_per_pass=2)


def test_steps_go_where_the_drift_needs_small_steps():
    guess = np.array([0.1, 0.1, 0.1, 0.1])
    tuned = np.array([0.1, 0.01, 0.05, 0.1])  # level 1 needs 10x smaller steps than the guess
    steps = allocate_steps(guess, tuned, 4)
    assert abs(steps.sum() - 16) <= 2 and steps[1] > steps[2] > steps[0] == steps[3] >= 1
    assert np.all(allocate_steps(guess, guess, 3) == 3)
    extreme = np.full(20, 0.1)
    extreme[0] = 1e-9
    assert allocate_steps(np.full(20, 0.1), extreme, 1).max() == 8  # at most 8x the average


def test_coupling_path_follows_the_model(tmp_path):
    """beta_i = beta g(sigma_i): 0 at large noise, 1 at sigma = 0, monotonic; a ScoreModel
    uses its own learned physics weight."""
    from campaign.diffusion import ScoreModel

    sig = np.geomspace(4.0, 0.01, 50)
    for model in (ZeroScore("u1", 1.0), ScoreModel("su2", 2.0, 4, 0.01, 4.0)):
        g = coupling_fraction(model, sig)
        assert g[0] < 0.02 and g[-1] > 0.99 and np.all(np.diff(g) > 0)
    m = ScoreModel("u1", 1.0, 4, 0.01, 4.0)
    with torch.no_grad():
        m.log_kappa += 1.0
    assert not np.allclose(coupling_fraction(m, sig), coupling_fraction(ScoreModel("u1", 1.0, 4, 0.01, 4.0), sig))


def test_file_layout_pilot_and_measure(tmp_path):
    model = PhysicsScore("u1", 1.0, 8, sigma_min=0.01, sigma_max=3.0)
    path = smc(model, tmp_path / "x.h5", 2.0, 4, 40, n_levels=12, steps_per_level=2, tail_steps=5, batch=16,
               pilot_chains=8, seed=2)
    ens = io.read_ensemble(path)
    a, h = ens.attrs, ens.history
    assert ens.links.shape == (40, 2, 4, 4, 1, 1)
    assert list(ens.chain) == list(range(40)) and list(ens.step) == [0] * 40
    assert list(ens.weight_block) == [0] * 16 + [1] * 16 + [2] * 8
    assert a["independent"] and a["weighted"] and a["n_batches"] == 3
    assert 0 < a["ess"] <= 40 and a["ess_per_sample"] == pytest.approx(a["ess"] / 40)
    assert h["level_sigma"].shape == h["level_beta"].shape == h["level_eps"].shape == h["level_steps"].shape == (12,)
    assert abs(h["level_steps"].sum() - 24) <= 6 and h["level_steps"].min() >= 1
    assert 0 < h["level_beta"][0] < 0.2 and h["level_beta"][-1] == pytest.approx(2.0)
    assert np.all(np.diff(h["level_beta"]) > 0) and np.all(np.diff(h["level_sigma"]) <= 0)
    for key in ("level_acceptance", "level_ess", "level_log_weight_var", "level_resampled", "level_unique",
                "level_plaquette", "level_chi_t"):
        assert h[key].shape == (12, 3), key
    assert h["level_q_hist"].shape == (12, 21, 3)
    assert np.allclose(h["level_q_hist"].sum(1), 1.0)
    assert h["tail_acceptance"].shape == (5, 3) and h["batch_log_z"].shape == (3,)
    # global weights: logsumexp of a batch's weights is its log Zhat
    for b in range(3):
        sel = ens.weight_block == b
        assert np.logaddexp.reduce(ens.log_weights[sel]) == pytest.approx(h["batch_log_z"][b])
    assert not (tmp_path / "x.h5.parts").exists()

    summary = measure_file(path, tmp_path / "x.csv", max_loop=2)
    assert summary["weighted"]
    import pandas as pd

    table = pd.read_csv(tmp_path / "x.csv")
    assert np.allclose(table["log_weight"], ens.log_weights) and np.array_equal(table["weight_block"], ens.weight_block)
    ref = weighted_summary(table["plaquette"].to_numpy(), ens.log_weights, ens.weight_block)
    assert summary["observables"]["plaquette"]["value"] == pytest.approx(ref["value"])
    assert summary["observables"]["plaquette"]["error"] == pytest.approx(ref["error"])
    assert summary["diagnostics"]["ess"]["value"] == pytest.approx(a["ess"])


def test_production_uses_the_pilots_step_sizes(tmp_path):
    """Step sizes are fixed before any sample is drawn: every batch runs the pilot's eps per
    level, and lands near the target acceptance with them."""
    model = PhysicsScore("su2", 2.0, 4, sigma_min=0.01, sigma_max=3.0)
    path = smc(model, tmp_path / "p.h5", 2.0, 4, 64, n_levels=30, steps_per_level=2, tail_steps=10, batch=32,
               pilot_chains=32, seed=4, target_acceptance=0.6)
    h = io.read_ensemble(path).history
    acc = h["level_acceptance"].mean(-1)
    assert np.all(np.diff(np.log(h["level_eps"][5:])) < 0.5)
    assert abs(acc[3:].mean() - 0.6) < 0.1, acc
    assert abs(h["tail_acceptance"].mean() - 0.6) < 0.15


def test_annealed_importance_sampling_without_resampling_and_float32(tmp_path):
    model = ZeroScore("u2", 1.0, 4, sigma_min=0.01, sigma_max=3.0)
    path = smc(model, tmp_path / "f.h5", 1.0, 4, 24, n_levels=5, steps_per_level=1, tail_steps=2, batch=12,
               resample_ess=0.0, dtype="float32", pilot_chains=4)
    ens = io.read_ensemble(path)
    assert ens.links.dtype == torch.complex64 and ens.log_weights.dtype == np.float64
    assert np.all(np.isfinite(ens.log_weights)) and np.all(ens.history["level_resampled"] == 0)
    assert np.all(ens.history["level_unique"] == 12)


def test_bad_settings_are_campaign_errors(tmp_path):
    model = ZeroScore("u1", 1.0)
    for kw in ({"n_levels": 0}, {"resample_ess": 1.5}, {"continue_chain": 2}, {"drift": "nn"},
               {"method": "mcmc"}, {"pilot_chains": 0}):
        with pytest.raises(CampaignError):
            smc(model, tmp_path / "x.h5", 1.0, 4, 4, **kw)
    assert not (tmp_path / "x.h5").exists()


RESUME_SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from campaign.samplers.job import sample_to_file
    from campaign.samplers.scores import PhysicsScore
    from campaign.samplers.settings import SampleSettings
    s = SampleSettings(beta=2.0, L=6, n_samples=12, n_levels=60, steps_per_level=2, tail_steps=20, batch=3,
                       pilot_chains=3, seed=4, batches_per_pass=int(sys.argv[2]))
    sample_to_file(PhysicsScore("su2", 2.0, 6), sys.argv[1], s, progress=True)
""")


def _run(tmp_path, out, batches_per_pass=1):
    return start_script(tmp_path / "run.py", RESUME_SCRIPT, out, str(batches_per_pass))


@pytest.mark.parametrize("batches_per_pass", [1, 2])
def test_killed_smc_job_resumes_to_identical_file(tmp_path, batches_per_pass):
    def pilot_kept(parts):
        assert (parts / "pilot.pt").exists()

    ref, out, err = killed_and_resumed(lambda o: _run(tmp_path, o, batches_per_pass), tmp_path,
                                       kill_at="batch_00000.pt", after_kill=pilot_kept)
    assert "pilot:" not in err  # the pilot is not rerun
    a, b = io.read_ensemble(ref), io.read_ensemble(out)
    assert torch.equal(a.links, b.links) and np.array_equal(a.log_weights, b.log_weights)
    assert_same_history(a.history, b.history)
