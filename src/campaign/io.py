"""Files: HDF5 ensembles, checkpoints, provenance.  The only module that touches HDF5 and
model files.

Ensemble/sample HDF5 layout (DESIGN.md):
  links    complex (n_configs, 2, L, L, N, N), one chunk per configuration, compressed
  chain    int (n_configs,)  which Markov chain (or independent stream) produced it
  step     int (n_configs,)  trajectory / step index within that chain
  history/ per-trajectory or per-level diagnostics (arrays, first axis = time)
  log_weights   float64 (n_configs,)  weighted samplers only: log importance weights
  weight_block  int (n_configs,)      ... and the independent block (batch) of each sample
  attrs    group, beta, L, algorithm, seed, created, campaign_version, ... parameters
Configurations are stored in production order: measurement-major, chain-minor.
"""

from __future__ import annotations

import contextlib
import functools
import datetime as _dt
import os
import platform
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .errors import CampaignError

REQUIRED_ATTRS = ("group", "beta", "L", "algorithm")


class EnsembleFileError(CampaignError):
    """A missing, truncated, foreign or mismatched ensemble file."""


# ------------------------------------------------------------------ atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``path``; move it into place only on success, so a
    killed job never leaves a half-written output under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        # mkstemp creates 0600; outputs are shared with other users and jobs
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_torch_atomic(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike, what: str = "checkpoint"):
    path = Path(path)
    if not path.exists():
        raise CampaignError(f"{what} file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated / foreign pickle
        raise CampaignError(f"cannot read {what} file {path}: {type(exc).__name__}: {exc}") from None


# -------------------------------------------------------------------- provenance
def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5,
        )
        if out.returncode == 0:
            dirty = subprocess.run(
                ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=5,
            ).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    return lines[0] if out.returncode == 0 and lines else None


@functools.lru_cache(maxsize=1)
def cluster_facts() -> dict:
    """Where a job ran, as far as it can tell: SLURM job id and node, GPU model, CUDA
    runtime and driver version.  Only the facts present (none on a laptop without SLURM
    or GPU); the same for the life of the process."""
    facts = {}
    for key, var in (("slurm_job_id", "SLURM_JOB_ID"), ("slurm_array_task_id", "SLURM_ARRAY_TASK_ID"),
                     ("slurm_node", "SLURMD_NODENAME")):
        if os.environ.get(var):
            facts[key] = os.environ[var]
    if torch.cuda.is_available():
        facts["gpu_model"] = torch.cuda.get_device_name(0)
        facts["cuda_version"] = str(torch.version.cuda)
        driver = _nvidia_driver()
        if driver:
            facts["cuda_driver_version"] = driver
    return facts


def provenance() -> dict:
    """Who, when, where and with what code an output was made."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "campaign_version": __version__,
        "code_commit": _git_commit(),
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
        "host": socket.gethostname(),
        **cluster_facts(),
    }


# --------------------------------------------------------------------- ensembles
@dataclass
class Ensemble:
    links: torch.Tensor | None
    attrs: dict
    history: dict = field(default_factory=dict)
    chain: np.ndarray | None = None
    step: np.ndarray | None = None
    path: str | None = None
    log_weights: np.ndarray | None = None  # weighted samplers: log importance weights
    weight_block: np.ndarray | None = None  # ... and the independent block of each sample

    @property
    def group(self) -> str:
        return str(self.attrs["group"])

    @property
    def beta(self) -> float:
        return float(self.attrs["beta"])

    @property
    def L(self) -> int:
        return int(self.attrs["L"])

    @property
    def n_configs(self) -> int:
        return int(self.attrs.get("n_configs", len(self.chain) if self.chain is not None else 0))

    @property
    def n_chains(self) -> int:
        return int(len(np.unique(self.chain))) if self.chain is not None and len(self.chain) else 1


def _attr_value(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _clean_attr(v):
    if v is None:
        return "none"
    if isinstance(v, str):  # str subclasses (torch's version string) confuse h5py
        return str.__str__(v)
    if isinstance(v, (list, tuple)):
        return np.asarray(v)
    if isinstance(v, dict):
        import json

        return json.dumps(v)
    return v


def write_ensemble(
    path: str | os.PathLike,
    links,
    attrs: dict,
    history: dict | None = None,
    chain=None,
    step=None,
    datasets: dict | None = None,
) -> Path:
    """Write an ensemble atomically (the file appears only once complete).  ``datasets``:
    further per-configuration arrays (first axis n_configs), e.g. ``log_weights``."""
    import h5py

    links = links.detach().cpu().numpy() if torch.is_tensor(links) else np.asarray(links)
    if links.ndim != 6 or links.shape[1] != 2 or links.shape[2] != links.shape[3]:
        raise ValueError(f"links must have shape (n, 2, L, L, N, N), got {links.shape}")
    n = links.shape[0]
    chain = np.zeros(n, dtype=np.int64) if chain is None else np.asarray(chain, dtype=np.int64)
    step = np.arange(n, dtype=np.int64) if step is None else np.asarray(step, dtype=np.int64)
    all_attrs = {**provenance(), **attrs, "n_configs": n}
    for key in REQUIRED_ATTRS:
        if key not in all_attrs:
            raise ValueError(f"ensemble attrs lack {key!r}")
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset(
                "links", data=links, chunks=(1, *links.shape[1:]) if n else None,
                compression="gzip", compression_opts=1, shuffle=True,
            )
            f.create_dataset("chain", data=chain)
            f.create_dataset("step", data=step)
            for key, value in (datasets or {}).items():
                value = np.asarray(value)
                if value.shape[:1] != (n,):
                    raise ValueError(f"dataset {key!r} has shape {value.shape}, expected first axis {n}")
                f.create_dataset(key, data=value)
            h = f.create_group("history")
            for key, value in (history or {}).items():
                h.create_dataset(key, data=np.asarray(value))
            for key, value in all_attrs.items():
                f.attrs[key] = _clean_attr(value)
    return path


def _open_h5(path: Path):
    import h5py

    if not path.exists():
        raise EnsembleFileError(f"ensemble file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip().rstrip(",") or type(exc).__name__
        raise EnsembleFileError(f"{path} is not a readable HDF5 ensemble (truncated or corrupt?): {reason}") from None


def read_ensemble_attrs(path: str | os.PathLike) -> dict:
    path = Path(path)
    with _open_h5(path) as f:
        _check_layout(f, path)
        return {k: _attr_value(v) for k, v in f.attrs.items()}


def _check_layout(f, path: Path) -> None:
    missing = [k for k in REQUIRED_ATTRS if k not in f.attrs]
    if "links" not in f or missing:
        what = "dataset 'links'" if "links" not in f else f"attributes {missing}"
        raise EnsembleFileError(f"{path} is not a campaign ensemble (no {what})")


def read_ensemble(
    path: str | os.PathLike,
    *,
    group: str | None = None,
    L: int | None = None,
    load_links: bool = True,
    configs: slice | None = None,
    device=None,
    dtype=None,
) -> Ensemble:
    """Read an ensemble, checking that it is one of ours and, if given, matches ``group``
    and ``L``.  Raises EnsembleFileError with a one-line message otherwise."""
    path = Path(path)
    with _open_h5(path) as f:
        _check_layout(f, path)
        attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        if group is not None and str(attrs["group"]) != str(group):
            raise EnsembleFileError(f"{path} holds group {attrs['group']!r}, expected {group!r}")
        if L is not None and int(attrs["L"]) != int(L):
            raise EnsembleFileError(f"{path} has L={attrs['L']}, expected L={L}")
        dset = f["links"]
        shape = dset.shape
        lat = int(attrs["L"])
        if len(shape) != 6 or shape[1:4] != (2, lat, lat):
            raise EnsembleFileError(f"{path}: links shape {shape} does not match L={lat}")
        try:
            sel = configs if configs is not None else slice(None)
            links = torch.from_numpy(dset[sel]) if load_links else None
            chain = f["chain"][sel] if "chain" in f else np.zeros(shape[0], dtype=np.int64)
            step = f["step"][sel] if "step" in f else np.arange(shape[0])
            history = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
            log_weights = f["log_weights"][sel].astype(np.float64) if "log_weights" in f else None
            weight_block = f["weight_block"][sel] if "weight_block" in f else None
        except (OSError, KeyError) as exc:
            raise EnsembleFileError(f"{path} is truncated or corrupt: {exc}") from None
    if links is not None:
        if dtype is not None:
            from .groups import complex_dtype

            links = links.to(complex_dtype(dtype))
        if device is not None:
            links = links.to(device)
    attrs.setdefault("n_configs", shape[0])
    return Ensemble(links=links, attrs=attrs, history=history, chain=chain, step=step, path=str(path),
                    log_weights=log_weights, weight_block=weight_block)


# ------------------------------------------------------------------------ models
MODEL_FORMAT = "campaign-score-model"
MODEL_FORMAT_VERSION = 1


class ModelFileError(CampaignError):
    """A missing, truncated, foreign or incompatible model file."""


def save_model(path: str | os.PathLike, model, meta: dict | None = None) -> Path:
    """Write a ``campaign.diffusion.ScoreModel`` atomically: weights, architecture, group,
    beta0, L0, noise range and ``meta`` (training settings, provenance, ...), everything
    ``load_model`` needs to rebuild it."""
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        **model.config(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": {**provenance(), **(meta or {})},
    }
    path = Path(path)
    save_torch_atomic(payload, path)
    return path


def load_model(path: str | os.PathLike, device=None, dtype=None):
    """Rebuild a saved score model (eval mode; ``meta`` attribute holds the saved metadata).
    ``dtype``: "float64"/"float32" or a torch dtype (default: as saved)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    try:
        obj = load_torch(path, what="model")
    except CampaignError as exc:
        raise ModelFileError(str(exc)) from None
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{path} is not a campaign score model file")
    if int(obj.get("format_version", -1)) > MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {obj.get('format_version')}, this campaign reads up to {MODEL_FORMAT_VERSION}"
        )
    from .diffusion import ScoreModel

    try:
        model = ScoreModel(obj["group"], obj["beta0"], obj["L0"], obj["sigma_min"], obj["sigma_max"], arch=obj["arch"])
        state = obj["state_dict"]
        saved_dtype = next(v.dtype for v in state.values() if v.is_floating_point())
        model = model.to(saved_dtype)
        model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, StopIteration, TypeError) as exc:
        raise ModelFileError(f"{path} is a damaged or incompatible model file: {type(exc).__name__}: {exc}") from None
    if dtype is not None:
        if isinstance(dtype, str):
            dtype = {"float64": torch.float64, "float32": torch.float32}.get(dtype)
            if dtype is None:
                raise ModelFileError("dtype must be float64 or float32")
        model = model.to(dtype)
    if device is not None:
        model = model.to(device)
    model.meta = obj.get("meta", {})
    model.eval()
    return model
