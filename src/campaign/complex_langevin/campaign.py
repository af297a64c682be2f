"""The ``complex_langevin`` section of a campaign config (workflow/rules/complex_langevin.smk,
schema block ``complex_langevin`` in workflow/schemas/config.schema.yaml).

    complex_langevin:
      seeds: [1]
      cl: {n_chains: ..., n_meas: ..., ...}        # CLSettings fields (seed: from the wildcards)
      dm: {n_samples: ..., hidden: ..., steps: ..., sample_steps: ..., sigma_min: ...}
      models:
        gaussian: {sigma: ["1+1j"]}
        quartic: {sigma: ["1+1j"], lam: [1]}
        log-gaussian: {p: [4], alpha: [1, 8]}
        bose-gas: {n_t: [4], m: [1], lam: [1], mu: [0.5, 1.0]}

Every model runs at every point of the product of its parameter lists (the "grid"); a point
is named by its model and values (``point_label``), which is the ``clpoint`` wildcard.
Everything here is a pure function of the config (no files, no physics).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..errors import CampaignError
from .diffusion import CLDiffusionSettings  # noqa: F401  (re-exported for the workflow)
from .langevin import CLSettings
from .models import make_model

# the DM trained in the workflow: fewer steps than the library default (a CPU-minute budget
# for the whole section); one Adam stage split 1/2 : 1/3 : 1/6 over the decaying rates
DM_RATES = (3e-3, 1e-3, 3e-4)
DM_FRACTIONS = (1 / 2, 1 / 3, 1 / 6)


@dataclass(frozen=True)
class Point:
    label: str
    model: str
    params: tuple  # ((name, value), ...) in the config's order


def _value_text(v) -> str:
    if isinstance(v, complex) or (isinstance(v, str) and "j" in v):
        z = complex(v)
        return f"{z.real:g}{z.imag:+g}i"
    return f"{float(v):g}"


def point_label(model: str, params: dict) -> str:
    """'bose-gas_n_t4_m1_lam1_mu0.5' style name of a grid point (file names, wildcards)."""
    return "_".join([model, *(f"{k}{_value_text(v)}" for k, v in params.items())])


def points(cfg: dict) -> list[Point]:
    """The grid points of the section, in config order; [] without the section."""
    section = cfg.get("complex_langevin") or {}
    out = []
    for model, grid in (section.get("models") or {}).items():
        names = list(grid)
        for values in itertools.product(*(grid[n] for n in names)):
            params = dict(zip(names, values))
            out.append(Point(point_label(model, params), model, tuple(params.items())))
    return out


def find_point(cfg: dict, label: str) -> Point:
    for p in points(cfg):
        if p.label == label:
            return p
    raise CampaignError(f"no complex Langevin point {label!r} in the config")


def model_for(cfg: dict, label: str):
    p = find_point(cfg, label)
    return make_model(p.model, **dict(p.params))


def cl_settings(cfg: dict, seed: int) -> CLSettings:
    return CLSettings(**{**cfg["complex_langevin"].get("cl", {}), "seed": int(seed)})


def dm_settings(cfg: dict) -> CLDiffusionSettings:
    dm = dict(cfg["complex_langevin"].get("dm", {}))
    dm.pop("n_samples", None)
    steps = dm.pop("steps", None)
    if steps is not None:
        dm["lr_stages"] = tuple((lr, max(1, round(f * steps))) for lr, f in zip(DM_RATES, DM_FRACTIONS))
    return CLDiffusionSettings(**dm)


def dm_samples(cfg: dict) -> int:
    return int(cfg["complex_langevin"].get("dm", {}).get("n_samples", 10_000))


def semantic_errors(cfg: dict) -> list[str]:
    """One line per point whose parameters a model refuses, and for bad CL/DM settings."""
    if not cfg.get("complex_langevin"):
        return []
    errors = []
    for p in points(cfg):
        try:
            make_model(p.model, **dict(p.params))
        except CampaignError as exc:
            errors.append(f"complex_langevin.models.{p.model} ({p.label}): {exc}")
    for what, check in (("cl", lambda: cl_settings(cfg, 0)), ("dm", lambda: dm_settings(cfg))):
        try:
            check()
        except CampaignError as exc:
            errors.append(f"complex_langevin.{what}: {exc}")
    labels = [p.label for p in points(cfg)]
    if len(set(labels)) != len(labels):
        errors.append("complex_langevin.models: two grid points have the same name (repeated values)")
    return errors
