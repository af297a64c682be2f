# The papers' figures (campaign.figures.make_figures) from the campaign table, the
# per-configuration tables and the training loss logs.  Each figure is written as PDF and
# PNG with its caption as <stem>.rst; the PNGs go into the report with their captions.


rule figures:
    input:
        table=SUMMARY_TABLE,
        per_config=measure_files(MEASURE_TABLE),
        loss=model_files(LOSS),
    output:
        report(
            directory(FIGURE_DIR),
            patterns=["{name}.png"],
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
    log:
        "logs/figures.log",
    params:
        groups=list(config["groups"]),
        captions=figure_captions,
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/figures.py"
