# Paths, wildcard constraints and the lists of outputs every stage produces.
# The points come from campaign.config (the validated config); nothing here computes physics.

from campaign.config import (
    ensemble_points,
    exact_points,
    find_model,
    format_beta,
    hmc_settings,
    sample_points,
    sample_settings,
)
from campaign.seeds import seed_from

ENSEMBLE = "results/ensembles/{group}/hmc_b{beta}_L{L}.h5"
MODEL = "results/models/{group}/{model}.pt"
LOSS = "results/models/{group}/{model}_loss.csv"
SAMPLE = "results/samples/{group}/from_{model}/b{beta}_L{L}.h5"
EXACT = "results/exact/{group}/b{beta}_L{L}.json"
MEASURE_TABLE = "results/measure/{group}/{source}/b{beta}_L{L}.csv"
MEASURE_SUMMARY = "results/measure/{group}/{source}/b{beta}_L{L}.json"
SUMMARY_TABLE = "results/tables/summary.csv"
CONFIG_COPY = "results/config.yaml"
FIGURE_DIR = "results/figures"


wildcard_constraints:
    group="u1|su2|u2",
    beta=r"[0-9][0-9.e+-]*",
    L=r"[0-9]+",
    model=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    source=r"hmc|from_[A-Za-z0-9][A-Za-z0-9_.-]*",


# ------------------------------------------------------------------ wildcards -> values
def seed_for(stage):
    """Params function: the seed of (stage, group, beta, L), from the config's base seed."""

    def f(w):
        if stage == "train":
            m = find_model(config, w.group, w.model)
            return seed_from(stage, w.group, m["beta0"], m["L0"], base=config["seed"])
        return seed_from(stage, w.group, float(w.beta), int(w.L), base=config["seed"])

    return f


def without(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def hmc_params(w):
    return hmc_settings(config, w.group, float(w.beta), int(w.L))


def train_settings(w):
    return without(find_model(config, w.group, w.model), "name", "beta0", "L0")


def sample_params(w):
    return sample_settings(config, w.group, float(w.beta), int(w.L))


def training_ensemble(w):
    m = find_model(config, w.group, w.model)
    return ENSEMBLE.format(group=w.group, beta=format_beta(m["beta0"]), L=m["L0"])


def measured_file(w):
    """The ensemble or sample file behind a measurement, from its source wildcard."""
    if w.source == "hmc":
        return ENSEMBLE.format(group=w.group, beta=w.beta, L=w.L)
    return SAMPLE.format(group=w.group, model=w.source[len("from_"):], beta=w.beta, L=w.L)


# ------------------------------------------------------------------ output lists
def ensemble_files():
    return [ENSEMBLE.format(group=p.group, beta=p.b, L=p.L) for p in ensemble_points(config)]


def model_files(template=MODEL):
    return [
        template.format(group=g, model=m["name"])
        for g, grp in config["groups"].items()
        for m in grp["models"]
    ]


def sample_files():
    return [
        SAMPLE.format(group=s.group, model=s.model, beta=s.b, L=s.L)
        for s in sample_points(config)
    ]


def exact_files():
    return [EXACT.format(group=p.group, beta=p.b, L=p.L) for p in exact_points(config)]


def measure_files(template):
    hmc = [template.format(group=p.group, source="hmc", beta=p.b, L=p.L) for p in ensemble_points(config)]
    samples = [
        template.format(group=s.group, source=f"from_{s.model}", beta=s.b, L=s.L)
        for s in sample_points(config)
    ]
    return hmc + samples


def all_targets():
    return [
        CONFIG_COPY,
        *ensemble_files(),
        *exact_files(),
        *model_files(),
        *sample_files(),
        *measure_files(MEASURE_SUMMARY),
        SUMMARY_TABLE,
        *figure_files(),
        *weights_targets(),
    ]
