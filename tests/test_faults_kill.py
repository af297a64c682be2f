"""Fault injection with real processes (issue 14): ``kill -9`` of ``campaign hmc``,
``train`` and ``sample`` at a checkpoint write and while they remove their finished
checkpoint, and the orphan that a killed snakemake leaves running.  Each kill lands where
the test wants it through the test hold ``CAMPAIGN_TEST_HOLD=STEP:FILE`` (wait at STEP
while FILE exists; ``campaign.io.hold_for_test``).  Timed kills after a checkpoint are also
in test_reliability.py (hmc), test_training.py and test_sampler.py; simulated kills during
cleanup in test_faults.py."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_faults import TINY_HMC_ARGS, _same_output, haar_file, model_file

from campaign import cli, io, jobs

SRC = Path(__file__).resolve().parents[1] / "src"


def command(kind, tmp_path, out) -> list[str]:
    """One tiny CLI job of each kind, checkpointing at every chance it gets."""
    if kind == "hmc":
        return [*TINY_HMC_ARGS, "--checkpoint-interval", "1e-9", "--out", str(out)]
    if kind == "train":
        ens = tmp_path / "ens.h5"
        if not ens.exists():
            haar_file(ens)
        return ["train", "--ensemble", str(ens), "--out", str(out), "--steps", "4", "--batch-size", "2",
                "--channels", "2", "--layers", "1", "--seed", "1", "--checkpoint-interval", "0", "--quiet"]
    model = tmp_path / "model.pt"
    if not model.exists():
        model_file(model)
    return ["sample", "--model", str(model), "--out", str(out), "--beta", "1", "--L", "4", "--n-samples", "4",
            "--method", "maala", "--n-levels", "3", "--steps-per-level", "1", "--tail-steps", "2",
            "--batch", "2", "--seed", "2", "--quiet"]


def held_process(args, hold: Path, step: str, **popen) -> subprocess.Popen:
    """Start ``args`` with the test hold at ``step``; returns once it waits there."""
    hold.parent.mkdir(exist_ok=True)
    hold.touch()
    env = {**os.environ, io.TEST_HOLD_ENV: f"{step}:{hold}", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
    reached = Path(f"{hold}.reached")
    deadline = time.monotonic() + 120
    while not reached.exists():
        assert proc.poll() is None, f"ended before {step}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"never reached {step}"
        time.sleep(0.02)
    return proc


def one_line_refusal(capsys, rc) -> str:
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "error" in err, err
    return err


# the checkpoint file each job is killed writing (in full in its temporary file, not yet in
# place): HMC's first state (its first part is in place), training's first state, the
# sampler's second batch
CHECKPOINT_WRITE = {"hmc": "write-state.pt", "train": "write-train_state.pt", "sample": "write-batch_00001.pt"}


@pytest.mark.parametrize("kind", ["hmc", "train", "sample"])
def test_kill_9_at_a_checkpoint_write(tmp_path, kind):
    suffix = ".pt" if kind == "train" else ".h5"
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"k{suffix}"
    assert cli.main(command(kind, tmp_path, ref)) == 0
    proc = held_process([sys.executable, "-m", "campaign.cli", *command(kind, tmp_path, out)],
                        tmp_path / "hold" / "file", CHECKPOINT_WRITE[kind])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    name = CHECKPOINT_WRITE[kind].removeprefix("write-")
    assert not out.exists() and list(jobs.parts_dir(out).glob(f".{name}.*.tmp")), "not killed mid-write"
    assert cli.main(command(kind, tmp_path, out)) == 0
    _same_output(kind, ref, out)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("k", ".k")))
    assert left == [out.name], f"left behind: {left}"


@pytest.mark.parametrize("kind", ["hmc", "train", "sample"])
@pytest.mark.parametrize("step", ["before-rename", "before-delete"])
def test_kill_9_during_cleanup(tmp_path, capsys, kind, step):
    suffix = ".pt" if kind == "train" else ".h5"
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"k{suffix}"
    assert cli.main(command(kind, tmp_path, ref)) == 0
    proc = held_process([sys.executable, "-m", "campaign.cli", *command(kind, tmp_path, out)],
                        tmp_path / "hold" / "file", step)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    parts, lock = jobs.parts_dir(out), jobs.lock_path(out)
    trash = list(tmp_path.glob(f".{out.name}.parts.trash.*"))
    assert out.exists() and lock.exists()
    if step == "before-rename":
        assert (parts / jobs.FINGERPRINT_FILE).exists() and not trash
    else:  # renamed away whole: no half checkpoint under the checkpoint's name
        assert not parts.exists() and len(trash) == 1
    _same_output(kind, ref, out)
    finished = out.read_bytes()

    # the same command again: refused with one line, the finished output untouched, the
    # killed run's lock file and trash gone
    capsys.readouterr()
    err = one_line_refusal(capsys, cli.main(command(kind, tmp_path, out)))
    assert "exists already" in err
    assert out.read_bytes() == finished
    assert not lock.exists() and not list(tmp_path.glob(f".{out.name}.*"))
    assert parts.exists() == (step == "before-rename")  # a whole checkpoint is kept (for --force)

    # snakemake sees the job as incomplete: it deletes the output and reruns the job, which
    # resumes from the checkpoint or starts afresh, and writes the same file
    out.unlink()
    assert cli.main(command(kind, tmp_path, out)) == 0
    _same_output(kind, ref, out)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("k", ".k")))
    assert left == [out.name], f"left behind: {left}"


# ------------------------------------------------------- the orphan of a killed snakemake
ENSEMBLE = "results/ensembles/u1/hmc_b1_L4.h5"
ORPHAN_CONFIG = {"seed": 11, "device": "cpu", "checkpoint_interval": 1e-9,
                 "groups": {"u1": {"hmc": {"beta": [1.0], "L": [4], "n_configs": 16, "chains": 2, "therm": 5,
                                           "sep": 1}}}}


def alive(pid: int) -> bool:
    """``pid`` runs (an orphan is not our child: a zombie left unreaped counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow  # five snakemake runs: about 55 s on two busy cores
@pytest.mark.timeout(600)
def test_orphan_of_a_killed_snakemake_is_harmless(tmp_path):
    from _snakemake import SNAKEFILE, run_snakemake, write_config

    cfg = write_config(tmp_path / "tiny.yaml", ORPHAN_CONFIG)
    smk = [ENSEMBLE, "--cores", "1", "--configfile", cfg]  # --configfile takes every name after it
    ref_dir, work = tmp_path / "ref", tmp_path / "work"
    ref_dir.mkdir(), work.mkdir()

    def snakemake(where):
        return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(where), *map(str, smk)]

    # the uninterrupted run, meanwhile
    reference = subprocess.Popen(snakemake(ref_dir), cwd=ref_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
    # the driver is killed while its HMC job runs (held at its start, lock taken)
    driver = held_process(snakemake(work), tmp_path / "hold" / "file", "started", cwd=work, start_new_session=True)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    out, log = work / ENSEMBLE, work / "logs/hmc/u1/b1_L4.log"
    orphan = int(jobs.lock_path(out).read_text().split()[0])
    assert orphan != driver.pid and alive(orphan)
    try:
        # unlock and rerun while the orphan lives: the duplicate job fails at once, one line
        assert run_snakemake(*smk[1:], "--unlock", workdir=work).returncode == 0
        res = run_snakemake(*smk, workdir=work)
        assert res.returncode != 0, res.stdout[-3000:]
        errors = [line for line in log.read_text().splitlines() if "error" in line]
        assert errors == [f"hmc: error: output {ENSEMBLE} is being written by another run (pid {orphan} on host "
                          f"{socket.gethostname()}); wait for it or stop it (lock {ENSEMBLE}.lock)"], log.read_text()
        assert "Traceback" not in log.read_text() and alive(orphan) and not out.exists()
    finally:
        (tmp_path / "hold" / "file").unlink()  # the orphan goes on
    deadline = time.monotonic() + 120
    while alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(orphan)

    # the orphan's ensemble is an uninterrupted run's; the rerun keeps or remakes it
    log_text, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, log_text[-3000:]
    _same_output("hmc", ref_dir / ENSEMBLE, out)
    res = run_snakemake(*smk, workdir=work)
    assert res.returncode == 0, res.stdout[-3000:]
    _same_output("hmc", ref_dir / ENSEMBLE, out)
    left = sorted(p.name for p in out.parent.iterdir())
    assert left == [out.name], f"left behind: {left}"


@pytest.mark.parametrize("exc, one_line", [("CampaignError('output x.h5 exists already')", True),
                                           ("ValueError('a bug')", False)])
def test_workflow_job_reports_a_user_error_as_one_line(exc, one_line):
    scripts = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
    code = (f"import sys; sys.path.insert(0, {str(scripts)!r})\n"
            "from _common import one_line_errors\nfrom campaign.errors import CampaignError\n"
            f"one_line_errors('hmc')\nraise {exc}\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert res.returncode == 1
    if one_line:
        assert res.stderr == "hmc: error: output x.h5 exists already\n"
    else:
        assert "Traceback" in res.stderr and "ValueError: a bug" in res.stderr
