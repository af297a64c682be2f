"""Files: HDF5 ensembles, checkpoints, provenance.  The only module that touches HDF5 and
model files.

Ensemble/sample HDF5 layout (docs/conventions.md):
  links    complex (n_configs, 2, L, L, N, N), one chunk per configuration, uncompressed
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
import errno
import math
import os
import shutil
import platform
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .device import DTYPES, real_dtype
from .errors import CampaignError

REQUIRED_ATTRS = ("group", "beta", "L", "algorithm")
# largest |U U^dag - 1| (and |det U - 1| for SU(2)) accepted on reading, per stored precision:
# far above what HMC, the samplers and their re-normalisation leave (1e-13, 1e-6), far below
# any real damage (links times 2: 3; a flipped sign bit in a mantissa: 1e-3 and more)
UNITARITY_TOLERANCE = {np.dtype(np.complex128): 1e-8, np.dtype(np.complex64): 1e-3}
DISK_NEARLY_FULL = 1 << 20  # bytes free below which a failed write is blamed on the disk
VALIDATE_CHUNK = 512  # configurations checked at a time (bounded extra memory)


class EnsembleFileError(CampaignError):
    """A missing, truncated, foreign or mismatched ensemble file."""


# ------------------------------------------------------------------ atomic writes
# fault-injection tests only (tests/test_faults_kill.py): "STEP:FILE" makes a job wait at
# STEP (e.g. "write-state.pt", campaign.jobs' "before-delete") while FILE exists, so a test
# can kill -9 it there, or keep it alive as an orphan, at a moment it chooses
TEST_HOLD_ENV = "CAMPAIGN_TEST_HOLD"


def hold_for_test(step: str) -> None:
    """Wait here while the file named by ``CAMPAIGN_TEST_HOLD=STEP:FILE`` exists, after
    creating ``FILE.reached`` (ten minutes at most: a forgotten test process must not hang)."""
    spec = os.environ.get(TEST_HOLD_ENV, "")
    if not spec.startswith(step + ":"):
        return
    hold = Path(spec[len(step) + 1:])
    Path(f"{hold}.reached").touch()
    deadline = time.monotonic() + 600
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


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
        hold_for_test(f"write-{path.name}")  # written in full, not yet in place
        # mkstemp creates 0600; outputs are shared with other users and jobs
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if _disk_full(exc, path.parent):
            raise CampaignError(f"disk full: cannot write {path} (no space left on its file system); "
                                "free some space and run again, the checkpoint is kept") from None
        raise


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """Did this write fail for lack of space?  torch.save and h5py do not always keep the
    errno (torch: "unexpected pos ..."), so a failed write on a (nearly) full file system counts."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(exc, (OSError, RuntimeError)):
        return False
    if "No space left" in str(exc) or "errno = 28" in str(exc):
        return True
    try:
        return shutil.disk_usage(folder).free < DISK_NEARLY_FULL
    except OSError:
        return False


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


def checksum_options(value: np.ndarray) -> dict:
    """HDF5 fletcher32 checksum for every dataset that can carry one (it needs chunks, so
    not scalars or empty arrays; strings neither): a flipped bit on disk then fails the read."""
    if value.ndim >= 1 and value.size and value.dtype.kind in "biufc":
        return {"fletcher32": True}
    return {}


@dataclass(frozen=True)
class RowBlocks:
    """Configurations that arrive block by block (their first axes concatenated) instead of
    as one array: a large HMC ensemble is converted to links and written one block at a time,
    so the links of the whole ensemble never exist in memory at once (U(1), L = 32, 16000
    configurations: 256 MB fewer, and the conversion runs in cache)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    blocks: object  # an iterable of arrays or tensors with shape[1:] as their trailing axes

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def concatenated(cls, arrays, n: int | None = None) -> "RowBlocks":
        """The rows of ``arrays`` (tensors or arrays with the same trailing axes) one after
        another, the first ``n`` of them (default: all), without the copy that
        concatenating them would make."""
        arrays = [a if torch.is_tensor(a) else np.asarray(a) for a in arrays]
        total = sum(a.shape[0] for a in arrays)
        n = total if n is None else n
        if not 0 <= n <= total:
            raise ValueError(f"{n} rows asked of {total}")
        first = arrays[0]
        dtype = first.detach().cpu()[:0].numpy().dtype if torch.is_tensor(first) else first.dtype

        def blocks():
            left = n
            for a in arrays:
                if left <= 0:
                    return
                yield a[:left]
                left -= a.shape[0]

        return cls((n, *first.shape[1:]), dtype, blocks())


def write_ensemble(
    path: str | os.PathLike,
    links,
    attrs: dict,
    history: dict | None = None,
    chain=None,
    step=None,
    datasets: dict | None = None,
) -> Path:
    """Write an ensemble atomically (the file appears only once complete).  ``links``: an
    array or tensor, or ``RowBlocks``.  ``datasets``: further per-configuration arrays (first
    axis n_configs), e.g. ``log_weights``."""
    if not isinstance(links, RowBlocks):
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
        _write_configurations(tmp, "links", links, chain, step, history, all_attrs, datasets)
    return path


def _write_configurations(tmp: Path, name: str, rows: np.ndarray | RowBlocks, chain: np.ndarray, step: np.ndarray,
                          history: dict | None, attrs: dict, datasets: dict | None = None) -> None:
    """The HDF5 layout shared by gauge and scalar ensembles: ``name`` (one chunk per
    configuration), chain, step, further per-configuration datasets, history/, attrs; every
    numeric dataset with a fletcher32 checksum.  No compression: field values are close to
    random bits, so gzip saved 8% of the file at 11x the write time (U(1) L = 32: 1.6 against
    0.14 ms per configuration), a third of an HMC trajectory at the campaign's spacing."""
    import h5py

    n = rows.shape[0]
    with h5py.File(tmp, "w") as f:
        layout = {"chunks": (1, *rows.shape[1:]) if n else None, "fletcher32": bool(n)}
        if isinstance(rows, RowBlocks):
            _write_blocks(f.create_dataset(name, shape=rows.shape, dtype=rows.dtype, **layout), rows)
        else:
            f.create_dataset(name, data=rows, **layout)
        f.create_dataset("chain", data=chain, **checksum_options(chain))
        f.create_dataset("step", data=step, **checksum_options(step))
        for key, value in (datasets or {}).items():
            value = np.asarray(value)
            if value.shape[:1] != (n,):
                raise ValueError(f"dataset {key!r} has shape {value.shape}, expected first axis {n}")
            f.create_dataset(key, data=value, **checksum_options(value))
        h = f.create_group("history")
        for key, value in (history or {}).items():
            value = np.asarray(value)
            h.create_dataset(key, data=value, **checksum_options(value))
        for key, value in attrs.items():
            f.attrs[key] = _clean_attr(value)


def _write_blocks(dataset, rows: RowBlocks) -> None:
    """Fill dataset from rows' blocks in order; a wrong total is refused (never a file with
    unwritten rows, which HDF5 would read back as zeros)."""
    start = 0
    for block in rows.blocks:
        block = block.detach().cpu().numpy() if torch.is_tensor(block) else np.asarray(block)
        if block.shape[1:] != rows.shape[1:] or start + block.shape[0] > rows.shape[0]:
            raise ValueError(f"block of shape {block.shape} at row {start} does not fit rows of shape {rows.shape}")
        dataset[start:start + block.shape[0]] = block
        start += block.shape[0]
    if start != rows.shape[0]:
        raise ValueError(f"blocks gave {start} rows, expected {rows.shape[0]}")


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
        group_obj = _group_of(attrs, path)
        lat = _lattice_size(attrs, path)
        if not hasattr(dset, "shape"):  # an HDF5 group named "links"
            raise EnsembleFileError(f"{path}: 'links' is not a dataset")
        shape = dset.shape
        if len(shape) != 6 or shape[1:4] != (2, lat, lat):
            raise EnsembleFileError(f"{path}: links shape {shape} does not match (n, 2, L, L, N, N) with L={lat}")
        if shape[4:] != (group_obj.N, group_obj.N):
            raise EnsembleFileError(f"{path}: links are {shape[4]}x{shape[5]} matrices, group {group_obj.name} "
                                    f"has N={group_obj.N}")
        if dset.dtype not in UNITARITY_TOLERANCE:
            raise EnsembleFileError(f"{path}: links have dtype {dset.dtype}, expected complex64 or complex128 "
                                    "(gauge links are unitary complex matrices)")
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
        start = (configs.start or 0) if isinstance(configs, slice) else 0
        validate_links(links, group_obj, f"{path}", first=start)
        if dtype is not None:
            from .groups import complex_dtype

            links = links.to(complex_dtype(dtype))
        if device is not None:
            links = links.to(device)
    attrs.setdefault("n_configs", shape[0])
    return Ensemble(links=links, attrs=attrs, history=history, chain=chain, step=step, path=str(path),
                    log_weights=log_weights, weight_block=weight_block)


def _group_of(attrs: dict, path):
    from .groups import get_group

    try:
        return get_group(str(attrs["group"]))
    except ValueError as exc:
        raise EnsembleFileError(f"{path}: {exc}") from None


def _lattice_size(attrs: dict, path) -> int:
    try:
        lat = int(attrs["L"])
    except (TypeError, ValueError):
        lat = 0
    if lat < 2 or lat != attrs["L"]:
        raise EnsembleFileError(f"{path}: attribute L={attrs['L']!r} is not a lattice size")
    return lat


def validate_links(links: torch.Tensor, group, where: str, first: int = 0) -> None:
    """Refuse links that cannot be gauge fields of ``group``: non-finite, not unitary within
    the tolerance of their precision (UNITARITY_TOLERANCE), for SU(2) det != 1.  One line
    naming the first bad configuration; checked in chunks, so memory stays bounded."""
    tol = UNITARITY_TOLERANCE.get(np.dtype(str(links.dtype).replace("torch.", "")))
    if tol is None:
        raise EnsembleFileError(f"{where}: links have dtype {links.dtype}, expected complex64 or complex128")
    eye = torch.eye(group.N, dtype=links.dtype, device=links.device)
    for a in range(0, links.shape[0], VALIDATE_CHUNK):
        U = links[a:a + VALIDATE_CHUNK]
        finite = torch.isfinite(torch.view_as_real(U)).flatten(1).all(1)
        if not bool(finite.all()):
            k = a + first + int(torch.nonzero(~finite)[0])
            raise EnsembleFileError(f"{where}: configuration {k} holds non-finite (nan or inf) links")
        dev = (U @ U.conj().transpose(-1, -2) - eye).abs().flatten(1).amax(1)
        if group.special:
            dev = torch.maximum(dev, (torch.linalg.det(U) - 1).abs().flatten(1).amax(1))
        if bool((dev > tol).any()):
            k = int(torch.nonzero(dev > tol)[0])
            what = "unitary with det 1" if group.special else "unitary"
            raise EnsembleFileError(f"{where}: configuration {a + first + k} is not {what} "
                                    f"(deviation {float(dev[k]):.3g} > tolerance {tol:g} for {links.dtype})")


# ------------------------------------------------------------- scalar-field ensembles
SCALAR_REQUIRED_ATTRS = ("theory", "kappa", "lam", "shape", "algorithm", "chains")


def write_scalar_ensemble(path: str | os.PathLike, phi, attrs: dict, history: dict | None = None,
                          step=None) -> Path:
    """Write a scalar-field (phi^4) ensemble atomically.  ``phi``: (configs_per_chain,
    chains, *lattice); stored like the gauge ensembles, measurement-major and chain-minor:
      phi      float (configs_per_chain * chains, *lattice), one chunk per configuration
      chain    int   which Markov chain produced each configuration
      step     int   its trajectory index within that chain
      history/ per-trajectory diagnostics (trajectories, chains)
      attrs    theory, kappa, lam, shape, algorithm, chains, ... and provenance()."""
    phi = phi.detach().cpu().numpy() if torch.is_tensor(phi) else np.asarray(phi)
    if phi.ndim < 2:
        raise ValueError(f"phi must have shape (configs_per_chain, chains, *lattice), got {phi.shape}")
    n, chains = phi.shape[:2]
    rows = phi.reshape(n * chains, *phi.shape[2:])
    step = np.arange(1, n + 1, dtype=np.int64) if step is None else np.asarray(step, dtype=np.int64)
    all_attrs = {**provenance(), **attrs, "chains": chains, "n_configs": n * chains}
    for key in SCALAR_REQUIRED_ATTRS:
        if key not in all_attrs:
            raise ValueError(f"scalar ensemble attrs lack {key!r}")
    path = Path(path)
    with atomic_path(path, suffix=".h5") as tmp:
        _write_configurations(tmp, "phi", rows, np.tile(np.arange(chains, dtype=np.int64), n),
                              np.repeat(step, chains), history, all_attrs)
    return path


def read_scalar_ensemble(path: str | os.PathLike) -> dict:
    """{"phi": tensor (configs_per_chain, chains, *lattice), "step": (configs_per_chain,),
    "history": {...}, "attrs": {...}} of a file from ``write_scalar_ensemble``; one-line
    ``EnsembleFileError`` for anything else."""
    path = Path(path)
    with _open_h5(path) as f:
        missing = [k for k in SCALAR_REQUIRED_ATTRS if k not in f.attrs]
        if "phi" not in f or missing:
            what = "dataset 'phi'" if "phi" not in f else f"attributes {missing}"
            raise EnsembleFileError(f"{path} is not a campaign scalar-field ensemble (no {what})")
        attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
        try:
            rows = f["phi"][()]
            step = f["step"][()]
            history = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
        except (OSError, KeyError) as exc:
            raise EnsembleFileError(f"{path} is truncated or corrupt: {exc}") from None
    chains = int(attrs["chains"])
    if rows.shape[0] % chains:
        raise EnsembleFileError(f"{path}: {rows.shape[0]} configurations do not fill {chains} chains")
    phi = torch.from_numpy(rows).reshape(rows.shape[0] // chains, chains, *rows.shape[1:])
    return {"phi": phi, "step": step[::chains], "history": history, "attrs": attrs}


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
    from .groups import get_group

    try:
        get_group(str(obj.get("group")))
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    try:
        beta0 = float(obj.get("beta0"))
    except (TypeError, ValueError):
        beta0 = math.nan
    if not (math.isfinite(beta0) and beta0 >= 0):  # 0: trained on Haar (strong coupling) data
        raise ModelFileError(f"{path}: model beta0 must be a finite number >= 0, got {obj.get('beta0')!r}")
    bad = [k for k, v in (obj.get("state_dict") or {}).items()
           if torch.is_tensor(v) and (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelFileError(f"{path}: the model's weights are not finite ({', '.join(bad[:3])}"
                             f"{', ...' if len(bad) > 3 else ''}); it diverged in training")
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
            if dtype not in DTYPES:
                raise ModelFileError("dtype must be float64 or float32")
            dtype = real_dtype(dtype)
        model = model.to(dtype)
    if device is not None:
        model = model.to(device)
    model.meta = obj.get("meta", {})
    model.eval()
    return model
