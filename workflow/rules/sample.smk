# Diffusion sampling (exact SMC by default) with a trained model at each of its group's
# sample targets (beta, L).


rule sample:
    input:
        model=MODEL,
    output:
        SAMPLE,
    log:
        "logs/sample/{group}/from_{model}/b{beta}_L{L}.log",
    params:
        settings=sample_params,
        seed=seed_for("sample"),
        dtype=config["dtype"],
    threads: THREADS["sample"]
    resources:
        gpu=gpu_for_device,
        slurm_extra=PREEMPTION_WARNING,
        mem_mb=mem_mb_for(sample_cost),
        runtime=runtime_for(sample_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/sample.py"
