"""Fast link-field representations (campaign.fields) against the generic MatrixField
and autograd: action, force, drift, momenta, round trips, unitarity, trajectories, HMC
statistics, and the compiled kernels against the eager ones."""

import math
import subprocess
import sys

import numpy as np

import pytest
import torch

import campaign.fields as F
import campaign.fields.aot as aot
import campaign.fields.compile as C
from campaign.fields.momenta import _as_int32, _gaussian_pairs
from campaign.fields.quaternion import _su2_force
from campaign.fields import MatrixField, U1AngleField, U2QuaternionField, SU2QuaternionField, field_for
from campaign.groups import SU2, U1, U2, dagger, matmul
from campaign.hmc import integrate, trajectory

FAST = {"u1": U1AngleField, "su2": SU2QuaternionField, "u2": U2QuaternionField}


@pytest.fixture(autouse=True)
def eager_by_default(monkeypatch):
    """Tests run the eager kernels unless they ask for compilation."""
    monkeypatch.setenv("CAMPAIGN_COMPILE", "never")


def coords(group, x):
    """A fast field's algebra tensor (chains, 2, [dim,] L, L) -> (chains, 2, L, L, dim)."""
    return x[..., None] if group.N == 1 else x.movedim(2, -1)


def random_links(group, gen, chains=3, L=6):
    return group.haar((chains, 2, L, L), generator=gen)


def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_field_for_picks_the_fast_representation(group):
    assert isinstance(field_for(group), FAST[group.name])
    assert field_for(group, torch.float32).real_dtype == torch.float32


@pytest.mark.parametrize("beta", [1.7, "0d", "per-chain"])
def test_action_force_plaquette_agree_with_matrix_field(group, gen, beta):
    fast, ref = field_for(group), MatrixField(group)
    U = random_links(group, gen)
    q = fast.from_links(U)
    if beta == "0d":
        beta = torch.tensor(2.3, dtype=torch.float64)
    elif beta == "per-chain":
        beta = torch.tensor([0.5, 2.0, 4.5], dtype=torch.float64)
    assert rel_err(fast.action(q, beta), ref.action(U, beta)) < 1e-13
    f_ref = group.to_coords(ref.force(U, beta))
    f_fast = coords(group, fast.force(q, beta))
    assert f_fast.shape == f_ref.shape
    assert rel_err(f_fast, f_ref) < 1e-12
    assert torch.allclose(fast.mean_plaquette(q), ref.mean_plaquette(U), rtol=0, atol=1e-14)


def test_force_is_autograd_gradient_of_fast_action(group, gen):
    """F_a = d/dt S(exp(t T_a) U) at t = 0, S the fast field's own action, differentiated
    through from_links."""
    fast = field_for(group)
    U = random_links(group, gen)
    beta = 1.3
    t = torch.zeros((*U.shape[:-2], group.algebra_dim), dtype=torch.float64, requires_grad=True)
    q_t = fast.from_links(matmul(group.exp(group.from_coords(t)), U))
    fast.action(q_t, beta).sum().backward()
    force = coords(group, fast.force(fast.from_links(U), beta))
    assert force.abs().max() > 0.1
    assert torch.allclose(force, t.grad, rtol=0, atol=1e-12)


def test_force_is_derivative_along_fast_drift(group, gen):
    """Directional derivative of the action along the fast drift q -> exp(s p) q equals
    <F, p> (central differences, fourth order)."""
    fast = field_for(group)
    q = fast.from_links(random_links(group, gen))
    p = fast.momenta(q, gen)
    beta = 0.9
    h = 1e-3
    s = [fast.action(fast.drift(q, p, k * h), beta) for k in (-2, -1, 1, 2)]
    numeric = (s[0] - 8 * s[1] + 8 * s[2] - s[3]) / (12 * h)
    analytic = (fast.force(q, beta) * p).sum(tuple(range(1, p.ndim)))
    assert torch.allclose(numeric, analytic, rtol=1e-9, atol=1e-9)


def test_kick_is_momentum_update(group, gen):
    fast, ref = field_for(group), MatrixField(group)
    U = random_links(group, gen)
    q = fast.from_links(U)
    p = fast.momenta(q, gen)
    beta = torch.tensor([0.5, 2.0, 4.5], dtype=torch.float64)
    assert rel_err(fast.kick(p, q, beta, 0.3), p - 0.3 * fast.force(q, beta)) < 1e-14
    P = group.from_coords(coords(group, p))
    assert rel_err(group.from_coords(coords(group, fast.kick(p, q, beta, 0.3))), ref.kick(P, U, beta, 0.3)) < 1e-12
    # the fused pair equals drift, then kick at the new links (also in the matrix field)
    q1, p1 = fast.drift_kick(q, p, 0.2, beta, 0.3)
    assert rel_err(q1, fast.drift(q, p, 0.2)) < 1e-14
    assert rel_err(p1, fast.kick(p, fast.drift(q, p, 0.2), beta, 0.3)) < 1e-14
    kicks = [0.3, -0.1, 0.2, 0.25, -0.3, 0.1, 0.05]  # U(1): fused four, two, then one
    q2, p2 = fast.drift_kicks(q, p, 0.2, beta, kicks)
    q3, p3 = q, p
    for c in kicks:
        q3, p3 = fast.drift_kick(q3, p3, 0.2, beta, c)
    assert rel_err(q2, q3) < 1e-14 and rel_err(p2, p3) < 1e-14
    U1, P1 = ref.drift_kick(U, P, 0.2, beta, 0.3)
    assert rel_err(fast.to_links(q1), U1) < 1e-12
    assert rel_err(group.from_coords(coords(group, p1)), P1) < 1e-12


def test_links_round_trip(group, gen):
    fast = field_for(group)
    U = random_links(group, gen)
    q = fast.from_links(U)
    assert (fast.to_links(q) - U).abs().max() < 1e-14
    q2 = fast.from_links(fast.to_links(q))
    assert (fast.to_links(q2) - U).abs().max() < 1e-14
    assert fast.to_links(q).shape == U.shape and fast.to_links(q).dtype == U.dtype


def test_cold_start_is_identity(group):
    fast = field_for(group)
    q = fast.cold_start(2, 4)
    assert torch.equal(fast.to_links(q), group.identity((2, 2, 4, 4)))
    assert torch.all(fast.action(q, 3.0) == 0)
    assert torch.allclose(fast.mean_plaquette(q), torch.ones(2, dtype=torch.float64))


# Random123's known-answer vectors for Threefry-4x32, 20 rounds: (counter, key, output)
THREEFRY_KAT = [
    ((0, 0, 0, 0), (0, 0, 0, 0), (0x9C6CA96A, 0xE17EAE66, 0xFC10ECD4, 0x5256A7D8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 4, (0x2A881696, 0x57012287, 0xF6C7446E, 0xA16A6732)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0, 0x082EFA98, 0xEC4E6C89),
     (0x59CD1DBB, 0xB8879579, 0x86B5D00C, 0xAC8B6D84)),
]


@pytest.mark.parametrize("counter, key, expected", THREEFRY_KAT)
def test_threefry_matches_the_reference_vectors(counter, key, expected):
    assert tuple(F.threefry4x32(counter, key)) == expected
    as_tensors = F.threefry4x32([torch.tensor([c]) for c in counter], [torch.tensor(k) for k in key])
    assert tuple(int(w) for w in as_tensors) == expected
    as_uint32 = F.threefry4x32([np.array([c], dtype=np.uint32) for c in counter], [np.uint32(k) for k in key])
    assert tuple(int(w[0]) for w in as_uint32) == expected
    # int32 tensors (the compiled path): the same bits read as signed, wrapping arithmetic
    as_int32 = F.threefry4x32([_as_int32(torch.tensor([c])) for c in counter],
                              [_as_int32(torch.tensor(k)) for k in key])
    assert all(w.dtype == torch.int32 for w in as_int32)
    assert tuple(int(w) & 0xFFFFFFFF for w in as_int32) == expected
    compiled = torch.compile(F.threefry4x32, options=C.INDUCTOR_OPTIONS)
    as_int32 = compiled([_as_int32(torch.tensor([c] * 19)) for c in counter],
                        [_as_int32(torch.tensor(k)) for k in key])
    assert tuple(int(w[-1]) & 0xFFFFFFFF for w in as_int32) == expected


def _box_muller(u1, u2):
    r = math.sqrt(-2 * math.log(u1))
    return r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_momenta_follow_the_documented_counter_convention(dtype):
    """Coordinate a at site (x, y), chain c, directions 0 and 1 = pair number
    m = ((a L1 + x) L2 + y) chains + c: float64, Box-Muller of the 64-bit uniforms of
    counter m; float32, of the 32-bit uniforms of counter m (first half of the pairs) or
    m - M/2 (second half, last two words), under the key drawn from the generator
    (recomputed here with Python integers and the math module)."""
    chains, L1, L2, dim = 3, 4, 5, 3
    n_pairs = chains * L1 * L2 * dim  # 180
    z = F.gaussian_momenta(torch.Generator().manual_seed(4), (chains, L1, L2, dim), dtype, "cpu")
    key = [int(k) for k in torch.randint(0, 2**32, (4,), generator=torch.Generator().manual_seed(4))]
    for a, x, y, c in [(0, 0, 0, 0), (2, 3, 4, 2), (1, 2, 0, 1), (0, 1, 3, 2), (1, 2, 4, 2)]:
        m = ((a * L1 + x) * L2 + y) * chains + c
        if dtype == torch.float64:
            w = F.threefry4x32((m, 0, 0, 0), key)
            expected = _box_muller((w[0] * 2**32 + w[1] + 0.5) / 2**64, (w[2] * 2**32 + w[3]) / 2**64)
            tol = 1e-14
        else:
            half = (n_pairs + 1) // 2
            w = F.threefry4x32((m % half, 0, 0, 0), key)
            hi, lo = (w[0], w[1]) if m < half else (w[2], w[3])
            expected = _box_muller((hi + 0.5) / 2**32, lo / 2**32)
            tol = 1e-5
        assert z[0, a, x, y, c].item() == pytest.approx(expected[0], abs=tol)
        assert z[1, a, x, y, c].item() == pytest.approx(expected[1], abs=tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_momenta_are_standard_normal_and_independent(dtype):
    """Moments, distribution (Kolmogorov-Smirnov) and correlations of 2 x 300000 normals
    over two refreshes, against N(0, 1) with the sampling errors of that many draws."""
    from scipy import stats

    gen = torch.Generator().manual_seed(11)
    shape = (50, 30, 25, 4)  # 150000 pairs per refresh
    first, second = (F.gaussian_momenta(gen, shape, dtype, "cpu").double().reshape(2, -1) for _ in range(2))
    z = torch.cat((first, second), 1).numpy()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs((z**4).mean() - 3) < 5 * math.sqrt(96 / n)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-4
    m = first.shape[1]
    pairs = ((first[0], first[1]), (first[0], second[0]), (first[0, 1:], first[0, :-1]),
             (first[0, : m // 2], first[0, m // 2 :]))  # float32: the two halves share counters
    for a, b in pairs:
        assert abs(np.corrcoef(a.numpy(), b.numpy())[0, 1]) < 5 / math.sqrt(m)
    assert not torch.equal(first, second)  # a fresh key per refresh


def test_momenta_are_the_matrix_field_stream(group):
    fast, ref = field_for(group), MatrixField(group)
    q = fast.cold_start(3, 4)
    p_fast = fast.momenta(q, torch.Generator().manual_seed(9))
    p_ref = ref.momenta(ref.cold_start(3, 4), torch.Generator().manual_seed(9))
    # to_coords(from_coords(eta)) returns eta up to the rounding of the complex basis
    assert torch.allclose(coords(group, p_fast), group.to_coords(p_ref), rtol=0, atol=1e-15)
    assert torch.allclose(fast.kinetic(p_fast), ref.kinetic(p_ref), rtol=1e-14)


def test_drift_agrees_with_matrix_exponential(group, gen):
    fast, ref = field_for(group), MatrixField(group)
    U = random_links(group, gen)
    q = fast.from_links(U)
    p = fast.momenta(q, gen)
    P = group.from_coords(coords(group, p))
    for eps in (0.05, 1.0, 7.3):  # exp(eps p) beyond the first period too
        assert (fast.to_links(fast.drift(q, p, eps)) - ref.drift(U, P, eps)).abs().max() < 1e-13


def test_unitarity_preserved_over_many_drifts(group, gen):
    fast = field_for(group)
    q = fast.from_links(random_links(group, gen, chains=2, L=4))
    for _ in range(2000):
        q = fast.drift(q, fast.momenta(q, gen), 0.1)
    U = fast.to_links(q)
    eye = torch.eye(group.N, dtype=U.dtype).expand_as(U)
    assert (matmul(U, dagger(U)) - eye).abs().max() < 1e-12
    if group.special:
        assert (torch.linalg.det(U) - 1).abs().max() < 1e-12
    Un = fast.to_links(fast.normalise(q))
    assert (matmul(Un, dagger(Un)) - eye).abs().max() < 1e-15
    assert (Un - U).abs().max() < 1e-12  # normalise moves links only by the rounding


@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_same_trajectory_as_matrix_field(group, gen, integrator):
    """Same start and seed: the same momenta, dH to 1e-10, the same end configuration and
    the same accept decisions."""
    fast, ref = field_for(group), MatrixField(group)
    U = random_links(group, gen, chains=4)
    beta = torch.tensor(2.0, dtype=torch.float64)
    q, V = fast.from_links(U), U
    for step in range(3):
        g1, g2 = torch.Generator().manual_seed(step), torch.Generator().manual_seed(step)
        q, d_fast = trajectory(fast, q, beta, 0.1, 10, integrator, g1)
        V, d_ref = trajectory(ref, V, beta, 0.1, 10, integrator, g2)
        assert (d_fast["dH"] - d_ref["dH"]).abs().max() < 1e-10
        assert torch.equal(d_fast["accepted"], d_ref["accepted"])
        assert (fast.to_links(q) - V).abs().max() < 1e-11


def test_integrator_reversible_with_chain_first_input(group, gen):
    """The kernels accept any memory layout (here plain contiguous, chain axis outermost)."""
    fast = field_for(group)
    q = fast.from_links(random_links(group, gen)).contiguous()
    p = fast.momenta(q, gen).contiguous()
    beta = torch.tensor(1.5, dtype=torch.float64)
    q1, p1 = integrate(fast, q, p, beta, 0.1, 10, "omelyan")
    q2, p2 = integrate(fast, q1, -p1, beta, 0.1, 10, "omelyan")
    assert (fast.to_links(q2) - fast.to_links(q)).abs().max() < 1e-11
    assert (p2 + p).abs().max() < 1e-11


def test_fast_fields_lay_chains_out_innermost(group, gen):
    fast = field_for(group)
    q = fast.cold_start(5, 4)
    assert q.stride(0) == 1
    assert fast.from_links(random_links(group, gen, chains=5, L=4)).stride(0) == 1
    assert fast.momenta(q, gen).stride(0) == 1


def test_float32_fields(group, gen):
    fast, ref = field_for(group, torch.float32), MatrixField(group)
    U = random_links(group, gen)
    q = fast.from_links(U)
    assert q.dtype == torch.float32
    f = coords(group, fast.force(q, 1.0))
    assert f.dtype == torch.float32
    assert rel_err(f.double(), group.to_coords(ref.force(U, 1.0))) < 1e-5
    p = fast.momenta(q, gen)
    assert fast.drift(q, p, 0.1).dtype == torch.float32
    # energies accumulate in float64 (dH is a small difference of extensive sums)
    assert fast.kinetic(p).dtype == fast.action(q, 1.0).dtype == torch.float64
    assert fast.hamiltonian(q, p, torch.tensor(1.0)).dtype == torch.float64
    exact_kinetic = 0.5 * (p.double() ** 2).sum(tuple(range(1, p.ndim)))
    assert torch.allclose(fast.kinetic(p), exact_kinetic, rtol=1e-6)  # float32 squares, float64 sum


def _plaquette_series(fld, seed, chains=16, L=8, beta=2.0, therm=15, n_traj=40):
    gen = torch.Generator().manual_seed(seed)
    b = torch.tensor(beta, dtype=torch.float64)
    q = fld.cold_start(chains, L)
    out = []
    for t in range(therm + n_traj):
        q, _ = trajectory(fld, q, b, 0.25, 4, "omelyan", gen)
        if t >= therm:
            out.append(fld.mean_plaquette(q).numpy())
    return np.stack(out)  # (n_traj, chains)


def test_hmc_plaquette_matches_matrix_field(group):
    """Independent chains (different seeds) of both representations at beta = 2, L = 8
    give the same mean plaquette within errors (chains are independent replicas)."""
    means = []
    for fld, seed in ((field_for(group), 1), (MatrixField(group), 2)):
        per_chain = _plaquette_series(fld, seed).mean(0)
        means.append((per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(per_chain.size)))
    (m1, e1), (m2, e2) = means
    assert e1 < 0.01 and e2 < 0.01
    assert abs(m1 - m2) < 4 * math.hypot(e1, e2), means


# ------------------------------------------------------------------ compiled kernels
def _compile_or_skip(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_COMPILE", "always")
    if F.compile_disabled_reason() is not None:
        pytest.skip(f"torch.compile unavailable here: {F.compile_disabled_reason()}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_compiled_kernels_match_eager(group, gen, monkeypatch, dtype, tol):
    """Compiled kernels (polynomial sin/cos on CPU) against the eager ones, with angles and
    exponents far outside the first period."""
    fld = field_for(group, dtype)
    q = fld.from_links(random_links(group, gen, chains=4, L=6))
    if group.name != "su2":
        phase = q[:, :, 4] if group.name == "u2" else q
        phase += 12.0 * torch.randn(phase.shape, generator=gen, dtype=torch.float64).to(dtype)
    p = 5 * fld.momenta(q, gen)
    beta = torch.tensor([0.7, 1.0, 2.0, 4.0], dtype=dtype)
    def kernels():
        return (fld.force(q, beta), fld.drift(q, p, 0.8), fld.action(q, beta), fld.mean_plaquette(q),
                fld.kick(p, q, beta, 0.3), *fld.drift_kick(q, p, 0.8, beta, 0.3),
                *fld.drift_kicks(q, p, 0.1, beta, [0.03, -0.02, 0.01, 0.02, -0.01, 0.03, 0.05]),
                fld.momenta(q, torch.Generator().manual_seed(5)),
                fld.normalise(fld.drift(q, p, 0.8)), fld.kinetic(p), fld.hamiltonian(q, p, beta))

    eager = kernels()
    _compile_or_skip(monkeypatch)
    assert fld.compiles(q)
    compiled = kernels()
    if F.compile_disabled_reason() is not None:
        pytest.skip(f"torch.compile unavailable here: {F.compile_disabled_reason()}")
    for a, b in zip(compiled, eager):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert rel_err(a.double(), b.double()) < tol


def test_compile_failure_falls_back_to_eager(gen, monkeypatch):
    fld = field_for(SU2)
    q = fld.from_links(random_links(SU2, gen))
    expected = fld.force(q, 1.0)
    kernel = C._Kernel(_su2_force)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(C, "_compile_disabled_reason", None)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        out = kernel(True, q, torch.tensor([1.0], dtype=torch.float64))
    assert torch.equal(out, expected)
    assert "no C++ compiler" in F.compile_disabled_reason()
    monkeypatch.setenv("CAMPAIGN_COMPILE", "always")
    assert not fld.compiles(q)  # switched off for the rest of the process


@pytest.mark.slow
def test_ahead_of_time_package_equals_torch_compile(monkeypatch, tmp_path):
    """With a campaign compile cache, the first call builds the kernel's package, a fresh
    kernel (a later job) loads it without exporting again, and both give torch.compile's
    bits.  The Threefry kernel: non-tensor arguments, and compiled with dynamic shapes."""
    monkeypatch.setattr(C, "_compile_disabled_reason", None)
    monkeypatch.setattr(aot, "_broken", None)
    monkeypatch.setenv(aot.CACHE_ENV, "")
    key = torch.tensor([1, 2**31 + 5, 7, 2**32 - 1])
    expected = C._Kernel(_gaussian_pairs, dynamic=True)(True, key, 999, torch.float32)
    if F.compile_disabled_reason() is not None:
        pytest.skip(f"torch.compile unavailable here: {F.compile_disabled_reason()}")
    monkeypatch.setenv(aot.CACHE_ENV, str(tmp_path))
    built = C._Kernel(_gaussian_pairs, dynamic=True)(True, key, 999, torch.float32)
    assert aot.store() is not None, aot._broken
    assert len(list((tmp_path / "aoti").glob("gaussian_pairs-*.pt2"))) == 1

    def no_export(*args, **kwargs):
        raise AssertionError("a warm cache exported the kernel again")

    monkeypatch.setattr(torch.export, "export", no_export)
    loaded = C._Kernel(_gaussian_pairs, dynamic=True)(True, key, 999, torch.float32)
    assert aot.store() is not None, aot._broken
    assert torch.equal(built, expected) and torch.equal(loaded, expected)


_BUILDER = """
import sys, time
from pathlib import Path
from campaign.fields.aot import build_once

def build(partial):
    with open(sys.argv[2], "a") as log:
        log.write("built\\n")
    time.sleep(1.0)  # the other job asks meanwhile
    partial.write_text("package")

build_once(Path(sys.argv[1]), build)
"""


def test_concurrent_jobs_build_a_package_once(tmp_path):
    """The first wave of a campaign's jobs: one builds, the others wait and load."""
    script, package, log = tmp_path / "build.py", tmp_path / "aoti" / "k.pt2", tmp_path / "builds.log"
    script.write_text(_BUILDER)
    jobs = [subprocess.Popen([sys.executable, str(script), str(package), str(log)]) for _ in range(3)]
    assert [j.wait(timeout=120) for j in jobs] == [0, 0, 0]
    assert log.read_text().splitlines() == ["built"] and package.read_text() == "package"
    assert sorted(p.name for p in package.parent.iterdir()) == ["k.lock", "k.pt2"]


def test_ahead_of_time_failure_falls_back_to_torch_compile(gen, monkeypatch, tmp_path):
    fld = field_for(SU2)
    q = fld.from_links(random_links(SU2, gen))
    expected = fld.force(q, 1.0)

    def broken(*args, **kwargs):
        raise RuntimeError("no AOTInductor here")

    monkeypatch.setattr(C, "_compile_disabled_reason", None)
    monkeypatch.setattr(aot, "_broken", None)
    monkeypatch.setenv(aot.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(aot, "load_or_build", broken)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # "compiled" = eager
    with pytest.warns(RuntimeWarning, match="no AOTInductor here"):
        out = C._Kernel(_su2_force)(True, q, torch.tensor([1.0], dtype=torch.float64))
    assert torch.equal(out, expected)
    assert aot.store() is None and F.compile_disabled_reason() is None


def test_caller_errors_are_not_taken_for_compile_failures(gen, monkeypatch):
    monkeypatch.setattr(C, "_compile_disabled_reason", None)
    kernel = C._Kernel(_su2_force)
    bad = torch.zeros((2, 2, 3, 4, 4), dtype=torch.float64)  # 3 components: not a quaternion
    with pytest.raises(ValueError):
        kernel(False, bad, torch.tensor([1.0], dtype=torch.float64))
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # "compiled" = eager: same error
    with pytest.raises(ValueError):
        kernel(True, bad, torch.tensor([1.0], dtype=torch.float64))
    assert F.compile_disabled_reason() is None


def test_auto_mode_compiles_only_large_problems(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_COMPILE", "auto")
    monkeypatch.setattr(C, "_compile_disabled_reason", None)
    fld = field_for(U1)
    assert not fld.compiles(fld.cold_start(2, 8))
    assert fld.compiles(fld.cold_start(16, 16))
    q = fld.cold_start(16, 16).requires_grad_()
    assert not fld._use(q)  # autograd always runs eagerly
    monkeypatch.setenv("CAMPAIGN_COMPILE", "never")
    assert not fld.compiles(fld.cold_start(64, 64))
    assert not MatrixField(U2).compiles(U2.identity((1, 2, 2, 2)))


@pytest.mark.slow
def test_single_chain_trajectories_do_not_recompile(gen, monkeypatch):
    """With one chain the chain axis's stride is arbitrary; kernel outputs and fresh
    states must hit the same compiled graphs (seen before the fix: one recompilation per
    kernel on the second trajectory, a minute each for U(2) at L = 64)."""
    from torch._dynamo.utils import counters

    from campaign.hmc import trajectory

    _compile_or_skip(monkeypatch)
    torch._dynamo.reset()  # graphs of earlier tests (other shapes, views) would add variants
    fld = field_for(SU2)
    q = fld.from_links(random_links(SU2, gen, chains=1, L=6))
    q = trajectory(fld, q, 1.0, 0.1, 3, "omelyan", gen)[0]
    if F.compile_disabled_reason() is not None:
        pytest.skip(f"torch.compile unavailable here: {F.compile_disabled_reason()}")
    graphs = counters["stats"]["unique_graphs"]
    for _ in range(2):
        q = trajectory(fld, q, 1.0, 0.1, 3, "omelyan", gen)[0]
    q = trajectory(fld, fld.from_links(random_links(SU2, gen, chains=1, L=6)), 1.0, 0.1, 3, "omelyan", gen)[0]
    assert counters["stats"]["unique_graphs"] == graphs
