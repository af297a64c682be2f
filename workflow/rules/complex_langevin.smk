# Complex Langevin campaign (docs/complex_langevin.md): per grid point of the
# complex_langevin section (model x parameter values, wildcard clpoint) and seed: a CL
# ensemble, a diffusion model trained on it, its draws, the measurement CL / DM / exact and
# the side-by-side P(x, y) figure; one moments table over the grid.
# Every job is one CPU thread: 0D and small-lattice CL are dominated by per-call overhead.
# Paths and functions: workflow/rules/complex_langevin_functions.smk

rule cl_run:
    output:
        CL_RUN,
    log:
        "logs/cl_run/{clpoint}_s{clseed}.log",
    params:
        model=lambda w: cl_campaign.find_point(config, w.clpoint).model,
        values=lambda w: dict(cl_campaign.find_point(config, w.clpoint).params),
        settings=lambda w: cl_campaign.cl_settings(config, 0).asdict(),
        seed=cl_seed("cl"),
    threads: 1
    resources:
        slurm_extra=PREEMPTION_WARNING,
        mem_mb=mem_mb_for(cl_run_cost),
        runtime=runtime_for(cl_run_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/cl_run.py"


rule cl_train:
    input:
        CL_RUN,
    output:
        CL_NET,
    log:
        "logs/cl_train/{clpoint}_s{clseed}.log",
    params:
        settings=lambda w: cl_campaign.dm_settings(config).asdict(),
        seed=cl_seed("cl-train", bits=31),
    threads: 1
    resources:
        mem_mb=mem_mb_for(cl_train_cost),
        runtime=runtime_for(cl_train_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/cl_train.py"


rule cl_sample:
    input:
        CL_NET,
    output:
        CL_DM,
    log:
        "logs/cl_sample/{clpoint}_s{clseed}.log",
    params:
        n_samples=lambda w: cl_campaign.dm_samples(config),
        seed=cl_seed("cl-sample"),
    threads: 1
    resources:
        mem_mb=mem_mb_for(cl_sample_cost),
        runtime=runtime_for(cl_sample_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/cl_sample.py"


rule cl_measure:
    input:
        cl=CL_RUN,
        dm=CL_DM,
    output:
        CL_MEASURE,
    log:
        "logs/cl_measure/{clpoint}_s{clseed}.log",
    threads: 1
    resources:
        mem_mb=mem_mb_for(cl_small_cost),
        runtime=runtime_for(cl_small_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/cl_measure.py"


rule cl_figure:
    input:
        cl=CL_RUN,
        dm=CL_DM,
    output:
        report(CL_FIGURE, category="Complex Langevin", labels={"point": "{clpoint}", "seed": "{clseed}"}),
    log:
        "logs/cl_figure/{clpoint}_s{clseed}.log",
    threads: 1
    resources:
        mem_mb=mem_mb_for(cl_small_cost),
        runtime=runtime_for(cl_small_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/cl_figure.py"


rule cl_table:
    input:
        [CL_MEASURE.format(clpoint=p, clseed=s) for p, s in cl_points()],
    output:
        report(CL_TABLE, category="Complex Langevin"),
    log:
        "logs/cl_table.log",
    params:
        points=cl_points(),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/cl_table.py"


localrules: cl_table
