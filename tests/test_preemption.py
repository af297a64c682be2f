"""Preemption: SIGTERM / SIGUSR1 make a job write its checkpoint and exit 75; the same command
run again resumes and writes the bytes of an uninterrupted run (campaign.preemption)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from campaign.preemption import EXIT_PREEMPTED, CheckpointClock, Preempted, stop_requested, stop_signals

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``sig`` (Linux: SigCgt in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(mask >> (sig - 1) & 1)


def signal_when_armed(proc: subprocess.Popen, sig: int, timeout: float = 120.0) -> None:
    """Send ``sig`` as soon as the job's stop handlers are installed (its work loop is open)."""
    deadline = time.monotonic() + timeout
    while not _catches(proc.pid, sig):
        if proc.poll() is not None:
            pytest.fail(f"job exited ({proc.returncode}) before installing its stop handlers: "
                        f"{proc.stderr.read().decode()[-400:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("job never installed its stop handlers")
        time.sleep(0.01)
    proc.send_signal(sig)


def run_preempted_then_resumed(cmd: list[str], sig: int, checkpoint: Path, timeout: float = 300.0):
    """Run ``cmd``, stop it with ``sig`` once armed, check the exit and that ``checkpoint`` was
    written, and run it again to the end; returns the two runs' stderr."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    signal_when_armed(proc, sig)
    _, err = proc.communicate(timeout=timeout)
    err = err.decode()
    assert proc.returncode == EXIT_PREEMPTED, err[-800:]
    assert checkpoint.exists(), f"no checkpoint {checkpoint} after the stop"
    again = subprocess.run(cmd, env=_env(), check=True, capture_output=True, timeout=timeout)
    return err, again.stderr.decode()


def reference_and_preempted(base: list[str], tmp_path: Path, sig: int, checkpoint: str, suffix: str = ".h5"):
    """An uninterrupted run of ``base`` (``ref``) and one stopped by ``sig`` and resumed (``run``);
    ``checkpoint`` is the file or folder the stop must leave, relative to ``tmp_path``.
    Returns (ref, out, stopped run's stderr, resumed run's stderr)."""
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"run{suffix}"
    subprocess.run(base + ["--out", str(ref), "--quiet"], env=_env(), check=True, capture_output=True, timeout=600)
    stopped, resumed = run_preempted_then_resumed(base + ["--out", str(out)], sig, checkpoint=tmp_path / checkpoint)
    return ref, out, stopped, resumed


def assert_same_datasets(a: Path, b: Path, skip=("wall",)) -> None:
    with h5py.File(a) as A, h5py.File(b) as B:
        names: list[str] = []
        A.visit(lambda n: names.append(n) if isinstance(A[n], h5py.Dataset) else None)
        assert names
        for n in names:
            if any(s in n for s in skip):
                continue
            assert np.array_equal(A[n][()], B[n][()], equal_nan=True), n


# ---------------------------------------------------------------- the clock and the flag
def test_clock_is_due_after_its_interval_only():
    clock = CheckpointClock(0.2)
    assert not clock.due()
    time.sleep(0.25)
    assert clock.due()
    clock.written()
    assert not clock.due()


def test_a_stop_signal_makes_the_clock_due_and_stops_after_the_checkpoint():
    before = signal.getsignal(signal.SIGUSR1)
    clock = CheckpointClock(3600.0, "test job")
    with stop_signals():
        assert not clock.due()
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert stop_requested() == "SIGUSR1"
        assert clock.due()
        with pytest.raises(Preempted, match="SIGUSR1 received; checkpoint written"):
            clock.written()
    assert stop_requested() is None
    assert signal.getsignal(signal.SIGUSR1) is before


def test_nested_blocks_keep_the_handlers_of_the_outermost():
    with stop_signals():
        inner_handler = signal.getsignal(signal.SIGTERM)
        with stop_signals():
            assert signal.getsignal(signal.SIGTERM) is inner_handler
        assert signal.getsignal(signal.SIGTERM) is inner_handler  # the inner exit did not restore
    assert signal.getsignal(signal.SIGTERM) is not inner_handler


def test_repeated_signals_keep_the_first_and_do_not_kill():
    code = ("import os, signal, time\n"
            "from campaign.preemption import stop_signals, stop_requested\n"
            "with stop_signals():\n"
            "    for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGTERM):\n"
            "        os.kill(os.getpid(), s); time.sleep(0.05)\n"
            "    print(stop_requested())\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "SIGUSR1"


# ---------------------------------------------------------------- jobs stopped by a signal
def test_weights_training_stopped_by_sigterm_resumes_bit_identically(tmp_path):
    base = [sys.executable, "-m", "campaign.weights", "train", "teacher_student", "--lr", "0.05",
            "--batch-size", "4", "--steps", "4000", "--seed", "3", "--log-every", "10",
            "--checkpoint-interval", "3600"]
    ref, out, stopped, resumed = reference_and_preempted(base, tmp_path, signal.SIGTERM, "run.h5.ckpt")
    assert stopped.strip().splitlines()[-1].startswith("weights train: stopped: weights run.h5: SIGTERM received")
    assert "resuming run.h5" in resumed
    assert_same_datasets(ref, out)


def test_hmc_stopped_by_sigusr1_resumes_bit_identically(tmp_path):
    base = [sys.executable, "-m", "campaign.cli", "hmc", "--group", "u1", "--beta", "2", "--L", "8",
            "--n-configs", "40", "--chains", "4", "--therm", "20", "--sep", "20", "--seed", "5",
            "--checkpoint-interval", "3600", "--threads", "1"]
    ref, out, stopped, resumed = reference_and_preempted(base, tmp_path, signal.SIGUSR1, "run.h5.parts")
    assert stopped.strip().splitlines()[-1].startswith("campaign hmc: stopped: hmc u1 beta=2 L=8: SIGUSR1 received")
    assert "resuming at trajectory" in resumed
    assert_same_datasets(ref, out, skip=("wall", "history/time"))


@pytest.mark.slow
def test_training_and_sampling_stopped_by_sigterm_resume_bit_identically(tmp_path):
    import torch

    ens = tmp_path / "ens.h5"
    subprocess.run([sys.executable, "-m", "campaign.cli", "hmc", "--group", "u1", "--beta", "1", "--L", "4",
                    "--n-configs", "16", "--chains", "4", "--therm", "10", "--sep", "2", "--seed", "2",
                    "--out", str(ens), "--quiet"], env=_env(), check=True, capture_output=True, timeout=300)
    train = [sys.executable, "-m", "campaign.cli", "train", "--ensemble", str(ens), "--steps", "3000",
             "--batch-size", "2", "--channels", "2", "--layers", "1", "--seed", "4", "--checkpoint-interval", "3600"]
    ref, out, stopped, _ = reference_and_preempted(train, tmp_path, signal.SIGTERM, "run.pt.parts/train_state.pt",
                                                   suffix=".pt")
    assert "campaign train: stopped: train: SIGTERM received" in stopped
    a, b = torch.load(ref, weights_only=False)["state_dict"], torch.load(out, weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    sample = [sys.executable, "-m", "campaign.cli", "sample", "--model", str(ref), "--beta", "1.5", "--L", "4",
              "--n-samples", "400", "--batch", "4", "--n-levels", "10", "--pilot-chains", "4", "--seed", "6"]
    sref, sout, stopped, _ = reference_and_preempted(sample, tmp_path, signal.SIGTERM, "run_s.h5.parts/batch_00000.pt",
                                                     suffix="_s.h5")
    assert "SIGTERM received after batch" in stopped
    assert_same_datasets(sref, sout)
