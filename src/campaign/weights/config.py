"""The ``weights`` section of a campaign config: its semantic checks and the points the
weights stages run at.  Imports no torch (the Snakefile validates every config).

Section (schema: workflow/schemas/config.schema.yaml, ``$defs/weights``)::

    weights:
      seeds: [1, 2]               # one run per (model, lr, batch size, seed)
      stationary_fraction: 0.5    # last fraction of each run analysed as stationary
      n_blocks: 8                 # blocks for histogram errors
      models:
        teacher_student:          # any of teacher_student, rbm, nanogpt
          lr: [0.02, 0.04]        # grid lr x batch_size
          batch_size: [8, 16]
          steps: 4000             # + log_every, optimizer
          n: 16                   # + the model's settings (campaign.weights.<model>)

Training keys (``TRAIN_KEYS``) go to ``campaign.weights.training.train_run``; every other
key except the grid is a setting of the model's constructor (a test keeps the schema's
defaults equal to the constructors').
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import format_beta, key_path

MODELS = ("teacher_student", "rbm", "nanogpt")
GRID_KEYS = ("lr", "batch_size")
TRAIN_KEYS = ("steps", "log_every", "optimizer")
MIN_WINDOW_SNAPSHOTS = 10
FIGURES = {
    "temperature_collapse": ("teacher_student", "rbm"),
    "stationary_density": ("teacher_student", "rbm"),
    "spacing_wigner": MODELS,
    "nanogpt_marchenko_pastur": ("nanogpt",),
}


@dataclass(frozen=True)
class GridPoint:
    model: str
    lr: float
    batch_size: int

    @property
    def lr_text(self) -> str:
        return format_beta(self.lr)


@dataclass(frozen=True)
class RunPoint(GridPoint):
    seed: int


def section(cfg: dict) -> dict | None:
    return cfg.get("weights")


def semantic_errors(cfg: dict) -> list[str]:
    """Checks the schema cannot express; normalises the section in place (lr as float,
    batch_size and seeds as int)."""
    w = section(cfg)
    if w is None:
        return []
    errors = []
    w["seeds"] = [int(s) for s in w["seeds"]]
    for name, m in w["models"].items():
        where = ["weights", "models", name]
        m["lr"] = [float(x) for x in m["lr"]]
        m["batch_size"] = [int(x) for x in m["batch_size"]]
        if m["log_every"] > m["steps"]:
            errors.append(f"{key_path([*where, 'log_every'])}: exceeds steps ({m['log_every']} > {m['steps']})")
        snaps = int(w["stationary_fraction"] * m["steps"]) // m["log_every"]
        if snaps < MIN_WINDOW_SNAPSHOTS:
            errors.append(
                f"{key_path([*where, 'steps'])}: the stationary window holds {snaps} snapshots "
                f"(stationary_fraction * steps / log_every); need at least {MIN_WINDOW_SNAPSHOTS}")
        if name == "rbm":
            if m["n_visible"] < m["n_hidden"]:
                errors.append(f"{key_path([*where, 'n_hidden'])}: must not exceed n_visible ({m['n_hidden']} > {m['n_visible']})")
            if not m["data_variance"] > m["sigma_v"] ** 2:
                errors.append(
                    f"{key_path([*where, 'data_variance'])}: must exceed sigma_v^2 = {m['sigma_v'] ** 2} "
                    f"(else the maximum-likelihood W is 0), got {m['data_variance']}")
        if name == "nanogpt" and m["n_embd"] % m["n_head"]:
            errors.append(f"{key_path([*where, 'n_embd'])}: must be a multiple of n_head ({m['n_embd']} % {m['n_head']} != 0)")
    return errors


def model_settings(cfg: dict, model: str) -> dict:
    """The model constructor's settings of one model section."""
    m = section(cfg)["models"][model]
    return {k: v for k, v in m.items() if k not in GRID_KEYS + TRAIN_KEYS}


def train_settings(cfg: dict, model: str) -> dict:
    m = section(cfg)["models"][model]
    return {k: m[k] for k in TRAIN_KEYS}


def grid_points(cfg: dict) -> list[GridPoint]:
    w = section(cfg)
    if not w:
        return []
    return [
        GridPoint(name, lr, b)
        for name, m in w["models"].items()
        for lr in m["lr"]
        for b in m["batch_size"]
    ]


def run_points(cfg: dict) -> list[RunPoint]:
    w = section(cfg)
    return [RunPoint(p.model, p.lr, p.batch_size, s) for p in grid_points(cfg) for s in w["seeds"]] if w else []


def figure_names(cfg: dict) -> list[str]:
    """The weights figures this campaign makes: those whose models it trains."""
    w = section(cfg)
    if not w:
        return []
    return [f for f, models in FIGURES.items() if set(models) & set(w["models"])]


def summary(cfg: dict) -> str:
    w = section(cfg)
    if not w:
        return ""
    lines = [f"weights: seeds {w['seeds']}, stationary fraction {w['stationary_fraction']}"]
    for name, m in w["models"].items():
        lines.append(
            f"  {name}: lr {[format_beta(x) for x in m['lr']]} x B {m['batch_size']}, {m['steps']} steps "
            f"({m['optimizer']}), {len(m['lr']) * len(m['batch_size']) * len(w['seeds'])} runs")
    return "\n".join(lines)
