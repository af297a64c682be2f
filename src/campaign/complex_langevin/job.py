"""``campaign cl``: a CL ensemble written under ``campaign.jobs.ResumableJob`` (output lock,
no overwrite unless ``force``, fingerprinted checkpoint in ``OUT.parts/``).

The checkpoint holds the run state (z, Langevin time, K_ref, step count, generator state)
and the finished measurements in parts; it is refreshed every ``checkpoint_interval``
seconds.  A rerun after a kill resumes from it and writes exactly the ensemble of an
uninterrupted run (measurements land on fixed Langevin times and the generator state is
restored, so the continuation is bit-identical).  Thermalisation is not checkpointed (it is
one short block)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from .. import io
from ..errors import CampaignError
from ..preemption import CheckpointClock
from .langevin import CLSettings, CLState, initial_state, measure_block
from .store import write_cl_ensemble

STATE_FILE = "state.pt"


def generate_cl_ensemble(out, model, settings: CLSettings, checkpoint_interval: float = 60.0,
                         force: bool = False, progress: bool = False, on_measurement=None) -> Path:
    """Run CL for ``model`` and write ``out`` (HDF5, ``store.write_cl_ensemble``).
    ``on_measurement(k)``: called after measurement k is stored (tests use it to stop a run)."""
    from ..jobs import ResumableJob

    out = Path(out)
    fingerprint = {**model.params(), **settings.asdict()}
    label = f"cl {model.name}"
    with ResumableJob(out, fingerprint, force=force, label=label) as job:
        state, parts, n_done = _load(job.parts, fingerprint, label)
        if state is None:
            state = initial_state(model, settings)
            parts, n_done = [], 0
        pending = []
        clock = CheckpointClock(checkpoint_interval, label)
        while n_done < settings.n_meas:
            block = measure_block(model, state, settings, 1)
            pending.append(block)
            n_done += 1
            if progress and n_done % max(1, settings.n_meas // 10) == 0:
                print(f"{label}: {n_done}/{settings.n_meas} measurements, Langevin time {state.t:g}", file=sys.stderr)
            if n_done == settings.n_meas or clock.due():
                parts.append(_save(job.parts, state, pending, len(parts), fingerprint, n_done))
                pending = []
                if n_done < settings.n_meas:
                    clock.written()  # after a stop signal: raises Preempted
            if on_measurement is not None:
                on_measurement(n_done)
        blocks = [io.load_torch(p, "CL checkpoint part") for p in parts]
        result = {k: torch.cat([b[k] for b in blocks]) for k in ("z", "drift_abs", "time")}
        result.update(k_ref=state.k_ref, n_steps=state.n_steps)
        job.check_count(result["z"].shape[0], settings.n_meas, "measurements")
        write_cl_ensemble(out, model, settings, result)
        job.finish()
    return out


def _save(parts_dir: Path, state: CLState, pending: list[dict], index: int, fingerprint: dict,
          n_done: int) -> Path:
    part = {k: torch.cat([b[k] for b in pending]) for k in ("z", "drift_abs", "time")}
    path = parts_dir / f"part_{index:05d}.pt"
    io.save_torch_atomic(part, path)
    # the state names the parts it covers: a part written after the last state save (kill in
    # between) is ignored on resume and rewritten
    io.save_torch_atomic({"fingerprint": fingerprint, "z": state.z, "t": state.t, "k_ref": state.k_ref,
                          "n_steps": state.n_steps, "rng_state": state.rng_state, "n_parts": index + 1,
                          "n_done": n_done}, parts_dir / STATE_FILE)
    return path


def _load(parts_dir: Path, fingerprint: dict, label: str):
    path = parts_dir / STATE_FILE
    if not path.exists():
        return None, [], 0
    saved = io.load_torch(path, "CL checkpoint")
    if saved.get("fingerprint") != fingerprint:
        raise CampaignError(f"checkpoint {parts_dir} was made with different settings; delete it to start afresh")
    parts = [parts_dir / f"part_{k:05d}.pt" for k in range(int(saved["n_parts"]))]
    if not all(p.exists() for p in parts):
        print(f"{label}: note: checkpoint {parts_dir} lacks parts; starting afresh", file=sys.stderr)
        return None, [], 0
    state = CLState(z=saved["z"], t=float(saved["t"]), k_ref=float(saved["k_ref"]),
                    n_steps=int(saved["n_steps"]), rng_state=saved["rng_state"])
    print(f"{label}: resuming from {parts_dir} at measurement {saved['n_done']}", file=sys.stderr)
    return state, parts, int(saved["n_done"])


def train_and_sample(ensemble, out, dm_settings, n_samples: int = 10_000, seed: int = 0,
                     force: bool = False, progress: bool = False) -> Path:
    """Train a diffusion model on the CL ensemble file and write ``n_samples`` independent
    draws to ``out`` in the same layout (one row per draw: n_meas = 1, chains = n_samples,
    ``drift_abs`` = |K(z)| of the model at the draw), algorithm ``diffusion-model``.  Training
    takes seconds, so the job is not checkpointed, but it runs under ResumableJob (lock, no
    overwrite, input fingerprint)."""
    from ..jobs import ResumableJob
    from .diffusion import sample_cl_diffusion, train_cl_diffusion
    from .langevin import drift_magnitude, field_shape
    from .store import DM_ALGORITHM, read_cl_ensemble

    if int(n_samples) < 1:
        raise CampaignError(f"n_samples must be >= 1, got {n_samples}")
    out = Path(out)
    settings = {**{f"dm_{k}": v for k, v in dm_settings.asdict().items()}, "dm_n_samples": int(n_samples),
                "dm_seed": int(seed)}
    with ResumableJob(out, settings, {"CL ensemble": ensemble}, force=force, label="cl-dm") as job:
        cl = read_cl_ensemble(ensemble)
        model = cl["model"]
        if progress:
            print(f"cl-dm: training on {cl['z'].size} CL samples of {cl['attrs']['model']}", file=sys.stderr)
        shape = field_shape(model)
        net, losses = train_cl_diffusion(cl["z"], dm_settings, seed=seed, field_shape=shape)
        z = torch.from_numpy(sample_cl_diffusion(net, int(n_samples), dm_settings, seed=seed + 1,
                                                 field_shape=shape))
        result = {"z": z[None], "drift_abs": drift_magnitude(model.drift(z))[None],
                  "time": torch.zeros(1, dtype=torch.float64)}
        write_cl_ensemble(out, model, {**settings, "dm_final_loss": float(sum(losses[-100:]) / len(losses[-100:]))},
                          result, algorithm=DM_ALGORITHM,
                          extra_attrs={"independent": True, "trained_on": str(ensemble),
                                       "trained_on_sha256": job.fingerprint["inputs_sha256"]["CL ensemble"]})
        job.finish()
    return out


def measure(path, summary=None, figure=None, compare=None) -> dict:
    """Verdict and moments of a CL ensemble (chain statistics) or DM sample file (independent
    draws); optionally a JSON summary and the side-by-side figure (``compare``: a DM file
    drawn in the middle panel)."""
    import json

    from .diagnostics import compare as compare_exact
    from .diagnostics import independent_observable_summary, verdict
    from .exact import gaussian_density
    from .figures import plot_cl_distribution
    from .models import Gaussian
    from .store import read_cl_ensemble

    d = read_cl_ensemble(path)
    model = d["model"]
    if d["attrs"].get("independent"):
        moments = {}
        for key, values in model.observables(d["z"]).items():
            s = independent_observable_summary(values)
            moments[key] = {**s, **compare_exact(s, model.exact_observable(key))}
        res = {"model": model.params(), "moments": moments, "independent": True}
    else:
        res = verdict(model, d["z"], d["drift_abs"])
    res["file"] = str(path)
    if figure is not None:
        z_dm = read_cl_ensemble(compare)["z"] if compare is not None else None
        dens = (lambda x, y: gaussian_density(model.sigma, x, y)) if isinstance(model, Gaussian) else None
        res["figure"] = str(plot_cl_distribution(figure, d["z"], z_dm, dens))
    if summary is not None:
        with io.atomic_path(Path(summary), suffix=".json") as tmp:
            tmp.write_text(json.dumps(res, indent=1, default=str))
    return res
