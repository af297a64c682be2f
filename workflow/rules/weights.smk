# Weights campaign (docs/weights.md): SGD runs per (model, lr, batch size, seed) logging the
# weight-matrix spectra, a spectra stage per model fitting, for each (lr, batch size), the
# Coulomb-gas temperature and level statistics (one job per model: the analysis of one
# point takes a fraction of a second, a job's start several seconds), the points table and
# one target per figure.
# Figures go to results/weights/figures/: results/figures is the gauge `figures` rule's
# directory output, and Snakemake forbids outputs inside another rule's directory.

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


localrules: weights_collect, weights_figure


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


rule weights_train:
    output:
        WEIGHTS_RUN,
    log:
        "logs/weights_train/{wmodel}/lr{lr}_B{B}_s{wseed}.log",
    params:
        settings=lambda w: weights_model_settings(config, w.wmodel),
        train=lambda w: weights_train_settings(config, w.wmodel),
        seed=weights_seed,
        dtype=config["dtype"],
    # seconds each: on a cluster they go out in bundles per model (profiles/default)
    group:
        "weights_train_{wmodel}"
    threads: 1
    script:
        "../scripts/weights_train.py"


rule weights_spectra:
    input:
        lambda w: weights_run_files(w.wmodel),
    output:
        summary=WEIGHTS_SPECTRA,
        hist=WEIGHTS_HIST,
    log:
        "logs/weights_spectra/{wmodel}.log",
    params:
        stationary_fraction=config.get("weights", {}).get("stationary_fraction"),
        n_blocks=config.get("weights", {}).get("n_blocks"),
    threads: 1
    script:
        "../scripts/weights_spectra.py"


rule weights_collect:
    input:
        [WEIGHTS_SPECTRA.format(wmodel=m) for m in weights_models()],
    output:
        report(WEIGHTS_TABLE, caption="../report/weights_table.rst", category="Weights"),
    log:
        "logs/weights_collect.log",
    script:
        "../scripts/weights_collect.py"


rule weights_figure:
    input:
        unpack(weights_figure_inputs),
    output:
        png=report(WEIGHTS_FIGURE, caption="../report/weights_figure.rst", category="Weights",
                   labels={"figure": "{wfigure}"}),
        pdf="results/weights/figures/{wfigure}.pdf",
    log:
        "logs/weights_figure/{wfigure}.log",
    params:
        captions=weights_figure_caption,
    script:
        "../scripts/weights_figure.py"
