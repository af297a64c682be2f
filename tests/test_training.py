"""Training: recovery of known scores, kill-and-resume determinism, model files, CLI."""

import csv
import itertools
import math
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from conftest import kill_when_exists

from campaign import cli
from campaign.diffusion import ScoreModel, perturb
from campaign.errors import CampaignError
from campaign.groups import SU2, U1, get_group
from campaign.io import load_model, save_model, write_ensemble
from campaign.lattice import plaquettes
from campaign.training import TrainSettings, checkpoint_path, train_model

F64 = torch.float64
SIGMAS = (0.1, 0.3, 0.6, 1.0, 2.0)


def haar_ensemble(path, group, L, n=32, seed=0):
    g = get_group(group)
    U = g.haar((n, 2, L, L), generator=torch.Generator().manual_seed(seed))
    return write_ensemble(path, U, {"group": g.name, "beta": 0.0, "L": L, "algorithm": "haar"})


def weighted_error(model, U0, sigma, exact_fn, gen):
    """sigma^2 E|s_model - s_exact|^2 per component on noised data, and the same for s = 0."""
    s = torch.full((U0.shape[0],), sigma, dtype=F64)
    U, _ = perturb(model.group, U0, s, generator=gen)
    ex = exact_fn(U, s)
    with torch.no_grad():
        pr = model(U, s)
    dof = U0[0].numel() / U0.shape[-1] ** 2 * model.group.algebra_dim
    err = sigma ** 2 * float(model.group.algebra_norm2(pr - ex).sum((1, 2, 3)).mean()) / dof
    ref = sigma ** 2 * float(model.group.algebra_norm2(ex).sum((1, 2, 3)).mean()) / dof
    return err, ref


# ---------------------------------------------------------------- known scores
def test_haar_measure_score_is_learnt_as_zero(tmp_path):
    """beta = 0: the noised Haar measure is Haar at every sigma, exact score 0."""
    ens = haar_ensemble(tmp_path / "haar.h5", "su2", 4, n=64)
    settings = TrainSettings(steps=150, batch_size=16, lr=3e-3, channels=4, seed=1, checkpoint_interval=1e9)
    out = train_model(ens, tmp_path / "m.pt", settings, progress=False)
    model = load_model(out)
    torch.manual_seed(1)
    init = ScoreModel("su2", 0.0, 4, 0.01, 4.0, arch=model.arch).double()
    gen = torch.Generator().manual_seed(2)
    U0 = SU2.haar((32, 2, 4, 4), generator=gen)
    zero = lambda U, s: torch.zeros_like(U)  # noqa: E731
    trained = [weighted_error(model, U0, s, zero, gen)[0] for s in SIGMAS]
    untrained = [weighted_error(init, U0, s, zero, gen)[0] for s in SIGMAS]
    # stated tolerance: sigma^2 |s|^2 per component below 1e-3 at every sigma (the DSM
    # floor is ~1 per component; measured max 2.7e-4), and summed over sigma at least 5x
    # below the untrained network (measured 15x)
    assert max(trained) < 1e-3, trained
    assert sum(trained) < 0.2 * sum(untrained), (trained, untrained)


def _incidence(L):
    nl = 2 * L * L
    B = torch.zeros(L * L, nl, dtype=F64)
    for link in range(nl):
        th = torch.zeros(nl, dtype=F64)
        th[link] = 0.1
        U = torch.polar(torch.ones(nl, dtype=F64), th).reshape(1, 2, L, L, 1, 1)
        B[:, link] = torch.angle(plaquettes(U)[0, :, :, 0, 0]).reshape(-1) / 0.1
    return B.round()


def exact_u1_score(U, sigma, beta, M=8):
    """Exact marginal score of exp(beta sum_P cos theta_P) on a small torus after U(1)
    heat-kernel noise of variance sigma^2 per link: character expansion
    p_sigma = sum_n prod_P I_{n_P}(beta) exp(-t |B^T n|^2 / 2) exp(i (B^T n) . theta)."""
    from scipy.special import ive

    Bsz, L = U.shape[0], U.shape[2]
    B = _incidence(L)
    ns = torch.tensor(list(itertools.product(range(-M, M + 1), repeat=L * L)), dtype=F64)
    coef = torch.from_numpy(ive(ns.abs().numpy(), beta)).prod(-1)
    m = ns @ B
    theta = torch.angle(U[..., 0, 0]).reshape(Bsz, -1)
    t = torch.as_tensor(sigma, dtype=F64).reshape(-1, 1) ** 2
    w = coef * torch.exp(-t * (m * m).sum(-1) / 2)
    ph = theta @ m.T
    p = (w * torch.cos(ph)).sum(-1)
    dp = -((w * torch.sin(ph)) @ m)
    return (1j * dp / p[:, None]).reshape(Bsz, 2, L, L)[..., None, None]


def test_exact_u1_score_helper_limits():
    gen = torch.Generator().manual_seed(0)
    U = U1.haar((4, 2, 2, 2), generator=gen)
    from campaign.actions import wilson_force

    s = exact_u1_score(U, torch.zeros(4, dtype=F64), 1.0)
    assert torch.allclose(s, -wilson_force(U1, U, 1.0), atol=1e-6)  # sigma -> 0: -beta grad S
    s = exact_u1_score(U, torch.full((4,), 4.0, dtype=F64), 1.0)
    assert float(s.abs().max()) < 1e-10  # sigma -> infinity: Haar


def test_u1_2x2_exact_marginal_score_recovered(tmp_path):
    """U(1), beta0 = 1, L = 2: the noised density is known exactly (character expansion).
    Stated tolerance after 300 DSM steps: summed over sigma in SIGMAS, the weighted error
    sigma^2 |s - s_exact|^2 is below 15% of sigma^2 |s_exact|^2 (the zero model; measured
    9%) and below half the untrained model's (measured 1/3; its physics skip term is
    already exact as sigma -> 0).  Longer training or larger lattices (more links per
    step) reduce it further; DSM gradient noise, not capacity, is the limit here."""
    from campaign.hmc import generate_ensemble

    ens = generate_ensemble(tmp_path / "u1.h5", "u1", 1.0, 2, 512, chains=8, therm=50, sep=2,
                            seed=3, progress=False)
    settings = TrainSettings(steps=300, batch_size=32, lr=3e-3, seed=0, checkpoint_interval=1e9)
    out = train_model(ens, tmp_path / "m.pt", settings, progress=False)
    model = load_model(out)
    torch.manual_seed(0)
    init = ScoreModel("u1", 1.0, 2, 0.01, 4.0, arch=model.arch).double()
    from campaign.io import read_ensemble

    U0 = read_ensemble(ens).links[:96]
    exact = lambda U, s: exact_u1_score(U, s, 1.0)  # noqa: E731
    rows = []
    for sigma in SIGMAS:
        gen = torch.Generator().manual_seed(int(100 * sigma))
        e, ref = weighted_error(model, U0, sigma, exact, gen)
        gen = torch.Generator().manual_seed(int(100 * sigma))
        e0, _ = weighted_error(init, U0, sigma, exact, gen)
        rows.append((sigma, e, e0, ref))
    err, err0, ref = (sum(r[i] for r in rows) for i in (1, 2, 3))
    assert err < 0.15 * ref, rows
    assert err < 0.5 * err0, rows


# ------------------------------------------------------------- resume / kill
def _state(path):
    return torch.load(path, weights_only=False)["state_dict"]


def _rows(path):
    with open(path) as f:
        return [(r["step"], r["loss"], r["lr"], r["ema"]) for r in csv.DictReader(f)]


def test_stop_and_resume_is_bit_identical(tmp_path):
    ens = haar_ensemble(tmp_path / "h.h5", "u2", 4, n=8)
    s = TrainSettings(steps=12, batch_size=3, channels=3, seed=5, checkpoint_interval=1e9)
    a = train_model(ens, tmp_path / "a.pt", s, loss_log=tmp_path / "a.csv", progress=False)
    ck = train_model(ens, tmp_path / "b.pt", s, loss_log=tmp_path / "b.csv", stop_after=5, progress=False)
    assert ck == checkpoint_path(tmp_path / "b.pt") and ck.exists()
    assert not (tmp_path / "b.pt").exists()
    assert len(_rows(tmp_path / "b.csv")) == 5
    b = train_model(ens, tmp_path / "b.pt", s, loss_log=tmp_path / "b.csv", progress=False)
    assert not ck.exists()  # removed once the model is written
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert _rows(tmp_path / "a.csv") == _rows(tmp_path / "b.csv")
    # changed settings are refused
    train_model(ens, tmp_path / "c.pt", s, stop_after=2, progress=False)
    other = replace(s, lr=5e-3)
    with pytest.raises(CampaignError, match="different settings"):
        train_model(ens, tmp_path / "c.pt", other, progress=False)
    train_model(ens, tmp_path / "c.pt", other, resume=False, progress=False)  # starts over


def _train_cmd(ens, out, *extra):
    return [sys.executable, "-m", "campaign.cli", "train", "--ensemble", str(ens), "--out", str(out),
            "--steps", "200", "--batch-size", "4", "--channels", "3", "--seed", "9", "--quiet",
            "--loss-log", str(out) + ".csv", *extra]


@pytest.mark.slow  # three subprocesses (torch import each); ~20 s on an idle core
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    ens = haar_ensemble(tmp_path / "h.h5", "u1", 4, n=8)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "killed.pt"
    ck = checkpoint_path(out)
    proc = subprocess.Popen(_train_cmd(ens, out, "--checkpoint-interval", "0.2"), env=env,
                            stderr=subprocess.PIPE, text=True)
    kill_when_exists(proc, ck, timeout=120, linger=0.3)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    assert ck.exists() and not out.exists()
    step = torch.load(ck, weights_only=False)["step"]
    assert 0 < step < 200
    r = subprocess.run(_train_cmd(ens, out, "--checkpoint-interval", "1000"), env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "ref.pt"
    r = subprocess.run(_train_cmd(ens, ref), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sa, sb = _state(out), _state(ref)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert _rows(str(out) + ".csv") == _rows(str(ref) + ".csv")


# ------------------------------------------------------------------ model files
def test_model_file_roundtrip(tmp_path):
    ens = haar_ensemble(tmp_path / "h.h5", "su2", 4, n=4)
    out = train_model(ens, tmp_path / "m.pt", TrainSettings(steps=3, batch_size=2, channels=3), progress=False,
                      loss_log=tmp_path / "loss.csv")
    m = load_model(out)
    assert (m.group.name, m.beta0, m.L0, m.sigma_min, m.sigma_max) == ("su2", 0.0, 4, 0.01, 4.0)
    assert m.arch["channels"] == 3 and not m.training
    meta = m.meta
    assert meta["training"]["steps_done"] == 3 and "code_commit" in meta and "created" in meta
    with open(tmp_path / "loss.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["step", "loss", "lr", "wall_time", "ema"] and len(rows) == 3
    U = SU2.haar((2, 2, 6, 6), generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.1, 1.0], dtype=F64)
    save_model(tmp_path / "again.pt", m, {"note": "x"})
    m2 = load_model(tmp_path / "again.pt", dtype="float32")
    assert m2.meta["note"] == "x"
    with torch.no_grad():
        assert torch.allclose(m(U, sigma), m2(U, sigma), atol=1e-5)
        assert torch.equal(m(U, sigma), load_model(out)(U, sigma))


def test_model_file_errors(tmp_path):
    with pytest.raises(CampaignError, match="not found"):
        load_model(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CampaignError, match="cannot read"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CampaignError, match="not a campaign score model"):
        load_model(tmp_path / "foreign.pt")
    m = ScoreModel("u1", 1.0, 4, 0.01, 4.0)
    save_model(tmp_path / "ok.pt", m)
    obj = torch.load(tmp_path / "ok.pt", weights_only=False)
    obj["state_dict"].pop("log_kappa")
    torch.save(obj, tmp_path / "damaged.pt")
    with pytest.raises(CampaignError, match="damaged or incompatible"):
        load_model(tmp_path / "damaged.pt")


# ------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("extra, message", [
    ([], "not found"),
    (["--sigma-min", "2", "--sigma-max", "1"], "sigma_min"),
    (["--ema-decay", "1.5"], "ema_decay"),
    (["--warmup", "3000"], "warmup"),
    (["--dtype", "float32", "--device", "nonsense"], "device"),
])
def test_cli_user_errors_are_one_line(tmp_path, capsys, extra, message):
    ens = tmp_path / "missing.h5"
    if extra:
        ens = haar_ensemble(tmp_path / "h.h5", "u1", 4, n=2)
    rc = cli.main(["train", "--ensemble", str(ens), "--out", str(tmp_path / "m.pt"), "--quiet", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and message in err and len(err.splitlines()) == 1, err


def test_cli_trains(tmp_path, capsys):
    ens = haar_ensemble(tmp_path / "h.h5", "u1", 4, n=4)
    rc = cli.main(["train", "--ensemble", str(ens), "--out", str(tmp_path / "m.pt"), "--steps", "4",
                   "--batch-size", "2", "--channels", "2", "--layers", "1", "--kernel-size", "3",
                   "--lr-schedule", "constant", "--no-gauge-augment", "--loops", "rect"])
    assert rc == 0
    m = load_model(tmp_path / "m.pt")
    assert m.arch["kernel_size"] == 3 and m.arch["loops"] == "rect" and m.arch["layers"] == 1
    assert m.meta["training"]["lr_schedule"] == "constant" and not m.meta["training"]["gauge_augment"]
    assert "train u1" in capsys.readouterr().err  # progress line on stderr


def test_lr_schedule():
    from campaign.training import lr_at

    assert lr_at(0, lr=1.0, steps=100, schedule="cosine", warmup=5) == pytest.approx(0.2)
    assert lr_at(50, lr=1.0, steps=100, schedule="cosine", warmup=5) == pytest.approx(0.5)
    assert lr_at(99, lr=1.0, steps=100, schedule="constant", warmup=5) == 1.0
    assert math.isclose(lr_at(99, lr=1.0, steps=100, schedule="cosine", warmup=0), 0.5 * (1 + math.cos(math.pi * 0.99)))
