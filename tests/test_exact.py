"""campaign.exact against independent computations.

* one-plaquette character coefficients: direct Haar integration (Weyl formula quadrature);
* tiny tori by brute force: U(1) 2 x 2 by quadrature over the plaquette angles; SU(2)/U(2)
  1 x 1 by quadrature over the commutator; U(1), SU(2), U(2) on 2 x 2 and 2 x 1 tori by
  reweighted Haar Monte Carlo of the actual link lattice (within 4 sigma);
* large L against infinite volume, strong-coupling series, the public U(1) numbers.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ive

from campaign import exact
from campaign.groups import SU2, U1, UnknownGroupError
from campaign.theories import THEORIES

TWO_PI = 2 * math.pi


def gauss_legendre(a, b, n=64):
    x, w = np.polynomial.legendre.leggauss(n)
    half = (b - a) / 2
    return a + half * (x + 1), half * w


def wrap(angle):
    """Into (-pi, pi]."""
    return np.where(angle <= -math.pi, angle + TWO_PI, np.where(angle > math.pi, angle - TWO_PI, angle))


# ------------------------------------------------------------- character coefficients
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # zero integrals at beta=0
@pytest.mark.parametrize("beta", [0.0, 0.7, 3.0, 9.0])
@pytest.mark.parametrize("n", [0, 1, -2, 5])
def test_u1_coefficient_is_haar_integral(beta, n):
    # c_n = (1/2pi) int e^{-beta (1 - cos phi)} e^{-i n phi} dphi
    direct = integrate.quad(lambda p: math.exp(-beta * (1 - math.cos(p))) * math.cos(n * p),
                            -math.pi, math.pi, epsabs=1e-14)[0] / TWO_PI
    assert exact.character_coefficient("u1", beta, n) == pytest.approx(direct, rel=1e-11, abs=1e-15)


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0, 8.0])
@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_su2_coefficient_is_weyl_integral(beta, k):
    # class angle a in [0, pi], Haar density (2/pi) sin^2 a, chi_k = sin(k a)/sin(a)
    def integrand(a):
        return (2 / math.pi) * math.sin(a) * math.sin(k * a) * math.exp(-beta * (1 - math.cos(a)))

    direct = integrate.quad(integrand, 0, math.pi, epsabs=1e-14)[0]
    assert exact.character_coefficient("su2", beta, k) == pytest.approx(direct, rel=1e-11, abs=1e-15)
    if beta > 0:  # the closed form F_k = c_k / k = 2 e^-beta I_k(beta) / beta
        assert direct / k == pytest.approx(2 * ive(k, beta) / beta, rel=1e-11, abs=1e-15)


def u2_character(l1, l2, p1, p2):
    """Schur character of U(2) on eigenphases p1, p2 (Weyl character formula)."""
    z1, z2 = np.exp(1j * p1), np.exp(1j * p2)
    num = z1 ** (l1 + 1) * z2**l2 - z2 ** (l1 + 1) * z1**l2
    den = z1 - z2
    safe = np.abs(den) > 1e-12
    return np.where(safe, num / np.where(safe, den, 1), (l1 - l2 + 1) * z1 ** (l1 + l2))


def u2_weyl_grid(n=96):
    """Periodic trapezoid on the maximal torus with the Weyl density
    (1/2)(1/2pi)^2 |e^{i p1} - e^{i p2}|^2 (exact for smooth periodic integrands).
    The midpoint offset keeps p1 != p2."""
    p = -math.pi + TWO_PI * (np.arange(n) + 0.25) / n
    p1, p2 = np.meshgrid(p, p + TWO_PI * 0.5 / n, indexing="ij")
    weight = 0.5 * np.abs(np.exp(1j * p1) - np.exp(1j * p2)) ** 2 / n**2
    return p1, p2, weight


def test_u2_weyl_grid_is_normalised_haar():
    p1, p2, w = u2_weyl_grid()
    assert w.sum() == pytest.approx(1, abs=1e-13)
    # characters are orthonormal
    chi = u2_character(2, -1, p1, p2)
    assert (w * np.abs(chi) ** 2).sum() == pytest.approx(1, abs=1e-12)
    assert abs((w * chi * np.conj(u2_character(1, 0, p1, p2))).sum()) < 1e-12


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0, 10.0])
@pytest.mark.parametrize("rep", [(0, 0), (1, 0), (0, -1), (1, 1), (2, -1), (3, 1), (-2, -2)])
def test_u2_coefficient_is_weyl_integral(beta, rep):
    p1, p2, w = u2_weyl_grid(128)
    boltzmann = np.exp(-beta * (1 - 0.5 * (np.cos(p1) + np.cos(p2))))
    direct = (w * boltzmann * np.conj(u2_character(*rep, p1, p2))).sum()
    assert abs(direct.imag) < 1e-13
    assert exact.character_coefficient("u2", beta, rep) == pytest.approx(direct.real, rel=1e-10, abs=1e-14)


def u2_eigenphase_rule(n=96):
    """Nodes and Haar weights on the maximal torus of U(2), Gauss-Legendre on pieces where
    q = wrap(p1 + p2)/2pi is smooth: p1 in [-pi, 0], [0, pi]; p2 split where p1 + p2 = +-pi."""
    x, w = np.polynomial.legendre.leggauss(n)
    p1 = np.concatenate((math.pi / 2 * (x - 1), math.pi / 2 * (x + 1)))
    w1 = np.concatenate((w, w)) * math.pi / 2
    cut = np.where(p1 > 0, math.pi - p1, -math.pi - p1)[:, None]
    pieces = [(np.full_like(cut, -math.pi), cut), (cut, np.full_like(cut, math.pi))]
    p2 = np.concatenate([lo + (hi - lo) * (x + 1) / 2 for lo, hi in pieces], 1)
    w2 = np.concatenate([(hi - lo) / 2 * w for lo, hi in pieces], 1)
    p1 = np.broadcast_to(p1[:, None], p2.shape)
    haar = w1[:, None] * w2 * np.abs(np.exp(1j * p1) - np.exp(1j * p2)) ** 2 / (8 * math.pi**2)
    return p1, p2, haar


def u2_theta_moments_direct(beta, rep, n=96):
    """(c_r, c_r', b_r) of the theta-deformed U(2) weight e^{-S} e^{i theta q} by 2D
    quadrature over the eigenphases with q = wrap(p1 + p2)/2pi."""
    p1, p2, haar = u2_eigenphase_rule(n)
    f = haar * np.exp(-beta * (1 - 0.5 * (np.cos(p1) + np.cos(p2)))) * np.conj(u2_character(*rep, p1, p2))
    q = wrap(p1 + p2) / TWO_PI
    return f.sum().real, (1j * q * f).sum().real, (q * q * f).sum().real


@pytest.mark.parametrize("beta", [0.5, 3.0])
def test_u2_theta_moments_are_weyl_integrals(beta):
    reps = np.array([(0, 0), (1, 0), (0, -1), (2, 1), (1, -1), (3, 3)])
    c, dc, b = exact._theta_moments(THEORIES["u2"], beta, reps)
    for i, rep in enumerate(reps):
        dc_ref = u2_theta_moments_direct(beta, tuple(rep))
        assert c[i] == pytest.approx(exact.character_coefficient("u2", beta, tuple(rep)), abs=1e-14)
        assert (c[i], dc[i], b[i]) == pytest.approx(dc_ref, abs=1e-11)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("beta", [0.0, 2.0, 12.0])
def test_u1_theta_moments_are_fourier_integrals(beta):
    n = np.arange(-4, 5)
    c, dc, b = exact._theta_moments(THEORIES["u1"], beta, n)
    for i, m in enumerate(n):
        def moment(g):
            return integrate.quad(lambda p: g(p) * math.exp(beta * (math.cos(p) - 1)),
                                  -math.pi, math.pi, epsabs=1e-14, limit=200)[0] / TWO_PI

        assert c[i] == pytest.approx(moment(lambda p: math.cos(m * p)), abs=1e-13)
        assert dc[i] == pytest.approx(moment(lambda p: p / TWO_PI * math.sin(m * p)), abs=1e-13)
        assert b[i] == pytest.approx(moment(lambda p: (p / TWO_PI) ** 2 * math.cos(m * p)), abs=1e-13)


# -------------------------------------------------------- U(1) 2 x 2 torus, quadrature
# Gauge-fixed, the V plaquette angles of a U(1) torus are independent and uniform except
# for sum_P theta_P = 0 mod 2pi (the two Polyakov loops decouple).
def u1_2x2_loops_by_quadrature(beta, n=48):
    t = -math.pi + TWO_PI * np.arange(n) / n
    t1, t2, t3 = np.meshgrid(t, t, t, indexing="ij", sparse=True)
    t4 = -(t1 + t2 + t3)
    w = np.exp(beta * (np.cos(t1) + np.cos(t2) + np.cos(t3) + np.cos(t4) - 4))
    z = w.sum()
    plaq = (w * (np.cos(t1) + np.cos(t2) + np.cos(t3) + np.cos(t4)) / 4).sum() / z
    strip = (w * np.cos(t1 + t2)).sum() / z  # the 2 x 1 loop encloses two neighbours
    return plaq, strip


def u1_chi_t_by_convolution(beta, V=4):
    """<Q^2>/V on a V = 4 torus: P(Q) = (h*h*h*h)(2 pi Q) with h = e^{beta(cos - 1)} on
    (-pi, pi]; every convolution by Gauss-Legendre on its smooth pieces."""
    assert V == 4

    def h(s):
        return np.where(np.abs(s) <= math.pi, np.exp(beta * (np.cos(s) - 1)), 0.0)

    def h2(t):  # (h*h)(t) for an array of t, support [-2pi, 2pi]
        lo, hi = np.maximum(-math.pi, t - math.pi), np.minimum(math.pi, t + math.pi)
        x, w = np.polynomial.legendre.leggauss(80)
        s = lo[:, None] + (hi - lo)[:, None] * (x + 1) / 2
        return ((hi - lo)[:, None] / 2 * w * h(s) * h(t[:, None] - s)).sum(1)

    def p(Q):
        lo, hi = max(-TWO_PI, TWO_PI * Q - TWO_PI), min(TWO_PI, TWO_PI * Q + TWO_PI)
        cuts = sorted({lo, hi, *(x for x in (0.0, TWO_PI * Q) if lo < x < hi)})
        total = 0.0
        for a, e in zip(cuts[:-1], cuts[1:]):
            u, w = gauss_legendre(a, e, 80)
            total += (w * h2(u) * h2(TWO_PI * Q - u)).sum()
        return total

    p0, p1 = p(0), p(1)  # |Q| = 2 would need every angle at +-pi: measure zero
    return 2 * p1 / (p0 + 2 * p1) / V


@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_u1_2x2_torus_by_quadrature(beta):
    plaq, strip = u1_2x2_loops_by_quadrature(beta)
    assert exact.plaquette("u1", beta, 2) == pytest.approx(plaq, abs=1e-12)
    assert exact.wilson_loop("u1", beta, 2, 2, 1) == pytest.approx(strip, abs=1e-12)
    assert exact.wilson_loop("u1", beta, 2, 1, 2) == pytest.approx(strip, abs=1e-12)
    assert exact.wilson_loop("u1", beta, 2, 2, 2) == pytest.approx(1.0, abs=1e-13)  # [P_x, P_y] = 1
    assert exact.chi_t("u1", beta, 2) == pytest.approx(u1_chi_t_by_convolution(beta), rel=1e-9)


def test_one_by_one_torus_is_a_commutator():
    # U(1): the single plaquette is U0 U1 U0^* U1^* = 1
    for beta in (0.0, 0.3, 5.0):
        assert exact.plaquette("u1", beta, 1) == pytest.approx(1.0, abs=1e-14)
        assert exact.chi_t("u1", beta, 1) == 0.0
        assert exact.chi_t("u2", beta, 1) == 0.0
    # beta = 0: Haar average of (1/2) tr[A, B] is int |chi_f(A)|^2 / d_f = 1/4
    assert exact.plaquette("su2", 0.0, 1) == pytest.approx(0.25, abs=1e-15)


def su2_commutator_plaquette(beta, n=48):
    """<(1/2) tr ABA^-1B^-1> for Haar A, B weighted by exp(-beta (1 - (1/2) tr)).
    A = exp(i a sigma_3) up to conjugation, B = cos b + i sin b n.sigma; then
    (1/2) tr [A, B] = 1 - 2 sin^2 a sin^2 b (1 - n_3^2) (checked below), Haar densities
    (2/pi) sin^2 a, (2/pi) sin^2 b, n_3 uniform on [-1, 1]."""
    a, wa = gauss_legendre(0, math.pi, n)
    n3, wn = gauss_legendre(-1, 1, n)
    A, B, N3 = np.meshgrid(a, a, n3, indexing="ij", sparse=True)
    weight = (wa * np.sin(a) ** 2)[:, None, None] * (wa * np.sin(a) ** 2)[None, :, None] * wn[None, None, :]
    half_trace = 1 - 2 * np.sin(A) ** 2 * np.sin(B) ** 2 * (1 - N3**2)
    boltzmann = weight * np.exp(-beta * (1 - half_trace))
    return (boltzmann * half_trace).sum() / boltzmann.sum()


def test_su2_commutator_trace_identity():
    rng = np.random.default_rng(7)
    a, b = rng.uniform(0, math.pi, 2)
    nvec = rng.standard_normal(3)
    nvec /= np.linalg.norm(nvec)
    sig = [np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1, -1])]
    A = math.cos(a) * np.eye(2) + 1j * math.sin(a) * sig[2]
    B = math.cos(b) * np.eye(2) + 1j * math.sin(b) * sum(c * s for c, s in zip(nvec, sig))
    comm = A @ B @ A.conj().T @ B.conj().T
    expected = 1 - 2 * math.sin(a) ** 2 * math.sin(b) ** 2 * (1 - nvec[2] ** 2)
    assert np.trace(comm).real / 2 == pytest.approx(expected, abs=1e-14)


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0, 12.0])
def test_su2_and_u2_one_by_one_torus_by_quadrature(beta):
    ref = su2_commutator_plaquette(beta)
    assert exact.plaquette("su2", beta, 1) == pytest.approx(ref, abs=1e-11)
    # U(2): the U(1) phases cancel in a commutator, so the 1 x 1 torus is the SU(2) one
    assert exact.plaquette("u2", beta, 1) == pytest.approx(ref, abs=1e-11)


# ------------------------------------------------------ tiny tori by Haar Monte Carlo
def haar(group, rng, shape):
    if group == "u1":
        return np.exp(1j * rng.uniform(-math.pi, math.pi, shape))[..., None, None]
    q = rng.standard_normal((*shape, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    a, b = q[..., 0] + 1j * q[..., 3], q[..., 2] + 1j * q[..., 1]
    u = np.stack((np.stack((a, b), -1), np.stack((-b.conj(), a.conj()), -1)), -2)
    if group == "u2":
        u = u * np.exp(1j * rng.uniform(-math.pi, math.pi, shape))[..., None, None]
    return u


def dag(m):
    return np.conj(np.swapaxes(m, -1, -2))


def mul(a, b):
    """Batched product of 1 x 1 or 2 x 2 matrices (written out: numpy's matmul is slow
    for many tiny matrices)."""
    if a.shape[-1] == 1:
        return a * b
    return np.stack(
        (
            np.stack((a[..., 0, 0] * b[..., 0, 0] + a[..., 0, 1] * b[..., 1, 0],
                      a[..., 0, 0] * b[..., 0, 1] + a[..., 0, 1] * b[..., 1, 1]), -1),
            np.stack((a[..., 1, 0] * b[..., 0, 0] + a[..., 1, 1] * b[..., 1, 0],
                      a[..., 1, 0] * b[..., 0, 1] + a[..., 1, 1] * b[..., 1, 1]), -1),
        ),
        -2,
    )


def rectangle(U, x, y, R, T):
    """Ordered product around the R x T rectangle from site (x, y): R steps +x, T +y,
    R -x, T -y.  U[mu][x][y] is a batch (n, N, N) of links; periodic."""
    Lx, Ly = len(U[0]), len(U[0][0])
    path = [U[0][(x + i) % Lx][y % Ly] for i in range(R)]
    path += [U[1][(x + R) % Lx][(y + j) % Ly] for j in range(T)]
    path += [dag(U[0][(x + R - 1 - i) % Lx][(y + T) % Ly]) for i in range(R)]
    path += [dag(U[1][x % Lx][(y + T - 1 - j) % Ly]) for j in range(T)]
    prod = path[0]
    for m in path[1:]:
        prod = mul(prod, m)
    return prod


def reweighted_haar_mc(group, beta, Lx, Ly, loops, n_samples, seed, symmetrize=True, batch=50_000):
    """Estimates of <W(R, T)> (averaged over sites, and over both orientations if
    ``symmetrize``) and <Q^2>/V from Haar link samples reweighted by exp(-S); errors from
    the ratio-estimator variance."""
    rng = np.random.default_rng(seed)
    N = 1 if group == "u1" else 2
    V = Lx * Ly
    weights, values = [], []
    for start in range(0, n_samples, batch):
        m = min(batch, n_samples - start)
        U = [[[haar(group, rng, (m,)) for _ in range(Ly)] for _ in range(Lx)] for _ in range(2)]
        plaq = [rectangle(U, x, y, 1, 1) for x in range(Lx) for y in range(Ly)]
        action = sum(beta * (1 - np.trace(p, axis1=-2, axis2=-1).real / N) for p in plaq)
        weights.append(np.exp(-action))
        obs = {}
        for R, T in loops:
            shapes = {(R, T), (T, R)} if symmetrize else {(R, T)}
            tr = [np.trace(rectangle(U, x, y, r, t), axis1=-2, axis2=-1).real / N
                  for r, t in shapes for x in range(Lx) for y in range(Ly)]
            obs[f"{R}x{T}"] = np.mean(tr, axis=0)
        if group != "su2":
            phase = [np.angle(np.linalg.det(p) if N == 2 else p[..., 0, 0]) for p in plaq]
            Q = np.sum(phase, axis=0) / TWO_PI
            assert np.allclose(Q, np.round(Q), atol=1e-9)
            obs["chi_t"] = np.round(Q) ** 2 / V
        values.append(obs)
    w = np.concatenate(weights)
    result = {}
    for key in values[0]:
        o = np.concatenate([v[key] for v in values])
        mean = (w * o).sum() / w.sum()
        err = math.sqrt((w**2 * (o - mean) ** 2).sum()) / w.sum()
        result[key] = (mean, err)
    return result


def assert_within(mc, exact_value, n_sigma=4.0):
    mean, err = mc
    assert abs(mean - exact_value) < n_sigma * err, f"MC {mean} +- {err} vs exact {exact_value}"


@pytest.mark.parametrize("group,beta", [("u1", 1.5), ("su2", 2.0), ("u2", 3.0)])
def test_2x2_torus_by_haar_monte_carlo(group, beta):
    mc = reweighted_haar_mc(group, beta, 2, 2, [(1, 1), (2, 1), (2, 2)], 200_000, seed=11)
    assert_within(mc["1x1"], exact.plaquette(group, beta, 2))
    assert_within(mc["2x1"], exact.wilson_loop(group, beta, 2, 2, 1))
    if group != "u1":  # U(1): W(2, 2) = 1 identically (zero variance)
        assert_within(mc["2x2"], exact.wilson_loop(group, beta, 2, 2, 2))
    if group != "su2":
        assert_within(mc["chi_t"], exact.chi_t(group, beta, 2))
    # the Monte Carlo resolves the torus: it excludes the infinite-volume area law for the
    # plaquette (U(1)) and for the loop around the whole cut-open torus (SU(2), U(2));
    # guards against a comparison that any area-law answer would pass
    R = 1 if group == "u1" else 2
    inf = exact.wilson_loop_infinite_volume(group, beta, R, R)
    mean, err = mc[f"{R}x{R}"]
    assert abs(mean - inf) > 10 * err


@pytest.mark.parametrize("group,beta", [("u1", 1.0), ("su2", 2.0), ("u2", 2.0)])
def test_2x1_torus_by_haar_monte_carlo(group, beta):
    # V = 2 (not square, so through the internal V-plaquette functions): the 1 x 1 loop
    # encloses A = 1; the 2 x 1 loop is the commutator of the two Polyakov loops, A = V.
    # (Its 1 x 2 partner winds twice around the short direction: not symmetrized.)
    G = THEORIES[group]
    mc = reweighted_haar_mc(group, beta, 2, 1, [(1, 1), (2, 1)], 200_000, seed=5, symmetrize=False)
    plaq, whole = exact._torus_loops(G, beta, 2, [1, 2])
    assert_within(mc["1x1"], plaq)
    if group == "u1":
        assert whole == pytest.approx(1.0, abs=1e-14)
    else:
        assert_within(mc["2x1"], whole)


# --------------------------------------------------------------- limits and series
@pytest.mark.parametrize("group", ["u1", "su2", "u2"])
@pytest.mark.parametrize("beta", [0.4, 2.0, 6.0])
def test_large_torus_is_infinite_volume_for_small_loops(group, beta):
    for R, T in [(1, 1), (1, 2), (2, 2), (3, 4)]:
        assert exact.wilson_loop(group, beta, 64, R, T) == pytest.approx(
            exact.wilson_loop_infinite_volume(group, beta, R, T), rel=1e-12
        )


def test_infinite_volume_area_law_closed_forms():
    beta = 2.5
    assert exact.wilson_loop_infinite_volume("u1", beta, 2, 3) == pytest.approx((ive(1, beta) / ive(0, beta)) ** 6, rel=1e-14)
    assert exact.wilson_loop_infinite_volume("su2", beta, 2, 3) == pytest.approx((ive(2, beta) / ive(1, beta)) ** 6, rel=1e-14)
    # U(2): F_(1,0)/F_(0,0) = (c_(1,0)/2)/c_(0,0) from the Weyl integrals above
    ratio = exact.character_coefficient("u2", beta, (1, 0)) / 2 / exact.character_coefficient("u2", beta, (0, 0))
    assert exact.wilson_loop_infinite_volume("u2", beta, 2, 3) == pytest.approx(ratio**6, rel=1e-13)
    # small beta: <(1/N) Re tr U> = beta/2 (U(1)), beta/4 (SU(2)), beta/8 (U(2)) to leading order
    for group, slope in (("u1", 0.5), ("su2", 0.25), ("u2", 0.125)):
        assert exact.wilson_loop_infinite_volume(group, 1e-6, 1, 1) == pytest.approx(slope * 1e-6, rel=1e-6)
        assert exact.wilson_loop_infinite_volume(group, 0.0, 1, 1) == 0.0


def test_u1_strong_coupling_series_on_the_torus():
    # infinite volume I1/I0 = b/2 - b^3/16 + b^5/96; on V = 4 the surface wrapping the
    # torus adds rho^(V-1) (and Z = 1 + 2 rho^4, rho_2 rho^3 at fifth order):
    # W = b/2 + b^3/16 - b^5/12 + O(b^7); on V = 9, W - I1/I0 = rho^8 (1 + O(b))
    b = 0.02
    assert exact.plaquette("u1", b, 16) == pytest.approx(b / 2 - b**3 / 16 + b**5 / 96, rel=1e-12)
    assert exact.plaquette("u1", b, 2) == pytest.approx(b / 2 + b**3 / 16 - b**5 / 12, abs=b**7)
    b = 0.1
    rho = ive(1, b) / ive(0, b)
    assert (exact.plaquette("u1", b, 3) - rho) / rho**8 == pytest.approx(1, abs=0.02)


def test_u1_chi_t_large_volume_limit():
    # V -> infinity: chi_t -> <phi^2>/(4 pi^2), phi one plaquette angle with density e^{beta cos}
    for beta in (0.5, 2.0, 7.0):
        num = integrate.quad(lambda p: p * p * math.exp(beta * (math.cos(p) - 1)), -math.pi, math.pi, epsabs=1e-14)[0]
        den = integrate.quad(lambda p: math.exp(beta * (math.cos(p) - 1)), -math.pi, math.pi, epsabs=1e-14)[0]
        limit = num / den / (4 * math.pi**2)
        assert exact.chi_t_infinite_volume("u1", beta) == pytest.approx(limit, rel=1e-11)
        assert exact.chi_t("u1", beta, 64) == pytest.approx(limit, rel=1e-9)


def test_u2_chi_t_large_volume_limit():
    # one plaquette: <q^2> with q = wrap(p1 + p2)/2pi, independent 2D quadrature
    for beta in (0.5, 3.0):
        c, _, b = u2_theta_moments_direct(beta, (0, 0))
        assert exact.chi_t_infinite_volume("u2", beta) == pytest.approx(b / c, rel=1e-10)
        assert exact.chi_t("u2", beta, 64) == pytest.approx(b / c, rel=1e-9)


def test_chi_t_at_infinite_temperature_is_irwin_hall():
    # beta = 0: plaquette angles uniform with sum = 0 mod 2pi; for V = 4 the Irwin-Hall
    # density of four uniforms at 0 and +-1 (2/3, 1/6) gives <Q^2> = 1/3, chi_t = 1/12
    for group in ("u1", "u2"):
        for L in (2, 3, 8):
            assert exact.chi_t(group, 0.0, L) == pytest.approx(1 / 12, rel=1e-12)


def test_public_u1_numbers():
    # arXiv 2502.05504 notebook, exact values at beta = 7, L = 16
    assert exact.plaquette("u1", 7, 16) == pytest.approx(0.92553, abs=5e-6)
    assert exact.wilson_loop("u1", 7, 16, 4, 4) == pytest.approx(0.28991, abs=5e-6)
    assert exact.chi_t("u1", 7, 16) == pytest.approx(0.0039313, abs=5e-8)


@pytest.mark.parametrize(
    "group,beta,L,plaq,w22,chi",
    [
        ("u1", 7, 16, 0.925532, 0.733780, 0.00393131),
        ("u1", 1, 16, 0.446390, 0.0397061, 0.0406362),
        ("su2", 2, 8, 0.433127, 0.0351935, None),
        ("u2", 2, 8, 0.248851, 0.00383493, 0.0718019),
    ],
)
def test_reference_values_in_docstring(group, beta, L, plaq, w22, chi):
    assert exact.plaquette(group, beta, L) == pytest.approx(plaq, rel=5e-6)
    assert exact.wilson_loop(group, beta, L, 2, 2) == pytest.approx(w22, rel=5e-6)
    if chi is not None:
        assert exact.chi_t(group, beta, L) == pytest.approx(chi, rel=5e-6)


@pytest.mark.parametrize("group,beta,L", [("u1", 20.0, 2), ("u1", 12.0, 4), ("su2", 20.0, 1),
                                          ("su2", 10.0, 2), ("u2", 10.0, 1), ("u2", 20.0, 3)])
def test_truncation_is_converged_at_large_beta(group, beta, L):
    G, V = THEORIES[group], L * L
    areas = [1, max(1, V // 2), V]
    auto = exact._torus_loops(G, beta, V, areas)
    wide = exact._torus_loops(G, beta, V, areas, min_cutoff=96)
    np.testing.assert_allclose(auto, wide, rtol=1e-13)
    if G.has_topology and V > 1:
        ref = exact._torus_chi_t(G, beta, V, min_cutoff=96)
        assert exact._torus_chi_t(G, beta, V) == pytest.approx(ref, rel=1e-10, abs=1e-16)


def test_large_lattice_extremes_stay_finite():
    for group in ("u1", "su2", "u2"):
        for beta in (0.0, 1e-9, 20.0):
            d = exact.exact_observables(group, beta, 64, max_loop=4)
            assert all(math.isfinite(v) and 0 <= v <= 1 for v in d["wilson_loops"].values())
    # a loop enclosing all but 64 plaquettes is the small loop around the complement:
    # W ~ rho^(V - A), while the area-law term rho^A underflows harmlessly
    rho = ive(1, 0.1) / ive(0, 0.1)
    assert exact.wilson_loop("u1", 0.1, 64, 64, 63) == pytest.approx(rho**64, rel=1e-12)


# ----------------------------------------------------------------- API and inputs
def test_exact_observables_keys_and_json():
    d = exact.exact_observables("u2", 2.0, 8)
    assert set(d) == {"group", "beta", "L", "plaquette", "wilson_loops", "chi_t"}
    assert d["group"] == "u2" and d["beta"] == 2.0 and d["L"] == 8
    assert set(d["wilson_loops"]) == {f"{r}x{t}" for r in range(1, 5) for t in range(1, 5)}
    assert d["wilson_loops"]["1x1"] == d["plaquette"] == exact.plaquette("u2", 2.0, 8)
    assert d["wilson_loops"]["2x3"] == d["wilson_loops"]["3x2"] == exact.wilson_loop("u2", 2.0, 8, 2, 3)
    assert d["chi_t"] == exact.chi_t("u2", 2.0, 8)
    assert json.loads(json.dumps(d)) == d
    assert all(type(v) is float for v in d["wilson_loops"].values())
    s = exact.exact_observables(SU2, 2, 4, max_loop=1)
    assert "chi_t" not in s and s["group"] == "su2" and set(s["wilson_loops"]) == {"1x1"}
    assert set(exact.exact_observables(U1, 1.0, 1)["wilson_loops"]) == {"1x1"}
    assert exact.exact_observables("U1", 1.0, 6, max_loop=6)["wilson_loops"]["6x6"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: exact.plaquette("u1", -1.0, 4),
        lambda: exact.plaquette("u1", float("nan"), 4),
        lambda: exact.plaquette("u1", float("inf"), 4),
        lambda: exact.plaquette("u1", "2", 4),
        lambda: exact.plaquette("u1", 1.0, 0),
        lambda: exact.plaquette("u1", 1.0, 2.5),
        lambda: exact.wilson_loop("su2", 1.0, 4, 0, 1),
        lambda: exact.wilson_loop("su2", 1.0, 4, 5, 1),  # winds around the torus
        lambda: exact.wilson_loop("su2", 1.0, 4, 8, 3),  # area > V
        lambda: exact.chi_t("su2", 1.0, 4),
        lambda: exact.chi_t_infinite_volume("su2", 1.0),
        lambda: exact.wilson_loop_infinite_volume("u1", 1.0, 0, 2),
        lambda: exact.exact_observables("u1", 1.0, 4, max_loop=5),
        lambda: exact.exact_observables("u1", 1.0, 4, max_loop=0),
        lambda: exact.plaquette("su3", 1.0, 4),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError) as info:
        call()
    assert "\n" not in str(info.value)


def test_unknown_group_error_type():
    with pytest.raises(UnknownGroupError):
        exact.exact_observables("su3", 1.0, 4)


@pytest.mark.parametrize("group,beta,L", [("u1", 1.3, 4), ("u1", 7.0, 16), ("su2", 2.5, 6), ("u2", 3.0, 5)])
def test_log_partition_function_derivative_is_the_action(group, beta, L):
    """-d log Z / d beta = <S>/beta = V (1 - <plaquette>): log Z against the plaquette
    (a different sum of the same expansion), by a central difference; Z(0) = 1."""
    h = 1e-4 * max(1.0, beta)
    d = (exact.log_partition_function(group, beta + h, L) - exact.log_partition_function(group, beta - h, L)) / (2 * h)
    V = L * L
    assert -d == pytest.approx(V * (1 - exact.plaquette(group, beta, L)), rel=1e-6)
    assert exact.log_partition_function(group, 0.0, L) == pytest.approx(0.0, abs=1e-12)
    # power: the trivial representation alone misses the torus sum at small volume
    if group == "u1" and L == 4:
        from scipy.special import ive

        trivial_only = V * np.log(ive(0, beta))
        assert abs(trivial_only - exact.log_partition_function(group, beta, L)) > 1e-5
