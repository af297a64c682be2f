# Functions and paths of workflow/rules/phi4.smk (Snakemake's lint wants rules and
# functions in separate files).
from pathlib import Path

from campaign.phi4.config import (
    FIGURES as PHI4_FIGURE_NAMES,
    cumulant_point as phi4_cumulant_point,
    dsm_settings as phi4_dsm_settings,
    hmc_points as phi4_hmc_points,
    hmc_settings as phi4_hmc_settings,
    model_kappas as phi4_model_kappas,
    net_settings as phi4_net_settings,
    sample_points as phi4_sample_points,
    sample_settings as phi4_sample_settings,
)

PHI4_ENSEMBLE = "results/phi4/ensembles/hmc_k{kappa}_L{L}.h5"
PHI4_MODEL = "results/phi4/models/k{kappa}.pt"
PHI4_SAMPLE = "results/phi4/samples/dm_k{kappa}_L{L}.h5"
PHI4_MEASURE_TABLE = "results/phi4/measure/{p4source}/k{kappa}_L{L}.csv"
PHI4_MEASURE_SUMMARY = "results/phi4/measure/{p4source}/k{kappa}_L{L}.json"
PHI4_TABLE = "results/phi4/table.csv"
PHI4_CUMULANTS = "results/phi4/cumulants/k{kappa}_L{L}.csv"
PHI4_FIGURE_PNG = "results/phi4/figures/{name}.png"
PHI4_FIGURE_PDF = "results/phi4/figures/{name}.pdf"


wildcard_constraints:
    kappa=r"[0-9][0-9.e+-]*",
    p4source="hmc|dm",


localrules: phi4_collect, phi4_figures


def phi4_section():
    return config.get("phi4") or {}


def phi4_measure_summaries():
    return [PHI4_MEASURE_SUMMARY.format(p4source="hmc", kappa=p.k, L=p.L) for p in phi4_hmc_points(config)] + [
        PHI4_MEASURE_SUMMARY.format(p4source="dm", kappa=p.k, L=p.L) for p in phi4_sample_points(config)]


def phi4_measure_tables():
    return [str(Path(f).with_suffix(".csv")) for f in phi4_measure_summaries()]


def phi4_cumulant_file():
    p = phi4_cumulant_point(config)
    return [PHI4_CUMULANTS.format(kappa=p.k, L=p.L)] if p else []


def phi4_figure_files():
    return [t.format(name=n) for n in PHI4_FIGURE_NAMES for t in (PHI4_FIGURE_PNG, PHI4_FIGURE_PDF)]


def phi4_targets():
    """Everything the phi4 section of the config asks for (added to all_targets)."""
    if not phi4_section():
        return []
    return [
        *[PHI4_ENSEMBLE.format(kappa=p.k, L=p.L) for p in phi4_hmc_points(config)],
        *[PHI4_SAMPLE.format(kappa=p.k, L=p.L) for p in phi4_sample_points(config)],
        *phi4_measure_summaries(),
        PHI4_TABLE,
        *phi4_cumulant_file(),
        *phi4_figure_files(),
    ]


def phi4_seed(stage):
    return lambda w: seed_from(f"phi4-{stage}", float(w.kappa), int(getattr(w, "L", 0)), base=config["seed"])


def phi4_training_ensemble(w):
    return PHI4_ENSEMBLE.format(kappa=w.kappa, L=phi4_section()["model"]["L0"])


def phi4_measured_file(w):
    return (PHI4_ENSEMBLE if w.p4source == "hmc" else PHI4_SAMPLE).format(kappa=w.kappa, L=w.L)


# ------------------------------------------------------------------ resources
# Site updates and network units on one CPU thread (THROUGHPUT["cpu"]): an HMC trajectory
# costs 2 n_md force calls over chains x V sites; a proposal of the sampler 2 flow_steps
# network calls, each with the V vector-Jacobian products of the exact flow density.
PHI4_SMALL = 4096  # sites x chains below which one thread is fastest (per-call overhead)


def phi4_threads(stage, sites):
    return lambda w: 1 if sites(w) < PHI4_SMALL else THREADS[stage]


def _phi4_hmc_sites(w):
    return int(w.L) ** 2 * phi4_section()["hmc"]["chains"]


def _phi4_sample_sites(w):
    return int(w.L) ** 2 * phi4_section()["sample"]["batch"]


def _phi4_train_sites(w):
    return phi4_section()["model"]["L0"] ** 2 * phi4_section()["model"]["batch_size"]


def _phi4_net_units():
    m = phi4_section()["model"]
    return m["channels"] ** 2 * m["layers"] * m["kernel_size"] ** 2


def phi4_hmc_cost(w):
    h = phi4_section()["hmc"]
    traj = h["therm"] + h["configs_per_chain"] * h["sep"]
    n_md = h["n_leapfrog"] or math.ceil(10 * h["trajectory_length"])
    calls = traj * n_md * 2
    sites = _phi4_hmc_sites(w)
    seconds = calls * (THROUGHPUT["cpu"]["call_s"] + sites / THROUGHPUT["cpu"]["link_forces"])
    return seconds, h["configs_per_chain"] * sites * 8


def phi4_train_cost(w):
    m = phi4_section()["model"]
    per_step = 3 * (THROUGHPUT["cpu"]["call_s"] + _phi4_train_sites(w) * _phi4_net_units() / THROUGHPUT["cpu"]["net_units"])
    return m["steps"] * per_step, 0


def phi4_sample_cost(w):
    s = phi4_section()["sample"]
    V = int(w.L) ** 2
    n = s["configs_per_chain"] * s["chains"]
    # the exact flow Jacobian takes one backward pass per colour of the score's locality, not one per site
    per_call = THROUGHPUT["cpu"]["call_s"] + V * _phi4_colours(int(w.L)) * _phi4_net_units() / THROUGHPUT["cpu"]["net_units"]
    return n * 2 * s["flow_steps"] * per_call, n * V * V * 8


def _phi4_colours(L):
    from campaign.flat_diffusion import colour_periods
    from campaign.phi4.diffusion import receptive_radius

    m = phi4_section()["model"]
    return math.prod(colour_periods((L, L), receptive_radius(m["kernel_size"], m["layers"])))


def phi4_runtime(cost):
    return lambda w, attempt: _minutes(cost(w)[0], attempt)


def phi4_mem(cost):
    return lambda w, attempt: _mem_mb(cost(w)[1], attempt)


# ------------------------------------------------------------------ rules
