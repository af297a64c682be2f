"""The CL distribution P(x, y) side by side: CL histogram, diffusion-model samples and, where
known, the exact density (matplotlib, Agg backend; shared colour scale so the panels compare)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .. import io  # noqa: E402


def plot_cl_distribution(path, z_cl, z_dm=None, exact_density=None, title: str = "",
                         extent=None, bins: int = 60, dm_note: str = "") -> Path:
    """Write a figure with 2 or 3 panels of densities on the same (x, y) grid and colour scale:
    CL histogram, DM histogram (if ``z_dm``), exact ``exact_density(X, Y)`` (if given).
    ``extent``: (x0, x1, y0, y1), default the CL samples' 0.1%..99.9% range.  Written atomically."""
    z_cl = np.asarray(z_cl).reshape(-1)
    if extent is None:
        qx = np.quantile(z_cl.real, [1e-3, 1 - 1e-3])
        qy = np.quantile(z_cl.imag, [1e-3, 1 - 1e-3])
        pad_x, pad_y = 0.1 * (qx[1] - qx[0]), 0.1 * (qy[1] - qy[0]) + 1e-3
        extent = (qx[0] - pad_x, qx[1] + pad_x, qy[0] - pad_y, qy[1] + pad_y)
    xe = np.linspace(extent[0], extent[1], bins + 1)
    ye = np.linspace(extent[2], extent[3], bins + 1)

    def hist(z):
        h, _, _ = np.histogram2d(z.real, z.imag, bins=[xe, ye])
        cell = (xe[1] - xe[0]) * (ye[1] - ye[0])
        return h / (len(z) * cell)  # a density: comparable with the exact P(x, y)

    panels = [("complex Langevin", hist(z_cl))]
    if z_dm is not None:
        panels.append(("diffusion model" + (f" ({dm_note})" if dm_note else ""), hist(np.asarray(z_dm).reshape(-1))))
    if exact_density is not None:
        xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
        X, Y = np.meshgrid(xc, yc, indexing="ij")
        panels.append(("exact P(x, y)", exact_density(X, Y)))
    vmax = max(float(p.max()) for _, p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels) + 0.6, 3.0), sharey=True,
                             constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, (name, dens) in zip(axes, panels):
        im = ax.imshow(dens.T, origin="lower", extent=extent, aspect="auto", vmin=0, vmax=vmax, cmap="viridis")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x = Re z")
    axes[0].set_ylabel("y = Im z")
    fig.colorbar(im, ax=axes, shrink=0.9, label="density")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(path, suffix=path.suffix or ".png") as tmp:
        fig.savefig(tmp, format=(path.suffix.lstrip(".") or "png"), dpi=150)
    plt.close(fig)
    return path
