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
        last_save = time.monotonic()
        while n_done < settings.n_meas:
            block = measure_block(model, state, settings, 1)
            pending.append(block)
            n_done += 1
            if progress and n_done % max(1, settings.n_meas // 10) == 0:
                print(f"{label}: {n_done}/{settings.n_meas} measurements, Langevin time {state.t:g}", file=sys.stderr)
            if time.monotonic() - last_save >= checkpoint_interval or n_done == settings.n_meas:
                parts.append(_save(job.parts, state, pending, len(parts), fingerprint, n_done))
                pending = []
                last_save = time.monotonic()
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
