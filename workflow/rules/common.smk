# Paths, wildcard constraints and the lists of outputs every stage produces.
# The points come from campaign.config (the validated config); nothing here computes physics.

from campaign.config import (
    ensemble_points,
    exact_points,
    find_model,
    format_beta,
    hmc_settings,
    model_train_settings,
    sample_points,
    sample_settings,
)
import math

from campaign.seeds import seed_from
from campaign.theories import wildcard_pattern as theory_wildcard_pattern

ENSEMBLE = "results/ensembles/{group}/hmc_b{beta}_L{L}.h5"
MODEL = "results/models/{group}/{model}.pt"
LOSS = "results/models/{group}/{model}_loss.csv"
SAMPLE = "results/samples/{group}/from_{model}/b{beta}_L{L}.h5"
EXACT = "results/exact/{group}/b{beta}_L{L}.json"
MEASURE_TABLE = "results/measure/{group}/{source}/b{beta}_L{L}.csv"
MEASURE_SUMMARY = "results/measure/{group}/{source}/b{beta}_L{L}.json"
SUMMARY_TABLE = "results/tables/summary.csv"
CONFIG_COPY = "results/config.yaml"
FIGURE_PDF = "results/figures/{figure}.pdf"
FIGURE_PNG = "results/figures/{figure}.png"
FIGURE_CAPTION = "results/figures/{figure}.rst"


wildcard_constraints:
    group=theory_wildcard_pattern(),  # every registered theory (campaign.theories)
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


def hmc_params(w):
    return hmc_settings(config, w.group, float(w.beta), int(w.L))


def train_settings(w):
    return model_train_settings(find_model(config, w.group, w.model))


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
        *cl_targets(),  # workflow/rules/complex_langevin.smk
        *phi4_targets(),
    ]


# ------------------------------------------------------------------ job resources
# Every rule asks for its own threads, memory, runtime and GPU here, from the size of its
# point (L, chains, trajectories, steps, samples) and the attempt: a site profile only
# names partition and account.  Runtimes are estimates with a safety factor; a job that
# runs out of time is retried (profiles: retries) with `attempt` times the time, and HMC,
# training and sampling continue from their checkpoints.
#
# Throughputs behind the estimates.  CPU: measured on one core (float64, U(1), L = 16,
# 16 chains / batch 16): about 15 ms per HMC force evaluation and 41 ms per training step
# (6 channels, 2 layers), mostly per-call overhead at that size.  GPU: assumed, not yet
# measured (replace from `python -m benchmarks` on the cluster's GPU): a 1 ms floor per
# force or network call and the rates below.
THREADS = {"hmc": 4, "train": 8, "sample": 4, "measure": 2, "exact": 1}
RUNTIME_SAFETY = 2.0          # estimate x this, before the attempt factor
RUNTIME_STARTUP_MIN = 10      # job start, imports, CUDA context, writing outputs
RUNTIME_MAX_MIN = 7 * 24 * 60 # never ask for more than a week (sites cap walltimes lower:
                              # set-resources in the site profile then wins)
THROUGHPUT = {
    # seconds per call, link-force evaluations per second (U(1)), network units per second
    # (one unit: one link x channels^2 x layers, forward)
    "cuda": {"call_s": 1e-3, "link_forces": 2e9, "net_units": 5e10},
    "cpu": {"call_s": 5e-3, "link_forces": 5e5, "net_units": 4e7},  # per thread
}
LINK_COST = {"u1": 1, "su2": 8, "u2": 16}      # HMC force per link relative to U(1)
FORCES_PER_STEP = {"omelyan": 2, "leapfrog": 1}
LINKS_PER_SITE = 2                              # two dimensions


def cluster_run():
    """True when jobs go to a cluster executor, also in its dry run (-n with the SLURM
    profile), where Snakemake swaps in its dry-run executor but keeps the threaded job
    handling it chose for the cluster executor."""
    if not workflow.local_exec:
        return True
    return bool(workflow.dryrun and workflow.execution_settings.use_threads)


def job_device():
    """The device jobs will run on, as the resources see it: "cpu" only when the config
    says so, or says "auto" on a local run without a GPU; a cluster run with "auto" asks
    for a GPU (the silent CPU fallback of a GPU-less job is what this prevents)."""
    dev = config["device"]
    if dev == "auto":
        if cluster_run():
            return "cuda"
        from campaign.device import device_name

        return device_name("auto")
    return "cuda" if dev.startswith("cuda") else "cpu"


def _rate(name, rule):
    """Throughput of one job of `rule` (per-thread CPU rates times the rule's threads)."""
    dev = job_device()
    r = THROUGHPUT[dev][name]
    return r * THREADS[rule] if dev == "cpu" else r


def _minutes(seconds, attempt):
    est = RUNTIME_STARTUP_MIN + RUNTIME_SAFETY * seconds / 60
    return int(min(RUNTIME_MAX_MIN, 10 * math.ceil(est * attempt / 10)))


def _mem_mb(n_bytes, attempt, base=4000):
    """Host memory: torch and CUDA start-up (base) plus three copies of the data."""
    return int(1000 * math.ceil((base + 3 * n_bytes / 1e6) * (1 + 0.5 * (attempt - 1)) / 1000))


def _real_bytes():
    return 4 if config["dtype"] == "float32" else 8


REALS_PER_LINK = {"u1": 1, "su2": 4, "u2": 8}


def _net_units(model):
    return model["channels"] ** 2 * model["layers"] * max(1, model["kernel_size"] - 1) ** 2


def hmc_cost(w):
    """(seconds on the job's device, bytes held) of one HMC ensemble."""
    s = hmc_params(w)
    L, chains = int(w.L), s["chains"]
    per_chain = s["therm"] + s["sep"] * math.ceil(s["n_configs"] / chains)
    n_md = s["n_leapfrog"] or math.ceil(20 * s["trajectory_length"])  # tuned: a generous guess
    calls = per_chain * n_md * FORCES_PER_STEP[s["integrator"]]
    links = chains * L * L * LINKS_PER_SITE
    seconds = calls * (THROUGHPUT[job_device()]["call_s"]
                       + links * LINK_COST[w.group] / _rate("link_forces", "hmc"))
    stored = s["n_configs"] * L * L * LINKS_PER_SITE * REALS_PER_LINK[w.group] * _real_bytes()
    return seconds, stored


def train_cost(w):
    m = find_model(config, w.group, w.model)
    links = m["batch_size"] * m["L0"] ** 2 * LINKS_PER_SITE
    per_step = 3 * (THROUGHPUT[job_device()]["call_s"]
                    + links * _net_units(m) / _rate("net_units", "train"))  # forward + backward
    ens = hmc_settings(config, w.group, m["beta0"], m["L0"])
    data = ens["n_configs"] * m["L0"] ** 2 * LINKS_PER_SITE * REALS_PER_LINK[w.group] * _real_bytes()
    return m["steps"] * per_step, data


def sample_cost(w):
    s = sample_params(w)
    m = find_model(config, w.group, w.model)
    L = int(w.L)
    batches = math.ceil(s["n_samples"] / s["batch"])
    side_by_side = min(s["batches_per_pass"], batches)  # batches evaluated in one network call
    passes = math.ceil(batches / side_by_side)
    calls = s["n_levels"] * s["steps_per_level"] + s["tail_steps"] + s["pilot_chains"]
    links = s["batch"] * side_by_side * L * L * LINKS_PER_SITE
    per_call = 2 * (THROUGHPUT[job_device()]["call_s"]  # score and action of every proposal
                    + links * _net_units(m) / _rate("net_units", "sample"))
    data = s["n_samples"] * L * L * LINKS_PER_SITE * REALS_PER_LINK[w.group] * _real_bytes()
    return passes * calls * per_call, data


def measure_cost(w):
    """Wilson loops up to max_loop (null: min(8, L/2)) on every configuration, on CPU."""
    L = int(w.L)
    if w.source == "hmc":
        n = hmc_params(w)["n_configs"]
    else:
        n = sample_params(w)["n_samples"]
    loops = (config["max_loop"] or min(8, L // 2)) ** 2
    units = n * L * L * LINKS_PER_SITE * loops * LINK_COST[w.group]
    seconds = units / (THROUGHPUT["cpu"]["link_forces"] * 20 * THREADS["measure"])  # vectorised loops
    data = n * L * L * LINKS_PER_SITE * REALS_PER_LINK[w.group] * 8
    return seconds, data


def runtime_for(cost):
    """Resource function: minutes for the rule's cost function, times the attempt."""
    return lambda w, attempt: _minutes(cost(w)[0], attempt)


def mem_mb_for(cost):
    return lambda w, attempt: _mem_mb(cost(w)[1], attempt)


def gpu_for_device(w):
    """One GPU for the GPU stages unless the jobs run on the CPU (see job_device)."""
    return 1 if job_device() == "cuda" else 0


# ------------------------------------------------------------------ preemption
# The long stages that checkpoint on a stop signal (hmc, train, sample, phi4_hmc, cl_run)
# ask SLURM for a warning before the time limit: SIGUSR1, sent to every process of the job
# step, makes the job write its checkpoint and exit with campaign.preemption.EXIT_PREEMPTED;
# Snakemake retries it (profiles: retries) with more time, and the retry resumes from
# <output>.parts/.  Not "B:" (that signals only the batch shell, which would die of it).
# A site profile may replace it, e.g.
# set-resources: {hmc: {slurm_extra: "'--signal=USR1@300 --qos=long'"}}.
PREEMPTION_WARNING_S = 120
PREEMPTION_WARNING = f"--signal=USR1@{PREEMPTION_WARNING_S}"  # the rules' slurm_extra

if workflow.remote_exec:
    # this process wraps a job on a cluster node: the warning is for the job's script
    from campaign.preemption import spare_job_wrapper

    spare_job_wrapper()


# ------------------------------------------------------------------ figures
def figure_names():
    """One figure per file stem (campaign.figures.figure_stems), from the config's groups."""
    from campaign.figures import figure_stems

    return figure_stems(list(config["groups"]))


def figure_files():
    return [FIGURE_PDF.format(figure=f) for f in figure_names()] + [
        FIGURE_PNG.format(figure=f) for f in figure_names()
    ]


def figure_inputs(w):
    """What one figure reads: the campaign table, and the per-configuration tables, the
    diffusion sample files (their level history) or the training loss logs where it draws them."""
    from campaign.figures import NEEDS_LOSS, NEEDS_NO_TABLE, NEEDS_PER_CONFIG, NEEDS_SAMPLES

    inputs = {"per_config": [], "loss": [], "samples": []}
    if w.figure not in NEEDS_NO_TABLE:
        inputs["table"] = SUMMARY_TABLE
    if w.figure in NEEDS_PER_CONFIG:
        inputs["per_config"] = measure_files(MEASURE_TABLE)
    if w.figure in NEEDS_LOSS:
        inputs["loss"] = model_files(LOSS)
    if w.figure in NEEDS_SAMPLES:
        inputs["samples"] = sample_files()
    return inputs


def figure_captions(w):
    """{stem: caption} from campaign.figures.captions (imported only when needed)."""
    from campaign.figures import captions

    return captions(groups=list(config["groups"]))


# ------------------------------------------------------------------ weights campaign (docs/weights.md)
from campaign.weights.config import (
    figure_names as weights_figure_names,
    model_settings as weights_model_settings,
    run_points as weights_run_points,
    train_settings as weights_train_settings,
)

WEIGHTS_RUN = "results/weights/runs/{wmodel}/lr{lr}_B{B}_s{wseed}.h5"
WEIGHTS_SPECTRA = "results/weights/spectra/{wmodel}.json"
WEIGHTS_HIST = "results/weights/spectra/{wmodel}_hist.csv"
WEIGHTS_TABLE = "results/weights/temperatures.csv"
WEIGHTS_FIGURE = "results/weights/figures/{wfigure}.png"


wildcard_constraints:
    wmodel="teacher_student|rbm|nanogpt",
    lr=r"[0-9][0-9.e+-]*",
    B=r"[0-9]+",
    wseed=r"[0-9]+",
    wfigure="temperature_collapse|stationary_density|spacing_wigner|nanogpt_marchenko_pastur",




def weights_run_files(model=None):
    return [
        WEIGHTS_RUN.format(wmodel=p.model, lr=p.lr_text, B=p.batch_size, wseed=p.seed)
        for p in weights_run_points(config)
        if model is None or p.model == model
    ]


def weights_models(models=None):
    """The models of the weights section (optionally only those in ``models``)."""
    present = list(config.get("weights", {}).get("models", {}))
    return [m for m in present if models is None or m in models]


def weights_targets():
    """Everything the weights section of the config asks for (added to all_targets)."""
    if not config.get("weights"):
        return []
    return [
        *weights_run_files(),
        *[WEIGHTS_SPECTRA.format(wmodel=m) for m in weights_models()],
        WEIGHTS_TABLE,
        *[WEIGHTS_FIGURE.format(wfigure=f) for f in weights_figure_names(config)],
    ]


def weights_seed(w):
    return seed_from("weights", w.wmodel, float(w.lr), int(w.B), int(w.wseed), base=config["seed"])


def weights_figure_inputs(w):
    from campaign.weights.config import FIGURES

    models = FIGURES[w.wfigure]
    inputs = {
        "summaries": [WEIGHTS_SPECTRA.format(wmodel=m) for m in weights_models(models)],
        "hists": [WEIGHTS_HIST.format(wmodel=m) for m in weights_models(models)],
    }
    if w.wfigure == "temperature_collapse":
        inputs["table"] = WEIGHTS_TABLE
    return inputs


def weights_figure_caption(w):
    from campaign.weights.figures import captions

    return captions()
