"""Complex Langevin (issue 19): closed-form Gaussian P(x, y), quartic moments vs quadrature,
the boundary-term diagnostic, the HDF5 layout."""

import math

import numpy as np
import pytest
import torch
from conftest import write_foreign_h5

from campaign.errors import CampaignError
from campaign.complex_langevin import (CLSettings, Gaussian, LogGaussian, Quartic, drift_tail,
                                       gaussian_covariance, run_cl, verdict)
from campaign.complex_langevin.exact import gaussian_cell_probabilities, gaussian_covariance_lyapunov
from campaign.complex_langevin.store import read_cl_ensemble, write_cl_ensemble

SIGMA = 1.0 + 1.0j


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def gaussian_run():
    # tau_meas = 1.5 >> 1/(2 Re sigma): nearly independent rows, so the histogram chi^2 needs no tau_int
    return run_cl(Gaussian(SIGMA), CLSettings(n_chains=4096, n_meas=12, tau_meas=1.5, tau_therm=5.0, seed=1))


def chi2_vs_closed_form(z: np.ndarray, sigma: complex, n_bins: int = 10) -> dict:
    """Blocked Hotelling chi^2 (diagnostics.histogram_chi2) of the CL histogram against the
    closed-form cell probabilities of sigma, on a +-3 standard deviation grid of the true P."""
    from campaign.complex_langevin.diagnostics import histogram_chi2

    c = gaussian_covariance(SIGMA)
    x_edges = np.linspace(-3 * math.sqrt(c[0, 0]), 3 * math.sqrt(c[0, 0]), n_bins + 1)
    y_edges = np.linspace(-3 * math.sqrt(c[1, 1]), 3 * math.sqrt(c[1, 1]), n_bins + 1)
    return histogram_chi2(z, gaussian_cell_probabilities(sigma, x_edges, y_edges), x_edges, y_edges)


def test_closed_form_solves_lyapunov_and_gives_one_over_sigma():
    for sigma in (1 + 1j, 0.5 - 2j, 2 + 0.3j):
        c = gaussian_covariance(sigma)
        assert np.allclose(c, gaussian_covariance_lyapunov(sigma), atol=1e-12)
        assert c[0, 0] - c[1, 1] + 2j * c[0, 1] == pytest.approx(1 / sigma, abs=1e-12)


def test_gaussian_cl_moments_and_covariance_match_closed_form(gaussian_run):
    z = gaussian_run["z"].numpy()
    v = verdict(Gaussian(SIGMA), z, gaussian_run["drift_abs"].numpy(), orders=(2, 4))
    for n in (2, 4):
        m = v["moments"][n]
        assert abs(m["pull_re"]) < 3 and abs(m["pull_im"]) < 3, (n, m)
    assert v["correct"], v["statement"]
    c = gaussian_covariance(SIGMA)
    x, y = z.real.ravel(), z.imag.ravel()
    # second moments of (x, y) within 3 standard errors of independent rows
    for est, exact in ((x * x, c[0, 0]), (x * y, c[0, 1]), (y * y, c[1, 1])):
        assert abs(est.mean() - exact) < 3 * est.std() / math.sqrt(len(est)), (est.mean(), exact)


def test_gaussian_cl_histogram_chi2_and_power(gaussian_run):
    h = chi2_vs_closed_form(gaussian_run["z"].numpy(), SIGMA)
    assert h["p_value"] > 1e-3 and h["cells"] > 50, h
    assert 0.8 < h["variance_ratio"] < 1.25, h  # tau_meas = 1.5: rows nearly independent
    # power: a slightly different sigma (|<z^2>| changes by 2.5%, resp. 10%) must be rejected
    for wrong in (1.0 + 1.05j, 1.0 + 1.2j):
        bad = chi2_vs_closed_form(gaussian_run["z"].numpy(), wrong)
        assert bad["p_value"] < 1e-6 and bad["t2"] > 2 * bad["cells"], (wrong, bad)


def test_histogram_chi2_errors_know_the_autocorrelation():
    # tau_meas = 0.1 << 1/(2 Re sigma): strongly correlated rows.  The naive Pearson chi^2 (rows
    # independent) rejects the true P(x, y); the chi^2 with errors from the scatter of blocks
    # of whole chains does not, and still rejects the wrong sigma
    r = run_cl(Gaussian(SIGMA), CLSettings(n_chains=4096, n_meas=40, tau_meas=0.1, tau_therm=5.0, seed=1))
    h = chi2_vs_closed_form(r["z"].numpy(), SIGMA)
    assert h["pearson_p_value"] < 1e-6 and h["variance_ratio"] > 1.4, h
    assert h["p_value"] > 1e-3, h
    assert chi2_vs_closed_form(r["z"].numpy(), 1.0 + 1.2j)["p_value"] < 1e-6


def test_quartic_cl_matches_quadrature():
    # sigma = 1 + i, lambda = 1: the model of arXiv 2412.01919 / 2510.01328 (Aarts, Giudice,
    # Seiler 2013: P(x, y) localised in a strip, CL correct)
    model = Quartic(1 + 1j, 1.0)
    assert model.exact_moment(2) == pytest.approx(0.4281418767550017 - 0.1480098981683971j, abs=1e-9)
    r = run_cl(model, CLSettings(n_chains=2048, n_meas=40, tau_meas=0.5, tau_therm=5.0, seed=2))
    v = verdict(model, r["z"].numpy(), r["drift_abs"].numpy(), orders=(2, 4))
    for n in (2, 4):
        m = v["moments"][n]
        assert abs(m["pull_re"]) < 3 and abs(m["pull_im"]) < 3, (n, m)
        assert m["re"]["error"] < 0.01 and m["im"]["error"] < 0.01  # a real test, not a wide error bar
    assert v["drift_tail"]["fast_decay"] and v["correct"], v["statement"]


def test_drift_tail_separates_correct_and_failing_cl():
    # (z + i alpha)^4 e^{-z^2/2}: a pole of the drift at -i alpha.  alpha = 1: CL visits the
    # pole, |K| has a power-law tail and <z^2> is wrong (4.45 vs the exact 1); alpha = 8: far
    # from the pole, a fast tail and the right answer
    bad = LogGaussian(4, 1.0)
    r = run_cl(bad, CLSettings(n_chains=2048, n_meas=40, tau_meas=0.5, tau_therm=5.0, seed=3))
    v = verdict(bad, r["z"].numpy(), r["drift_abs"].numpy(), orders=(2,))
    assert not v["drift_tail"]["fast_decay"] and not v["correct"]
    assert v["moments"][2]["pull_re"] > 20
    assert v["statement"].startswith("CL wrong")
    good = LogGaussian(4, 8.0)
    r = run_cl(good, CLSettings(n_chains=2048, n_meas=40, tau_meas=0.5, tau_therm=5.0, seed=4))
    v = verdict(good, r["z"].numpy(), r["drift_abs"].numpy(), orders=(2,))
    assert v["drift_tail"]["fast_decay"] and v["correct"], v["statement"]


def test_drift_tail_slopes_of_known_tails():
    rng = np.random.default_rng(0)
    pareto = rng.pareto(3.0, 200_000) + 1  # S(u) = u^-3
    t = drift_tail(pareto)
    assert not t["fast_decay"] and t["tail_slope"] == pytest.approx(-3, abs=0.3)
    assert drift_tail(np.abs(rng.normal(size=200_000)))["fast_decay"]


def test_store_round_trip(tmp_path):
    model, settings = Quartic(1 + 1j, 1.0), CLSettings(n_chains=8, n_meas=5, tau_therm=0.5)
    r = run_cl(model, settings)
    path = write_cl_ensemble(tmp_path / "cl.h5", model, settings, r)
    back = read_cl_ensemble(path)
    assert np.array_equal(back["z"], r["z"].numpy())
    assert np.array_equal(back["drift_abs"], r["drift_abs"].numpy())
    assert back["model"] == model and back["attrs"]["cl_n_chains"] == 8 and back["attrs"]["code_commit"]


def test_same_seed_same_chains():
    s = CLSettings(n_chains=16, n_meas=4, tau_therm=0.5, seed=7)
    a, b = run_cl(Quartic(), s), run_cl(Quartic(), s)
    assert torch.equal(a["z"], b["z"])


def test_user_errors_are_campaign_errors():
    with pytest.raises(CampaignError, match="Re sigma > 0"):
        Gaussian(-1 + 1j)
    with pytest.raises(CampaignError, match="complex number"):
        Gaussian("one")
    with pytest.raises(CampaignError, match="n_chains"):
        CLSettings(n_chains=0)
    with pytest.raises(CampaignError, match="alpha"):
        LogGaussian(4, 0.0)


def test_quadrature_matches_closed_form_gaussian_moments():
    from campaign.complex_langevin.models import quadrature_moment

    g = Gaussian(0.7 - 1.3j)
    for n in (2, 4, 6):
        assert quadrature_moment(g.weight, n) == pytest.approx(g.exact_moment(n), rel=1e-9)


def test_diffusion_model_of_gaussian_cl_reproduces_closed_form(gaussian_run):
    from campaign.complex_langevin.diagnostics import compare, independent_moment_summary
    from campaign.complex_langevin.diffusion import (CLDiffusionSettings, as_xy, gaussian_noisy_score,
                                                     sample_cl_diffusion, score_error, train_cl_diffusion)

    model = Gaussian(SIGMA)
    settings = CLDiffusionSettings()
    net, losses = train_cl_diffusion(gaussian_run["z"].numpy(), settings, seed=0)
    assert len(losses) == sum(n for _, n in settings.lr_stages)
    z_dm = sample_cl_diffusion(net, 10_000, settings, seed=5)
    for n in (2, 4):
        s = independent_moment_summary(z_dm, n)
        c = compare(s, model.exact_moment(n))
        assert abs(c["pull_re"]) < 3 and abs(c["pull_im"]) < 3, (n, s["re"]["value"], s["im"]["value"], c)
    assert independent_moment_summary(z_dm, 2)["re"]["error"] < 0.015  # 10^4 draws: a real test
    # the density itself (not only holomorphic moments): the DM draws are P * N(0, sigma_min^2),
    # a Gaussian of covariance C + sigma_min^2 1; second moments of x and y within 3 standard errors
    c = gaussian_covariance(SIGMA) + settings.sigma_min ** 2 * np.eye(2)
    x, y = z_dm.real, z_dm.imag
    for est, exact in ((x * x, c[0, 0]), (x * y, c[0, 1]), (y * y, c[1, 1])):
        assert abs(est.mean() - exact) < 3 * est.std() / math.sqrt(len(est)), (est.mean(), exact)
    # the learned score against the exact score of P * N(0, s^2) at CL sample points
    xy = as_xy(gaussian_run["z"].numpy()[:, :500])
    exact = gaussian_noisy_score(SIGMA)
    assert score_error(net, exact, xy, 0.2) < 0.15
    assert score_error(net, exact, xy, settings.sigma_min) < 0.25
    # power: the exact score of a different sigma is far from the learned one
    assert score_error(net, gaussian_noisy_score(1.0 + 0.5j), xy, 0.2) > 0.3


def test_figure_writes_png(tmp_path):
    from campaign.complex_langevin.exact import gaussian_density
    from campaign.complex_langevin.figures import plot_cl_distribution

    rng = np.random.default_rng(0)
    c = gaussian_covariance(SIGMA)
    xy = rng.multivariate_normal([0, 0], c, size=5000)
    z = xy[:, 0] + 1j * xy[:, 1]
    out = plot_cl_distribution(tmp_path / "fig" / "gauss.png", z, z[::-1],
                               lambda x, y: gaussian_density(SIGMA, x, y), title="sigma = 1 + i")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    out2 = plot_cl_distribution(tmp_path / "two.png", z)  # CL only: one panel
    assert out2.exists()


def test_cli_writes_ensemble_and_refuses_overwrite(tmp_path, capsys):
    from campaign.cli import main

    out = tmp_path / "q.h5"
    argv = ["cl", "--model", "quartic", "--sigma", "1+1i", "--lam", "1", "--chains", "16", "--n-meas", "6",
            "--tau-therm", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    d = read_cl_ensemble(out)
    assert d["z"].shape == (6, 16) and d["model"] == Quartic(1 + 1j, 1.0)
    assert not (tmp_path / "q.h5.parts").exists() and not (tmp_path / "q.h5.lock").exists()
    assert main(argv) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["cl", "--model", "gaussian", "--sigma=-1+1j", "--out", str(tmp_path / "g.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Re sigma > 0" in err


def test_killed_run_resumes_to_the_uninterrupted_ensemble(tmp_path):
    from campaign.complex_langevin.job import generate_cl_ensemble

    model = Gaussian(SIGMA)
    settings = CLSettings(n_chains=32, n_meas=8, tau_therm=1.0, seed=11)
    whole = read_cl_ensemble(generate_cl_ensemble(tmp_path / "whole.h5", model, settings, checkpoint_interval=0))

    class Killed(Exception):
        pass

    def kill_at_5(k):
        if k == 5:
            raise Killed

    out = tmp_path / "resumed.h5"
    with pytest.raises(Killed):
        generate_cl_ensemble(out, model, settings, checkpoint_interval=0, on_measurement=kill_at_5)
    assert not out.exists() and (tmp_path / "resumed.h5.parts" / "state.pt").exists()
    resumed = read_cl_ensemble(generate_cl_ensemble(out, model, settings, checkpoint_interval=0))
    assert np.array_equal(resumed["z"], whole["z"]) and np.array_equal(resumed["time"], whole["time"])
    # a checkpoint of other settings is refused, not silently discarded
    with pytest.raises(Killed):
        generate_cl_ensemble(tmp_path / "x.h5", model, settings, checkpoint_interval=0, on_measurement=kill_at_5)
    with pytest.raises(CampaignError, match="different settings"):
        generate_cl_ensemble(tmp_path / "x.h5", model, CLSettings(n_chains=32, n_meas=9, tau_therm=1.0, seed=11))


def test_study_without_dm_reports_verdict_table_and_figure(tmp_path):
    from campaign.complex_langevin.study import model_label, moments_table, study

    model = Quartic(1 + 1j, 1.0)
    assert model_label(model) == "quartic: sigma = 1+1i, lam = 1+0i"
    res = study(model, CLSettings(n_chains=256, n_meas=20, seed=5), dm=None, figure=tmp_path / "q.png")
    assert (tmp_path / "q.png").exists() and [row["n"] for row in res["moments"]] == [2, 4]
    table = moments_table([res]).splitlines()
    assert len(table) == 4 and table[2].startswith("| quartic") and table[2].endswith("| - |")


def test_singular_drift_and_tiny_steps_fail_in_one_line():
    from campaign.complex_langevin.langevin import evolve

    model = LogGaussian(4, 1.0)
    gen = torch.Generator().manual_seed(0)
    z = torch.tensor([0.5 + 0j, -1j], dtype=torch.complex128)  # the second chain sits on the pole
    with pytest.raises(CampaignError, match="non-finite drift"):
        evolve(model, z, 1.0, torch.zeros(2, dtype=torch.float64), 0.02, 1.0, gen, 1e-9)
    z = torch.tensor([0.5 + 0j, 1e-9 - 1j], dtype=torch.complex128)  # next to the pole: |K| ~ 4e9
    with pytest.raises(CampaignError, match="dt_min"):
        evolve(model, z, 1.0, torch.zeros(2, dtype=torch.float64), 0.02, 1.0, gen, 1e-9)
    with pytest.raises(CampaignError, match="dt_min"):
        CLSettings(dt0=0.02, dt_min=0.5)


def test_too_few_samples_leave_the_tail_undetermined():
    rng = np.random.default_rng(1)
    t = drift_tail(np.abs(rng.normal(size=5000)))  # 1e-3 quantile: 5 samples beyond it
    assert not t["determined"] and not t["fast_decay"]
    z = rng.normal(size=(50, 100)) + 0j
    v = verdict(Gaussian(1.0 + 0j), z, np.abs(z))
    assert v["statement"].startswith("drift tail undetermined") and not v["correct"]


def test_cli_dm_and_measure(tmp_path, capsys):
    import json

    from campaign.cli import main

    cl, dm = tmp_path / "g.h5", tmp_path / "g_dm.h5"
    assert main(["cl", "--model", "gaussian", "--chains", "64", "--n-meas", "10", "--out", str(cl), "--quiet"]) == 0
    # a deliberately tiny DM (the physics test is test_diffusion_model_...): the pipeline only
    from campaign.complex_langevin import job
    from campaign.complex_langevin.diffusion import CLDiffusionSettings

    job.train_and_sample(cl, dm, CLDiffusionSettings(lr_stages=((3e-3, 20),), hidden=8, sample_steps=10),
                         n_samples=300)
    d = read_cl_ensemble(dm)
    assert d["z"].shape == (1, 300) and d["attrs"]["independent"] and d["attrs"]["algorithm"] == "diffusion-model"
    assert main(["cl-measure", str(cl), "--summary", str(tmp_path / "s.json"), "--figure", str(tmp_path / "f.png"),
                 "--compare", str(dm)]) == 0
    assert "<z^2>" in capsys.readouterr().out
    s = json.loads((tmp_path / "s.json").read_text())
    assert set(s["moments"]) == {"2", "4"} and (tmp_path / "f.png").exists()
    assert main(["cl-measure", str(dm)]) == 0
    assert main(["cl-measure", str(tmp_path / "missing.h5")]) == 1
    assert main(["cl-dm", "--ensemble", str(cl), "--out", str(dm)]) == 1  # exists already
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("error:" in line for line in err)


def test_reading_a_foreign_file_is_one_line_error(tmp_path):
    path = write_foreign_h5(tmp_path / "other.h5", phi=np.zeros(3))
    with pytest.raises(CampaignError, match="not a complex Langevin ensemble"):
        read_cl_ensemble(path)
