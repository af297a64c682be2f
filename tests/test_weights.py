"""Weight-matrix dynamics under SGD (campaign.weights): the teacher-student temperature
against its exact stationary value and the linear scaling rule, the RBM's gradients and
near-analytic temperature, the nano-GPT's initial Marchenko-Pastur spectrum, bit-identical
resumption after a kill, the spectra stage and the figures' plotted data."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from campaign.errors import CampaignError
from campaign.weights import rmt
from campaign.weights.analysis import analyse_model, analyse_point, collect_points
from campaign.weights.models import build_model
from campaign.weights.teacher_student import exact_temperature_estimate, stationary_moments
from campaign.weights.training import checkpoint_path, train_run

SRC = str(Path(__file__).resolve().parents[1] / "src")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _ratio(a: dict, b: dict) -> tuple[float, float]:
    r = b["value"] / a["value"]
    return r, r * math.hypot(a["error"] / a["value"], b["error"] / b["value"])


# ------------------------------------------------------------- teacher-student
def test_teacher_student_exact_moments_match_direct_recursion():
    """The closed-form fixed point equals iterating the second-moment recursion, and the
    expansion T_est = T / (1 - lr/2 - lr (n+2)/(4B)) holds to O(lr^2)."""
    n, lr, B = 8, 0.05, 4
    u, v = stationary_moments(n, lr, B)
    uu, vv = 0.0, 0.0
    for _ in range(20000):
        uu, vv = (uu * (1 - 2 * lr + lr**2 * (1 + (n + 2) / (2 * B))) + lr**2 * (vv / (2 * B) + n * (n + 1) / (2 * B)),
                  vv * (1 - lr) ** 2 + lr**2 * (2 * uu / B + n / B))
    assert (u, v) == pytest.approx((uu, vv), rel=1e-10)
    for lr_ in (0.001, 0.004):
        t_est = exact_temperature_estimate(16, lr_, 8)
        assert t_est / (lr_ / 16) == pytest.approx(1 / (1 - lr_ / 2 - lr_ * 18 / 32), rel=3 * lr_**2)
    with pytest.raises(CampaignError, match="no stationary state"):
        stationary_moments(8, 1.9, 1)


def test_teacher_student_sgd_matches_exact_temperature(tmp_path):
    """Torch SGD at large lr / B: the fitted temperature agrees with the exact finite-lr
    expectation (pull < 3), and the measurement excludes the continuum linear rule, which
    is 23 % lower here (power)."""
    n, lr, B = 8, 0.1, 2
    path = train_run(tmp_path / "ts.h5", "teacher_student", lr=lr, batch_size=B, steps=3000, seed=5, log_every=2,
                     settings={"n": n, "replicas": 32, "init_scale": 0.2})
    s, _ = analyse_point([path])
    exact = exact_temperature_estimate(n, lr, B)
    t = s["temperature"]
    assert s["temperature_exact"] == pytest.approx(exact)
    assert abs(s["pull_exact"]) < 3, s
    linear = lr / (2 * B)
    assert exact / linear > 1.2
    assert abs(t["value"] - linear) > 8 * t["error"], (t, linear)
    assert abs(s["drift_pull"]) < 4


@pytest.fixture(scope="module")
def scaling_runs(tmp_path_factory):
    """Teacher-student runs at (lr, B) = (0.004, 16), (0.008, 16), (0.008, 32): small lr,
    where the exact corrections to the linear rule (< 0.3 %) are well below the errors."""
    d = tmp_path_factory.mktemp("scaling")
    out = {}
    for lr, B in ((0.004, 16), (0.008, 16), (0.008, 32)):
        out[(lr, B)] = train_run(d / f"lr{lr}_B{B}.h5", "teacher_student", lr=lr, batch_size=B, steps=4000, seed=3,
                                 log_every=10, settings={"replicas": 32, "init_scale": 0.1})
    return out


@pytest.mark.slow
def test_linear_scaling_rule_teacher_student(scaling_runs):
    """The fitted temperature doubles when lr doubles at fixed B and stays put when lr and
    B double together, within the Gamma-method errors (3 sigma); each run also agrees with
    the exact expectation.  Power: the first ratio excludes 1 and the second excludes 2."""
    fits = {}
    for key, path in scaling_runs.items():
        s, _ = analyse_point([path], stationary_fraction=0.75)
        assert abs(s["pull_exact"]) < 3, (key, s["temperature"], s["temperature_exact"])
        fits[key] = s["temperature"]
    r_lr, e_lr = _ratio(fits[(0.004, 16)], fits[(0.008, 16)])
    r_both, e_both = _ratio(fits[(0.004, 16)], fits[(0.008, 32)])
    assert e_lr < 0.03 and e_both < 0.015
    assert abs(r_lr - 2) < 3 * e_lr, (r_lr, e_lr)
    assert abs(r_both - 1) < 3 * e_both, (r_both, e_both)
    assert abs(r_lr - 1) > 20 * e_lr and abs(r_both - 2) > 20 * e_both


# ----------------------------------------------------------------------- RBM
def test_rbm_gradients():
    """Autograd of the exact negative log-likelihood is -sigma_h^2 (C_B - A^{-1}) W, and the
    CD surrogate's gradient is -sigma_h^2 (C_B - C_k) W (per replica)."""
    gen = torch.Generator().manual_seed(2)
    for training in ("exact", "cd"):
        net = build_model("rbm", {"n_visible": 6, "n_hidden": 4, "replicas": 3, "sigma_h": 0.8, "training": training},
                          gen)
        v = net.sample_batch(5, gen)
        state = gen.get_state()
        net.loss(v, gen).sum().backward()
        w = net.weight.detach()
        cov_b = v.mT @ v / v.shape[1]
        if training == "exact":
            other = torch.linalg.inv(net.precision().detach())
        else:
            gen.set_state(state)
            vk = net._gibbs(v, gen)
            other = vk.mT @ vk / vk.shape[1]
        expected = -net.sigma_h**2 * (cov_b - other) @ w
        assert torch.allclose(net.weight.grad, expected, rtol=1e-10, atol=1e-12)


def test_rbm_exact_likelihood_is_gaussian_marginal():
    """The exact loss is the negative log-likelihood of the Gaussian marginal p(v) with
    precision A (checked against torch.distributions, up to the constant)."""
    gen = torch.Generator().manual_seed(3)
    net = build_model("rbm", {"n_visible": 5, "n_hidden": 3, "replicas": 1}, gen)
    v = net.sample_batch(7, gen)
    with torch.no_grad():
        a = net.precision()[0]
        mvn = torch.distributions.MultivariateNormal(torch.zeros(5, dtype=a.dtype), precision_matrix=a)
        nll = -mvn.log_prob(v[0]).mean() - 2.5 * math.log(2 * math.pi)
        assert float(net.loss(v, gen)[0]) == pytest.approx(float(nll), rel=1e-12)


def test_rbm_temperature_near_analytic(tmp_path):
    """Exact-likelihood SGD: the eigenvalues of W^T W settle around x* and their Coulomb-gas
    temperature is the leading-order prediction 4 sigma_h^4 c^2 x*^2 lr / B to within 5 %
    (the measured deviation at this lr / B is about 1 %; it grows with lr / B).  The
    initial spectrum is Marchenko-Pastur with q = n_hidden / n_visible.  Power: halving B
    doubles the fit, which the 5 % band around the first prediction excludes."""
    fits = {}
    for B in (16, 8):
        path = train_run(tmp_path / f"rbm{B}.h5", "rbm", lr=0.005, batch_size=B, steps=3000, seed=7,
                         settings={"n_visible": 16, "n_hidden": 8, "replicas": 16})
        s, _ = analyse_point([path], stationary_fraction=0.6)
        fits[B] = s
    s = fits[16]
    assert abs(s["ratio_to_linear"]["value"] - 1) < 0.05 + 3 * s["ratio_to_linear"]["error"], s["ratio_to_linear"]
    assert abs(fits[8]["temperature"]["value"] / s["temperature_linear"] - 1) > 0.5
    assert s["theory"]["centre"] == pytest.approx(0.5)
    mp = s["init_mp"]["X"]
    assert mp["q_exact"] == 0.5 and abs(mp["q"] - 0.5) < 0.15
    assert abs(s["beta_dyson"]["value"] - 1) < 3 * s["beta_dyson"]["error"] + 0.05


def test_rbm_refuses_to_leave_normalisable_region(tmp_path):
    with pytest.raises(CampaignError, match="normalisable"):
        train_run(tmp_path / "bad.h5", "rbm", lr=0.3, batch_size=1, steps=500, seed=1)
    with pytest.raises(CampaignError, match="data_variance"):
        build_model("rbm", {"data_variance": 0.5}, torch.Generator())


# ------------------------------------------------------------------- nano-GPT
def test_nanogpt_initial_marchenko_pastur_and_learning(tmp_path):
    """The MLP matrices start Marchenko-Pastur with q = 1/4 (fit on both layers), and a few
    dozen SGD steps lower the loss from the uniform ln(vocab)."""
    path = train_run(tmp_path / "gpt.h5", "nanogpt", lr=0.5, batch_size=8, steps=60, seed=1, log_every=20,
                     dtype="float32", settings={"n_embd": 64, "n_head": 4, "n_layer": 2, "block_size": 16})
    with h5py.File(path) as f:
        init = np.concatenate([f["spectra/l0.fc"][0].ravel(), f["spectra/l1.fc"][0].ravel()])
        loss = f["loss"][()]
        ev = json.loads(f.attrs["evaluation"])
        theory = json.loads(f.attrs["theory"])
    law = theory["init_mp"]["l0.fc"]
    fit = rmt.fit_marchenko_pastur(init, law["n_long"])
    assert law["q"] == 0.25
    assert abs(fit["q"] - 0.25) < 0.06 and abs(fit["q"] - 1.0) > 0.5, fit
    assert fit["sigma2"] == pytest.approx(law["sigma2"], rel=0.15)
    assert loss[-1] < ev["uniform_loss"] - 0.8 and ev["val_loss"] < ev["uniform_loss"] - 0.5


# ------------------------------------------------------------ resumption
def _datasets(path) -> dict:
    with h5py.File(path) as f:
        out = {"step": f["step"][()], "loss": f["loss"][()]}
        out.update({f"spectra/{k}": v[()] for k, v in f["spectra"].items()})
    return out


def _assert_identical(a, b):
    da, db = _datasets(a), _datasets(b)
    assert da.keys() == db.keys()
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=k)


@pytest.mark.parametrize("model", ["teacher_student", "rbm", "nanogpt"])
def test_resume_in_process_bit_identical(tmp_path, model):
    kw = dict(lr=0.02 if model != "nanogpt" else 0.5, batch_size=4, steps=40, seed=9, log_every=7,
              settings={"n_layer": 1, "n_embd": 16, "block_size": 8} if model == "nanogpt" else {"replicas": 2})
    ref = train_run(tmp_path / "ref.h5", model, **kw)
    ck = train_run(tmp_path / "run.h5", model, **kw, stop_after=17)
    assert ck == checkpoint_path(tmp_path / "run.h5") and ck.exists() and not (tmp_path / "run.h5").exists()
    train_run(tmp_path / "run.h5", model, **kw)
    assert not ck.exists()
    _assert_identical(ref, tmp_path / "run.h5")
    # a checkpoint of other settings is refused
    train_run(tmp_path / "other.h5", model, **kw, stop_after=5)
    with pytest.raises(CampaignError, match="other settings"):
        train_run(tmp_path / "other.h5", model, **{**kw, "lr": kw["lr"] * 2})


def test_resume_after_kill_bit_identical(tmp_path):
    """kill -9 in the middle of a run (checkpoints at every snapshot), rerun: the run file's
    data equal those of an uninterrupted run."""
    args = ["teacher_student", "--lr", "0.02", "--batch-size", "8", "--steps", "3000", "--seed", "4",
            "--log-every", "10", "--set", "replicas=4", "--quiet"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}

    def cli(out, *extra):
        return [sys.executable, "-m", "campaign.weights", "train", *args, "--out", str(out), *extra]

    subprocess.run(cli(tmp_path / "ref.h5"), env=env, check=True, timeout=300)
    out = tmp_path / "killed.h5"
    ckpt = checkpoint_path(out)
    proc = subprocess.Popen(cli(out, "--checkpoint-interval", "0"), env=env)
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # let it run on past the first checkpoint
    killed = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert killed, "the run finished before it could be killed; lengthen it"
    assert ckpt.exists() and not out.exists()
    step_at_kill = torch.load(ckpt, weights_only=False)["step"]
    assert 0 < step_at_kill < 3000
    res = subprocess.run(cli(out), env=env, timeout=300, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert not ckpt.exists()
    _assert_identical(tmp_path / "ref.h5", out)


def test_cli_errors_are_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC}
    for extra, message in ((["--set", "n=2"], "n must be >= 3"), (["--set", "bogus=1"], "unknown setting")):
        res = subprocess.run([sys.executable, "-m", "campaign.weights", "train", "teacher_student", "--lr", "0.1",
                              "--batch-size", "2", "--steps", "3", "--out", str(tmp_path / "x.h5"), *extra],
                             env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and message in res.stderr and res.stderr.count("\n") == 1, res.stderr


# -------------------------------------------------------------- spectra stage
def test_analyse_model_outputs(scaling_runs, tmp_path):
    """The spectra stage writes one summary per model with a point per (lr, B) and a
    histogram table; spacing statistics of the teacher-student gas are GOE (the fitted
    Dyson index is 1) and not Poisson; the table has a row per point."""
    out = analyse_model(list(scaling_runs.values()), tmp_path / "ts.json", tmp_path / "ts_hist.csv")
    assert [(p["lr"], p["batch_size"]) for p in out["points"]] == [(0.004, 16), (0.008, 16), (0.008, 32)]
    for p in out["points"]:
        r = p["r_mean"]
        assert abs(r["value"] - p["r_goe"]["value"]) < 3 * math.hypot(r["error"], p["r_goe"]["error"])
        assert abs(r["value"] - rmt.R_MEAN["poisson"]) > 20 * r["error"]
        assert abs(p["beta_dyson"]["value"] - 1) < 3 * p["beta_dyson"]["error"] + 0.05
    hist = pd.read_csv(tmp_path / "ts_hist.csv")
    assert {"spacing", "ratio", "density"} <= set(hist["kind"]) and set(hist["series"]) == {"data", "goe"}
    dens = hist[(hist.kind == "spacing") & (hist.series == "data") & (hist.lr == 0.008) & (hist.batch_size == 16)]
    assert float(np.sum(dens.density * (dens.hi - dens.lo))) == pytest.approx(1.0, abs=0.02)
    table = collect_points([tmp_path / "ts.json"])
    assert len(table) == 3 and table["temperature"].notna().all()
    assert np.allclose(table["ratio_to_linear"], table["temperature"] / table["temperature_linear"])


# --------------------------------------------------------------------- figures
def test_figure_collapse_plots_the_table():
    """The collapse figure plots T / g at lr / B, the ratio to the linear rule, and the
    diagonal itself (Line2D / errorbar data, not pixels)."""
    import matplotlib.pyplot as plt

    from campaign.weights.figures import fig_temperature_collapse

    table = pd.DataFrame({
        "model": ["teacher_student", "teacher_student", "rbm"], "lr": [0.02, 0.04, 0.01],
        "batch_size": [8, 8, 8], "lr_over_B": [0.0025, 0.005, 0.00125],
        "temperature": [0.0013, 0.0026, 0.0048], "temperature_error": [1e-5, 2e-5, 3e-5],
        "temperature_coefficient": [0.5, 0.5, 4.0], "temperature_linear": [0.00125, 0.0025, 0.005],
        "ratio_to_linear": [1.04, 1.04, 0.96], "ratio_to_linear_error": [0.008, 0.008, 0.006],
        "temperature_exact": [0.00128, 0.00261, np.nan],
    })
    fig = fig_temperature_collapse(table)
    top, bottom = fig.axes[0], fig.axes[1]
    diag = top.lines[0]
    assert np.allclose(diag.get_xdata(), diag.get_ydata())
    plotted = {(round(float(x), 8), round(float(y), 8)) for c in top.containers for x, y in
               zip(c.lines[0].get_xdata(), c.lines[0].get_ydata())}
    assert plotted == {(0.0025, 0.0026), (0.005, 0.0052), (0.00125, 0.0012)}
    ratios = sorted(float(y) for c in bottom.containers for y in c.lines[0].get_ydata())
    assert ratios == pytest.approx([0.96, 1.04, 1.04])
    plt.close(fig)


def test_figure_spacing_draws_wigner_and_poisson():
    import matplotlib.pyplot as plt

    from campaign.weights.figures import fig_spacing_wigner

    bins = np.linspace(0, 4, 5)
    rows = []
    for kind, edges in (("spacing", bins), ("ratio", np.linspace(0, 1, 5))):
        for series in ("data", "goe"):
            for lo, hi in zip(edges[:-1], edges[1:]):
                rows.append({"model": "rbm", "lr": 0.01, "batch_size": 8, "spectrum": "X", "kind": kind,
                             "series": series, "x": (lo + hi) / 2, "lo": lo, "hi": hi, "density": 0.3,
                             "error": 0.01, "n_levels": 16, "primary": "X"})
    fig = fig_spacing_wigner(pd.DataFrame(rows))
    ax = fig.axes[0]
    curves = {ln.get_label(): ln for ln in ax.lines}
    w = curves[r"Wigner surmise $\beta=1$"]
    assert np.allclose(w.get_ydata(), rmt.wigner_surmise(w.get_xdata(), 1))
    p = curves["Poisson"]
    assert np.allclose(p.get_ydata(), np.exp(-p.get_xdata()))
    data = [c for c in ax.containers if c.get_label() == "SGD"][0]
    assert np.allclose(data.lines[0].get_ydata(), 0.3)
    plt.close(fig)
