# Weights campaign (docs/weights.md): SGD runs per (model, lr, batch size, seed) logging the
# weight-matrix spectra, a spectra stage per model fitting, for each (lr, batch size), the
# Coulomb-gas temperature and level statistics (one job per model: the analysis of one
# point takes a fraction of a second, a job's start several seconds), the points table and
# one target per figure.
# Figures go to results/weights/figures/, apart from the gauge figures in results/figures.

localrules: weights_collect, weights_figure


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
    conda:
        "../envs/campaign.yaml"
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
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/weights_spectra.py"


rule weights_collect:
    input:
        [WEIGHTS_SPECTRA.format(wmodel=m) for m in weights_models()],
    output:
        report(WEIGHTS_TABLE, caption="../report/weights_table.rst", category="Weights"),
    log:
        "logs/weights_collect.log",
    conda:
        "../envs/campaign.yaml"
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
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/weights_figure.py"
