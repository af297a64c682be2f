"""Langevin kernels and the (approximate) MAALA sampler: the MH kernel is exact (detailed
balance on one link, exact L=4 observables of the MH chain with poor scores), a good score
raises acceptance, files resume after a kill, the CLI validates its input.  The exact
(weighted) sampler: tests/test_smc.py."""

import math
import textwrap

import numpy as np
import pytest
import torch
from conftest import WrongBetaScore, assert_same_history, finish, killed_and_resumed, start_script
from scipy import integrate, special, stats

from campaign import exact, io
from campaign.errors import CampaignError
from campaign.groups import SU2, U1, get_group, trace
from campaign.lattice import wilson_loop
from campaign.samplers.job import sample_to_file
from campaign.samplers.kernels import ChainState, langevin_proposal, langevin_step, log_proposal_ratio, mh_step
from campaign.samplers.maala import run_maala_batch
from campaign.samplers.scores import PhysicsScore, ZeroScore, describe_model
from campaign.samplers.settings import SampleSettings


def maala(model, out, beta, L, n, *, progress=False, model_path=None, **kw):
    """The MAALA sampler through the file job (old keyword arguments as SampleSettings)."""
    settings = SampleSettings(beta=beta, L=L, n_samples=n, method="maala", **kw)
    return sample_to_file(model, out, settings, model_path=model_path, progress=progress)


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------- exact reference (L x L torus)
def exact_wilson_loop(group: str, beta: float, L: int, R: int, T: int) -> float:
    with np.errstate(divide="ignore"):  # log of underflowed high-rep coefficients: -inf is right
        return _exact_wilson_loop(group, beta, L, R, T)


def _exact_wilson_loop(group: str, beta: float, L: int, R: int, T: int) -> float:
    """Character expansion (DESIGN.md), independent of campaign.exact:
    W = (1/(d_f Z)) sum_r sum_{s in r x f} (d_s/d_r) F_s^A F_r^(V-A), Z = sum_r F_r^V."""
    V, A = L * L, R * T
    if group == "u1":
        n = np.arange(-60, 61)
        f = special.ive(n, beta)
        fs = special.ive(n + 1, beta)
        logs = np.log(f)
        m = logs.max()
        z = np.sum(np.exp(V * (logs - m)))
        w = np.sum(np.exp(A * (np.log(fs) - m) + (V - A) * (logs - m)))
        return float(w / z)
    if group == "su2":
        k = np.arange(1, 80)
        f = special.ive(k, beta)
        m = np.log(f).max()
        z = np.sum(np.exp(V * (np.log(f) - m)))
        num = 0.0
        for kk, fk in zip(k, f):
            for s in (kk - 1, kk + 1):
                if s >= 1:
                    num += (s / kk) * np.exp(A * (np.log(special.ive(s, beta)) - m) + (V - A) * (np.log(fk) - m))
        return float(num / (2 * z))
    raise ValueError(group)


def reference(group: str, beta: float, L: int, R: int, T: int) -> float:
    ours = exact_wilson_loop(group, beta, L, R, T)
    theirs = exact.plaquette(group, beta, L) if (R, T) == (1, 1) else \
        exact.wilson_loop(group, beta, L, R, T)
    assert theirs == pytest.approx(ours, rel=1e-6, abs=1e-10), "campaign.exact disagrees with the test's own reference"
    return float(theirs)


def test_own_reference_limits():
    # infinite-volume limits for a large torus: U(1) (I1/I0)^A, SU(2) (I2/I1)^A
    u1_inf = (special.iv(1, 2) / special.iv(0, 2)) ** 4
    su2_inf = (special.iv(2, 2) / special.iv(1, 2)) ** 4
    assert exact_wilson_loop("u1", 2.0, 40, 2, 2) == pytest.approx(u1_inf, rel=1e-9)
    assert exact_wilson_loop("su2", 2.0, 40, 2, 2) == pytest.approx(su2_inf, rel=1e-9)
    # small torus: U(1) at beta = 0 has W = 0 except through windings (none for A < V)
    assert exact_wilson_loop("u1", 1e-9, 4, 1, 1) == pytest.approx(0.0, abs=1e-8)


# ------------------------------------------------------------------ one-link models
def one_link_target(group, beta):
    """Density exp((beta/N) Re tr U) w.r.t. Haar and its exact left-derivative score."""
    n = group.N

    def log_prob(U):
        return (beta / n) * trace(U).real.reshape(U.shape[0], -1).sum(1)

    def score(U):
        return -(beta / n) * group.project_algebra(U)

    return log_prob, score


def poor_drift(group, score):
    """Wrong strength plus a non-gradient constant: the MH step must still be exact."""
    const = group.from_coords(torch.full((group.algebra_dim,), 0.4, dtype=torch.float64))

    def drift(U):
        return 2.5 * score(U) + const.to(U.dtype)

    return drift


def class_angle(group, U):
    """U(1): link angle in (-pi, pi]; SU(2): class angle alpha in [0, pi], tr U = 2 cos alpha."""
    if group.N == 1:
        return torch.angle(U[..., 0, 0]).numpy()
    return torch.arccos((trace(U).real / 2).clamp(-1, 1)).numpy()


def angle_density(group, beta):
    if group.N == 1:
        return (-math.pi, math.pi), lambda a: np.exp(beta * (np.cos(a) - 1))
    return (0.0, math.pi), lambda a: np.sin(a) ** 2 * np.exp(beta * (np.cos(a) - 1))


def bin_probabilities(group, beta, edges):
    _, dens = angle_density(group, beta)
    mass = np.array([integrate.quad(dens, a, b)[0] for a, b in zip(edges[:-1], edges[1:])])
    return mass / mass.sum()


def exact_one_link_samples(group, beta, n, gen):
    """Rejection sampling from Haar: accept with exp(beta (Re tr U / N - 1))."""
    out = []
    have = 0
    while have < n:
        U = group.haar((4 * n,), generator=gen)
        keep = torch.rand(4 * n, generator=gen, dtype=torch.float64) < torch.exp(
            beta * (trace(U).real / group.N - 1))
        out.append(U[keep])
        have += int(keep.sum())
    return torch.cat(out)[:n]


def chi2_pvalue(counts, probs):
    expected = probs * counts.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    return stats.chi2.sf(chi2, len(counts) - 1)


def symmetry_pvalue(before, after, edges):
    """Detailed balance from stationarity: the joint histogram of (angle before, angle
    after) one step is symmetric; n_ij vs n_ji is Binomial(n_ij + n_ji, 1/2)."""
    h, _, _ = np.histogram2d(before, after, bins=(edges, edges))
    iu = np.triu_indices(len(edges) - 1, 1)
    a, b = h[iu], h.T[iu]
    tot = a + b
    use = tot > 0
    chi2 = ((a - b)[use] ** 2 / tot[use]).sum()
    return stats.chi2.sf(chi2, int(use.sum())), int(tot.sum())


def one_link_problem(group, beta: float, n: int, seed: int):
    """(generator, log p, poor drift, class-angle bin edges, exact bin probabilities, n exact
    samples) of the one-link tests."""
    gen = torch.Generator().manual_seed(seed)
    log_prob, score = one_link_target(group, beta)
    drift = poor_drift(group, score)
    lo, hi = angle_density(group, beta)[0]
    edges = np.linspace(lo, hi, 31)
    probs = bin_probabilities(group, beta, edges)
    return gen, log_prob, drift, edges, probs, exact_one_link_samples(group, beta, n, gen)


@pytest.mark.parametrize("group", [U1, SU2], ids=lambda g: g.name)
def test_one_link_kernel_detailed_balance(group):
    beta, eps, n = 2.0, 0.4, 300_000
    gen, log_prob, drift, edges, probs, U0 = one_link_problem(group, beta, n, seed=7)
    assert chi2_pvalue(np.histogram(class_angle(group, U0), edges)[0], probs) > 1e-4  # sampler of the test
    state = ChainState(U0, log_prob(U0), drift(U0))
    state, acc, accepted = mh_step(group, state, eps, log_prob, drift, gen)
    rate = float(accepted.double().mean())
    assert 0.2 < rate < 0.95, f"acceptance {rate} gives the test little power"
    p_sym, moved = symmetry_pvalue(class_angle(group, U0), class_angle(group, state.U), edges)
    assert p_sym > 1e-4, f"joint (before, after) histogram is not symmetric: p={p_sym}"
    # stationarity: a few more steps keep the exact marginal
    for _ in range(4):
        state, _, _ = mh_step(group, state, eps, log_prob, drift, gen)
    p = chi2_pvalue(np.histogram(class_angle(group, state.U), edges)[0], probs)
    assert p > 1e-4, f"marginal drifted away from exp(beta/N Re tr U): p={p}"

    # ergodicity: from the identity the chain converges to the same density
    st = ChainState(group.identity((40_000,)), None, None)
    st = ChainState(st.U, log_prob(st.U), drift(st.U))
    for _ in range(60):
        st, _, _ = mh_step(group, st, eps, log_prob, drift, gen)
    p = chi2_pvalue(np.histogram(class_angle(group, st.U), edges)[0], probs)
    assert p > 1e-4, f"chain from the identity does not reach the target: p={p}"


@pytest.mark.parametrize("group", [U1, SU2], ids=lambda g: g.name)
def test_one_link_tests_have_power(group):
    """Controls: the same statistics reject an unadjusted Langevin step and an MH step
    that forgets the proposal ratio."""
    beta, eps, n = 2.0, 0.4, 300_000
    gen, log_prob, drift, edges, probs, U0 = one_link_problem(group, beta, n, seed=8)

    U1_ = langevin_step(group, U0, drift(U0), eps, gen)
    assert chi2_pvalue(np.histogram(class_angle(group, U1_), edges)[0], probs) < 1e-6

    Up, _ = langevin_proposal(group, U0, drift(U0), eps, gen)
    alpha = torch.exp((log_prob(Up) - log_prob(U0)).clamp(max=0))
    keep = torch.rand(n, generator=gen, dtype=torch.float64) < alpha
    Ub = torch.where(keep[:, None, None], Up, U0)
    p_sym, _ = symmetry_pvalue(class_angle(group, U0), class_angle(group, Ub), edges)
    assert p_sym < 1e-6


def test_proposal_ratio_matches_direct_formula(group, gen):
    """-sqrt(eps/2)<eta, d+d'> - eps/4 |d+d'|^2 == -|-X - eps d'|^2/(4 eps) + |X - eps d|^2/(4 eps)."""
    shape = (5, 2, 3, 3)
    d = group.random_algebra(shape, generator=gen)
    d1 = group.random_algebra(shape, generator=gen)
    eta = group.random_algebra(shape, generator=gen)
    eps = torch.tensor([0.01, 0.1, 0.3, 1.0, 2.0], dtype=torch.float64)
    e = eps.reshape(-1, 1, 1, 1, 1, 1)
    X = e * d + torch.sqrt(2 * e) * eta
    norm = lambda x: group.algebra_norm2(x).sum((1, 2, 3))  # noqa: E731
    direct = -norm(-X - e * d1) / (4 * eps) + norm(X - e * d) / (4 * eps)
    assert torch.allclose(log_proposal_ratio(group, eta, d, d1, eps), direct, rtol=1e-10, atol=1e-10)


def test_mh_step_rejects_nonfinite_and_keeps_shapes(gen):
    B, L = 6, 4
    U = SU2.haar((B, 2, L, L), generator=gen)
    log_prob = lambda U: torch.zeros(U.shape[0], dtype=torch.float64)  # noqa: E731

    def drift(U):
        d = torch.zeros_like(U)
        d[:3] = float("nan")
        return d

    state = ChainState(U, log_prob(U), torch.zeros_like(U))
    new, acc, accepted = mh_step(SU2, state, 0.1, log_prob, drift, gen)
    assert acc.shape == accepted.shape == (B,)
    assert not accepted[:3].any() and torch.equal(new.U[:3], U[:3])
    assert torch.isfinite(new.drift).all()


# ------------------------------------------------------------- exactness on L = 4
def chain_means(path, R, T):
    """Per-chain time averages of the continued MH chains (batch means over independent
    chains: an autocorrelation-aware error), for W(1,1) and W(R,T)."""
    ens = io.read_ensemble(path)
    plaq = wilson_loop(ens.links, 1, 1).numpy()
    wrt = wilson_loop(ens.links, R, T).numpy()
    chains = np.unique(ens.chain)
    return (np.array([plaq[ens.chain == c].mean() for c in chains]),
            np.array([wrt[ens.chain == c].mean() for c in chains]), ens)


@pytest.mark.parametrize("group,beta", [("u1", 2.0), ("su2", 3.0)])
@pytest.mark.parametrize("model_kind", ["zero", "poor"])
def test_mh_tail_reproduces_exact_l4(tmp_path, group, beta, model_kind):
    L, chains, K = 4, 128, 60
    model = (ZeroScore if model_kind == "zero" else WrongBetaScore)(group, beta0=1.0, L0=8)
    path = maala(
        model, tmp_path / "s.h5", beta, L, chains * (K + 1), n_levels=10, steps_per_level=1,
        tail_steps=600, tail_adapt=200, continue_chain=K, continue_sep=5, batch=chains,
        seed=3, progress=False,
    )
    plaq, w22, ens = chain_means(path, 2, 2)
    assert not ens.attrs["independent"]
    n = len(plaq)
    for name, values, exact in (("plaquette", plaq, reference(group, beta, L, 1, 1)),
                                ("W(2,2)", w22, reference(group, beta, L, 2, 2))):
        mean, err = values.mean(), values.std(ddof=1) / math.sqrt(n)
        assert err < 0.02, f"{name}: error {err} too large for a meaningful test"
        assert abs(mean - exact) < 3 * err, f"{name}: {mean:.5f} +- {err:.5f} vs exact {exact:.5f}"
    acc = float(ens.attrs["acceptance"])
    assert 0.45 < acc < 0.75, f"step-size control missed target 0.6: {acc}"


# ----------------------------------------------------------------- acceptance
def tail_run(model, group, beta, L, eps, adapt=0, seed=0, chains=16, tail=80):
    """Mean MH acceptance over the second half of a tail started from Haar, and the
    final step size."""
    s = SampleSettings(beta=beta, L=L, n_samples=chains, method="maala", n_levels=0, tail_steps=tail,
                       tail_adapt=adapt, step_size=eps, batch=chains, seed=seed)
    s.resolve({"group": group, "sigma_min": model.sigma_min, "sigma_max": model.sigma_max})
    gen = torch.Generator().manual_seed(seed)
    res = run_maala_batch(model, s, chains, gen, torch.device("cpu"))
    return float(res.history["tail_acceptance"][tail // 2:].mean()), res.eps


@pytest.mark.parametrize("group,beta0,L", [("u1", 1.0, 8), ("su2", 2.0, 4)])
def test_physics_score_beats_zero_score(group, beta0, L):
    """The exact small-noise score (a perfectly trained model at beta0) accepts more than
    an untrained (zero) one at the same step size, at beta0 and, through beta/beta0
    conditioning, at larger beta; with step-size control it runs at a much larger eps."""
    for beta in (beta0, 2 * beta0, 4 * beta0):
        eps = 0.2 * (2 * L * L) ** (-1 / 3) / beta
        good, _ = tail_run(PhysicsScore(group, beta0, L), group, beta, L, eps)
        bad, _ = tail_run(ZeroScore(group, beta0, L), group, beta, L, eps)
        assert good > 0.6 and good > bad + 0.2, (beta, good, bad)
        acc_good, eps_good = tail_run(PhysicsScore(group, beta0, L), group, beta, L, eps, adapt=40)
        acc_bad, eps_bad = tail_run(ZeroScore(group, beta0, L), group, beta, L, eps, adapt=40)
        assert eps_good > 4 * eps_bad, (beta, eps_good, eps_bad)
        assert abs(acc_good - 0.6) < 0.15, acc_good  # the zero score is still relaxing from Haar


@pytest.fixture(scope="module")
def trained_u1_model(tmp_path_factory):
    """A real (short) training run on a real U(1) beta0=1, L=8 HMC ensemble."""
    from campaign.hmc import generate_ensemble
    from campaign.training import TrainSettings, train_model

    d = tmp_path_factory.mktemp("trained")
    ens = generate_ensemble(d / "u1.h5", "u1", 1.0, 8, 128, chains=8, therm=50, sep=2, seed=1, progress=False)
    return train_model(ens, d / "u1.pt", TrainSettings(steps=150, batch_size=16, seed=2), progress=False)


def test_trained_model_beats_untrained(trained_u1_model):
    """A model trained at (beta0, L0) accepts more than an untrained network (zero score)
    at beta0 and, through beta/beta0 conditioning, at 3 beta0 and on a larger lattice;
    and training does not make it worse than the untrained L-CNN with its physics prior."""
    from campaign.diffusion import ScoreModel

    model = io.load_model(trained_u1_model)
    assert get_group(model.group).name == "u1" and float(model.beta0) == 1.0 and int(model.L0) == 8
    fresh = ScoreModel("u1", 1.0, 8, model.sigma_min, model.sigma_max)
    zero = ZeroScore("u1", 1.0, 8, model.sigma_min, model.sigma_max)
    for beta, L in ((1.0, 8), (3.0, 8), (3.0, 12)):
        eps = 0.2 * (2 * L * L) ** (-1 / 3) / beta
        trained, _ = tail_run(model, "u1", beta, L, eps)
        untrained, _ = tail_run(zero, "u1", beta, L, eps)
        prior_only, _ = tail_run(fresh, "u1", beta, L, eps)
        assert trained > untrained + 0.2, (beta, L, trained, untrained)
        assert trained > prior_only - 0.05, (beta, L, trained, prior_only)


def test_runs_with_the_campaign_score_model(tmp_path):
    """Interface check with the real (untrained) L-CNN score model, float32 and float64."""
    from campaign import diffusion

    for group, dtype in (("u1", "float64"), ("su2", "float32")):
        model = diffusion.ScoreModel(group, 2.0, 8, 0.01, 5.0)
        path = maala(model, tmp_path / f"{group}.h5", 3.0, 4, 6, n_levels=8, tail_steps=16, batch=4,
                              dtype=dtype, progress=False)
        ens = io.read_ensemble(path)
        assert ens.links.shape[0] == 6 and torch.isfinite(torch.view_as_real(ens.links)).all()
        assert ens.attrs["score_scale"] == 1.5 and ens.attrs["nonfinite_scores"] == 0
        assert np.isfinite(ens.attrs["acceptance"])


# ------------------------------------------------------------------ file format
def test_annealing_step_floor_hands_the_tail_equilibrated_configurations(trained_u1_model):
    """With one step per level, steps eps_i ~ sigma_i^2 freeze the links long before
    sigma_min, and the tail starts from configurations much hotter than the target; the
    step floor (default: the tail's step size) brings the annealed plaquette close to the
    exact one, extrapolating to beta = 3 beta0 (seen without the floor: 0.65 vs 0.81)."""
    model = io.load_model(trained_u1_model)
    beta, L, chains = 3.0, 8, 32
    exact_plaq = exact.exact_observables("u1", beta, L)["plaquette"]
    start = {}
    for floor in (0.0, None):
        s = SampleSettings(beta=beta, L=L, n_samples=chains, method="maala", n_levels=100, steps_per_level=1,
                           tail_steps=2, tail_adapt=1, level_step_min=floor, batch=chains, seed=3)
        s.resolve(describe_model(model))
        with torch.no_grad():
            res = run_maala_batch(model, s, chains, torch.Generator().manual_seed(4), torch.device("cpu"))
        start[floor] = float(res.history["tail_plaquette"][0].mean())
    # seen: 0.613 without the floor, 0.775 with it, exact 0.810 (150-step model)
    assert exact_plaq - start[0.0] > 0.08, start
    assert abs(start[None] - exact_plaq) < 0.06, (start, exact_plaq)
    assert exact_plaq - start[0.0] > 3 * abs(start[None] - exact_plaq), (start, exact_plaq)


def test_file_layout_history_and_truncation(tmp_path):
    model = PhysicsScore("su2", 2.0, 8, sigma_min=0.01, sigma_max=5.0)
    # 11 samples, 3 per chain -> 4 chains in batches of 3 + 1; 12 produced, 11 kept
    path = maala(model, tmp_path / "x.h5", 2.5, 4, 11, n_levels=6, steps_per_level=3, tail_steps=20,
                          continue_chain=2, continue_sep=2, batch=3, seed=5, progress=False,
                          model_path="models/m.pt")
    ens = io.read_ensemble(path)
    a = ens.attrs
    assert ens.links.shape == (11, 2, 4, 4, 2, 2)
    assert list(ens.chain) == [0, 1, 2] * 3 + [3, 3]
    assert list(ens.step) == [0] * 3 + [1] * 3 + [2] * 3 + [0, 1]
    assert a["algorithm"] == "maala" and a["group"] == "su2" and a["beta"] == 2.5 and a["L"] == 4
    assert a["model_path"] == "models/m.pt" and a["model_beta0"] == 2.0 and a["model_L0"] == 8
    assert not a["independent"] and a["n_batches"] == 2 and a["n_chains"] == 4
    assert a["approximate"] and not a["weighted"]
    for key in ("n_levels", "steps_per_level", "tail_steps", "tail_adapt", "step_size", "target_acceptance",
                "batch", "continue_chain", "continue_sep", "seed", "sigma_min", "sigma_max", "sigma_tail",
                "level_step_min"):
        assert key in a, key
    h = ens.history
    assert h["level_sigma"].shape == (6,) and h["level_sigma"][0] == pytest.approx(5.0)
    assert h["level_sigma"][-1] == pytest.approx(0.01)
    assert a["level_step_min"] == a["step_size"] > 0  # the floor defaults to the initial tail step
    assert np.allclose(h["level_eps"], np.maximum(0.1 * h["level_sigma"] ** 2, a["step_size"]))
    assert h["level_acceptance"].shape == (6, 2)
    assert np.all((h["level_acceptance"] >= 0) & (h["level_acceptance"] <= 1))
    assert h["tail_acceptance"].shape == h["tail_eps"].shape == h["tail_plaquette"].shape == (24, 2)
    # adaptation then frozen step size
    assert np.all(h["tail_eps"][10:] == h["tail_eps"][10]) and h["tail_eps"][0, 0] != h["tail_eps"][10, 0]
    assert np.allclose(h["batch_eps"], h["tail_eps"][-1])
    assert h["sample_acceptance"].shape == (11,)
    assert "tail_q_changed" not in h  # SU(2): no topology
    assert np.all((h["sample_acceptance"] >= 0) & (h["sample_acceptance"] <= 1))
    assert np.allclose(trace(ens.links @ ens.links.conj().transpose(-1, -2)).real, 2)
    assert not (tmp_path / "x.h5.parts").exists()


def test_independent_samples_float32_and_nn_module(tmp_path):
    """float32 sampling; an nn.Module model with float64 parameters is called in its dtype."""

    class Net(torch.nn.Module):
        group, beta0, L0, sigma_min, sigma_max = SU2, 2.0, 4, 0.01, 3.0

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
            self.seen = None

        def forward(self, U, sigma):
            self.seen = (U.dtype, sigma.dtype, sigma.shape)
            return -self.w * PhysicsScore(SU2, 2.0)(U, sigma)

    net = Net()
    path = maala(net, tmp_path / "f.h5", 2.0, 4, 6, n_levels=5, tail_steps=10, batch=4,
                          dtype="float32", progress=False)
    ens = io.read_ensemble(path)
    assert ens.links.dtype == torch.complex64 and ens.attrs["independent"]
    assert list(ens.chain) == [0, 1, 2, 3, 4, 5] and list(ens.step) == [0] * 6
    assert net.seen == (torch.complex128, torch.float64, (2,))  # last batch: 2 chains


def test_tail_records_whether_it_changed_the_topological_charge(tmp_path, capsys):
    """U(1): per chain, whether the corrected tail changed the Q the annealing handed it;
    at strong coupling a long tail changes most, no tail changes none (and says so)."""
    model = PhysicsScore("u1", 0.5, 4, sigma_min=0.01, sigma_max=3.0)
    long = io.read_ensemble(maala(model, tmp_path / "a.h5", 0.5, 4, 40, n_levels=10, tail_steps=300,
                                           batch=20, seed=1, progress=False))
    changed = long.history["tail_q_changed"]
    assert changed.shape == (40,) and set(np.unique(changed)) <= {0.0, 1.0}
    assert changed.mean() > 0.5 and long.attrs["tail_q_changed"] == pytest.approx(changed.mean())
    none = io.read_ensemble(maala(model, tmp_path / "b.h5", 0.5, 4, 8, n_levels=10, tail_steps=0,
                                           batch=8, seed=1, progress=True))
    assert np.all(none.history["tail_q_changed"] == 0)
    assert "changed the topological charge of 0% of the chains" in capsys.readouterr().err


def test_bad_arguments_are_campaign_errors(tmp_path):
    model = ZeroScore("u1", 1.0)
    for kw in ({"tail_steps": 10, "tail_adapt": 10}, {"target_acceptance": 1.2}, {"batch": 0},
               {"dtype": "float16"}, {"step_size": -1.0}, {"sigma_min": 2.0, "sigma_max": 1.0}):
        with pytest.raises(CampaignError):
            maala(model, tmp_path / "x.h5", 1.0, 4, 4, **kw)
    with pytest.raises(CampaignError, match="beta"):
        maala(model, tmp_path / "x.h5", -1.0, 4, 4)
    with pytest.raises(CampaignError, match="beta0"):
        maala(ZeroScore("u1", 0.0), tmp_path / "x.h5", 1.0, 4, 4)
    with pytest.raises(CampaignError, match="device"):
        maala(model, tmp_path / "x.h5", 1.0, 4, 4, device="nonsense")

    class Bad(ZeroScore):
        def __call__(self, U, sigma):
            return U[..., 0]

    with pytest.raises(CampaignError, match="shaped like U"):
        maala(Bad("u1", 1.0), tmp_path / "x.h5", 1.0, 4, 4, n_levels=2)
    assert not (tmp_path / "x.h5").exists()


# ----------------------------------------------------------------- checkpoints
RESUME_SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from campaign.samplers.job import sample_to_file
    from campaign.samplers.scores import PhysicsScore
    from campaign.samplers.settings import SampleSettings
    s = SampleSettings(beta=2.0, L=6, n_samples=12, method="maala", n_levels=20, steps_per_level=2,
                       tail_steps={tail}, batch=3, seed=4)
    sample_to_file(PhysicsScore("su2", 2.0, 6), sys.argv[1], s, progress=True)
""")


def _run_script(tmp_path, out, tail=300):
    return start_script(tmp_path / f"run_{tail}.py", RESUME_SCRIPT.format(tail=tail), out)


def test_killed_sampler_resumes_to_identical_file(tmp_path):
    def some_batches_done(parts):
        done = sorted(p.name for p in parts.glob("batch_*.pt"))
        assert "batch_00001.pt" in done and len(done) < 4

    ref, out, _ = killed_and_resumed(lambda o: _run_script(tmp_path, o), tmp_path, after_kill=some_batches_done)
    parts = tmp_path / "killed.h5.parts"
    assert not parts.exists()
    a, b = io.read_ensemble(ref), io.read_ensemble(out)
    assert torch.equal(a.links, b.links)
    assert np.array_equal(a.chain, b.chain) and np.array_equal(a.step, b.step)
    assert_same_history(a.history, b.history)

    # a checkpoint from other settings is refused with one clear message (the finished
    # output is removed first: it is never overwritten without --force)
    out.unlink()
    parts.mkdir()
    torch.save({"fingerprint": {"other": 1}, "batch": 0}, parts / "batch_00000.pt")
    proc = _run_script(tmp_path, out)
    err = finish(proc)
    assert proc.returncode != 0 and "different settings" in err


# ------------------------------------------------------------------------- CLI
def test_cli_sample(tmp_path, monkeypatch, capsys):
    from campaign import cli

    model_file = tmp_path / "m.pt"
    model_file.write_text("fake")
    monkeypatch.setattr(io, "load_model", lambda p: PhysicsScore("u1", 1.0, 16, 0.01, 2.0), raising=False)
    out = tmp_path / "s.h5"
    rc = cli.main(["sample", "--model", str(model_file), "--beta", "2", "--L", "4", "--n-samples", "5",
                   "--out", str(out), "--method", "maala", "--n-levels", "4", "--tail-steps", "6",
                   "--batch", "2", "--continue-chain", "1", "--seed", "9", "--quiet"])
    assert rc == 0
    a = io.read_ensemble_attrs(out)
    assert a["model_path"] == str(model_file) and a["beta"] == 2.0 and a["continue_chain"] == 1
    assert a["n_levels"] == 4 and a["seed"] == 9 and a["score_scale"] == 2.0

    rc = cli.main(["sample", "--model", str(model_file), "--beta", "2", "--L", "4", "--n-samples", "5",
                   "--out", str(tmp_path / "t.h5"), "--method", "maala", "--tail-steps", "6", "--tail-adapt", "6",
                   "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "tail_adapt" in err

    with pytest.raises(SystemExit) as exc:
        cli.main(["sample", "--model", str(model_file), "--beta", "2", "--L", "4", "--n-samples", "5",
                  "--out", str(tmp_path / "t.h5"), "--n-levels", "x", "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--n-levels" in err and err.count("\n") == 1


def test_cli_with_saved_model_file(tmp_path):
    """End to end through the real model file format (an untrained L-CNN model)."""
    from campaign import cli, diffusion

    model_file = io.save_model(tmp_path / "m.pt", diffusion.ScoreModel("su2", 2.0, 8, 0.01, 5.0))
    out = tmp_path / "s.h5"
    rc = cli.main(["sample", "--model", str(model_file), "--beta", "4", "--L", "4", "--n-samples", "4",
                   "--out", str(out), "--method", "maala", "--n-levels", "5", "--tail-steps", "8", "--batch", "4",
                   "--quiet"])
    assert rc == 0
    a = io.read_ensemble_attrs(out)
    assert a["group"] == "su2" and a["model_beta0"] == 2.0 and a["model_L0"] == 8 and a["score_scale"] == 2.0
    assert a["model_path"] == str(model_file) and a["model_class"] == "ScoreModel"
