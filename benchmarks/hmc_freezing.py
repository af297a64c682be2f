"""How HMC freezes in Q: tau_int(Q) and the tunnelling rate from long hot-start runs, and
the wall time per independent Q (the cost the diffusion sampler is compared with,
docs/exact_sampling.md).  Make the runs with the CLI, e.g. for U(1), L = 16:

    campaign hmc --group u1 --beta 7 --L 16 --n-configs 80000 --chains 32 --sep 20 \\
        --therm 200 --seed 20261207 --threads 1 --out hmc_b7_L16.h5
    campaign measure hmc_b7_L16.h5 --out hmc_b7_L16.csv --summary hmc_b7_L16.json --max-loop 4
    python benchmarks/hmc_freezing.py hmc_b5_L16 hmc_b7_L16 hmc_b9_L16

Two estimates of the autocorrelation time, in trajectories: the Gamma method's tau_int(Q)
over the chains (a lower bound when the summary flags the chains as short or frozen), and
2 <Q^2> / r (exact <Q^2>) from the rate r of changes of Q between stored configurations, the relaxation
time of a birth-death walk of unit steps with that stationary variance (a lower bound on
the rate when a change can hide between two stored configurations).  Cost per independent
Q: 2 tau x the wall time per chain-trajectory of the run."""
from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from campaign import exact


def freezing_row(stem: str) -> str:
    d = json.load(open(f"{stem}.json"))
    table = pd.read_csv(f"{stem}.csv")
    a, q = d["attrs"], d["observables"]["Q"]
    sep, chains = int(a["sep"]), int(a["chains"])
    trajectories_per_chain = int(a["therm"]) + int(a["n_configs"]) // chains * sep
    seconds_per_chain_trajectory = a["wall_time_s"] / (chains * trajectories_per_chain)
    changes = steps = 0
    for _, chain in table.groupby("chain"):
        charge = np.round(chain.sort_values("step").Q.to_numpy())
        changes += np.count_nonzero(np.diff(charge))
        steps += (len(charge) - 1) * sep
    # the stationary <Q^2> from the exact solution: frozen hot-start chains keep their Q
    q2 = exact.exact_observables(d["group"], d["beta"], d["L"], 1)["chi_t"] * d["L"] ** 2
    rate = changes / steps
    tau_rate = 2 * q2 / rate if changes else float("inf")
    tau_gamma = q["tau_int"] * sep
    cost = [2 * t * seconds_per_chain_trajectory for t in (tau_gamma, tau_rate)]
    flag = q["note"] or "mixed"
    return (f"| {d['beta']:g} | {d['L']} | {chains} x {trajectories_per_chain} | {q2:.3f} | "
            f"{tau_gamma:.0f}({q['tau_int_error'] * sep:.0f}) | {changes} | {rate:.2e} | {tau_rate:.3g} | "
            f"{seconds_per_chain_trajectory:.2e} | {cost[0]:.3g} / {cost[1]:.3g} | {flag[:70]} |")


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("| beta | L | chains x trajectories | exact <Q^2> | tau_int(Q) Gamma, traj | changes of Q | rate per traj | "
          "2<Q^2>/rate, traj | s per chain-traj | s per independent Q (Gamma / rate) | chains |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for stem in sys.argv[1:]:
        print(freezing_row(stem.removesuffix(".json")))


if __name__ == "__main__":
    main()
