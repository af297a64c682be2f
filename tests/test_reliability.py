"""A job killed part-way resumes exactly; outputs appear only when complete; bad input
gives one line on stderr and a non-zero exit."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from campaign.io import EnsembleFileError, read_ensemble, write_ensemble

HMC_ARGS = ["hmc", "--group", "su2", "--beta", "2.0", "--L", "6", "--n-configs", "60",
            "--chains", "3", "--therm", "10", "--sep", "12", "--seed", "11",
            "--checkpoint-interval", "0.3"]


def campaign(*args, **kw):
    return subprocess.run([sys.executable, "-m", "campaign.cli", *args], capture_output=True, text=True, **kw)


def test_killed_hmc_resumes_to_identical_ensemble(tmp_path):
    reference = tmp_path / "reference.h5"
    r = campaign(*HMC_ARGS, "--out", str(reference), "--quiet")
    assert r.returncode == 0, r.stderr

    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    proc = subprocess.Popen([sys.executable, "-m", "campaign.cli", *HMC_ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(parts.glob("part_00001.pt")) and time.monotonic() < deadline:
        assert proc.poll() is None, "run finished before it could be killed; make it longer"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed run must not leave an output file"
    assert (parts / "state.pt").exists()

    r = campaign(*HMC_ARGS, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "resuming at trajectory" in r.stderr
    assert not parts.exists(), "the checkpoint is removed once the output is complete"

    a, b = read_ensemble(reference), read_ensemble(out)
    assert a.links.shape == (60, 2, 6, 6, 2, 2)
    assert torch.equal(a.links, b.links)
    assert np.array_equal(a.chain, b.chain) and np.array_equal(a.step, b.step)
    for key in a.history:
        assert np.array_equal(a.history[key], b.history[key]), key


def test_checkpoint_from_other_settings_is_refused(tmp_path):
    out = tmp_path / "x.h5"
    proc = subprocess.Popen([sys.executable, "-m", "campaign.cli", *HMC_ARGS, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "x.h5.parts"
    deadline = time.monotonic() + 120
    while not (parts / "state.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    args = list(HMC_ARGS)
    args[args.index("--beta") + 1] = "3.0"
    r = campaign(*args, "--out", str(out))
    assert r.returncode == 1
    assert "different settings" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def small_ensemble(path):
    U = torch.ones((4, 2, 4, 4, 1, 1), dtype=torch.complex128)
    return write_ensemble(path, U, {"group": "u1", "beta": 1.0, "L": 4, "algorithm": "hmc"})


def test_truncated_foreign_and_missing_files_raise_clear_errors(tmp_path):
    good = small_ensemble(tmp_path / "good.h5")
    assert read_ensemble(good).links.shape == (4, 2, 4, 4, 1, 1)

    truncated = tmp_path / "truncated.h5"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(EnsembleFileError, match="truncated or corrupt"):
        read_ensemble(truncated)

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(EnsembleFileError, match="not a campaign ensemble"):
        read_ensemble(foreign)

    with pytest.raises(EnsembleFileError, match="not found"):
        read_ensemble(tmp_path / "missing.h5")
    with pytest.raises(EnsembleFileError, match="holds group 'u1', expected 'su2'"):
        read_ensemble(good, group="su2")
    with pytest.raises(EnsembleFileError, match="L=4, expected L=8"):
        read_ensemble(good, L=8)


@pytest.mark.parametrize("kind", ["truncated", "foreign", "missing"])
def test_cli_measure_bad_file_is_one_line(tmp_path, kind):
    path = tmp_path / f"{kind}.h5"
    if kind == "truncated":
        data = small_ensemble(tmp_path / "good.h5").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    r = campaign("measure", str(path), "--out", str(tmp_path / "obs.csv"))
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0], r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["hmc", "--group", "su3", "--beta", "1", "--L", "4", "--n-configs", "2", "--out", "x.h5"], "invalid choice"),
        (["hmc", "--group", "u1", "--beta", "-1", "--L", "4", "--n-configs", "2", "--out", "x.h5"], "beta"),
        (["hmc", "--group", "u1", "--beta", "1", "--L", "0", "--n-configs", "2", "--out", "x.h5"], "L"),
        (["hmc", "--group", "u1", "--beta", "1", "--L", "4", "--n-configs", "2", "--out", "x.h5",
          "--device", "nonsense"], "device"),
        (["exact", "--group", "u5", "--beta", "1", "--L", "4"], "invalid choice"),
    ],
)
def test_cli_bad_arguments_are_one_line(tmp_path, args, message):
    r = campaign(*args, cwd=tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert message in lines[0]
    assert not (tmp_path / "x.h5").exists()
