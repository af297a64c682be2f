"""The validated config (defaults filled in) with provenance, for the report."""

from _common import start

start(snakemake)  # noqa: F821

import yaml

from campaign.io import atomic_path, provenance

with atomic_path(snakemake.output[0], suffix=".yaml") as tmp:  # noqa: F821
    with open(tmp, "w") as f:
        f.write("# validated campaign config, defaults filled in\n")
        yaml.safe_dump({"provenance": provenance()}, f, sort_keys=False)
        yaml.safe_dump(dict(snakemake.params.config), f, sort_keys=False)  # noqa: F821
