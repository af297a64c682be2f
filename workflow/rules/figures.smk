# The papers' figures (campaign.figures.make_figures), one job and one file per figure
# (campaign.figures.figure_stems), so `snakemake results/figures/topology.pdf` makes just that
# one and `snakemake -n` lists them all.  Each figure reads the campaign table, and the
# per-configuration tables or the training loss logs where it draws them; it is written as
# PDF and PNG with its caption as <stem>.rst; the PNGs go into the report with their captions.
# Which figure of which paper each file reproduces: docs/paper_figures.md.


wildcard_constraints:
    figure="|".join(figure_names()),


rule figures:
    input:
        unpack(figure_inputs),
    output:
        pdf=FIGURE_PDF,
        png=report(
            FIGURE_PNG,
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
        caption=FIGURE_CAPTION,
    log:
        "logs/figures/{figure}.log",
    params:
        groups=list(config["groups"]),
        captions=figure_captions,
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/figures.py"
