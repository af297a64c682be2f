"""Fault injection (issue 14): concurrent runs, kills during cleanup, inputs changed between
kill and resume, damaged inputs, wrong-group and broken models, overwrites, full disks,
runaway sizes, duplicate config keys.  Each case ends either bit-identical to an
uninterrupted run or refused with one line and a non-zero exit, and no finished output is
lost.  Kills at checkpoint writes (kill -9 of real processes) are in test_reliability.py,
test_training.py, test_sampler.py and test_smc.py; here a kill during cleanup is simulated
by an exception no handler catches, raised at the worst moment."""

import errno
import os
import signal
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from campaign import cli, io, jobs
from campaign.config import ConfigError, load_config_file
from campaign.diffusion import ScoreModel
from campaign.errors import CampaignError
from campaign.groups import get_group
from campaign.hmc import HMCRun, generate_ensemble
from campaign.samplers.job import sample_to_file
from campaign.samplers.settings import SampleSettings
from campaign.training import TrainSettings, checkpoint_path, train_model

TINY_HMC = dict(group="u1", beta=1.0, L=4, n_configs=8, chains=2, therm=2, sep=1, seed=3, progress=False)
TINY_HMC_ARGS = ["hmc", "--group", "u1", "--beta", "1", "--L", "4", "--n-configs", "8", "--chains", "2",
                 "--therm", "2", "--sep", "1", "--seed", "3", "--quiet"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing catches it (the kill point's later code never runs)."""


def one_line_error(capsys, rc) -> str:
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "error" in err, err
    return err


def haar_file(path, group="u1", L=4, n=6, seed=0, beta=1.0):
    g = get_group(group)
    U = g.haar((n, 2, L, L), generator=torch.Generator().manual_seed(seed))
    return io.write_ensemble(path, U, {"group": group, "beta": beta, "L": L, "algorithm": "haar"})


def model_file(path, group="u1", seed=0, beta0=1.0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ScoreModel(group, beta0, 4, 0.01, 4.0, arch={"channels": 2, "layers": 1})
        # a fresh model's weights start at the same constants; make the seeds visible
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
    return io.save_model(path, model)


# ------------------------------------------------------------- concurrency and locks
def test_second_run_on_one_output_is_refused_and_a_dead_holder_is_harmless(tmp_path, capsys):
    out = tmp_path / "c.h5"
    # long enough never to finish here: it is killed below
    first = subprocess.Popen([sys.executable, "-m", "campaign.cli", *TINY_HMC_ARGS[:-1], "--therm", "10000000",
                              "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    lock = jobs.lock_path(out)
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        assert first.poll() is None, first.stderr.read()
        time.sleep(0.05)
    try:
        t0 = time.monotonic()
        err = one_line_error(capsys, cli.main([*TINY_HMC_ARGS, "--out", str(out)]))
        assert time.monotonic() - t0 < 10, "the second run must fail at once"
        assert f"pid {first.pid} on host {socket.gethostname()}" in err, err
        assert first.poll() is None, "the refused run must not disturb the first"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the killed run's lock file is still there, its fcntl lock died with it
    assert lock.exists() and not out.exists()
    assert cli.main([*TINY_HMC_ARGS, "--out", str(out)]) == 0
    assert io.read_ensemble(out).links.shape[0] == 8
    assert not lock.exists() and not jobs.parts_dir(out).exists()


def test_in_process_second_job_on_one_output_is_refused(tmp_path):
    out = tmp_path / "x.h5"
    with jobs.ResumableJob(out, {"a": 1}):
        with pytest.raises(CampaignError, match="being written by this process"):
            jobs.ResumableJob(out, {"a": 1}).__enter__()
    with jobs.ResumableJob(out, {"a": 1}):  # released on exit
        pass


# ------------------------------------------------------------ overwrite protection
def test_finished_output_is_not_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "e.h5"
    assert cli.main([*TINY_HMC_ARGS, "--out", str(out)]) == 0
    before = out.read_bytes()
    other = [*TINY_HMC_ARGS, "--out", str(out), "--beta", "2"]
    err = one_line_error(capsys, cli.main(other))
    assert "exists already" in err and "--force" in err
    assert out.read_bytes() == before
    assert cli.main([*other, "--force"]) == 0
    assert io.read_ensemble(out).beta == 2.0


# --------------------------------------------------------------- kill during cleanup
def _run_job(kind, tmp_path, out):
    """One tiny job of each kind; returns a function comparing its output with another's."""
    if kind == "hmc":
        generate_ensemble(out, **TINY_HMC, checkpoint_interval=0.0)
    elif kind == "train":
        ens = tmp_path / "ens.h5"
        if not ens.exists():
            haar_file(ens)
        train_model(ens, out, TrainSettings(steps=4, batch_size=2, channels=2, layers=1, seed=1,
                                            checkpoint_interval=0.0), progress=False)
    else:
        model = tmp_path / "model.pt"
        if not model.exists():
            model_file(model)
        s = SampleSettings(beta=1.0, L=4, n_samples=4, method="maala", n_levels=3, steps_per_level=1,
                           tail_steps=2, batch=2, seed=2)
        sample_to_file(model, out, s, progress=False)


def _same_output(kind, a, b):
    if kind == "train":
        sa, sb = io.load_model(a).state_dict(), io.load_model(b).state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        return
    ea, eb = io.read_ensemble(a), io.read_ensemble(b)
    assert torch.equal(ea.links, eb.links)
    assert np.array_equal(ea.chain, eb.chain) and np.array_equal(ea.step, eb.step)
    for key in ea.history:
        if "wall" not in key:
            assert np.array_equal(ea.history[key], eb.history[key], equal_nan=True), key


@pytest.mark.parametrize("kind", ["hmc", "train", "sample"])
@pytest.mark.parametrize("moment", ["before the checkpoint is renamed away", "while it is deleted"])
def test_kill_during_cleanup_then_rerun_is_identical(tmp_path, monkeypatch, moment, kind):
    suffix = ".pt" if kind == "train" else ".h5"
    ref, out = tmp_path / f"ref{suffix}", tmp_path / f"k{suffix}"
    _run_job(kind, tmp_path, ref)
    if moment.startswith("before"):
        def kill(folder, out):
            raise Killed
        monkeypatch.setattr(jobs, "remove_tree_atomically", kill)
    else:
        def kill(path, ignore_errors=False):  # deletes one file of the checkpoint, then dies
            next(path.iterdir()).unlink()
            raise Killed
        monkeypatch.setattr(jobs.shutil, "rmtree", kill)
    with pytest.raises(Killed):
        _run_job(kind, tmp_path, out)
    monkeypatch.undo()
    assert out.exists()
    if moment.startswith("while"):
        assert not jobs.parts_dir(out).exists()  # renamed away whole: no half checkpoint
        assert list(tmp_path.glob(f".{out.name}.parts.trash.*"))
    # snakemake sees an incomplete job: it deletes the output and runs the job again; the
    # killed run also left its lock file behind
    out.unlink()
    jobs.lock_path(out).write_text("4194304 a-dead-host\n")
    _run_job(kind, tmp_path, out)
    _same_output(kind, ref, out)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("k", ".k")))
    assert left == [out.name], f"temporaries left behind: {left}"


def test_half_deleted_legacy_checkpoint_starts_afresh(tmp_path, monkeypatch, capsys):
    """Older code deleted checkpoints with a plain rmtree: state.pt could outlive its parts."""
    ref = generate_ensemble(tmp_path / "ref.h5", **TINY_HMC)
    out = tmp_path / "h.h5"

    def kill(*args, **kw):
        raise Killed
    monkeypatch.setattr(io, "write_ensemble", kill)
    with pytest.raises(Killed):
        generate_ensemble(out, **TINY_HMC, checkpoint_interval=0.0)
    monkeypatch.undo()
    (jobs.parts_dir(out) / "part_00001.pt").unlink()
    capsys.readouterr()
    generate_ensemble(out, **TINY_HMC)
    assert "lacks part 1" in capsys.readouterr().err
    a, b = io.read_ensemble(ref), io.read_ensemble(out)
    assert torch.equal(a.links, b.links) and np.array_equal(a.step, b.step)


def test_stale_temporaries_are_swept(tmp_path):
    out = tmp_path / "t.h5"
    parts = jobs.parts_dir(out)
    parts.mkdir()
    junk = [tmp_path / ".t.h5.abcd1234.h5", tmp_path / ".t.h5.zz_99xyz.probe", parts / ".state.pt.q1w2e3r4.tmp"]
    for j in junk:
        j.write_bytes(b"half written")
    keep = tmp_path / ".t.h5x.abcd1234.h5"  # another output's temporary
    keep.write_bytes(b"")
    generate_ensemble(out, **TINY_HMC)
    assert not any(j.exists() for j in junk) and keep.exists()


def test_count_check_refuses_a_short_ensemble(tmp_path, monkeypatch):
    real = HMCRun.collect

    def short(self):
        links, chain, step, hist = real(self)
        return io.RowBlocks((links.shape[0] - 1, *links.shape[1:]), links.dtype, links.blocks), chain[:-1], step[:-1], hist
    monkeypatch.setattr(HMCRun, "collect", short)
    out = tmp_path / "s.h5"
    with pytest.raises(CampaignError, match="produced 7 configurations, 8 were asked for"):
        generate_ensemble(out, **TINY_HMC)
    assert not out.exists() and (jobs.parts_dir(out) / "state.pt").exists()


# ------------------------------------------------------ inputs changed before a resume
def test_changed_ensemble_restarts_training(tmp_path, capsys):
    ens = tmp_path / "ens.h5"
    kw = dict(settings=TrainSettings(steps=6, batch_size=2, channels=2, layers=1, seed=1, checkpoint_interval=1e9),
              progress=False)
    haar_file(ens, seed=0, beta=1.0)
    train_model(ens, tmp_path / "m.pt", stop_after=3, **kw)
    assert checkpoint_path(tmp_path / "m.pt").exists()
    haar_file(ens, seed=1, beta=2.0)  # regenerated at another beta
    capsys.readouterr()
    train_model(ens, tmp_path / "m.pt", **kw)
    err = capsys.readouterr().err
    assert "ensemble changed" in err and "starting afresh" in err and len(err.strip().splitlines()) == 1
    train_model(ens, tmp_path / "fresh.pt", **kw)
    a, b = io.load_model(tmp_path / "m.pt"), io.load_model(tmp_path / "fresh.pt")
    assert a.beta0 == 2.0
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.meta["training"]["ensemble_sha256"] == jobs.file_sha256(ens)


def test_changed_model_restarts_sampling(tmp_path, monkeypatch, capsys):
    model = tmp_path / "model.pt"
    s = SampleSettings(beta=1.0, L=4, n_samples=4, method="maala", n_levels=3, steps_per_level=1,
                       tail_steps=2, batch=2, seed=2)
    model_file(model, seed=0)
    out = tmp_path / "s.h5"
    real_write = io.write_ensemble

    def kill(*args, **kw):  # every batch is checkpointed; killed before the file is written
        raise Killed
    monkeypatch.setattr(io, "write_ensemble", kill)
    with pytest.raises(Killed):
        sample_to_file(model, out, s, progress=False)
    monkeypatch.setattr(io, "write_ensemble", real_write)
    assert len(list(jobs.parts_dir(out).glob("batch_*.pt"))) == 2
    model_file(model, seed=1)  # another model swapped in
    capsys.readouterr()
    sample_to_file(model, out, s, progress=False)
    assert "model changed" in capsys.readouterr().err
    ref = sample_to_file(model, tmp_path / "ref.h5", s, progress=False)
    a, b = io.read_ensemble(out), io.read_ensemble(ref)
    assert torch.equal(a.links, b.links)
    assert a.attrs["model_sha256"] == jobs.file_sha256(model)


# ------------------------------------------------------------------- damaged inputs
def _damage(path, kind):
    g = get_group("su2")
    U = g.haar((3, 2, 4, 4), generator=torch.Generator().manual_seed(0))
    attrs = {"group": "su2", "beta": 2.0, "L": 4, "algorithm": "hmc"}
    if kind == "links x2":
        U = 2 * U
    elif kind == "one nan link":
        U[1, 0, 2, 3, 0, 1] = float("nan")
    elif kind == "real-valued":
        U = U.real
    elif kind == "u2 links as su2":
        U = get_group("u2").haar((3, 2, 4, 4), generator=torch.Generator().manual_seed(0))
    elif kind == "links is a group":
        with h5py.File(path, "w") as f:
            f.create_group("links")
            f.attrs.update(attrs)
        return path
    io.write_ensemble(path, U, attrs)
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    if kind == "flipped byte":  # in the (uncompressed) chain numbers: only the checksum sees it
        with h5py.File(path, "r") as f:
            d = f["chain"].id
            offset = d.get_chunk_info(0).byte_offset if f["chain"].chunks else d.get_offset()
        data = bytearray(path.read_bytes())
        data[offset + 3] ^= 0x01
        path.write_bytes(bytes(data))
    return path


DAMAGE = {"links x2": "not unitary with det 1", "one nan link": "non-finite", "real-valued": "dtype float64",
          "u2 links as su2": "not unitary with det 1", "links is a group": "not a dataset",
          "flipped byte": "truncated or corrupt", "truncated": "truncated or corrupt"}


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_ensemble_is_refused(tmp_path, kind):
    path = _damage(tmp_path / "bad.h5", kind)
    with pytest.raises(io.EnsembleFileError, match=DAMAGE[kind]):
        io.read_ensemble(path)


def test_damaged_ensemble_is_one_line_in_measure_and_train(tmp_path, capsys):
    bad = _damage(tmp_path / "bad.h5", "one nan link")
    err = one_line_error(capsys, cli.main(["measure", str(bad), "--out", str(tmp_path / "o.csv")]))
    assert "configuration 1 holds non-finite" in err
    err = one_line_error(capsys, cli.main(["train", "--ensemble", str(bad), "--out", str(tmp_path / "m.pt"),
                                           "--steps", "2", "--quiet"]))
    assert "configuration 1 holds non-finite" in err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "m.pt").exists()
    # an intact file of the other precision passes (the tolerance follows the dtype)
    U = get_group("su2").haar((2, 2, 4, 4), generator=torch.Generator().manual_seed(0)).to(torch.complex64)
    io.write_ensemble(tmp_path / "c64.h5", U, {"group": "su2", "beta": 2.0, "L": 4, "algorithm": "hmc"})
    assert io.read_ensemble(tmp_path / "c64.h5").links.dtype == torch.complex64


def test_new_datasets_carry_checksums(tmp_path):
    path = haar_file(tmp_path / "h.h5")
    with h5py.File(path) as f:
        assert f["links"].fletcher32 and f["chain"].fletcher32 and f["step"].fletcher32


# ------------------------------------------------------------------------- models
def test_wrong_group_model_is_refused(tmp_path, capsys):
    model = model_file(tmp_path / "u1.pt", group="u1")
    args = ["sample", "--model", str(model), "--out", str(tmp_path / "s.h5"), "--beta", "1", "--L", "4",
            "--n-samples", "2", "--method", "maala", "--n-levels", "2", "--quiet"]
    err = one_line_error(capsys, cli.main([*args, "--group", "su2"]))
    assert "is a u1 model; it cannot sample group su2" in err
    assert not (tmp_path / "s.h5").exists()


def test_broken_model_is_refused(tmp_path):
    path = tmp_path / "nan.pt"
    model = ScoreModel("u1", 1.0, 4, 0.01, 4.0, arch={"channels": 2, "layers": 1})
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    io.save_model(path, model)
    with pytest.raises(io.ModelFileError, match="weights are not finite"):
        io.load_model(path)
    obj = torch.load(model_file(tmp_path / "inf.pt"), weights_only=False)
    obj["beta0"] = float("inf")
    torch.save(obj, tmp_path / "inf.pt")
    with pytest.raises(io.ModelFileError, match="beta0 must be a finite number"):
        io.load_model(tmp_path / "inf.pt")


# ------------------------------------------------------------ resources and outputs
def test_disk_full_is_one_line_and_keeps_no_output(tmp_path, monkeypatch, capsys):
    def full(obj, f, *a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "d.h5"
    err = one_line_error(capsys, cli.main([*TINY_HMC_ARGS, "--out", str(out), "--checkpoint-interval", "1e-9"]))
    assert "disk full" in err
    assert not out.exists() and not jobs.lock_path(out).exists()
    assert not [p for p in jobs.parts_dir(out).iterdir() if p.name.startswith(".")], "temporary files left"


@pytest.mark.parametrize("args, message", [
    (["exact", "--group", "u2", "--beta", "1e6", "--L", "4"], "outside the range"),
    (["exact", "--group", "u1", "--beta", "1", "--L", "100000"], "GiB of memory"),
    (["hmc", "--group", "u1", "--beta", "1", "--L", "4", "--n-configs", "4", "--chains", "100000000",
      "--out", "x.h5"], "GiB of memory"),
    (["hmc", "--group", "u1", "--beta", "1", "--L", "64", "--n-configs", "4", "--sep", "10000000000000",
      "--out", "x.h5"], "days even at"),
    (["hmc", "--group", "u1", "--beta", "1", "--L", "4", "--n-configs", "4", "--out", "/proc/x.h5"],
     "cannot write output"),
    (["hmc", "--group", "u1", "--beta", "1", "--L", "4", "--n-configs", "4", "--out", "."],
     "is an existing directory"),
])
def test_runaway_and_unwritable_jobs_are_refused_at_once(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAMPAIGN_MEMORY_GB", "8")
    t0 = time.monotonic()
    err = one_line_error(capsys, cli.main(args))
    assert message in err and time.monotonic() - t0 < 5
    assert not (tmp_path / "x.h5").exists()


# ------------------------------------------------------------------------- config
def test_duplicate_yaml_key_and_syntax_errors_name_file_and_line(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("seed: 1\ngroups:\n  u1:\n    hmc:\n      beta: [1]\n      L: [4]\n      beta: [2]\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml:7: duplicate key 'beta' \(first given on line 5\)"):
        load_config_file(dup)
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\ngroups: {u1: [1, 2}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:2:\d+: invalid YAML") as exc:
        load_config_file(bad)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("where, value, message", [
    (("models", 0, "warmup"), 5000, "warm-up steps exceed steps"),
    (("models", 0, "kernel_size"), 50, "spans 99 sites, more than the lattice size L=8"),
    (("sample", "sigma_tail"), 9.0, "sigma_tail: exceeds sigma_max"),
    (("hmc", "beta", 0), float("inf"), "must be finite"),
    (("hmc", "beta", 0), 1e6, "beyond the supported range"),
])
def test_config_semantic_holes_are_closed(where, value, message):
    from pathlib import Path

    from campaign.config import validate_config

    cfg = load_config_file(Path(__file__).resolve().parents[1] / "config.yaml")
    u1 = cfg["groups"]["u1"]
    u1["sample"]["sigma_max"] = 4.0
    node = u1
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_config_negative_zero_beta_is_zero():
    from pathlib import Path

    from campaign.config import validate_config

    cfg = load_config_file(Path(__file__).resolve().parents[1] / "config.yaml")
    u1 = cfg["groups"]["u1"]
    u1["hmc"]["beta"] = [-0.0, 1, 2, 3]
    checked = validate_config(cfg)
    assert str(checked["groups"]["u1"]["hmc"]["beta"][0]) == "0.0"


def test_model_with_non_finite_scores_is_refused(tmp_path, capsys):
    """Finite weights whose scores overflow (as a diverged run that stopped short of NaN)."""
    path = model_file(tmp_path / "big.pt")
    obj = torch.load(path, weights_only=False)
    obj["state_dict"] = {k: v * 1e30 if k.startswith("net.") else v for k, v in obj["state_dict"].items()}
    torch.save(obj, path)
    err = one_line_error(capsys, cli.main(["sample", "--model", str(path), "--out", str(tmp_path / "s.h5"),
                                           "--beta", "1", "--L", "4", "--n-samples", "2", "--quiet"]))
    assert "gives non-finite scores" in err and not (tmp_path / "s.h5").exists()


def test_diverging_training_is_one_line_and_writes_no_model(tmp_path, capsys):
    ens = haar_file(tmp_path / "ens.h5")
    err = one_line_error(capsys, cli.main(["train", "--ensemble", str(ens), "--out", str(tmp_path / "m.pt"),
                                           "--steps", "40", "--batch-size", "2", "--channels", "2", "--layers", "1",
                                           "--lr", "1e10", "--quiet"]))
    assert "training diverged" in err and "smaller --lr" in err
    assert not (tmp_path / "m.pt").exists()


def test_config_override_errors_name_the_override(tmp_path):
    from _snakemake import run_snakemake

    res = run_snakemake("-n", "--config", "seed=-5", workdir=tmp_path)
    assert res.returncode != 0
    assert "config.yaml, --config seed=-5):" in res.stdout and "seed: must be >= 0, got -5" in res.stdout, res.stdout
    assert "Traceback" not in res.stdout
