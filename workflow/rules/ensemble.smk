# HMC reference ensembles, one per (group, beta, L) of each group's hmc grid.
# A killed or timed-out job leaves a checkpoint in <output>.parts/ and resumes from it.


rule hmc:
    output:
        ENSEMBLE,
    log:
        "logs/hmc/{group}/b{beta}_L{L}.log",
    params:
        settings=hmc_params,
        seed=seed_for("hmc"),
        dtype=config["dtype"],
    threads: THREADS["hmc"]
    resources:
        gpu=gpu_for_device,
        slurm_extra=PREEMPTION_WARNING,
        mem_mb=mem_mb_for(hmc_cost),
        runtime=runtime_for(hmc_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/hmc.py"
