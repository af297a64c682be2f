"""Run files of the weights campaign (HDF5), written atomically with provenance, after the
conventions of campaign.io (which they reuse: ``atomic_path``, ``provenance``).

Run file (one per (model, lr, batch size, seed)):
  step            int (n_log,)    optimiser step of each snapshot (0 = initialisation)
  loss            float (n_log,)  mini-batch loss, mean over replicas and over the steps
                                  since the previous snapshot (NaN at step 0)
  spectra/<name>  float (n_log, R, k) sorted eigenvalues of one matrix of each of the R
                                  replicas at each snapshot
  attrs           format, model, lr, batch_size, seed, steps, log_every, optimizer,
                  settings (JSON), theory (JSON, campaign.weights.models), evaluation
                  (JSON), wall_time_s, and provenance (created, code_commit, ...)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CampaignError
from ..io import atomic_path, provenance

RUN_FORMAT = "campaign-weights-run"
JSON_ATTRS = ("settings", "theory", "evaluation")


class RunFileError(CampaignError):
    """A missing, truncated or foreign run file."""


@dataclass
class Run:
    attrs: dict
    step: np.ndarray
    loss: np.ndarray
    spectra: dict = field(default_factory=dict)
    path: str | None = None

    @property
    def theory(self) -> dict:
        return self.attrs.get("theory") or {}


def _attr(v):
    if v is None:
        return "none"
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_run(path: str | os.PathLike, step, loss, spectra: dict, attrs: dict) -> Path:
    """Write a run file atomically (it appears under its name only once complete)."""
    import h5py

    step = np.asarray(step, dtype=np.int64)
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("step", data=step)
            f.create_dataset("loss", data=np.asarray(loss, dtype=np.float64))
            g = f.create_group("spectra")
            for name, values in spectra.items():
                values = np.asarray(values, dtype=np.float64)
                if values.shape[0] != len(step):
                    raise ValueError(f"spectrum {name}: {values.shape[0]} snapshots for {len(step)} steps")
                g.create_dataset(name, data=values, compression="gzip", compression_opts=1, shuffle=True)
            for key, value in {**provenance(), "format": RUN_FORMAT, **attrs}.items():
                f.attrs[key] = json.dumps(value) if key in JSON_ATTRS else _attr(value)
    return path


def read_run_attrs(path: str | os.PathLike) -> dict:
    """The attributes of a run file, without its data."""
    return read_run(path, spectra=()).attrs


def read_run(path: str | os.PathLike, spectra=None) -> Run:
    """Read a run file; ``spectra``: names to load (None: all)."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise RunFileError(f"run file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise RunFileError(f"{path} is not a readable HDF5 file (truncated or corrupt?): {exc}") from None
    with f:
        if f.attrs.get("format") != RUN_FORMAT:
            raise RunFileError(f"{path} is not a weights run file")
        attrs = {}
        for k, v in f.attrs.items():
            v = v.item() if isinstance(v, np.generic) else v
            attrs[k] = json.loads(v) if k in JSON_ATTRS else v
        names = list(f["spectra"]) if spectra is None else list(spectra)
        missing = [n for n in names if n not in f["spectra"]]
        if missing:
            raise RunFileError(f"{path} has no spectra {missing} (it has {list(f['spectra'])})")
        return Run(attrs=attrs, step=f["step"][()], loss=f["loss"][()],
                   spectra={n: f["spectra"][n][()] for n in names}, path=str(path))
