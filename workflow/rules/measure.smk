# Per-configuration observables and their autocorrelation-aware summary, for every HMC
# ensemble (source "hmc") and every sample file (source "from_<model>").


rule measure:
    input:
        measured_file,
    output:
        table=MEASURE_TABLE,
        summary=MEASURE_SUMMARY,
    log:
        "logs/measure/{group}/{source}/b{beta}_L{L}.log",
    params:
        max_loop=config["max_loop"],
    # On a cluster, measure jobs travel in bundles (group-components in profiles/default):
    # each takes minutes on the CPU, where a job of its own would wait in the queue for
    # longer.  A bundle holds one source and lattice size, so its inputs (the ensembles or
    # sample files of one L) are ready at about the same time.
    group:
        "measure_{group}_{source}_L{L}"
    threads: THREADS["measure"]
    resources:
        mem_mb=mem_mb_for(measure_cost),
        runtime=runtime_for(measure_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/measure.py"
