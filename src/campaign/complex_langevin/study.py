"""One model end to end: CL run, correctness verdict, diffusion model trained on the CL
samples, moments CL / DM / exact, learned-score error (Gaussian), and the figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .diagnostics import compare, independent_moment_summary, verdict
from .diffusion import (CLDiffusionSettings, as_xy, gaussian_noisy_score, sample_cl_diffusion, score_error,
                        train_cl_diffusion)
from .exact import gaussian_density
from .langevin import CLSettings, run_cl
from .models import Gaussian


def study(model, cl: CLSettings, dm: CLDiffusionSettings | None = None, n_dm: int = 10_000,
          orders=(2, 4), figure: str | Path | None = None, seed: int = 0) -> dict:
    r = run_cl(model, cl)
    z = r["z"].numpy()
    out = {"model": model.params(), "cl_settings": cl.asdict(), "cl_seconds": r["seconds"],
           "cl_steps": r["n_steps"], "verdict": verdict(model, z, r["drift_abs"].numpy(), orders)}
    rows = []
    z_dm = None
    if dm is not None:
        net, losses = train_cl_diffusion(z, dm, seed=seed)
        z_dm = sample_cl_diffusion(net, n_dm, dm, seed=seed + 1)
        out["dm_settings"] = dm.asdict()
        out["dm_final_loss"] = float(np.mean(losses[-100:]))
        if isinstance(model, Gaussian):
            xy = as_xy(z[:, : max(1, 2000 // max(1, z.shape[0]))])
            exact = gaussian_noisy_score(model.sigma)
            out["score_rel_l2"] = {f"{s:g}": score_error(net, exact, xy, s) for s in (dm.sigma_min, 0.2, 0.5, 1.0)}
    for n in orders:
        cl_m = out["verdict"]["moments"][n]
        row = {"n": n, "exact": [cl_m["exact_re"], cl_m["exact_im"]],
               "cl": [cl_m["re"]["value"], cl_m["re"]["error"], cl_m["im"]["value"], cl_m["im"]["error"]],
               "cl_pulls": [cl_m["pull_re"], cl_m["pull_im"]]}
        if z_dm is not None:
            s = independent_moment_summary(z_dm, n)
            c = compare(s, complex(*row["exact"]))
            row["dm"] = [s["re"]["value"], s["re"]["error"], s["im"]["value"], s["im"]["error"]]
            row["dm_pulls"] = [c["pull_re"], c["pull_im"]]
        rows.append(row)
    out["moments"] = rows
    if figure is not None:
        from .figures import plot_cl_distribution

        dens = (lambda x, y: gaussian_density(model.sigma, x, y)) if isinstance(model, Gaussian) else None
        note = f"sigma_min = {dm.sigma_min:g}" if dm is not None else ""
        out["figure"] = str(plot_cl_distribution(figure, z, z_dm, dens, title=model_label(model),
                                                 dm_note=note))
    return out


def model_label(model) -> str:
    """'quartic: sigma = 1+1j, lam = 1' style label of a model."""
    params = {k: v for k, v in model.params().items() if k != "model"}
    for part in ("sigma", "lam"):
        if f"{part}_re" in params:
            params[part] = complex(params.pop(f"{part}_re"), params.pop(f"{part}_im"))
    text = ", ".join(f"{k} = {v.real:g}{v.imag:+g}i" if isinstance(v, complex) else f"{k} = {v:g}"
                     for k, v in params.items())
    return f"{model.name}: {text}"


def moments_table(results: list[dict]) -> str:
    """Markdown table: model, n, exact, CL, DM (value(error) for Re and Im)."""
    def fmt(v, e):
        if not math.isfinite(e) or e <= 0:
            return f"{v:.4f}"
        digits = max(0, -int(math.floor(math.log10(e))) + 1)
        return f"{v:.{digits}f}({round(e * 10 ** digits):d})"

    lines = ["| model | <z^n> | exact | CL | DM |", "|---|---|---|---|---|"]
    for res in results:
        name = ", ".join(f"{k}={v}" for k, v in res["model"].items() if k != "model")
        for row in res["moments"]:
            ex = f"{row['exact'][0]:.4f} {row['exact'][1]:+.4f}i"
            cl = f"{fmt(row['cl'][0], row['cl'][1])} {fmt(row['cl'][2], row['cl'][3])}i"
            dm = f"{fmt(row['dm'][0], row['dm'][1])} {fmt(row['dm'][2], row['dm'][3])}i" if "dm" in row else "-"
            lines.append(f"| {res['model']['model']} ({name}) | z^{row['n']} | {ex} | {cl} | {dm} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m campaign.complex_langevin.study OUTDIR``: the issue-19 comparison (Gaussian
    and quartic with a DM, the log-Gaussian correct/failing pair without), moments table
    (moments.md), results (study.json) and one figure per model.  Minutes of CPU."""
    import argparse
    import json

    import torch

    from .models import LogGaussian, Quartic

    parser = argparse.ArgumentParser(prog="python -m campaign.complex_langevin.study")
    parser.add_argument("outdir")
    args = parser.parse_args(argv)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # per-step overhead dominates: threads only add contention
    cl = CLSettings(n_chains=4096, n_meas=12, tau_meas=1.5, tau_therm=5.0, seed=1)
    # the quartic's strip has structure ~0.05 wide in y: resolve it with a small sigma_min
    quartic_dm = CLDiffusionSettings(sigma_min=0.01, sample_steps=200, hidden=64,
                                     lr_stages=((3e-3, 800), (1e-3, 600), (3e-4, 400)))
    runs = [(Gaussian(1 + 1j), CLDiffusionSettings()), (Quartic(1 + 1j, 1.0), quartic_dm),
            (LogGaussian(4, 1.0), None), (LogGaussian(4, 8.0), None)]
    results = []
    for k, (model, dm) in enumerate(runs):
        res = study(model, cl, dm, figure=out / f"cl_{k}_{model.name}.png")
        results.append(res)
        print(f"{model_label(model)}: {res['verdict']['statement']}", flush=True)
    table = moments_table(results)
    (out / "moments.md").write_text(table + "\n")
    (out / "study.json").write_text(json.dumps(results, indent=1, default=str))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
