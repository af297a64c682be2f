"""Random-matrix reference statistics: level spacings, the spacing ratio, Gaussian
beta-ensembles, the Wigner semicircle and the Marchenko-Pastur law.

Conventions (docs/weights.md):

* Levels are sorted along the last axis; every function works on a batch ``(..., n)``.
* Spacing ratio (Oganesyan-Huse; Atas et al., PRL 110, 084101 (2013)):
  ``r_i = min(s_i, s_{i+1}) / max(s_i, s_{i+1})`` with ``s_i = x_{i+1} - x_i``; it needs no
  unfolding.  Large-n means: Poisson ``2 ln 2 - 1 = 0.38629``, GOE 0.5307(1),
  GUE 0.5996(1), GSE 0.6744(1) (Atas et al.; ``R_MEAN``).
* Gaussian beta-ensemble ("Coulomb gas with a quadratic potential"): joint density
  ``prod_{i<j} |x_i - x_j|^beta exp(-sum_i x_i^2 / 2)``, sampled exactly with the
  Dumitriu-Edelman tridiagonal model; beta = 1 is the GOE with
  ``P(H) ~ exp(-tr H^2 / 2)`` (diagonal variance 1, off-diagonal 1/2).
* Marchenko-Pastur: eigenvalues of ``W^T W / n`` for an ``n x p`` matrix of i.i.d. entries
  of variance ``sigma2``, ``q = p / n <= 1`` (the smaller Gram matrix, so no atom at 0):
  support ``sigma2 (1 -+ sqrt q)^2``, density
  ``sqrt((b - x)(x - a)) / (2 pi q sigma2 x)``.

Nothing here knows of networks or files.
"""

from __future__ import annotations

import math

import numpy as np

# Atas et al. 2013 (large-n numerics; Poisson exact)
R_MEAN = {"poisson": 2.0 * math.log(2.0) - 1.0, "goe": 0.5307, "gue": 0.5996, "gse": 0.6744}
R_MEAN_ERROR = {"poisson": 0.0, "goe": 1e-4, "gue": 1e-4, "gse": 1e-4}


# ------------------------------------------------------------------ spacings
def spacings(levels) -> np.ndarray:
    """Nearest-neighbour spacings of sorted levels, ``(..., n - 1)``."""
    x = np.sort(np.asarray(levels, dtype=np.float64), axis=-1)
    return np.diff(x, axis=-1)


def spacing_ratios(levels) -> np.ndarray:
    """``r_i = min(s_i, s_{i+1}) / max(s_i, s_{i+1})`` in [0, 1], ``(..., n - 2)``; NaN where
    two consecutive spacings vanish (exactly degenerate levels)."""
    s = spacings(levels)
    a, b = s[..., :-1], s[..., 1:]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), np.nan)


def wigner_surmise(s, beta: int = 1) -> np.ndarray:
    """Wigner surmise for unfolded spacings (mean 1): the exact 2 x 2 result."""
    s = np.asarray(s, dtype=np.float64)
    if beta == 1:
        return 0.5 * math.pi * s * np.exp(-0.25 * math.pi * s**2)
    if beta == 2:
        return 32.0 / math.pi**2 * s**2 * np.exp(-4.0 * s**2 / math.pi)
    if beta == 4:
        return 2.0**18 / (3.0**6 * math.pi**3) * s**4 * np.exp(-64.0 * s**2 / (9.0 * math.pi))
    raise ValueError(f"Wigner surmise for beta in (1, 2, 4), got {beta}")


def poisson_spacing(s) -> np.ndarray:
    """Spacing density of uncorrelated levels (mean 1)."""
    return np.exp(-np.asarray(s, dtype=np.float64))


def ratio_surmise(r, beta: float) -> np.ndarray:
    """Density of the spacing ratio in [0, 1] from 3 x 3 matrices (Atas et al.):
    ``P(r) = 2 (r + r^2)^beta / (Z_beta (1 + r + r^2)^(1 + 3 beta / 2))``, normalised
    numerically for any beta > 0; beta = 0 is Poisson, ``2 / (1 + r)^2``."""
    r = np.asarray(r, dtype=np.float64)
    if beta == 0:
        return 2.0 / (1.0 + r) ** 2
    return _ratio_unnormalised(r, beta) / _ratio_norm(float(beta))


def _ratio_unnormalised(r, beta):
    return (r + r * r) ** beta / (1.0 + r + r * r) ** (1.0 + 1.5 * beta)


def _ratio_norm(beta: float) -> float:
    nodes, weights = np.polynomial.legendre.leggauss(200)
    r = 0.5 * (nodes + 1.0)
    return float(0.5 * np.sum(weights * _ratio_unnormalised(r, beta)))


def mean_spacing_ratio(levels, bulk: float = 1.0) -> np.ndarray:
    """Mean of the spacing ratio over each spectrum of a batch ``(..., n)`` -> ``(...)``,
    using the central fraction ``bulk`` of the ratios (1: all)."""
    r = spacing_ratios(levels)
    m = r.shape[-1]
    drop = int(round(0.5 * (1.0 - bulk) * m))
    r = r[..., drop: m - drop] if drop else r
    return np.nanmean(r, axis=-1)


# ------------------------------------------------------------- beta-ensembles
def gaussian_beta_ensemble(n: int, beta: float, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` samples of the n levels of the Gaussian beta-ensemble
    ``prod |x_i - x_j|^beta exp(-sum x^2 / 2)`` (Dumitriu-Edelman tridiagonal model:
    diagonal N(0, 2), off-diagonal chi_{beta k}, k = n-1..1, all over sqrt 2); sorted,
    shape (size, n).  beta = 0 gives independent N(0, 1) levels."""
    if n < 1 or size < 0 or beta < 0:
        raise ValueError(f"need n >= 1, size >= 0, beta >= 0; got {n}, {size}, {beta}")
    diag = rng.normal(0.0, math.sqrt(2.0), size=(size, n))
    if n == 1:
        return np.sort(diag / math.sqrt(2.0), axis=-1)
    dof = beta * np.arange(n - 1, 0, -1, dtype=np.float64)
    off = np.sqrt(rng.chisquare(np.where(dof > 0, dof, 1.0), size=(size, n - 1))) * (dof > 0)
    diag, off = diag / math.sqrt(2.0), off / math.sqrt(2.0)
    if n <= 64:  # small: one batched dense call is fastest
        h = np.zeros((size, n, n))
        idx = np.arange(n)
        h[:, idx, idx] = diag
        h[:, idx[:-1], idx[1:]] = off
        h[:, idx[1:], idx[:-1]] = off
        return np.linalg.eigvalsh(h)
    from scipy.linalg import eigvalsh_tridiagonal

    return np.stack([eigvalsh_tridiagonal(d, e) for d, e in zip(diag, off)]) if size else np.zeros((0, n))


def goe(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Dense GOE matrices with ``P(H) ~ exp(-tr H^2 / 2)``, shape (size, n, n)."""
    a = rng.normal(size=(size, n, n))
    return (a + np.swapaxes(a, -1, -2)) / 2.0


def beta_ensemble_second_moment(n: int, beta: float) -> float:
    """``E sum_i (x_i - xbar)^2`` of the Gaussian beta-ensemble with weight
    ``exp(-sum x^2 / 2)``: ``(n - 1)(1 + beta n / 2)`` (the centre of mass decouples and is
    N(0, 1/n); the rest follows from the virial identity)."""
    return (n - 1) * (1.0 + 0.5 * beta * n)


# ------------------------------------------------------------------ semicircle
def semicircle_density(x, centre: float = 0.0, radius: float = 1.0) -> np.ndarray:
    """Wigner semicircle ``2 sqrt(R^2 - (x - c)^2) / (pi R^2)``."""
    y = np.asarray(x, dtype=np.float64) - centre
    return np.where(np.abs(y) < radius, 2.0 * np.sqrt(np.clip(radius**2 - y**2, 0, None)) / (math.pi * radius**2), 0.0)


# ------------------------------------------------------------ Marchenko-Pastur
def mp_edges(q: float, sigma2: float = 1.0) -> tuple[float, float]:
    return sigma2 * (1.0 - math.sqrt(q)) ** 2, sigma2 * (1.0 + math.sqrt(q)) ** 2


def mp_density(x, q: float, sigma2: float = 1.0) -> np.ndarray:
    """Marchenko-Pastur density (0 < q <= 1), zero outside its support."""
    if not 0 < q <= 1:
        raise ValueError(f"Marchenko-Pastur ratio q must lie in (0, 1], got {q}")
    a, b = mp_edges(q, sigma2)
    x = np.asarray(x, dtype=np.float64)
    inside = (x > a) & (x < b) & (x > 0)
    xs = np.where(inside, x, 0.5 * (a + b))
    return np.where(inside, np.sqrt(np.clip((b - xs) * (xs - a), 0, None)) / (2 * math.pi * q * sigma2 * xs), 0.0)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def mp_cdf(x, q: float, sigma2: float = 1.0) -> np.ndarray:
    """Marchenko-Pastur distribution function.  With ``x = a + (b - a) sin^2 t`` the
    density times dx is smooth in t (also at the hard edge q = 1), so a fixed
    Gauss-Legendre rule in t is accurate to ~1e-12."""
    a, b = mp_edges(q, sigma2)
    shape = np.shape(x)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64)).ravel()
    u = np.clip((x - a) / (b - a), 0.0, 1.0)
    tmax = np.arcsin(np.sqrt(u))  # (m,)
    t = 0.5 * tmax[:, None] * (_GL_NODES[None, :] + 1.0)
    st, ct = np.sin(t), np.cos(t)
    xt = a + (b - a) * st**2
    # (b-a)^2 sin^2 cos^2 * 2 / (2 pi q sigma2 x): x -> a + (b-a) sin^2 removes a factor sin
    # at the hard edge (a = 0), so write it as (b - a) cos^2 / (pi q sigma2) * (b-a) s^2 / x
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(xt > 0, (b - a) * st**2 / np.where(xt > 0, xt, 1.0), 1.0)
    integrand = (b - a) * ct**2 * frac / (math.pi * q * sigma2)
    out = 0.5 * tmax * np.sum(_GL_WEIGHTS[None, :] * integrand, axis=1)
    return np.clip(out, 0.0, 1.0).reshape(shape)


def gram_eigenvalues(w, normalise: bool = True) -> np.ndarray:
    """Squared singular values of ``w`` (``(..., n, p)``): the eigenvalues of the smaller of
    ``w^T w`` and ``w w^T``, sorted, divided by ``max(n, p)`` when ``normalise`` (the
    Marchenko-Pastur scaling)."""
    w = np.asarray(w, dtype=np.float64)
    s = np.linalg.svd(w, compute_uv=False)
    lam = np.sort(s**2, axis=-1)
    return lam / max(w.shape[-2:]) if normalise else lam


def mp_moments_fit(eigenvalues, n_long: int | None = None) -> tuple[float, float]:
    """(q, sigma2) by the method of moments on a batch of spectra ``(..., p)``:
    ``E[mean x] = sigma2`` and ``E[mean x^2] = sigma2^2 (1 + q + 1/n)`` (exact for Gaussian
    entries at finite n; the 1/n term is dropped when ``n_long`` is None)."""
    x = np.asarray(eigenvalues, dtype=np.float64)
    m1 = float(np.mean(x))
    m2 = float(np.mean(x**2))
    q = m2 / m1**2 - 1.0 - (1.0 / n_long if n_long else 0.0)
    return q, m1


def fit_marchenko_pastur(eigenvalues, n_long: int | None = None) -> dict:
    """Least-squares fit of the Marchenko-Pastur distribution function to the empirical one
    of the pooled eigenvalues (a Cramer-von Mises fit: no binning, bounded residuals where
    the density has square-root edges), started from ``mp_moments_fit``.

    Returns ``{"q", "sigma2", "q_moments", "sigma2_moments", "cvm"}`` (cvm: the mean
    squared distance between the distribution functions at the fit)."""
    from scipy.optimize import least_squares

    x = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())
    x = x[np.isfinite(x)]
    if len(x) < 4:
        raise ValueError(f"need at least 4 eigenvalues to fit Marchenko-Pastur, got {len(x)}")
    q0, s0 = mp_moments_fit(x, n_long)
    q0 = min(max(q0, 1e-3), 1.0)
    ecdf = (np.arange(len(x)) + 0.5) / len(x)

    def resid(p):
        q = 1.0 / (1.0 + math.exp(-p[0]))  # (0, 1)
        return mp_cdf(x, q, math.exp(p[1])) - ecdf

    p0 = [math.log(q0 / (1.0 - q0 + 1e-12) + 1e-12), math.log(s0)]
    res = least_squares(resid, p0, method="lm" if len(x) > 2 else "trf")
    q = 1.0 / (1.0 + math.exp(-res.x[0]))
    return {
        "q": float(q), "sigma2": float(math.exp(res.x[1])),
        "q_moments": float(q0), "sigma2_moments": float(s0),
        "cvm": float(np.mean(res.fun**2)),
    }


# ------------------------------------------------------------------- unfolding
def unfold(spectra, bulk: float = 0.8, reference=None, normalise: bool = True) -> np.ndarray:
    """Unfolded nearest-neighbour spacings of a batch of spectra ``(m, n)`` drawn from one
    stationary ensemble.

    Each spectrum is first centred on its own mean (the collective trace mode moves the
    whole spectrum and carries no level correlations); the pooled centred levels of
    ``reference`` (default: the spectra themselves) define the mean staircase ``n F(x)``;
    each level is mapped to ``n F(x_i)``, and the spacings whose midpoints lie in the
    central fraction ``bulk`` of the staircase are returned, flattened, divided by their
    mean when ``normalise``."""
    x = np.sort(np.asarray(spectra, dtype=np.float64), axis=-1)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"unfold needs spectra of shape (m, n >= 3), got {x.shape}")
    ref = x if reference is None else np.sort(np.asarray(reference, dtype=np.float64), axis=-1)
    pooled = np.sort((ref - ref.mean(axis=1, keepdims=True)).ravel())
    n = x.shape[1]
    ranks = (np.arange(len(pooled)) + 0.5) / len(pooled)
    xi = n * np.interp(x - x.mean(axis=1, keepdims=True), pooled, ranks)
    lo, hi = 0.5 * (1 - bulk) * n, n - 0.5 * (1 - bulk) * n
    mid = 0.5 * (xi[:, 1:] + xi[:, :-1])
    s = np.diff(xi, axis=1)[(mid >= lo) & (mid <= hi)]
    return s / np.mean(s) if normalise else s


def unfold_local(spectra, bulk: float = 0.8, log: bool = False, normalise: bool = True) -> np.ndarray:
    """Unfolded spacings for spectra that are not draws from one stationary ensemble (a
    network still learning): each spectrum is unfolded with its own smooth staircase, the
    Gaussian-broadened counting function ``N(y) = sum_j Phi((y - y_j) / h)`` with Silverman's
    bandwidth ``h = 1.06 std(y) n^(-1/5)``, in ``y = ln x`` when ``log`` (spectra spread over
    decades).  Spacings with midpoints in the central fraction ``bulk`` of the levels are
    returned, flattened, divided by their mean when ``normalise``."""
    from scipy.special import ndtr

    x = np.sort(np.asarray(spectra, dtype=np.float64), axis=-1)
    if x.ndim != 2 or x.shape[1] < 3:
        raise ValueError(f"unfold_local needs spectra of shape (m, n >= 3), got {x.shape}")
    if log:
        if np.any(x <= 0):
            raise ValueError("unfold_local(log=True) needs positive levels")
        x = np.log(x)
    n = x.shape[1]
    h = 1.06 * x.std(axis=1, keepdims=True) * n ** (-0.2)
    xi = ndtr((x[:, :, None] - x[:, None, :]) / h[:, :, None]).sum(axis=2)
    lo, hi = 0.5 * (1 - bulk) * n, n - 0.5 * (1 - bulk) * n
    mid = 0.5 * (xi[:, 1:] + xi[:, :-1])
    s = np.diff(xi, axis=1)[(mid >= lo) & (mid <= hi)]
    return s / np.mean(s) if normalise else s
