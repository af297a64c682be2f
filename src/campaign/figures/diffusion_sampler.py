"""Figure 3: the exact diffusion sampler's figure of merit (ESS/N, step size, resamplings) vs beta."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .data import _beta0_values, _L0_values
from .style import DIFFUSION, GROUP_LABEL, HALF_WIDTH, _alg_style, _group_order, _L_colours, _mark_beta0, _no_data

SAMPLER_ROWS = (
    ("ess_per_sample", "ESS / N", ("smc",)),
    ("tail_step_size", "step size $\\epsilon$ at\nthe target acceptance", DIFFUSION),
    ("resamplings", "resamplings\nper batch", ("smc",)),
)


def fig_diffusion_sampler(df: pd.DataFrame):
    title = "Diffusion sampler"
    m = df[df["algorithm"].isin(DIFFUSION) & np.isfinite(df["value"])]
    rows = [r for r in SAMPLER_ROWS if len(m[(m["observable"] == r[0]) & m["algorithm"].isin(r[2])])]
    if not rows:
        return _no_data(title, "no diffusion samples measured")
    groups = _group_order(m[m["observable"].isin([r[0] for r in rows])]["group"])
    n = len(groups)
    fig, axes = plt.subplots(len(rows), n, figsize=(max(HALF_WIDTH, 2.3 * n + 0.5), 0.4 + 1.75 * len(rows)),
                             sharex="col", sharey="row", squeeze=False,
                             gridspec_kw={"wspace": 0.08, "hspace": 0.12})
    colour = _L_colours({int(v) for v in m["L"]})
    others: dict = {}
    for j, g in enumerate(groups):
        for i, (obs, label, algs) in enumerate(rows):
            ax = axes[i][j]
            for alg in [a for a in DIFFUSION if a in algs]:
                st = _alg_style(alg, others)
                sg = m[(m["group"] == g) & (m["observable"] == obs) & (m["algorithm"] == alg)]
                for L in sorted(colour):
                    s = sg[sg["L"] == L].sort_values("beta")
                    if not len(s):
                        continue
                    ax.errorbar(s["beta"], s["value"], yerr=np.nan_to_num(s["error"].to_numpy(float)),
                                color=colour[L], marker=st["marker"], mfc=colour[L] if alg == "smc" else "white",
                                ms=3.5, lw=0.9, ls="-" if alg == "smc" else ":",
                                label=f"$L = {L}$" if alg == "smc" else f"$L = {L}$ ({st['label']})")
            _mark_beta0(ax, _beta0_values(m[m["group"] == g]), label=(i == 0))
            if obs == "ess_per_sample":
                ax.set_ylim(0, 1.04)
                L0s = _L0_values(m[m["group"] == g])
                ax.set_title(GROUP_LABEL.get(g, g) + (f"  (trained at $L_0 = {L0s[0]}$)" if len(L0s) == 1 else ""),
                             pad=3)
                h, lab = ax.get_legend_handles_labels()
                order = sorted(range(len(lab)), key=lambda k: lab[k].startswith("training"))
                ax.legend([h[k] for k in order], [lab[k] for k in order], loc="lower left")
            elif obs == "tail_step_size":
                ax.set_yscale("log")
            if j == 0:
                ax.set_ylabel(label)
        axes[-1][j].set_xlabel(r"$\beta$")
    return fig
