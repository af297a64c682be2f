"""Sanity bounds checked before a long job starts: the coupling range, the memory that the
exact character sums and HMC will need, and a lower bound on HMC's run time, estimated from
(group, beta, L, ...).

Beyond a bound the job is refused with one line unless ``force``: ``campaign hmc/exact
--force``.  The estimates are deliberately generous upper bounds (a refused job costs a
flag; a job killed by the kernel after an hour costs the hour and maybe the machine).
"""

from __future__ import annotations

import math
import os

from .errors import CampaignError
from .theories import get_theory

# 2D: the correlation length grows like beta (U(1): xi ~ 2 beta), so beyond this no lattice
# we can simulate is in the physical regime, and the character sums need ~ sqrt(beta)
# representations per axis (U(2): beta representations in all)
BETA_MAX = 1000.0
MEMORY_FRACTION = 0.5  # of the machine's physical memory that one job may plan to use
GIB = 1024**3
TIME_LIMIT_DAYS = 30.0  # one job; CAMPAIGN_TIME_LIMIT_DAYS overrides
# Faster than any HMC we can run, in link-force evaluations per second: the fastest measured
# is U(1) float32 at 7.6e8/s on 2 CPU cores (benchmarks/hmc.py); a GPU is granted 25x that.
# A time computed from it is a lower bound, so refusing on it never refuses a feasible job.
FASTEST_LINK_FORCES_PER_S = 2e10
LINK_FORCE_COST = {1: 1.0, 2: 4.0}  # per link relative to U(1), by matrix size N (SU(2)/U(2): quaternions)


def memory_limit() -> int:
    """Bytes one job may use: MEMORY_FRACTION of physical memory (CAMPAIGN_MEMORY_GB
    overrides, e.g. on a shared node)."""
    env = os.environ.get("CAMPAIGN_MEMORY_GB")
    if env:
        try:
            return int(float(env) * GIB)
        except ValueError:
            raise CampaignError(f"CAMPAIGN_MEMORY_GB must be a number, got {env!r}") from None
    try:
        return int(MEMORY_FRACTION * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError):
        return 16 * GIB


def check_beta(beta: float, force: bool = False) -> None:
    if not (math.isfinite(beta) and beta >= 0):
        raise CampaignError(f"beta must be finite and >= 0, got {beta}")
    if beta > BETA_MAX and not force:
        raise CampaignError(f"beta={beta:g} is outside the range [0, {BETA_MAX:g}] (2D correlation length ~ beta "
                            "exceeds any lattice here); use --force to run anyway")


def check_memory(what: str, needed: float, force: bool = False) -> None:
    limit = memory_limit()
    if needed > limit and not force:
        raise CampaignError(f"{what} would need about {needed / GIB:.3g} GiB of memory, more than the limit of "
                            f"{limit / GIB:.3g} GiB (CAMPAIGN_MEMORY_GB); use --force to run anyway")


def exact_memory_bytes(group_name: str, beta: float, L: int, max_loop: int) -> float:
    """Upper bound on the peak memory of ``campaign.exact.exact_observables``: arrays of
    (representations x loop areas) and the theta-moment tables for chi_t, at twice the
    initial representation cutoff (one doubling; more happens only near the tolerance)."""
    K = 2 * (4 + int(2 * math.sqrt(beta)))  # campaign.exact._initial_cutoff, doubled once
    theory = get_theory(group_name)
    n_reps = theory.count(K)
    n_areas = min(max_loop * max_loop, L * L)  # distinct products r*t: at most max_loop^2
    loops = 8.0 * n_reps * 3 * n_areas * 4  # (reps, 2 neighbours + 1, areas), ~4 temporaries
    chi = 0.0
    if theory.has_topology:
        n_panels = 16 * max(64, 2 * K + 1, int(8 * math.sqrt(beta)) + 1)  # 16 Gauss nodes per panel
        n_mu, n_k = theory.theta.table_size(K)
        chi = 8.0 * (3 * (n_mu + n_k) * n_panels + n_mu * n_k + 12 * n_reps)
    return loops + chi


def hmc_memory_bytes(N: int, L: int, chains: int, n_configs: int, dtype: str) -> float:
    """Upper bound on HMC's peak memory: ~12 field-sized tensors per chain (field, momenta,
    the trial pair, force and plaquette temporaries) and the finished ensemble three times
    (the stored parts, their concatenation, the array written to HDF5)."""
    per_config = 2 * L * L * N * N * (16 if dtype == "float64" else 8)
    return float(per_config) * (12 * chains + 3 * n_configs)


def time_limit_seconds() -> float:
    env = os.environ.get("CAMPAIGN_TIME_LIMIT_DAYS")
    try:
        days = float(env) if env else TIME_LIMIT_DAYS
    except ValueError:
        raise CampaignError(f"CAMPAIGN_TIME_LIMIT_DAYS must be a number, got {env!r}") from None
    return days * 86400.0


def hmc_seconds_at_least(N: int, L: int, chains: int, trajectories: int, forces_per_trajectory: int) -> float:
    """A lower bound on HMC's run time: every trajectory of every chain evaluates the force on
    all 2 L^2 links at least ``forces_per_trajectory`` times, at the FASTEST rate."""
    link_forces = float(trajectories) * chains * 2 * L * L * max(1, forces_per_trajectory)
    return link_forces * LINK_FORCE_COST[N] / FASTEST_LINK_FORCES_PER_S


def check_time(what: str, seconds: float, force: bool = False) -> None:
    limit = time_limit_seconds()
    if seconds > limit and not force:
        raise CampaignError(f"{what} would take at least {seconds / 86400:.3g} days even at "
                            f"{FASTEST_LINK_FORCES_PER_S:.0e} link forces/s, more than the limit of "
                            f"{limit / 86400:.3g} days (CAMPAIGN_TIME_LIMIT_DAYS); use --force to run anyway")
