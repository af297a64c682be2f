# Scalar phi^4 campaign (docs/conventions-phi4.md, "Campaign"): HMC on the grid kappa x L,
# one diffusion model per sampled kappa (trained on the HMC ensemble at (kappa, L0)), the
# diffusion-driven independence-Metropolis chain at (kappa, L), a measurement of every
# file, the campaign table, the cumulants through the diffusion and the figures.
# Every phi4 job runs on the CPU in float64 (campaign.phi4.jobs is CPU-only); HMC and the
# trainer resume from their checkpoints (<output>.parts/), the sampler from its parts.
# Paths and functions: workflow/rules/phi4_functions.smk

rule phi4_hmc:
    output:
        PHI4_ENSEMBLE,
    log:
        "logs/phi4_hmc/k{kappa}_L{L}.log",
    params:
        settings=lambda w: phi4_hmc_settings(config, w.kappa, w.L),
        seed=phi4_seed("hmc"),
    threads: phi4_threads("hmc", _phi4_hmc_sites)
    resources:
        slurm_extra=PREEMPTION_WARNING,
        mem_mb=phi4_mem(phi4_hmc_cost),
        runtime=phi4_runtime(phi4_hmc_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_hmc.py"


rule phi4_train:
    input:
        phi4_training_ensemble,
    output:
        PHI4_MODEL,
    log:
        "logs/phi4_train/k{kappa}.log",
    params:
        dsm=lambda w: phi4_dsm_settings(config),
        net=lambda w: phi4_net_settings(config),
        seed=phi4_seed("train"),
    threads: phi4_threads("train", _phi4_train_sites)
    resources:
        mem_mb=phi4_mem(phi4_train_cost),
        runtime=phi4_runtime(phi4_train_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_train.py"


rule phi4_sample:
    input:
        PHI4_MODEL,
    output:
        PHI4_SAMPLE,
    log:
        "logs/phi4_sample/k{kappa}_L{L}.log",
    params:
        settings=lambda w: phi4_sample_settings(config, w.kappa, w.L),
        seed=phi4_seed("sample"),
    threads: phi4_threads("sample", _phi4_sample_sites)
    resources:
        mem_mb=phi4_mem(phi4_sample_cost),
        runtime=phi4_runtime(phi4_sample_cost),
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_sample.py"


rule phi4_measure:
    input:
        phi4_measured_file,
    output:
        table=PHI4_MEASURE_TABLE,
        summary=PHI4_MEASURE_SUMMARY,
    log:
        "logs/phi4_measure/{p4source}/k{kappa}_L{L}.log",
    threads: 1
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_measure.py"


rule phi4_collect:
    input:
        phi4_measure_summaries(),
    output:
        PHI4_TABLE,
    log:
        "logs/phi4_collect.log",
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_collect.py"


rule phi4_cumulants:
    input:
        ensemble=PHI4_ENSEMBLE,
        model=PHI4_MODEL,
    output:
        PHI4_CUMULANTS,
    log:
        "logs/phi4_cumulants/k{kappa}_L{L}.log",
    params:
        settings=lambda w: {k: v for k, v in phi4_section()["cumulants"].items() if k not in ("kappa", "L")},
        seed=phi4_seed("cumulants"),
    threads: 1
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_cumulants.py"


rule phi4_figures:
    input:
        table=PHI4_TABLE,
        measured=phi4_measure_tables(),
        cumulants=phi4_cumulant_file(),
    output:
        phi4_figure_files(),
    log:
        "logs/phi4_figures.log",
    conda:
        "../envs/campaign.yaml"
    script:
        "../scripts/phi4_figures.py"
