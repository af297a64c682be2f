"""Statistics of Monte Carlo data: Markov chains, independent draws, weighted samples.

Every summary is a dict with at least ``value, error, tau_int, tau_int_error, n_eff`` and
``reliable`` (bool) with ``note`` (why not, "" when reliable).

Markov chains (``chain_summary``)
---------------------------------
Each chain is one pyerrors replica; ``gamma_method`` (automatic windowing, S = 2) gives a
common tau_int (in units of stored configurations) and the within-chain error.  pyerrors
measures every replica's fluctuations about that replica's own mean, so chains stuck in
different places (e.g. topological sectors) look like small errors: eight chains frozen at
different constant Q give error 0 there.  Chains are therefore also statistics of their
own: the error is the larger of
  * the Gamma-method error, and
  * the between-chain error std(chain means, ddof=1) / sqrt(n_chains)
    (length-weighted means; only for >= 2 chains),
and the summary is marked unreliable (``reliable = False``, ``note`` says why) when
  * a chain has no fluctuation at all (frozen: tau_int cannot be measured), or
  * a chain is shorter than ``MIN_TAU_LENGTHS`` = 50 tau_int, or
  * the between-chain scatter is significantly larger than the within-chain errors allow
    (chi^2 of the chain means, p < ``SCATTER_P``).
pyerrors needs >= 5 entries per replica: shorter chains are concatenated, in chain order,
into one extra replica (chains are mutually independent, so this only drops lags that
would cross a junction); with fewer than 5 configurations in all the plain standard error is
reported with tau_int = NaN and the summary is unreliable.
chi_t = <Q^2>/V is the same analysis of Q^2 / V.

Independent draws (``independent_summary``)
-------------------------------------------
error = std(ddof=1)/sqrt(n), plus ``error_bootstrap`` (1000 resamples, fixed seed),
tau_int = 0.5, n_eff = n.

Weighted samples (``weighted_summary``)
---------------------------------------
Importance-weighted draws (log weights w_i, e.g. from ``campaign.samplers.smc``): the
self-normalised estimator sum_i W_i f_i / sum_i W_i, W = exp(w - max w).  Samples come in
blocks that are independent of each other (one SMC batch each: within a batch, resampling
makes particles share ancestors), so the error is the jackknife over blocks of that ratio,
floored by the blocks' own delta-method errors combined with their weights (a few blocks can
agree by chance; the floor treats resampled particles as independent, so it is a lower bound);
with one block only, the delta-method error over samples, exact only if the samples are
independent (``independent_within_blocks``), otherwise marked unreliable.  ``ess`` is
Kish's effective sample size (sum W)^2 / sum W^2 of the whole set; ``n_eff`` the number of
independent draws that would give the same error, var_W(x) / error^2 (below Kish's ESS when
resampled particles share ancestors; the cost per independent sample uses it).  Blocks carry different total
weights (an SMC batch: its estimate of Z); when fewer than ``MIN_BLOCKS`` blocks carry it
effectively (Kish's count of the block totals), the error is itself too uncertain (a
heavy-tailed spread of the batches' Z, seen when the particles lag behind the path): marked
unreliable.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

MIN_REPLICA = 5  # pyerrors' minimum number of entries per replica
N_BOOT = 1000
S_TAU = 2.0  # Wolff's S parameter for the automatic windowing
MIN_TAU_LENGTHS = 50  # a chain shorter than this many tau_int has not been shown to mix
SCATTER_P = 1e-3  # chain means scattering with a smaller chi^2 p-value: not mixed
MIN_BLOCKS = 5  # fewer independent blocks: the jackknife error is too uncertain to trust


def nan_summary(n: int = 0, note: str = "no data") -> dict:
    nan = math.nan
    return {"value": nan, "error": nan, "tau_int": nan, "tau_int_error": nan,
            "n_eff": 0.0 if n == 0 else nan, "reliable": False, "note": note}


def import_pyerrors():
    with warnings.catch_warnings():  # pyerrors imports the deprecated scipy.odr
        warnings.simplefilter("ignore", DeprecationWarning)
        import pyerrors as pe
    return pe


def gamma_replicas(chains: list[np.ndarray]) -> list[np.ndarray]:
    """Chains long enough for pyerrors stay replicas; short ones are concatenated."""
    chains = [np.asarray(c, dtype=np.float64) for c in chains if len(c)]
    long = [c for c in chains if len(c) >= MIN_REPLICA]
    short = [c for c in chains if len(c) < MIN_REPLICA]
    if short:
        joined = np.concatenate(short)
        if len(joined) >= MIN_REPLICA:
            long.append(joined)
        elif long:
            warnings.warn(f"dropping {len(joined)} configuration(s) of chains shorter than {MIN_REPLICA}")
    return long


def _plain(x: np.ndarray, note: str) -> dict:
    n = len(x)
    if n == 0:
        return nan_summary(0)
    err = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"value": float(np.mean(x)), "error": err, "tau_int": math.nan, "tau_int_error": math.nan,
            "n_eff": math.nan, "reliable": False, "note": note}


def gamma_obs(replicas: list[np.ndarray]):
    """The pyerrors Obs of the replicas (one ensemble), its Gamma method run with S_TAU."""
    pe = import_pyerrors()
    obs = pe.Obs(replicas, [f"ensemble|r{i:04d}" for i in range(len(replicas))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obs.gamma_method(S=S_TAU)
    return obs


def _gamma(replicas: list[np.ndarray]) -> tuple[float, float, float, float]:
    """(value, error, tau_int, tau_int_error) of the Gamma method over the replicas."""
    obs = gamma_obs(replicas)
    name = obs.e_names[0]
    return float(obs.value), float(obs.dvalue), float(obs.e_tauint[name]), float(obs.e_dtauint[name])


def _between_chains(chains: list[np.ndarray], errors: list[float] | None):
    """Length-weighted between-chain standard error and the chi^2 p-value of the chain
    means against their own errors (NaN when it cannot be computed)."""
    from scipy import stats as sstats

    k = len(chains)
    if k < 2:
        return math.nan, math.nan
    means = np.array([c.mean() for c in chains])
    n = np.array([len(c) for c in chains], dtype=float)
    w = n / n.sum()
    mean = float(np.sum(w * means))
    # variance of a weighted mean of k unbiased estimates with scatter s^2 each (scaled by 1/n_i)
    s2 = float(np.sum(n * (means - mean) ** 2) / (k - 1))
    between = math.sqrt(s2 * np.sum(w * w / n)) if s2 > 0 else 0.0
    p = math.nan
    if errors is not None and all(e > 0 and math.isfinite(e) for e in errors):
        chi2 = float(np.sum((means - mean) ** 2 / np.square(errors)))
        p = float(sstats.chi2.sf(chi2, k - 1))
    return between, p


def chain_summary(chains: list[np.ndarray]) -> dict:
    """Summary of one observable measured on several Markov chains (each in Monte Carlo
    order), chains treated as statistics (module docstring).  Extra keys: error_within
    (Gamma method), error_between, n_chains, min_length_over_tau."""
    chains = [np.asarray(c, dtype=np.float64) for c in chains if len(c)]
    reps = gamma_replicas(chains)
    n = int(sum(len(r) for r in reps))
    if not reps:
        return _plain(np.concatenate(chains) if chains else np.zeros(0), "fewer than 5 configurations")
    frozen = [i for i, c in enumerate(chains) if len(c) > 1 and np.ptp(c) == 0]
    if len(frozen) == len(chains):
        value = float(np.mean(np.concatenate(chains)))
        between, _ = _between_chains(chains, None)
        return {"value": value, "error": between if len(chains) > 1 else math.nan, "tau_int": math.inf,
                "tau_int_error": math.nan, "n_eff": float(len(chains)), "reliable": False,
                "note": "every chain frozen (no fluctuation within any chain)", "error_within": 0.0,
                "error_between": between, "n_chains": len(chains), "min_length_over_tau": 0.0}
    value, within, tau, dtau = _gamma(reps)
    # the within-chain error of each chain's mean, from the common tau_int
    var = float(np.mean(np.concatenate([r - r.mean() for r in reps]) ** 2))
    chain_errors = [math.sqrt(2 * tau * var / len(c)) for c in chains] if tau > 0 and var > 0 else None
    between, p = _between_chains(chains, chain_errors)
    shortest = min(len(c) for c in chains)
    length_over_tau = shortest / tau if tau > 0 else math.inf
    notes = []
    if frozen:
        notes.append(f"{len(frozen)} of {len(chains)} chains frozen")
    if length_over_tau < MIN_TAU_LENGTHS:
        notes.append(f"shortest chain is {length_over_tau:.0f} tau_int (< {MIN_TAU_LENGTHS})")
    if math.isfinite(p) and p < SCATTER_P:
        notes.append(f"chain means scatter beyond their errors (p = {p:.1g})")
    error = max(within, between) if math.isfinite(between) else within
    return {
        "value": value, "error": error, "tau_int": tau, "tau_int_error": dtau,
        "n_eff": float(n / (2 * tau)) if tau > 0 else float(n),
        "reliable": not notes, "note": "; ".join(notes),
        "error_within": within, "error_between": between, "n_chains": len(chains),
        "min_length_over_tau": length_over_tau,
    }


def chi_t_summary(q_chains: list[np.ndarray], volume: float) -> dict:
    """chi_t = <Q^2>/V from Markov chains of Q (``chain_summary`` of Q^2 / V)."""
    return chain_summary([np.asarray(q, float) ** 2 / float(volume) for q in q_chains])


def bootstrap_errors(x: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Bootstrap standard errors of the column means of x (n,) or (n, k); one set of
    resamples shared by all columns, drawn in batches to bound memory."""
    x = np.asarray(x, dtype=np.float64)
    squeeze = x.ndim == 1
    x = x.reshape(len(x), -1)
    n, k = x.shape
    if n < 2:
        out = np.full(k, np.nan)
        return out[0] if squeeze else out
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_boot, int(2e7 // max(1, n * k))))
    means = []
    done = 0
    while done < n_boot:
        b = min(batch, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        means.append(x[idx].mean(axis=1))
        done += b
    err = np.concatenate(means).std(axis=0, ddof=1)
    return float(err[0]) if squeeze else err


def independent_summary(x: np.ndarray, bootstrap_error: float | None = None) -> dict:
    """Summary of independent draws: standard error, bootstrap error, tau_int = 0.5."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return {**nan_summary(0), "error_bootstrap": math.nan}
    if bootstrap_error is None:
        bootstrap_error = bootstrap_errors(x)
    return {
        "value": float(x.mean()),
        "error": float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
        "tau_int": 0.5,
        "tau_int_error": 0.0,
        "n_eff": float(n),
        "error_bootstrap": float(bootstrap_error),
        "reliable": n > 1,
        "note": "" if n > 1 else "one sample",
    }


def kish_ess(log_weights: np.ndarray) -> float:
    """Kish's effective sample size (sum W)^2 / sum W^2 of W = exp(log_weights)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.size == 0:
        return 0.0
    w = np.exp(lw - lw.max())
    return float(w.sum() ** 2 / np.sum(w * w))


def weighted_summary(x: np.ndarray, log_weights: np.ndarray, blocks: np.ndarray | None = None,
                     independent_within_blocks: bool = False) -> dict:
    """Self-normalised importance-sampling estimate of the mean of ``x`` (module docstring).
    ``blocks`` labels mutually independent groups of samples (None: one block).  Extra
    keys: ess, n_blocks, error_method."""
    x = np.asarray(x, dtype=np.float64)
    lw = np.asarray(log_weights, dtype=np.float64)
    if x.shape != lw.shape:
        raise ValueError(f"values {x.shape} and log weights {lw.shape} differ in shape")
    n = len(x)
    if n == 0:
        return {**nan_summary(0), "ess": 0.0, "n_blocks": 0, "error_method": "none"}
    if not np.all(np.isfinite(lw)):
        raise ValueError("log weights must be finite")
    W = np.exp(lw - lw.max())
    value = float(np.sum(W * x) / np.sum(W))
    ess = kish_ess(lw)
    labels = np.zeros(n, dtype=np.int64) if blocks is None else np.asarray(blocks)
    uniq, inv = np.unique(labels, return_inverse=True)
    k = len(uniq)
    if k >= 2:
        a = np.bincount(inv, weights=W * x, minlength=k)
        z = np.bincount(inv, weights=W, minlength=k)
        loo = (a.sum() - a) / np.where(z.sum() - z > 0, z.sum() - z, np.nan)
        loo = loo[np.isfinite(loo)]
        m = len(loo)
        error = float(math.sqrt((m - 1) / m * np.sum((loo - loo.mean()) ** 2))) if m >= 2 else math.nan
        method = f"jackknife over {k} independent blocks"
        # With few blocks the jackknife's scatter is itself a small sample: three or four
        # batches can agree by chance while one of them carries most of the weight.  Each
        # block's own delta-method error (particles treated as independent, so a lower
        # bound under resampling), combined with the blocks' weights, is a floor.
        p_in = W / z[inv]
        var_b = np.bincount(inv, weights=p_in * p_in * (x - (a / z)[inv]) ** 2, minlength=k)
        floor = float(math.sqrt(np.sum((z / z.sum()) ** 2 * var_b)))
        if not math.isfinite(error) or floor > error:
            error = floor
            method += " (floored by the blocks' own delta-method errors)"
        # blocks enter with their total weight (an SMC batch: its estimate of Z); when a few
        # blocks carry it all, the jackknife sees too few of them to be trusted
        k_eff = float(z.sum() ** 2 / np.sum(z * z))
        notes = [] if k_eff >= MIN_BLOCKS else [
            f"{k_eff:.1f} effective of {k} independent blocks (< {MIN_BLOCKS}): the error is uncertain"]
    else:
        p = W / W.sum()
        error = float(math.sqrt(np.sum(p * p * (x - value) ** 2))) if n > 1 else math.nan
        method = "delta method over samples"
        notes = [] if independent_within_blocks else ["one block of correlated (resampled) samples"]
    if ess < 10:
        notes.append(f"effective sample size {ess:.1f} < 10")
    # independent draws that would give this error: what the samples are worth for this
    # observable (resampled particles share ancestors, so this is below Kish's ESS)
    var_w = float(np.sum(W * (x - value) ** 2) / np.sum(W))
    n_eff = var_w / error**2 if error and math.isfinite(error) and error > 0 else ess
    return {"value": value, "error": error, "tau_int": math.nan, "tau_int_error": math.nan, "n_eff": n_eff,
            "reliable": not notes, "note": "; ".join(notes), "ess": ess, "n_blocks": int(k),
            "n_blocks_effective": k_eff if k >= 2 else 1.0, "error_method": method}
