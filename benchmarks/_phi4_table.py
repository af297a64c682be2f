"""The issue-18 campaign table (docs/conventions-phi4.md, "Results at L = 16 and 32") from the
phi4 measurement summaries of one or more finished run directories:

    python benchmarks/_phi4_table.py RUN_DIR [RUN_DIR ...] [--csv OUT.csv]

Reads RUN_DIR/results/phi4/measure/{hmc,dm}/*.json (a later directory's file replaces an
earlier one's for the same source, kappa and L), builds the table with
campaign.phi4.stages.collect (pulls of the diffusion-driven chain against HMC at the same
point) and prints it as markdown: <|M|>, chi, U, G(1) with their Gamma-method errors, the
pulls, acceptance, ESS/N of |M| (n_eff / N), the importance-sampling ESS per proposal,
tau_int(|M|) in configurations and the wall time per independent sample (production run /
n_eff(|M|); the diffusion model's training not included: it is printed per kappa below).
"""

import argparse
import math
import tempfile
from pathlib import Path

from campaign.phi4.stages import collect


def value_error(v: float, e: float) -> str:
    """0.278(10)-style: two significant digits of the error."""
    if not (math.isfinite(v) and math.isfinite(e)) or e <= 0:
        return f"{v:.4g}"
    digits = max(0, 1 - math.floor(math.log10(e)))
    return f"{v:.{digits}f}({round(e * 10**digits):d})"


def summaries(run_dirs) -> list[Path]:
    found = {}
    for run in run_dirs:
        for path in sorted(Path(run).glob("results/phi4/measure/*/*.json")):
            found[(path.parent.name, path.name)] = path
    return list(found.values())


def markdown(df) -> str:
    head = ("| L | kappa | chain | N | <\\|M\\|> | chi | U | G(1) | pulls \\|M\\|, chi, U, G(1) | acceptance | "
            "ESS/N | ESS/proposal | tau_int(\\|M\\|) | s per indep. sample |")
    lines = [head, "|" + "---|" * (head.count("|") - head.count("\\|") - 1)]
    for _, r in df.sort_values(["L", "kappa", "source"], ascending=[True, True, False]).iterrows():
        dm = r.source == "dm"
        pulls = ", ".join(f"{r[f'pull_{k}']:+.1f}" for k in ("absM", "chi", "binder", "G1")) if dm else ""
        lines.append("| " + " | ".join([
            str(int(r.L)), f"{r.kappa:g}", "DM-IMH" if dm else "HMC", str(int(r.n_configs)),
            value_error(r.absM, r.absM_err), value_error(r.chi, r.chi_err), value_error(r.binder, r.binder_err),
            value_error(r.G1, r.G1_err), pulls, f"{r.acceptance:.3f}", f"{r.ess_per_config:.3f}",
            f"{r.ess_per_proposal:.2g}" if dm else "", value_error(r.tau_absM, r.tau_absM_err),
            f"{r.cost_per_independent_s:.3g}"]) + " |")
    return "\n".join(lines)


def training_times(run_dirs) -> str:
    import torch

    out = []
    for run in run_dirs:
        for path in sorted(Path(run).glob("results/phi4/models/*.pt")):
            blob = torch.load(path, map_location="cpu", weights_only=False)
            out.append(f"{path.stem}: {blob['dsm']['steps']} DSM steps, {blob.get('wall_time_s', math.nan):.0f} s")
    return "; ".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--csv", default=None, help="also write the full table (every column) here")
    a = p.parse_args()
    files = summaries(a.runs)
    with tempfile.TemporaryDirectory() as tmp:
        df = collect(files, a.csv or Path(tmp) / "table.csv")
    print(markdown(df))
    print(f"\ntraining (not in the cost per sample): {training_times(a.runs)}")


if __name__ == "__main__":
    main()
