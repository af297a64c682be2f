"""phi^4 observables (docs/conventions-phi4.md).

Per configuration, for a batch phi of shape (B, *lattice), V sites:
  M = (1/V) sum_x phi_x (magnetisation), phi2 = (1/V) sum_x phi_x^2,
  g(t) = (1/V) sum_tau S(tau) S(tau + t), S(tau) = sum of phi over the time slice tau
         (time = the last lattice axis), so <g(t)> = G(t) = sum_x <phi_(0,0) phi_(x,t)>,
         the zero-momentum two-point function, not connected (<phi> = 0 on a finite lattice).
Ensemble level (Gamma-method errors, ``campaign.cumulants.derived_summaries``):
  <M>, <|M|>, <M^2>, <phi^2>, chi = V (<M^2> - <|M|>^2), chi_full = V <M^2>,
  Binder U = 1 - <M^4> / (3 <M^2>^2), kappa_n(M) for n = 2..6, G(t) and its connected
  part G(t) - (V / L_t) <M>^2 (different only where the chains do not sample both vacua).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..cumulants import ORDERS, cumulant_summaries, derived_summaries
from ..stats import chain_summary


def magnetisation(phi: torch.Tensor) -> torch.Tensor:
    """(B,) float64 site average of each configuration of phi (B, *lattice)."""
    return phi.reshape(phi.shape[0], -1).mean(1, dtype=torch.float64)


def phi2(phi: torch.Tensor) -> torch.Tensor:
    return (phi * phi).reshape(phi.shape[0], -1).mean(1, dtype=torch.float64)


def zero_momentum_correlator(phi: torch.Tensor) -> torch.Tensor:
    """(B, L_t) estimator g(t), t = 0..L_t-1, of G(t) (module docstring); needs >= 1 lattice axis."""
    if phi.ndim < 2:
        raise ValueError("G(t) needs a lattice of dimension >= 1")
    L_t = phi.shape[-1]
    volume = math.prod(phi.shape[1:])
    slices = phi.reshape(phi.shape[0], -1, L_t).sum(1, dtype=torch.float64)  # S(tau)
    f = torch.fft.rfft(slices, dim=-1)
    # circular autocorrelation sum_tau S(tau) S(tau + t) = ifft(|fft S|^2)
    return torch.fft.irfft(f.abs() ** 2, n=L_t, dim=-1) / volume


def two_point_function(phi: torch.Tensor) -> torch.Tensor:
    """(B, *lattice) estimator (1/V) sum_y phi_y phi_{y+x} of the propagator
    <phi_0 phi_x> at every displacement x (translation average, by FFT)."""
    dims = tuple(range(1, phi.ndim))
    f = torch.fft.fftn(phi.to(torch.float64), dim=dims)
    return torch.fft.ifftn(f.abs() ** 2, dim=dims).real / math.prod(phi.shape[1:])


def measure(phi: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-configuration observables of an ensemble phi (n_configs, chains, *lattice):
    {"M": (n, chains), "phi2": (n, chains), "G": (n, chains, L_t) if d >= 1}."""
    n, chains = phi.shape[:2]
    flat = phi.reshape(n * chains, *phi.shape[2:])
    out = {"M": magnetisation(flat).reshape(n, chains).numpy(),
           "phi2": phi2(flat).reshape(n, chains).numpy()}
    if phi.ndim > 2:
        out["G"] = zero_momentum_correlator(flat).reshape(n, chains, -1).numpy()
    return out


def _chains(a: np.ndarray) -> list[np.ndarray]:
    """(n, chains) -> one array per chain, Monte Carlo order."""
    return [a[:, c] for c in range(a.shape[1])]


def summarise(measured: dict[str, np.ndarray], volume: int, orders=ORDERS) -> dict:
    """Gamma-method summaries of every ensemble observable from ``measure``'s output."""
    M = measured["M"]
    out = {"M": chain_summary(_chains(M)), "absM": chain_summary(_chains(np.abs(M))),
           "M2": chain_summary(_chains(M**2)), "phi2": chain_summary(_chains(measured["phi2"]))}

    def fn(o):
        m2 = o["M2"]
        return {"chi": volume * (m2 - o["absM"] ** 2), "chi_full": volume * m2,
                "binder": 1.0 - o["M4"] / (3.0 * m2 * m2)}

    out.update(derived_summaries({"M2": _chains(M**2), "absM": _chains(np.abs(M)), "M4": _chains(M**4)}, fn))
    out.update({f"kappa_{n}": s for n, s in cumulant_summaries(_chains(M), orders).items()})
    if "G" in measured:
        L_t = measured["G"].shape[2]
        g = {f"G{t}": _chains(measured["G"][:, :, t]) for t in range(L_t)}
        out["G"] = [chain_summary(g[f"G{t}"]) for t in range(L_t)]
        # connected: minus sum_x <phi><phi> = (V / L_t) <M>^2, for broken-phase chains that
        # do not tunnel (then <M> != 0 within the ensemble)
        connected = derived_summaries({**g, "M": _chains(M)},
                                      lambda o: {t: o[f"G{t}"] - (volume / L_t) * o["M"] ** 2 for t in range(L_t)})
        out["G_connected"] = [connected[t] for t in range(L_t)]
    return out


def pull(summary: dict, exact: float) -> float:
    """(measured - exact) / error."""
    return (summary["value"] - exact) / summary["error"]
