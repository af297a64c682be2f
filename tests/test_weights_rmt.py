"""Random-matrix reference statistics (campaign.weights.rmt, coulomb_gas) against exact and
independently computed results, each with a check that the test can fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad

from campaign.weights import coulomb_gas, rmt


def _mean_and_error(per_sample: np.ndarray) -> tuple[float, float]:
    return float(per_sample.mean()), float(per_sample.std(ddof=1) / math.sqrt(len(per_sample)))


# --------------------------------------------------------------- spacing ratio
def test_spacing_ratio_goe_large_n():
    """GOE spectra, central half: <r> = 0.5307 (Atas et al.), with the error from the
    scatter between independent spectra.  Two constructions: dense matrices (n = 200) and
    the exact tridiagonal model (n = 400, precise enough to also exclude the 3 x 3
    surmise value 4 - 2 sqrt 3 = 0.5359).  Poisson and GUE are excluded (power)."""
    rng = np.random.default_rng(11)
    dense = np.linalg.eigvalsh(rmt.goe(200, 200, rng))
    tri = rmt.gaussian_beta_ensemble(400, 1.0, 600, rng)
    for ev, max_err in ((dense, 2.5e-3), (tri, 1.2e-3)):
        r, err = _mean_and_error(rmt.mean_spacing_ratio(ev, bulk=0.5))
        assert err < max_err
        assert abs(r - rmt.R_MEAN["goe"]) < 3 * math.hypot(err, rmt.R_MEAN_ERROR["goe"]), (r, err)
        assert abs(r - rmt.R_MEAN["poisson"]) > 30 * err
        assert abs(r - rmt.R_MEAN["gue"]) > 15 * err
    assert abs(r - (4 - 2 * math.sqrt(3))) > 3.5 * err


def test_spacing_ratio_poisson():
    """Uncorrelated levels: <r> = 2 ln 2 - 1 = 0.3863 (exact at any n for uniform levels);
    the GOE value is excluded (power)."""
    rng = np.random.default_rng(12)
    levels = np.sort(rng.uniform(size=(400, 100)), axis=-1)
    r, err = _mean_and_error(rmt.mean_spacing_ratio(levels))
    assert abs(rmt.R_MEAN["poisson"] - 0.38629436) < 1e-8
    assert abs(r - rmt.R_MEAN["poisson"]) < 3 * err, (r, err)
    assert abs(r - rmt.R_MEAN["goe"]) > 30 * err


def test_spacing_ratio_gue_tridiagonal():
    """The beta = 2 tridiagonal ensemble (an independent construction) gives the GUE value."""
    ev = rmt.gaussian_beta_ensemble(300, 2.0, 100, np.random.default_rng(13))
    r, err = _mean_and_error(rmt.mean_spacing_ratio(ev, bulk=0.5))
    assert abs(r - rmt.R_MEAN["gue"]) < 3 * math.hypot(err, rmt.R_MEAN_ERROR["gue"]), (r, err)
    assert abs(r - rmt.R_MEAN["goe"]) > 15 * err


def test_ratio_surmise_exact_moments():
    """The 3 x 3 surmise is normalised and has the known means 4 - 2 sqrt 3 (beta 1) and
    2 sqrt 3 / pi - 1/2 (beta 2); beta = 0 is the Poisson law with mean 2 ln 2 - 1."""
    for beta, mean in ((1.0, 4 - 2 * math.sqrt(3)), (2.0, 2 * math.sqrt(3) / math.pi - 0.5),
                       (0.0, 2 * math.log(2) - 1)):
        assert quad(lambda r: rmt.ratio_surmise(r, beta), 0, 1)[0] == pytest.approx(1.0, abs=1e-9)
        assert quad(lambda r: r * rmt.ratio_surmise(r, beta), 0, 1)[0] == pytest.approx(mean, abs=1e-9)


@pytest.mark.parametrize("beta", [1, 2, 4])
def test_wigner_surmise_normalised_mean_one(beta):
    assert quad(lambda s: rmt.wigner_surmise(s, beta), 0, np.inf)[0] == pytest.approx(1.0, abs=1e-9)
    assert quad(lambda s: s * rmt.wigner_surmise(s, beta), 0, np.inf)[0] == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------- Coulomb gas / ensembles
@pytest.mark.parametrize("beta", [1.0, 2.0, 4.0])
def test_beta_ensemble_second_moment(beta):
    """Tridiagonal samples reproduce the exact E sum (x - xbar)^2 = (n-1)(1 + beta n/2); a
    wrong beta is excluded (power)."""
    n = 12
    ev = rmt.gaussian_beta_ensemble(n, beta, 20000, np.random.default_rng(int(10 * beta)))
    m, err = _mean_and_error(np.sum((ev - ev.mean(1, keepdims=True)) ** 2, axis=1))
    assert abs(m - rmt.beta_ensemble_second_moment(n, beta)) < 3 * err
    assert abs(m - rmt.beta_ensemble_second_moment(n, beta + 0.5)) > 10 * err


def test_tridiagonal_goe_equals_dense_goe():
    """Two independent constructions of the beta = 1 Coulomb gas (Dumitriu-Edelman vs dense
    GOE matrices) agree on the second moment and on the finite-n mean spacing ratio."""
    n, rng = 16, np.random.default_rng(21)
    tri = rmt.gaussian_beta_ensemble(n, 1.0, 20000, rng)
    dense = np.linalg.eigvalsh(rmt.goe(n, 20000, rng))
    for stat in (lambda e: np.sum((e - e.mean(1, keepdims=True)) ** 2, 1), rmt.mean_spacing_ratio):
        a, ea = _mean_and_error(stat(tri))
        b, eb = _mean_and_error(stat(dense))
        assert abs(a - b) < 3 * math.hypot(ea, eb), (a, ea, b, eb)


def test_temperature_estimator_unbiased_and_centre_blind():
    """temperature_series recovers T of exact Coulomb-gas samples at any centre and
    curvature; with beta = 2 data it is off by the known factor (power)."""
    rng = np.random.default_rng(31)
    T, kappa, n = 0.003, 4.0, 16
    x = coulomb_gas.sample(n, T, kappa, 20000, rng, centre=0.7)
    est, err = _mean_and_error(coulomb_gas.temperature_series(x, kappa))
    assert abs(est - T) < 3 * err
    wrong = coulomb_gas.sample(n, T, kappa, 20000, rng, beta=2.0)
    est2, err2 = _mean_and_error(coulomb_gas.temperature_series(wrong, kappa))
    factor = rmt.beta_ensemble_second_moment(n, 2.0) / rmt.beta_ensemble_second_moment(n, 1.0)
    assert abs(est2 - factor * T) < 3 * err2 and abs(est2 - T) > 20 * err2


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_fit_dyson_beta(beta):
    """The Dyson index fitted from the mean spacing ratio of beta-ensemble samples of 16
    levels is the one they were drawn with, within errors; the other is excluded."""
    n = 16
    r = rmt.mean_spacing_ratio(rmt.gaussian_beta_ensemble(n, beta, 3000, np.random.default_rng(41)))
    m, err = _mean_and_error(r)
    fit = coulomb_gas.fit_dyson_beta(m, err, n, seed=100)
    assert fit["in_range"]
    assert abs(fit["value"] - beta) < 3 * fit["error"], fit
    assert abs(fit["value"] - (3.0 - beta)) > 5 * fit["error"], fit


def test_unfolded_goe_spacings_follow_wigner_not_poisson():
    ev = np.linalg.eigvalsh(rmt.goe(40, 2000, np.random.default_rng(51)))
    s = rmt.unfold(ev)
    assert s.mean() == pytest.approx(1.0)
    # fraction of small spacings: Wigner 1 - exp(-pi/4 0.3^2) = 0.068, Poisson 0.26
    small = np.mean(s < 0.3)
    assert abs(small - (1 - math.exp(-math.pi / 4 * 0.09))) < 0.02
    assert abs(small - (1 - math.exp(-0.3))) > 0.15


def test_local_unfolding_follows_wigner_for_goe_and_exponential_for_poisson():
    """Each spectrum unfolded on its own (Gaussian-broadened staircase, in ln x for
    positive levels spread over decades): GOE spectra give Wigner-like small-spacing
    suppression, Poisson levels do not, whatever the smooth density (power)."""
    rng = np.random.default_rng(52)
    goe = np.linalg.eigvalsh(rmt.goe(64, 400, rng))
    s = rmt.unfold_local(goe)
    wigner_small, poisson_small = 1 - math.exp(-math.pi / 4 * 0.09), 1 - math.exp(-0.3)
    assert abs(np.mean(s < 0.3) - wigner_small) < 0.03
    # the same GOE levels mapped through exp (a density spread over decades), unfolded in ln x
    s_log = rmt.unfold_local(np.exp(3 * goe / np.sqrt(2 * 64)), log=True)
    assert abs(np.mean(s_log < 0.3) - wigner_small) < 0.03
    poisson = np.sort(rng.exponential(size=(400, 64)) ** 2, axis=-1)  # non-uniform density
    s_p = rmt.unfold_local(poisson, log=True)
    assert abs(np.mean(s_p < 0.3) - poisson_small) < 0.04
    assert abs(np.mean(s_p < 0.3) - wigner_small) > 0.12


# ---------------------------------------------------------------- Marchenko-Pastur
@pytest.mark.parametrize("q", [0.25, 0.5, 1.0])
def test_marchenko_pastur_density_and_cdf(q):
    a, b = rmt.mp_edges(q, 1.7)
    assert quad(lambda x: rmt.mp_density(x, q, 1.7), a, b, limit=200)[0] == pytest.approx(1.0, abs=1e-7)
    mid = 0.5 * (a + b)
    assert float(rmt.mp_cdf(mid, q, 1.7)) == pytest.approx(quad(lambda x: rmt.mp_density(x, q, 1.7), a, mid,
                                                                   limit=200)[0], abs=1e-9)


@pytest.mark.parametrize("n,p", [(256, 64), (200, 100), (128, 128)])
def test_marchenko_pastur_fit_recovers_aspect_ratio(n, p):
    """The fit of the spectrum of W^T W / n of a random Gaussian n x p matrix recovers
    q = p / n and the variance; the error is the scatter over 16 independent matrices, and
    the tolerance adds 2 % for the finite-n bias of a distribution-function fit (measured:
    +1 % at n = 100, +0.3 % at n = 400; the edges fluctuate beyond the n = infinity
    support).  The fitted q of one shape excludes the q of the others (power)."""
    rng = np.random.default_rng(n + p)
    sigma2 = 0.3
    fits = [rmt.fit_marchenko_pastur(rmt.gram_eigenvalues(rng.normal(0, math.sqrt(sigma2), (n, p))), n_long=n)
            for _ in range(16)]
    q, qerr = _mean_and_error(np.array([f["q"] for f in fits]))
    s2, s2err = _mean_and_error(np.array([f["sigma2"] for f in fits]))
    assert abs(q - p / n) < 3 * qerr + 0.02 * p / n, (q, qerr)
    assert abs(s2 - sigma2) < 3 * s2err + 0.02 * sigma2, (s2, s2err)
    for other in {0.25, 0.5, 1.0} - {p / n}:
        assert abs(q - other) > 10 * qerr


def test_marchenko_pastur_moments_fit_exact_finite_n():
    """The method of moments with the exact finite-n term: E[mean x^2] = 1 + q + 1/n."""
    rng = np.random.default_rng(61)
    n, p = 40, 20
    ev = np.array([rmt.gram_eigenvalues(rng.normal(size=(n, p))) for _ in range(4000)])
    m2, err = _mean_and_error(np.mean(ev**2, axis=1))
    assert abs(m2 - (1 + p / n + 1 / n)) < 3 * err
    assert abs(m2 - (1 + p / n)) > 5 * err
