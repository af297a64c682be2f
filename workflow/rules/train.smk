# Train one diffusion model on the HMC ensemble at its (beta0, L0).


rule train:
    input:
        training_ensemble,
    output:
        model=MODEL,
        loss=LOSS,
    log:
        "logs/train/{group}/{model}.log",
    params:
        settings=train_settings,
        seed=seed_for("train"),
        dtype=config["dtype"],
    threads: THREADS["train"]
    resources:
        gpu=gpu_for_device,
        slurm_extra=PREEMPTION_WARNING,
        mem_mb=mem_mb_for(train_cost),
        runtime=runtime_for(train_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/train.py"
