"""The workflow's stages after the CL run (workflow/rules/complex_langevin.smk): train the
diffusion model on a CL ensemble (a network file), draw from it (an ensemble file in the CL
layout), measure CL and DM against the exact values, the side-by-side figure, and the
moments table CL / DM / exact of the whole grid (CSV)."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import torch

from .. import io
from ..errors import CampaignError
from .diffusion import CLDiffusionSettings, ScoreMLP, sample_cl_diffusion, train_cl_diffusion
from .langevin import drift_magnitude, field_shape
from .store import DM_ALGORITHM, read_cl_ensemble, write_cl_ensemble

NETWORK_KIND = "cl-diffusion-model"


def train_dm(ensemble, out, settings: CLDiffusionSettings, seed: int = 0) -> Path:
    """Train on the CL ensemble file and write the EMA network with its settings (torch file)."""
    cl = read_cl_ensemble(ensemble)
    shape = field_shape(cl["model"])
    print(f"cl-train: {cl['z'].shape[0] * cl['z'].shape[1]} CL configurations of {cl['attrs']['model']}",
          file=sys.stderr)
    net, losses = train_cl_diffusion(cl["z"], settings, seed=seed, field_shape=shape)
    tail = losses[-100:]
    io.save_torch_atomic({"kind": NETWORK_KIND, "state_dict": net.state_dict(), "dim": net.dim,
                          "field_shape": list(shape), "settings": settings.asdict(),
                          "model": cl["model"].params(), "trained_on": str(ensemble),
                          "final_loss": float(sum(tail) / len(tail)), "seed": int(seed)}, out)
    return Path(out)


def load_dm(path) -> tuple[ScoreMLP, dict]:
    saved = io.load_torch(path, "CL diffusion model")
    if not isinstance(saved, dict) or saved.get("kind") != NETWORK_KIND:
        raise CampaignError(f"{path} is not a diffusion model of a CL ensemble (campaign cl-train)")
    settings = CLDiffusionSettings(**saved["settings"])
    net = ScoreMLP(1.0, settings.hidden, settings.depth, dim=int(saved["dim"]))
    net.load_state_dict(saved["state_dict"])
    return net, saved


def sample_dm(network, out, n_samples: int, seed: int = 0) -> Path:
    """n_samples independent DM draws, written in the CL layout (algorithm diffusion-model)."""
    from .models import model_from_params

    if int(n_samples) < 1:
        raise CampaignError(f"n_samples must be >= 1, got {n_samples}")
    net, saved = load_dm(network)
    settings = CLDiffusionSettings(**saved["settings"])
    model = model_from_params(saved["model"])
    z = torch.from_numpy(sample_cl_diffusion(net, int(n_samples), settings, seed=seed,
                                             field_shape=tuple(saved["field_shape"])))
    stored = {**{f"dm_{k}": v for k, v in settings.asdict().items()}, "dm_n_samples": int(n_samples),
              "dm_seed": int(seed), "dm_final_loss": saved["final_loss"]}
    result = {"z": z[None], "drift_abs": drift_magnitude(model.drift(z))[None],
              "time": torch.zeros(1, dtype=torch.float64)}
    return write_cl_ensemble(out, model, stored, result, algorithm=DM_ALGORITHM,
                             extra_attrs={"independent": True, "trained_on": saved["trained_on"],
                                          "network": str(network)})


def measure_point(cl_file, dm_file, out) -> dict:
    """JSON: the CL verdict (observables vs exact, drift tail) and the DM's observables."""
    from .job import measure

    res = {"cl": measure(cl_file), "dm": measure(dm_file)}
    with io.atomic_path(Path(out), suffix=".json") as tmp:
        tmp.write_text(json.dumps(res, indent=1, default=str))
    return res


def point_figure(cl_file, dm_file, out, title: str = "") -> Path:
    """CL histogram, DM draws and (Gaussian) the exact P(x, y) side by side.  For a lattice
    field the panels pool every component phi_{t,a}: by translation and O(2) invariance they
    share one marginal P(x, y)."""
    from .exact import gaussian_density
    from .figures import plot_cl_distribution
    from .models import Gaussian

    cl, dm = read_cl_ensemble(cl_file), read_cl_ensemble(dm_file)
    model = cl["model"]
    dens = (lambda x, y: gaussian_density(model.sigma, x, y)) if isinstance(model, Gaussian) else None
    note = f"sigma_min = {dm['attrs'].get('dm_sigma_min', math.nan):g}"
    if field_shape(model):
        title = f"{title} (one field component)"
    return plot_cl_distribution(out, cl["z"], dm["z"], dens, title=title, dm_note=note)


CSV_FIELDS = ("point", "seed", "observable", "exact_re", "exact_im", "cl_re", "cl_re_err", "cl_im", "cl_im_err",
              "dm_re", "dm_re_err", "dm_im", "dm_im_err", "cl_pull_re", "cl_pull_im", "dm_pull_re", "dm_pull_im",
              "dm_vs_cl_re", "dm_vs_cl_im", "cl_correct", "cl_statement")


def moments_table(summaries: dict, out) -> Path:
    """CSV, one row per (point, seed, observable): exact, CL and DM with errors, pulls against
    the exact value, and the DM - CL difference in combined standard errors.
    ``summaries``: {(point, seed): measure_point JSON path}."""
    rows = []
    for (point, seed), path in summaries.items():
        res = json.loads(Path(path).read_text())
        cl, dm = res["cl"], res["dm"]
        for key, c in cl["moments"].items():
            d = dm["moments"][key]
            diffs = [(d[p]["value"] - c[p]["value"]) / math.hypot(d[p]["error"], c[p]["error"])
                     for p in ("re", "im")]
            rows.append(dict(zip(CSV_FIELDS, (
                point, seed, key if not key.isdigit() else f"z^{key}", c["exact_re"], c["exact_im"],
                c["re"]["value"], c["re"]["error"], c["im"]["value"], c["im"]["error"],
                d["re"]["value"], d["re"]["error"], d["im"]["value"], d["im"]["error"],
                c["pull_re"], c["pull_im"], d["pull_re"], d["pull_im"], *diffs, cl["correct"], cl["statement"]))))
    with io.atomic_path(Path(out), suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return Path(out)
