"""Per-algorithm diagnostics from a file's history: HMC acceptance and <exp(-dH)>, SMC weights,
MAALA tail acceptance and step size (see campaign.analysis)."""

from __future__ import annotations

import math

import numpy as np

from ..stats import chain_summary

TAIL_ACCEPT_KEYS = ("tail_acceptance", "tail_accept_prob", "accept_prob", "acceptance", "accepted")

def _per_chain_columns(arr: np.ndarray, skip: int) -> list[np.ndarray]:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    arr = arr.reshape(arr.shape[0], -1)
    if arr.shape[0] > skip:
        arr = arr[skip:]
    cols = [arr[:, j] for j in range(arr.shape[1])]
    return [c[np.isfinite(c)] for c in cols]


def _mean_of(values) -> dict:
    """Plain mean and standard error of diagnostic numbers (not a Monte Carlo estimate)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"value": math.nan, "error": math.nan, "n": 0}
    return {"value": float(x.mean()), "error": float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan, "n": n}


def algorithm_diagnostics(algorithm: str, history: dict, attrs: dict) -> dict:
    """Acceptance, energy-violation and importance-weight diagnostics (module docstring)."""
    diag: dict = {}
    algorithm = str(algorithm).lower()
    if algorithm == "hmc":
        therm = int(attrs.get("therm", 0) or 0)
        for key, name in (("accept_prob", "acceptance"), ("accepted", "acceptance_rate")):
            if key in history and np.size(history[key]):
                diag[name] = chain_summary(_per_chain_columns(history[key], therm))
        if "dH" in history and np.size(history["dH"]):
            dh = np.asarray(history["dH"], dtype=np.float64)
            with np.errstate(over="ignore"):
                diag["exp_minus_dH"] = chain_summary(_per_chain_columns(np.exp(-dh), therm))
            diag["n_trajectories"] = int(dh.shape[0] - therm if dh.shape[0] > therm else dh.shape[0])
        return diag
    if algorithm == "smc":
        for key in ("ess", "ess_per_sample", "tail_step_size", "level_acceptance_min", "log_z"):
            if isinstance(attrs.get(key), (int, float)) and not isinstance(attrs.get(key), bool):
                diag[key] = {"value": float(attrs[key]), "error": math.nan}
        if "batch_resamplings" in history:
            diag["resamplings"] = _mean_of(history["batch_resamplings"])
        if "tail_acceptance" in history and np.size(history["tail_acceptance"]):
            diag["acceptance"] = _mean_of(history["tail_acceptance"])
        return diag
    for key in TAIL_ACCEPT_KEYS:
        if key in history and np.size(history[key]):
            diag["tail_acceptance"] = {**_mean_of(history[key]), "source": f"history/{key}"}
            break
    else:
        for key in ("tail_acceptance", "acceptance"):
            if key in attrs and isinstance(attrs[key], (int, float)) and not isinstance(attrs[key], bool):
                diag["tail_acceptance"] = {"value": float(attrs[key]), "error": math.nan, "source": f"attrs/{key}"}
                break
    for key, value in history.items():
        if "accept" in key and np.size(value):
            diag[f"history_{key}"] = _mean_of(value)
    if "tail_acceptance" in diag:
        diag["acceptance"] = diag["tail_acceptance"]
    if "batch_eps" in history and np.size(history["batch_eps"]):
        diag["tail_step_size"] = _mean_of(history["batch_eps"])
    if "tail_q_changed" in history and np.size(history["tail_q_changed"]):
        diag["tail_q_changed"] = _mean_of(history["tail_q_changed"])
    tp = np.asarray(history.get("tail_plaquette", []), dtype=np.float64)
    if tp.ndim >= 1 and len(tp):
        diag["annealed_plaquette"] = _mean_of(np.atleast_1d(tp[0]))
    return diag
