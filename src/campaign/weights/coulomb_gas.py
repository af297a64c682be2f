"""The Coulomb gas of weight-matrix eigenvalues: Dyson Brownian motion and its stationary
state, and the effective temperature fitted from stationary spectra.

Dyson Brownian motion (DBM) in learning time ``t = lr * step``: a symmetric matrix whose
noise is GOE-like (off-diagonal variance ``T dt`` in its eigenbasis, diagonal ``2 T dt``)
has eigenvalues that obey

    dx_i = [-V'(x_i) + beta T sum_{j != i} 1 / (x_i - x_j)] dt + sqrt(2 T) dB_i,

with ``beta = 1`` (real symmetric) and V the drift potential.  Its stationary density is
the Coulomb gas

    P(x) ~ prod_{i<j} |x_i - x_j|^beta exp(-sum_i V(x_i) / T),

so T is at once the noise strength and the strength of the eigenvalue repulsion.  SGD
noise from mini-batches of size B at learning rate lr has ``T = g lr / B`` with a
model-dependent constant g (linear scaling rule; docs/weights.md).

Near a stationary point ``V(x) = kappa (x - c)^2 / 2`` the gas is the Gaussian
beta-ensemble scaled by ``sqrt(T / kappa)``; its centre of mass decouples, and

    E sum_i (x_i - xbar)^2 = (T / kappa) (n - 1) (1 + beta n / 2)

exactly at finite n.  ``temperature_series`` inverts this per spectrum (an unbiased
estimator of T that is blind to the position of the centre, which SGD shifts at order T),
so the mean of the series over a stationary window, with a Gamma-method error, is the
fitted temperature.  The fitted beta comes separately from the spacing ratio
(``fit_dyson_beta``): spacing statistics do not depend on T.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import rmt


def temperature_series(spectra, curvature: float, beta: float = 1.0) -> np.ndarray:
    """Per-spectrum unbiased estimate of the Coulomb-gas temperature, for spectra ``(m, n)``
    of a gas with potential ``curvature * (x - c)^2 / 2`` (any centre c)."""
    x = np.asarray(spectra, dtype=np.float64)
    n = x.shape[-1]
    if n < 2:
        raise ValueError("the Coulomb-gas temperature needs at least 2 eigenvalues per spectrum")
    ss = np.sum((x - x.mean(axis=-1, keepdims=True)) ** 2, axis=-1)
    return curvature * ss / rmt.beta_ensemble_second_moment(n, beta)


def semicircle_radius(n: int, temperature: float, curvature: float, beta: float = 1.0) -> float:
    """Large-n radius of the stationary density, ``sqrt(2 beta n T / kappa)``."""
    return math.sqrt(2.0 * beta * n * temperature / curvature)


def sample(n: int, temperature: float, curvature: float, size: int, rng: np.random.Generator,
           beta: float = 1.0, centre: float = 0.0) -> np.ndarray:
    """Exact samples of the stationary Coulomb gas with a quadratic potential, (size, n)."""
    return centre + math.sqrt(temperature / curvature) * rmt.gaussian_beta_ensemble(n, beta, size, rng)


@functools.lru_cache(maxsize=256)
def ratio_reference(n: int, beta: float, size: int = 4000, seed: int = 0, bulk: float = 1.0) -> tuple[float, float]:
    """Mean spacing ratio (and its standard error) of the Gaussian beta-ensemble of n levels,
    by exact sampling: the finite-n reference a measured <r> is compared with (the large-n
    values of ``rmt.R_MEAN`` differ from it at n of order 10)."""
    r = rmt.mean_spacing_ratio(rmt.gaussian_beta_ensemble(n, beta, size, np.random.default_rng(seed)), bulk)
    return float(np.mean(r)), float(np.std(r, ddof=1) / math.sqrt(size))


def fit_dyson_beta(r_mean: float, r_error: float, n: int, bulk: float = 1.0,
                   betas=(0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0),
                   size: int | None = None, seed: int = 0) -> dict:
    """The Dyson index whose Gaussian beta-ensemble of n levels has the measured mean
    spacing ratio: <r>(beta) is computed by exact sampling on a grid of beta and inverted
    by linear interpolation (it increases with beta).  The error propagates ``r_error`` and
    the sampling error of the reference curve through the local slope.

    The reference curve is shared by every fit at this n, so its sampling error is common
    to all of them; ``size`` (default ``200000 / n`` spectra, about 2e5 ratios per beta:
    an error of ~0.0006 in <r>, ~0.01 in beta) keeps it below a point's own error.

    Returns ``{"value", "error", "in_range"}``; outside the grid the value is clipped to
    its end and ``in_range`` is False."""
    betas = np.asarray(betas, dtype=np.float64)
    size = max(2000, 200000 // int(n)) if size is None else int(size)
    ref = np.array([ratio_reference(int(n), float(b), int(size), int(seed) + i, float(bulk)) for i, b in enumerate(betas)])
    curve, curve_err = ref[:, 0], ref[:, 1]
    if not np.all(np.diff(curve) > 0):  # sampling noise on a too fine grid
        curve = np.maximum.accumulate(curve)
    in_range = bool(curve[0] <= r_mean <= curve[-1])
    k = int(np.clip(np.searchsorted(curve, r_mean) - 1, 0, len(betas) - 2))
    slope = (curve[k + 1] - curve[k]) / (betas[k + 1] - betas[k])
    value = float(np.clip(betas[k] + (r_mean - curve[k]) / slope, betas[0], betas[-1]))
    err = math.hypot(r_error, 0.5 * (curve_err[k] + curve_err[k + 1])) / slope
    return {"value": value, "error": float(err), "in_range": in_range}
