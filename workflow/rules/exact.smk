# Exact finite-torus results (character expansion) at every (group, beta, L) of the campaign.


rule exact:
    output:
        EXACT,
    log:
        "logs/exact/{group}/b{beta}_L{L}.log",
    params:
        max_loop=config["max_loop"],
    threads: THREADS["exact"]
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/exact.py"
