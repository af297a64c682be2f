# Campaign entry point: validate the config, then include one rule file per stage.
#
#   snakemake --cores 2                                   # default campaign (config.yaml)
#   snakemake --configfile campaigns/X.yaml --profile profiles/slurm
#   snakemake --report results/report.html                # after a run
#
# --configfile REPLACES config.yaml (it is not merged with it); --config k=v overrides on top.
# Docs: docs/workflow.md.  No physics here or in workflow/: rules call workflow/scripts/*.py,
# which call the campaign API.

from pathlib import Path

from snakemake.utils import min_version, validate

from campaign.config import ConfigError, load_yaml, validate_config

min_version("9.0")

SCHEMA = "workflow/schemas/config.schema.yaml"

if not workflow.config_settings.configfiles:
    # no --configfile: the default campaign
    configfile: Path(workflow.basedir) / "config.yaml"

try:
    for _file in workflow.configfiles:
        load_yaml(_file)  # snakemake's own reader keeps the later of two equal keys: refuse them
    _checked = validate_config(
        config,
        Path(workflow.basedir) / SCHEMA,
        # --config overrides are applied on top of the files: say so, or their errors
        # would be blamed on a file that does not contain them
        source=", ".join([*map(str, workflow.configfiles),
                          *(["--config " + " ".join(workflow.config_settings.config_args or [])]
                            if workflow.config_settings.config_args else [])]) or None,
    )
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
config.clear()
config.update(_checked)
# snakemake's own check against the same schema (defaults are already in place)
validate(config, SCHEMA)


include: "workflow/rules/common.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/exact.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/complex_langevin_functions.smk"
include: "workflow/rules/complex_langevin.smk"
include: "workflow/rules/phi4_functions.smk"
include: "workflow/rules/phi4.smk"


report: "workflow/report/workflow.rst"


# exact runs in the driver: the character expansion takes milliseconds, a SLURM job minutes
localrules: all, campaign_config, collect, exact, figures


rule all:
    input:
        all_targets(),
