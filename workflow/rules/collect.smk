# The campaign's summary table (every measured point next to its exact value) and a copy
# of the validated config (provenance, also shown in the report).


rule campaign_config:
    output:
        report(CONFIG_COPY, caption="../report/config.rst", category="Configuration"),
    log:
        "logs/campaign_config.log",
    params:
        config=lambda w: config,
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/write_config.py"


rule collect:
    input:
        summaries=measure_files(MEASURE_SUMMARY),
        exact=exact_files(),
    output:
        report(SUMMARY_TABLE, caption="../report/summary_table.rst", category="Tables"),
    log:
        "logs/collect.log",
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/collect.py"
