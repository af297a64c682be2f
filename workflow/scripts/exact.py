"""Exact results at one (group, beta, L): campaign.exact.exact_observables -> JSON."""

from _common import start

start(snakemake)  # noqa: F821

from campaign.analysis import write_json_atomic
from campaign.exact import exact_observables
from campaign.io import provenance
from campaign.observables import default_max_loop

w = snakemake.wildcards  # noqa: F821
L = int(w.L)
# the same loops as measure_file measures
max_loop = snakemake.params.max_loop or default_max_loop(L)  # noqa: F821
result = exact_observables(w.group, float(w.beta), L, max_loop)
write_json_atomic({**result, "max_loop": max_loop, "provenance": provenance()}, snakemake.output[0])  # noqa: F821
