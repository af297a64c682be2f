"""Pool independent SMC runs of one point (same model, target and settings, different
seeds) into one weighted estimate, against the exact torus values:

    python benchmarks/pool_smc_runs.py --beta 7 --L 16 RUN1.csv RUN2.csv ...

Each CSV is a `campaign measure` table of a sample file.  Pooling is valid because every
batch of every run carries an unbiased estimate of Z (docs/exact_sampling.md): the batches
stay the independent blocks of the jackknife, renumbered so that no two runs share a label.
Every run given is used; the table shows each run and the pool."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from campaign import exact
from campaign.stats import weighted_summary

OBSERVABLES = {"W(1,1)": ("W_1x1", "1x1"), "W(2,2)": ("W_2x2", "2x2"), "W(4,4)": ("W_4x4", "4x4")}


def pooled(tables: list[pd.DataFrame]) -> pd.DataFrame:
    offset, out = 0, []
    for t in tables:
        out.append(t.assign(weight_block=t.weight_block + offset))
        offset += int(t.weight_block.max()) + 1
    return pd.concat(out, ignore_index=True)


def rows(label: str, t: pd.DataFrame, reference: dict, volume: int):
    lw, blocks = t.log_weight.to_numpy(), t.weight_block.to_numpy()
    series = {name: (t[col], reference["wilson_loops"][key]) for name, (col, key) in OBSERVABLES.items()}
    series["chi_t"] = (t.Q ** 2 / volume, reference["chi_t"])
    for name, (x, ev) in series.items():
        s = weighted_summary(x.to_numpy(), lw, blocks)
        yield (f"| {label} | {len(t)} | {name} | {s['value']:.5f}({s['error']:.5f}) | {ev:.5f} | "
               f"{(s['value'] - ev) / s['error']:+.2f} | {s['error'] / abs(s['value']):.0%} | "
               f"{s['n_blocks_effective']:.1f} | {'yes' if s['reliable'] else 'no'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="+")
    ap.add_argument("--group", default="u1")
    ap.add_argument("--beta", type=float, required=True)
    ap.add_argument("--L", type=int, required=True)
    a = ap.parse_args()
    reference = exact.exact_observables(a.group, a.beta, a.L, 4)
    tables = [pd.read_csv(p) for p in a.tables]
    print("| run | N | observable | weighted estimate | exact | pull | rel. error | effective batches | reliable |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path, t in zip(a.tables, tables):
        for r in rows(path, t, reference, a.L ** 2):
            print(r)
    for r in rows("pooled", pooled(tables), reference, a.L ** 2):
        print(r)


if __name__ == "__main__":
    main()
