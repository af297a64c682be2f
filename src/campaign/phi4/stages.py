"""The stages of the phi^4 campaign after the ensembles (docs/conventions-phi4.md,
"Campaign"): measurement of an ensemble or sample file, the campaign table, and the
cumulants through the diffusion.  The workflow scripts only call these.

Measurement: a per-configuration table (chain, index, M, |M|, phi^2, g(t)) and a JSON
summary: Gamma-method summaries of |M|, chi, Binder U, <phi^2>, G(t), kappa_n(M) (n = 2..6),
the file's provenance and the cost per independent sample,
wall time of the production run / n_eff(|M|) with n_eff = N / (2 tau_int(|M|)); for HMC
the thermalisation is taken out pro rata of the trajectories, for the diffusion sampler the
wall time is that of the proposals and the chain (training not included).

Cumulants through the diffusion (arXiv 2410.21212): kappa_n of M and of one site's phi
(a) forward, x_sigma = x_0 + sigma z on the HMC ensemble, at every requested sigma (errors
by the Gamma method over the HMC chains), and (b) backward, along the trained model's
reverse SDE from N(0, sigma_max^2) stopped at each sigma in [sigma_min, sigma_max] (the
data level, sigma = 0, is read at the model's sigma_min), every level from its own
independent trajectories, errors over ``replicas`` groups of them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..cumulants import ORDERS, cumulant_summaries, forward_cumulants
from ..errors import CampaignError
from .observables import magnetisation, measure, summarise

TABLE_OBSERVABLES = ("absM", "chi", "binder", "phi2", "G1", *[f"kappa_{n}" for n in ORDERS])
PULLED = ("absM", "chi", "binder", "G1")


def source_of(attrs: dict) -> str:
    return "hmc" if attrs.get("algorithm") == "hmc" else "dm"


def production_wall_time(attrs: dict) -> float:
    """Seconds of the run that produced the stored configurations."""
    wall = float(attrs.get("wall_time_s", math.nan))
    if attrs.get("algorithm") == "hmc":
        per_chain = attrs["configs_per_chain"] * attrs["sep"]
        return wall * per_chain / (attrs["therm"] + per_chain)
    return wall


def measure_ensemble(ensemble, table_out, summary_out) -> dict:
    """Measure a phi^4 ensemble or sample file; write the per-configuration CSV and the
    summary JSON (module docstring); return the summary."""
    from ..io import read_scalar_ensemble

    ens = read_scalar_ensemble(ensemble)
    phi, attrs = ens["phi"], ens["attrs"]
    n, chains = phi.shape[:2]
    volume = math.prod(phi.shape[2:])
    measured = measure(phi)
    s = summarise(measured, volume)
    cols = {"chain": np.tile(np.arange(chains), n), "index": np.repeat(np.arange(n), chains),
            "M": measured["M"].reshape(-1), "absM": np.abs(measured["M"]).reshape(-1),
            "phi2": measured["phi2"].reshape(-1)}
    cols.update({f"g{t}": measured["G"][:, :, t].reshape(-1) for t in range(measured["G"].shape[2])})
    Path(table_out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(cols).to_csv(table_out, index=False)
    wall = production_wall_time(attrs)
    n_eff = s["absM"]["n_eff"]
    out = {"source": source_of(attrs), "kappa": float(attrs["kappa"]), "lam": float(attrs["lam"]),
           "L": int(attrs["shape"][0]), "volume": volume, "algorithm": attrs["algorithm"],
           "n_configs": int(n * chains), "chains": int(chains),
           "acceptance": _acceptance(ens), "ess_per_proposal": float(attrs.get("ess_per_proposal", math.nan)),
           "wall_time_s": wall, "cost_per_independent_s": wall / n_eff if n_eff > 0 else math.nan,
           "observables": {k: v for k, v in s.items() if not isinstance(v, list)},
           "G": s["G"], "G_connected": s["G_connected"]}
    _write_json(out, summary_out)
    return out


def _write_json(obj, path) -> None:
    from ..io import atomic_path

    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1) + "\n")  # NaN where a summary has none


def _acceptance(ens: dict) -> float:
    acc = ens["history"].get("accepted")
    if ens["attrs"].get("algorithm") == "hmc" and acc is not None:
        therm = int(ens["attrs"]["therm"])
        return float(np.mean(acc[therm:])) if len(acc) > therm else math.nan
    return float(ens["attrs"].get("acceptance", math.nan))


def table_row(summary: dict) -> dict:
    """One row of the campaign table from a measurement summary."""
    obs = {**summary["observables"], "G1": summary["G"][1]}
    row = {k: summary[k] for k in ("source", "kappa", "lam", "L", "n_configs", "acceptance", "ess_per_proposal",
                                   "wall_time_s", "cost_per_independent_s")}
    for name in TABLE_OBSERVABLES:
        row[name], row[f"{name}_err"] = obs[name]["value"], obs[name]["error"]
    a = summary["observables"]["absM"]
    row.update({"tau_absM": a["tau_int"], "tau_absM_err": a["tau_int_error"], "n_eff_absM": a["n_eff"],
                "ess_per_config": a["n_eff"] / summary["n_configs"]})
    return row


def collect(summaries, out) -> pd.DataFrame:
    """The campaign table: one row per (source, kappa, L), sorted, and for every diffusion
    row the pulls (DM - HMC) / sqrt(err_DM^2 + err_HMC^2) against the HMC row of its point."""
    rows = []
    for path in summaries:
        with open(path) as f:
            rows.append(table_row(json.load(f)))
    if not rows:
        raise CampaignError("no phi4 measurement summaries to collect")
    df = pd.DataFrame(rows).sort_values(["source", "L", "kappa"], kind="stable").reset_index(drop=True)
    hmc = df[df.source == "hmc"].set_index(["kappa", "L"])
    for name in PULLED:
        pulls = []
        for _, r in df.iterrows():
            key = (r.kappa, r.L)
            if r.source == "hmc" or key not in hmc.index:
                pulls.append(math.nan)
                continue
            h = hmc.loc[key]
            pulls.append((r[name] - h[name]) / math.hypot(r[f"{name}_err"], h[f"{name}_err"]))
        df[f"pull_{name}"] = pulls
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    return df


# ------------------------------------------------------------ cumulants through the diffusion
def _site(phi: torch.Tensor) -> torch.Tensor:
    return phi.reshape(phi.shape[0], -1)[:, 0].double()


OBSERVABLES = {"M": magnetisation, "phi0": _site}


def _rows(direction: str, sigma: float, observable: str, summaries: dict, volume: int) -> list[dict]:
    weight = 1.0 / volume if observable == "M" else 1.0  # sum_i c_i^2 of the VE law
    return [{"direction": direction, "sigma": sigma, "observable": observable, "n": n, "value": s["value"],
             "error": s["error"], "noise_weight": weight} for n, s in summaries.items()]


def forward_rows(phi: torch.Tensor, sigmas, seed: int, orders=ORDERS) -> list[dict]:
    """Forward-process rows from an ensemble phi (n, chains, *lattice)."""
    volume = math.prod(phi.shape[2:])
    chains = [phi[:, c].double() for c in range(phi.shape[1])]
    rows = []
    for name, fn in OBSERVABLES.items():
        gen = torch.Generator().manual_seed(seed)
        for sigma, summ in zip(sigmas, forward_cumulants(chains, sigmas, fn, gen, orders)):
            rows += _rows("forward", float(sigma), name, summ, volume)
    return rows


def backward_rows(net, shape, sigmas, dsm: dict, reverse_steps: int, n_samples: int, replicas: int,
                  seed: int, orders=ORDERS) -> list[dict]:
    """Backward-process rows: the reverse SDE of ``net`` stopped at each sigma (module docstring)."""
    from .. import flat_diffusion as fd

    lo, hi = dsm["sigma_min"], dsm["sigma_max"]
    volume = math.prod(shape)
    rows = []
    for i, sigma in enumerate(sigmas):
        stop = max(float(sigma), lo)
        if stop > hi:
            continue
        # the same density of steps in ln sigma as the full reverse run
        frac = math.log(hi / stop) / math.log(hi / lo)
        steps = max(1, round(reverse_steps * frac))
        gen = torch.Generator().manual_seed(seed + i)
        if stop >= hi:
            x = hi * torch.randn((n_samples, *shape), generator=gen, dtype=torch.float64)
        else:
            x = fd.sample_reverse(net, shape, steps, n_samples, sigma_min=stop, sigma_max=hi, generator=gen)
        for name, fn in OBSERVABLES.items():
            values = fn(x).numpy()
            summ = cumulant_summaries(np.array_split(values, replicas), orders)
            rows += _rows("backward", float(sigma), name, summ, volume)
    return rows


def cumulant_flow(ensemble, model, out, sigmas, reverse_steps: int, n_samples: int, replicas: int,
                  seed: int) -> pd.DataFrame:
    """Both directions at the ensemble's lattice; writes and returns the rows (CSV):
    direction, sigma, observable (M or phi0), n, value, error, noise_weight."""
    from ..io import read_scalar_ensemble
    from .jobs import load_model

    phi = read_scalar_ensemble(ensemble)["phi"]
    net, blob = load_model(model)
    rows = forward_rows(phi, sigmas, seed)
    with torch.no_grad():
        rows += backward_rows(net, tuple(phi.shape[2:]), sigmas, blob["dsm"], reverse_steps, n_samples,
                              replicas, seed + 1)
    df = pd.DataFrame(rows)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    return df
