# Functions and paths of workflow/rules/complex_langevin.smk (Snakemake's lint wants rules and
# functions in separate files).
from campaign.complex_langevin import campaign as cl_campaign
from campaign.errors import CampaignError

CL_RUN = "results/complex_langevin/cl/{clpoint}_s{clseed}.h5"
CL_NET = "results/complex_langevin/dm/{clpoint}_s{clseed}.pt"
CL_DM = "results/complex_langevin/dm/{clpoint}_s{clseed}.h5"
CL_MEASURE = "results/complex_langevin/measure/{clpoint}_s{clseed}.json"
CL_FIGURE = "results/complex_langevin/figures/{clpoint}_s{clseed}.png"
CL_TABLE = "results/complex_langevin/moments.csv"

try:
    _cl_errors = cl_campaign.semantic_errors(config)
except CampaignError as exc:
    _cl_errors = [str(exc)]
if _cl_errors:
    raise WorkflowError("\n  ".join(["config: the complex_langevin section is invalid:", *_cl_errors]))


wildcard_constraints:
    clpoint=r"[a-z][a-z-]*_[A-Za-z0-9_.+-]*",
    clseed=r"[0-9]+",


def cl_points():
    """(clpoint, clseed) of every job of the section."""
    section = config.get("complex_langevin") or {}
    return [(p.label, s) for p in cl_campaign.points(config) for s in section.get("seeds", [])]


def cl_targets():
    """Everything the complex_langevin section asks for (added to all_targets)."""
    if not config.get("complex_langevin"):
        return []
    per_point = [t.format(clpoint=p, clseed=s) for p, s in cl_points() for t in (CL_MEASURE, CL_FIGURE)]
    return [*per_point, CL_TABLE]


def cl_seed(stage, bits=63):
    """seed_from of the job's wildcards; train_cl_diffusion seeds its stages with 1000 seed + i
    (torch takes 64 bits), so its seed gets 31 bits."""
    return lambda w: seed_from(stage, w.clpoint, int(w.clseed), base=config["seed"]) >> (63 - bits)


# (seconds, bytes) per job for runtime_for / mem_mb_for: one thread; about 5 us of CPU per
# chain and step in the 0D models and 20 us per site on the lattice (measured: 4096 chains x
# 12 measurements of tau 1.5 take ~3 s), 2 ms per DSM step of batch 1024 and 0.05 ms per
# draw and sampler level (x 4 for a lattice field)
def _cl_sites(w):
    return math.prod(getattr(cl_campaign.model_for(config, w.clpoint), "field_shape", ())) or 1


def cl_run_cost(w):
    s = cl_campaign.cl_settings(config, 0)
    steps = (s.tau_therm + s.n_meas * s.tau_meas) / s.dt0
    return (5e-6 * s.n_chains * steps * _cl_sites(w) * (4 if _cl_sites(w) > 1 else 1),
            s.n_chains * s.n_meas * _cl_sites(w) * 48)


def cl_train_cost(w):
    s = cl_campaign.dm_settings(config)
    return 2e-3 * sum(n for _, n in s.lr_stages) * (4 if _cl_sites(w) > 1 else 1), 1e8


def cl_sample_cost(w):
    s = cl_campaign.dm_settings(config)
    n = cl_campaign.dm_samples(config)
    return 1e-4 * n * s.sample_steps * (4 if _cl_sites(w) > 1 else 1), n * _cl_sites(w) * 48


def cl_small_cost(w):
    return 5.0, 1e8


