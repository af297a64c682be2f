"""The ``phi4`` section of a campaign config (docs/conventions-phi4.md, "Campaign"): its
semantic checks and the points the phi^4 stages run at.  Uses no torch itself (the
package's __init__ imports it, as does the workflow's device check on a local run).

Section (schema: workflow/schemas/config.schema.yaml, ``$defs/phi4``)::

    phi4:
      lam: 0.02                   # one quartic coupling
      kappa: [0.22, 0.26, 0.30]   # HMC grid kappa x L (symmetric, near-critical, broken)
      L: [6, 8]
      hmc: {configs_per_chain: 250, chains: 4, ...}       # campaign.phi4.hmc.Phi4HMCSettings
      model: {L0: 6, steps: 200, ...}                      # DSMSettings + Phi4NetSettings
      sample: {kappa: [...], L: [6], configs_per_chain: 32, ...}   # Phi4SampleSettings
      cumulants: {kappa: null, L: null, sigmas: [...], reverse_steps: 100, n_samples: 512}

One diffusion model per sampled kappa, trained on the HMC ensemble at (kappa, model.L0);
it drives the independence-Metropolis sampler at (kappa, L) for every L of ``sample.L``.
The cumulant stage runs at (cumulants.kappa, cumulants.L) (default: the middle sampled
kappa and L0), forward on that HMC ensemble and backward along that kappa's model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import format_beta, key_path

MODEL_KEYS = ("L0",)  # the model section's keys that are not DSM or network settings
DSM_KEYS = ("steps", "batch_size", "lr", "sigma_min", "sigma_max", "checkpoint_every")
NET_KEYS = ("channels", "layers", "kernel_size", "c")
SAMPLE_GRID = ("kappa", "L")
MAX_FLOW_VOLUME = 1024  # the flow density's full V x V Jacobian (campaign.phi4.jobs)
# campaign.phi4.figures.FIGURES (named here: the workflow reads them without matplotlib)
FIGURES = ("phi4_histograms", "phi4_binder_chi", "phi4_correlator", "phi4_autocorrelation", "phi4_cumulants")


@dataclass(frozen=True)
class Phi4Point:
    kappa: float
    L: int

    @property
    def k(self) -> str:
        return format_beta(self.kappa)


def section(cfg: dict) -> dict | None:
    return cfg.get("phi4")


def semantic_errors(cfg: dict) -> list[str]:
    """Checks the schema cannot express; normalises the section in place (kappa as float,
    L as int, the sample and cumulant defaults resolved)."""
    p = section(cfg)
    if p is None:
        return []
    errors = []
    p["kappa"] = [float(k) + 0.0 for k in p["kappa"]]
    p["L"] = [int(x) for x in p["L"]]
    m, s, c = p["model"], p["sample"], p["cumulants"]
    if m["L0"] not in p["L"]:
        errors.append(f"{key_path(['phi4', 'model', 'L0'])}: {m['L0']} is not on the HMC grid "
                      f"{key_path(['phi4', 'L'])} = {p['L']} (the model trains on that ensemble)")
    if m["sigma_min"] >= m["sigma_max"]:
        errors.append(f"{key_path(['phi4', 'model', 'sigma_min'])}: must be smaller than sigma_max "
                      f"({m['sigma_min']} >= {m['sigma_max']})")
    s["kappa"] = [float(k) + 0.0 for k in s.get("kappa", p["kappa"])]
    s["L"] = [int(x) for x in s.get("L", [m["L0"]])]
    for name, grid in (("kappa", p["kappa"]), ("L", p["L"])):
        for i, v in enumerate(s[name]):
            if v not in grid:
                errors.append(f"{key_path(['phi4', 'sample', name, i])}: {v:g} is not on the HMC grid "
                              f"{key_path(['phi4', name])} (the samples are compared with HMC there)")
    for i, L in enumerate(s["L"]):
        if L * L > MAX_FLOW_VOLUME:
            errors.append(f"{key_path(['phi4', 'sample', 'L', i])}: V = {L * L} sites is beyond the exact flow "
                          f"density's reach (V <= {MAX_FLOW_VOLUME})")
    if s["kappa"]:
        c["kappa"] = float(c["kappa"] if c["kappa"] is not None else s["kappa"][len(s["kappa"]) // 2]) + 0.0
        c["L"] = int(c["L"] if c["L"] is not None else m["L0"])
        if c["kappa"] not in s["kappa"]:
            errors.append(f"{key_path(['phi4', 'cumulants', 'kappa'])}: {c['kappa']:g} has no model "
                          f"(not in {key_path(['phi4', 'sample', 'kappa'])})")
        if c["L"] not in p["L"]:
            errors.append(f"{key_path(['phi4', 'cumulants', 'L'])}: {c['L']} is not on the HMC grid {p['L']}")
    return errors


def hmc_points(cfg: dict) -> list[Phi4Point]:
    p = section(cfg)
    return [Phi4Point(k, L) for k in p["kappa"] for L in p["L"]] if p else []


def sample_points(cfg: dict) -> list[Phi4Point]:
    p = section(cfg)
    return [Phi4Point(k, L) for k in p["sample"]["kappa"] for L in p["sample"]["L"]] if p else []


def model_kappas(cfg: dict) -> list[float]:
    p = section(cfg)
    return list(p["sample"]["kappa"]) if p else []


def cumulant_point(cfg: dict) -> Phi4Point | None:
    p = section(cfg)
    if not p or not p["sample"]["kappa"]:
        return None
    return Phi4Point(p["cumulants"]["kappa"], p["cumulants"]["L"])


def hmc_settings(cfg: dict, kappa, L) -> dict:
    """Keyword arguments of ``Phi4HMCSettings`` at one grid point."""
    return {"kappa": float(kappa), "lam": section(cfg)["lam"], "shape": [int(L), int(L)],
            **section(cfg)["hmc"]}


def dsm_settings(cfg: dict) -> dict:
    m = section(cfg)["model"]
    return {k: m[k] for k in DSM_KEYS}


def net_settings(cfg: dict) -> dict:
    m = section(cfg)["model"]
    return {k: m[k] for k in NET_KEYS}


def sample_settings(cfg: dict, kappa, L) -> dict:
    """Keyword arguments of ``Phi4SampleSettings`` at one target (seed added by the rule)."""
    s = section(cfg)["sample"]
    return {"kappa": float(kappa), "lam": section(cfg)["lam"], "shape": [int(L), int(L)],
            **{k: v for k, v in s.items() if k not in SAMPLE_GRID}}


def summary(cfg: dict) -> str:
    p = section(cfg)
    if not p:
        return ""
    kap = [format_beta(k) for k in p["kappa"]]
    return "\n".join([
        f"phi4: lambda {p['lam']:g}, hmc kappa {kap} x L {p['L']} ({p['hmc']['configs_per_chain']} x "
        f"{p['hmc']['chains']} configs each)",
        f"  models at kappa {[format_beta(k) for k in p['sample']['kappa']]}, L0 = {p['model']['L0']}, "
        f"{p['model']['steps']} steps; diffusion-driven Metropolis at L {p['sample']['L']}",
    ])
