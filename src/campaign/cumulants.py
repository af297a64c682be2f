"""Connected cumulants kappa_n from Monte Carlo data, with Gamma-method errors, and the
cumulant law of a variance-exploding (VE) forward process (arXiv 2410.21212).

Cumulants from raw moments m_k = <x^k> (m_0 = 1), for n >= 1:

    kappa_n = m_n - sum_{j=1}^{n-1} C(n-1, j-1) kappa_j m_{n-j}.

The moments are taken of x - c with c the sample mean (a fixed number, not a statistic):
kappa_n for n >= 2 do not depend on a constant shift, and the recursion then does not
cancel large powers of the mean against each other.

Errors: every cumulant is a function of the moments, so it goes through pyerrors'
derived-observable Gamma method (the same machinery and S parameter as
``campaign.stats.chain_summary``), which propagates the correlated fluctuations of all
moments and measures the cumulant's own tau_int.  Each Markov chain is one replica; the
summary is marked unreliable when any primary moment's ``chain_summary`` is (frozen or
short chains, chain means scattering beyond their errors).

VE forward process: x_sigma = x_0 + sigma z with z standard normal per component,
independent of x_0.  Cumulants of independent variables add, and a Gaussian has no
cumulant beyond the second, so for any linear observable A = sum_i c_i x_i

    kappa_n(A; sigma) = kappa_n(A; 0) + delta_{n2} sigma^2 sum_i c_i^2,

every n >= 3 is conserved.  A process with drift (variance preserving:
x = sqrt(1 - b) x_0 + sqrt(b) z) instead scales kappa_n by (1 - b)^(n/2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch

from . import stats

ORDERS = tuple(range(2, 7))  # the connected cumulants of M the phi^4 campaign reports


def cumulants_from_moments(moments: Sequence) -> list:
    """[kappa_0 = 0, kappa_1, ..., kappa_N] from raw moments [m_0 = 1, m_1, ..., m_N]
    (numbers, arrays or pyerrors Obs: only + - * are used)."""
    kappa = [0.0] * len(moments)
    for n in range(1, len(moments)):
        k = moments[n]
        for j in range(1, n):
            k = k - math.comb(n - 1, j - 1) * kappa[j] * moments[n - j]
        kappa[n] = k
    return kappa


def _obs(chains: list[np.ndarray]):
    pe = stats.import_pyerrors()
    reps = stats.gamma_replicas(chains)
    return pe.Obs(reps, [f"ensemble|r{i:04d}" for i in range(len(reps))])


def _summary_of(obs, note: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        obs.gamma_method(S=stats.S_TAU)
    name = obs.e_names[0]
    tau = float(obs.e_tauint[name])
    n = int(sum(obs.shape.values()))
    return {"value": float(obs.value), "error": float(obs.dvalue), "tau_int": tau,
            "tau_int_error": float(obs.e_dtauint[name]),
            "n_eff": float(n / (2 * tau)) if tau > 0 else float(n),
            "reliable": not note, "note": note}


def derived_summaries(primaries: dict[str, list[np.ndarray]], fn: Callable[[dict], dict]) -> dict:
    """Gamma-method summaries of functions of means.  ``primaries`` maps a name to its
    Markov chains (one array per chain, Monte Carlo order, the same lengths for every
    name); ``fn`` maps {name: Obs} to {output: Obs}.  Each output is a ``stats`` summary
    dict (value, error, tau_int, tau_int_error, n_eff, reliable, note)."""
    first = next(iter(primaries.values()))
    chains = [np.asarray(c, dtype=np.float64) for c in first]
    if sum(len(c) for c in chains) < stats.MIN_REPLICA:
        return {k: stats.nan_summary(sum(len(c) for c in chains), "fewer than 5 configurations")
                for k in fn({name: 1.0 for name in primaries})}
    notes = []
    for name, ch in primaries.items():
        s = stats.chain_summary(ch)
        if not s["reliable"]:
            notes.append(f"{name}: {s['note']}")
    note = "; ".join(notes)
    obs = {name: _obs(ch) for name, ch in primaries.items()}
    return {k: _summary_of(v, note) for k, v in fn(obs).items()}


def cumulant_summaries(chains: list[np.ndarray], orders: Sequence[int] = ORDERS) -> dict[int, dict]:
    """{n: summary of kappa_n} of a scalar observable measured on Markov chains (or one
    array of independent draws, as a single chain)."""
    chains = [np.asarray(c, dtype=np.float64) for c in chains]
    center = float(np.mean(np.concatenate(chains)))
    n_max = max(orders)
    primaries = {f"m{k}": [(c - center) ** k for c in chains] for k in range(1, n_max + 1)}

    def fn(obs):
        kappa = cumulants_from_moments([1.0] + [obs[f"m{k}"] for k in range(1, n_max + 1)])
        return {n: (kappa[n] + center if n == 1 else kappa[n]) for n in orders}

    return derived_summaries(primaries, fn)


# --------------------------------------------------------------- VE forward process
def ve_forward(x0: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x_sigma = x_0 + sigma z, z standard normal per component (no drift)."""
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    return x0 + sigma * z


def ve_cumulant_law(kappa0: dict[int, float], sigma: float, noise_weight: float = 1.0) -> dict[int, float]:
    """kappa_n(sigma) of a linear observable A = sum_i c_i x_i under the VE process:
    kappa_2 grows by sigma^2 * noise_weight (noise_weight = sum_i c_i^2: 1 for one
    component, 1/V for the magnetisation of V sites), every other order is conserved."""
    return {n: k + (sigma**2 * noise_weight if n == 2 else 0.0) for n, k in kappa0.items()}


def forward_cumulants(x0_chains: list[torch.Tensor], sigmas: Sequence[float],
                      observable: Callable[[torch.Tensor], torch.Tensor], generator: torch.Generator,
                      orders: Sequence[int] = ORDERS) -> list[dict[int, dict]]:
    """Cumulant summaries of ``observable`` (a batch of configurations -> one number
    each) along the VE forward process: for each sigma, every configuration of every
    chain gets its own fresh noise.  Noise is independent between configurations, so it
    adds no autocorrelation; the chains' Monte Carlo order is kept for the Gamma method."""
    out = []
    for sigma in sigmas:
        obs = [observable(ve_forward(x, float(sigma), generator)).double().cpu().numpy() for x in x0_chains]
        out.append(cumulant_summaries(obs, orders))
    return out
