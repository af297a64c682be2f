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
    threads: THREADS["measure"]
    resources:
        mem_mb=mem_mb_for(measure_cost),
        runtime=runtime_for(measure_cost),
    script:
        "../scripts/measure.py"
