"""CL ensembles in the project's HDF5 layout (campaign.io conventions: atomic write,
provenance attributes, fletcher32 checksums, measurement-major and chain-minor rows):

  z          float64 (n_meas * n_chains, 2)  columns x = Re z, y = Im z
             (lattice models: (n_meas * n_chains, *field_shape, 2), theory THEORY_LATTICE)
  drift_abs  float64 (n_meas * n_chains,)    |K(z)| at the same time (boundary-term criterion)
  chain      int     which chain produced the row
  step       int     measurement index within the chain (1, 2, ...)
  history/langevin_time  float64 (n_meas,)   Langevin time of each measurement
  attrs      theory = "complex-langevin-0d", model parameters (model.params()), every
             CLSettings field, k_ref, n_steps, chains, n_configs, algorithm, provenance
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import io
from ..io import EnsembleFileError
from .models import model_from_params

THEORY = "complex-langevin-0d"
THEORY_LATTICE = "complex-langevin-lattice"
ALGORITHM = "complex-langevin-heun-adaptive"
DM_ALGORITHM = "diffusion-model"  # independent draws of a DM trained on a CL ensemble


def write_cl_ensemble(path: str | os.PathLike, model, settings, result: dict, algorithm: str = ALGORITHM,
                      extra_attrs: dict | None = None) -> Path:
    """``settings``: a CLSettings (stored as cl_* attributes) or, for samples that are not a CL
    run, any dict of settings (stored under their own names); ``result``: {"z": complex
    (n_meas, chains), "drift_abs", "time": (n_meas,), "k_ref", "n_steps"}."""
    import h5py

    z = result["z"].numpy() if torch.is_tensor(result["z"]) else np.asarray(result["z"])
    k = result["drift_abs"].numpy() if torch.is_tensor(result["drift_abs"]) else np.asarray(result["drift_abs"])
    n_meas, chains, *field_shape = z.shape
    xy = np.stack([z.real, z.imag], axis=-1).reshape(n_meas * chains, *field_shape, 2)
    stored = ({f"cl_{k_}": v for k_, v in settings.asdict().items()} if hasattr(settings, "asdict")
              else dict(settings))
    attrs = {**io.provenance(), "theory": THEORY_LATTICE if field_shape else THEORY, "algorithm": algorithm, **model.params(), **stored,
             "k_ref": float(result.get("k_ref", float("nan"))), "n_steps": int(result.get("n_steps", 0)),
             "chains": chains, "n_configs": n_meas * chains, **(extra_attrs or {})}
    path = Path(path)
    with io.atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("z", data=xy, fletcher32=bool(xy.size), chunks=True if xy.size else None)
            f.create_dataset("drift_abs", data=k.reshape(-1), **io.checksum_options(k.reshape(-1)))
            chain = np.tile(np.arange(chains, dtype=np.int64), n_meas)
            step = np.repeat(np.arange(1, n_meas + 1, dtype=np.int64), chains)
            f.create_dataset("chain", data=chain, **io.checksum_options(chain))
            f.create_dataset("step", data=step, **io.checksum_options(step))
            h = f.create_group("history")
            t = np.asarray(result["time"], dtype=np.float64)
            h.create_dataset("langevin_time", data=t, **io.checksum_options(t))
            for key, value in attrs.items():
                f.attrs[key] = io._clean_attr(value)
    return path


def read_cl_ensemble(path: str | os.PathLike) -> dict:
    """{"z": complex (n_meas, chains, *field_shape), "drift_abs": (n_meas, chains), "time": (n_meas,),
    "attrs": {...}, "model": Model}; one-line EnsembleFileError for anything else."""
    path = Path(path)
    with io._open_h5(path) as f:
        if f.attrs.get("theory") not in (THEORY, THEORY_LATTICE) or "z" not in f:
            raise EnsembleFileError(f"{path} is not a complex Langevin ensemble "
                                    f"(theory attribute {THEORY!r} and dataset 'z')")
        attrs = {k: io._attr_value(v) for k, v in f.attrs.items()}
        try:
            xy = f["z"][()]
            k = f["drift_abs"][()]
            t = f["history/langevin_time"][()]
        except (OSError, KeyError) as exc:
            raise EnsembleFileError(f"{path} is truncated or corrupt: {exc}") from None
    chains = int(attrs["chains"])
    if xy.ndim < 2 or xy.shape[-1] != 2 or xy.shape[0] % chains or k.shape != xy.shape[:1]:
        raise EnsembleFileError(f"{path}: datasets do not fit {chains} chains of (x, y) rows")
    n_meas = xy.shape[0] // chains
    z = (xy[..., 0] + 1j * xy[..., 1]).reshape(n_meas, chains, *xy.shape[1:-1])
    return {"z": z, "drift_abs": k.reshape(n_meas, chains), "time": t, "attrs": attrs,
            "model": model_from_params(attrs)}
