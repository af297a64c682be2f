"""CL diagnostics: holomorphic moments <z^n> with errors, the drift-magnitude tail
(boundary-term criterion) and a verdict per parameter set.

Errors: ``campaign.stats.chain_summary`` on Re z^n and Im z^n.  CL runs many short chains;
pyerrors would treat each as a replica of its own (slow for thousands), so chains are
concatenated into ``n_replicas`` series of consecutive chains: the chains are mutually
independent, so a junction only drops the lags that would cross it (as stats does itself for
short chains), and the between-replica scatter still checks the errors.

Boundary-term criterion (Nagata, Nishimura, Shimasaki arXiv 1606.07627): CL is justified
only if the distribution of the drift magnitude u = |K(z)| falls off exponentially or faster.
We measure the survival function S(u) = P(|K| > u) at the quantiles S = 1e-1, 1e-2, 1e-3
(1e-4 when the data reach it) and the log-log slopes d log S / d log u between consecutive
quantiles.  A power-law tail S ~ u^-k has constant slopes; an exponential or Gaussian tail
steepens without bound.  ``tail_steepening`` = (last slope) / (first slope); we call the
tail "faster than any power" when it exceeds ``STEEPENING_MIN`` (a Gaussian drift gives
about 1.7 over these quantiles, a power law 1 up to noise).
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats

STEEPENING_MIN = 1.3  # last/first log-log slope of S(u) above which the tail counts as faster than a power
TAIL_QUANTILES = (1e-1, 1e-2, 1e-3, 1e-4)
MIN_TAIL_COUNT = 30  # a quantile is used only if this many samples lie beyond it
PULL_MAX = 3.0  # |CL - exact| / error above this (in Re or Im): CL disagrees with the exact value


def _replicas(values: np.ndarray, n_replicas: int) -> list[np.ndarray]:
    """values (n_meas, n_chains) -> n_replicas series of whole chains, each in Langevin-time order."""
    n_meas, n_chains = values.shape
    groups = np.array_split(np.arange(n_chains), min(n_replicas, n_chains))
    return [values[:, g].T.reshape(-1) for g in groups if len(g)]


def moment_summary(z: np.ndarray, n: int, n_replicas: int = 16) -> dict:
    """<z^n> of CL samples z (n_meas, n_chains) complex: {"re": summary, "im": summary}."""
    zn = np.asarray(z) ** n
    return {"re": stats.chain_summary(_replicas(zn.real, n_replicas)),
            "im": stats.chain_summary(_replicas(zn.imag, n_replicas))}


def independent_moment_summary(z: np.ndarray, n: int) -> dict:
    """<z^n> of independent samples (e.g. diffusion-model draws)."""
    zn = np.asarray(z).reshape(-1) ** n
    return {"re": stats.independent_summary(zn.real, bootstrap_error=math.nan),
            "im": stats.independent_summary(zn.imag, bootstrap_error=math.nan)}


def compare(summary: dict, exact: complex) -> dict:
    """Pulls (CL - exact)/error of the real and imaginary parts."""
    pulls = {}
    for part, value in (("re", exact.real), ("im", exact.imag)):
        s = summary[part]
        err = s["error"]
        pulls[part] = (s["value"] - value) / err if err > 0 else (0.0 if s["value"] == value else math.inf)
    return {"exact_re": exact.real, "exact_im": exact.imag, "pull_re": pulls["re"], "pull_im": pulls["im"],
            "agrees": bool(abs(pulls["re"]) <= PULL_MAX and abs(pulls["im"]) <= PULL_MAX)}


def drift_tail(drift_abs: np.ndarray) -> dict:
    """Survival-function tail of |K| (module docstring)."""
    u = np.sort(np.asarray(drift_abs, dtype=np.float64).reshape(-1))
    n = len(u)
    qs = [q for q in TAIL_QUANTILES if q * n >= MIN_TAIL_COUNT]
    points = [(q, float(np.quantile(u, 1 - q))) for q in qs]
    slopes = []
    for (q1, u1), (q2, u2) in zip(points, points[1:]):
        slopes.append(math.log(q2 / q1) / math.log(u2 / u1) if u2 > u1 > 0 else -math.inf)
    steep = slopes[-1] / slopes[0] if len(slopes) >= 2 and slopes[0] < 0 else math.nan
    return {"n": n, "quantiles": [q for q, _ in points], "u_at_quantile": [u_ for _, u_ in points],
            "loglog_slopes": slopes, "tail_slope": slopes[-1] if slopes else math.nan,
            "tail_steepening": steep, "determined": bool(math.isfinite(steep)),
            "fast_decay": bool(math.isfinite(steep) and steep >= STEEPENING_MIN)}


def observable_summary(values: np.ndarray, n_replicas: int = 16) -> dict:
    """Mean of a complex observable measured on CL chains, values (n_meas, n_chains)."""
    values = np.asarray(values)
    return {"re": stats.chain_summary(_replicas(values.real, n_replicas)),
            "im": stats.chain_summary(_replicas(values.imag, n_replicas))}


def independent_observable_summary(values: np.ndarray) -> dict:
    values = np.asarray(values).reshape(-1)
    return {"re": stats.independent_summary(values.real, bootstrap_error=math.nan),
            "im": stats.independent_summary(values.imag, bootstrap_error=math.nan)}


def verdict(model, z: np.ndarray, drift_abs: np.ndarray, orders=(2, 4), n_replicas: int = 16) -> dict:
    """Observables vs exact (the moments z^n of ``orders`` for a 0D model, the model's own
    observables for a lattice model), drift tail, and the statement whether CL is correct here."""
    moments = {}
    for key, values in model.observables(z, orders).items():
        s = observable_summary(values, n_replicas)
        moments[key] = {**s, **compare(s, model.exact_observable(key))}
    tail = drift_tail(drift_abs)
    agrees = all(m["agrees"] for m in moments.values())
    if not tail["determined"]:
        n_min = int(math.ceil(MIN_TAIL_COUNT / TAIL_QUANTILES[2]))
        text = (f"drift tail undetermined ({tail['n']} samples, the criterion needs >= {n_min}); moments "
                + ("agree with" if agrees else "disagree with") + " the exact values")
    elif agrees and tail["fast_decay"]:
        text = "CL correct: moments agree with the exact values and the drift distribution decays faster than a power"
    elif not agrees and not tail["fast_decay"]:
        text = ("CL wrong: moments disagree with the exact values, and the drift distribution has a power-law "
                f"tail (log-log slope {tail['tail_slope']:.2f}): boundary terms")
    elif not agrees:
        text = "CL wrong: moments disagree with the exact values although the drift tail looks fast-decaying"
    else:
        text = ("moments agree within errors but the drift tail looks power-law: CL not justified "
                "(boundary terms may be below the statistical error)")
    return {"model": model.params(), "moments": moments, "drift_tail": tail, "correct": bool(agrees and tail["fast_decay"]),
            "statement": text}


def histogram_chi2(z: np.ndarray, cell_probabilities: np.ndarray, x_edges, y_edges,
                   min_expected: float = 5.0, n_blocks: int = 512) -> dict:
    """2D histogram of CL samples z (n_meas, n_chains) against cell probabilities (e.g.
    ``exact.gaussian_cell_probabilities``), with errors that know the autocorrelation.

    Rows of one chain are correlated, chains are independent: the chains are grouped into
    ``n_blocks`` blocks of whole chains, each block's vector of cell fractions f_b is one
    independent draw, and the covariance of their mean is estimated by the scatter over blocks
    (blocks of several chains make f_b close enough to normal for the F distribution below;
    one chain of a few rows gives mostly 0 or 1 counts per cell).  The statistic is Hotelling's
    T^2 = n (f - p)^T S^{-1} (f - p) over the K cells with n * p >= ``min_expected`` counts
    (the rest is left out; the kept fractions do not sum to a constant, so S is regular), and
    (n - K) T^2 / (K (n - 1)) follows F(K, n - K) under the hypothesis.  ``pearson``: the naive
    chi^2 that treats every row as independent (too large for correlated rows), for comparison;
    ``variance_ratio``: the mean over cells of the chain-scatter variance over the independent-
    row variance (about 2 tau_int of the cell indicators)."""
    from scipy import stats as sstats

    z = np.asarray(z)
    n_meas, n_chains = z.shape
    groups = np.array_split(np.arange(n_chains), min(n_blocks, n_chains))
    counts = np.stack([np.histogram2d(z[:, g].real.ravel(), z[:, g].imag.ravel(), bins=[x_edges, y_edges])[0]
                       .reshape(-1) for g in groups])
    sizes = np.array([n_meas * len(g) for g in groups], dtype=np.float64)
    p = np.asarray(cell_probabilities, dtype=np.float64).reshape(-1)
    keep = p * n_meas * n_chains >= min_expected
    k, n = int(keep.sum()), len(groups)
    if n <= k + 1:
        raise ValueError(f"{n} blocks of chains cannot estimate the covariance of {k} cells")
    f = counts[:, keep] / sizes[:, None]
    d = f.mean(0) - p[keep]
    s = np.cov(f, rowvar=False)
    t2 = float(n * d @ np.linalg.solve(s, d))
    f_stat = (n - k) * t2 / (k * (n - 1))
    n_rows = n_meas * n_chains
    obs = np.append(counts.sum(0)[keep], n_rows - counts.sum(0)[keep].sum())
    exp = np.append(n_rows * p[keep], n_rows * (1 - p[keep].sum()))
    pearson = float(np.sum((obs - exp) ** 2 / exp))
    row_var = p[keep] * (1 - p[keep]) / sizes.mean()  # a block's fraction's variance for independent rows
    return {"t2": t2, "cells": k, "blocks": n, "p_value": float(sstats.f.sf(f_stat, k, n - k)),
            "pearson": pearson, "pearson_dof": len(obs) - 1,
            "pearson_p_value": float(sstats.chi2.sf(pearson, len(obs) - 1)),
            "variance_ratio": float(np.mean(np.diag(s) / row_var))}
