"""Forward noising on the group: exact heat kernels (density, sampling, score against finite
differences with the left-derivative convention), DSM loss, ScoreModel conditioning."""

import math

import pytest
import torch

from campaign.diffusion import heat_kernel as D
from campaign.actions import wilson_force
from campaign.diffusion import (
    ScoreModel, dsm_loss, heat_kernel_log_density, heat_kernel_sample, heat_kernel_score,
    measure_score_approximation, perturb, sample_sigma, small_noise_score,
    su2_heat_kernel,
)
from campaign.groups import SU2, U1, U2, matmul
from campaign.lattice import gauge_transform

F64 = torch.float64


def left_fd_score(group, V, sigma, eps=1e-5):
    """sum_a T_a d/ds log K(exp(s T_a) V) by central differences."""
    out = torch.zeros_like(V)
    for T in group.basis():
        lp = heat_kernel_log_density(group, matmul(group.exp(eps * T).expand_as(V), V), sigma)
        lm = heat_kernel_log_density(group, matmul(group.exp(-eps * T).expand_as(V), V), sigma)
        out = out + ((lp - lm) / (2 * eps)).to(V.dtype)[..., None, None] * T
    return out


@pytest.mark.parametrize("sigma", [0.03, 0.3, 0.69, 0.72, 1.2, 1.5, 3.0])
def test_score_matches_finite_differences(group, gen, sigma):
    """Exact kernel score = left derivative of its log density, in every regime (winding
    and character forms, Gaussian and Haar proposals), for typical and far-out links."""
    V = heat_kernel_sample(group, (300,), sigma, generator=gen)
    V = torch.cat((V, group.haar((30,), generator=gen)))
    s = heat_kernel_score(group, V, sigma)
    fd = left_fd_score(group, V, sigma)
    scale = 1.0 + s.abs().amax((-1, -2))
    err = ((fd - s).abs().amax((-1, -2)) / scale).max()
    assert float(err) < 2e-5
    # typical links (drawn from the kernel) to much better precision
    err_typ = ((fd - s).abs().amax((-1, -2)) / scale)[:300].max()
    assert float(err_typ) < 1e-7
    assert torch.allclose(group.project_algebra(s), s, atol=1e-13)


def test_u1_score_is_wrapped_normal(gen):
    sigma = 1.3
    phi = torch.linspace(-math.pi + 1e-3, math.pi - 1e-3, 101, dtype=F64)
    V = torch.polar(torch.ones_like(phi), phi)[:, None, None]
    m = torch.arange(-20, 21, dtype=F64)
    a = phi[:, None] + 2 * math.pi * m
    w = torch.exp(-a * a / (2 * sigma ** 2))
    expect = -(a * w).sum(-1) / w.sum(-1) / sigma ** 2
    s = heat_kernel_score(U1, V, sigma)
    assert torch.allclose(s[:, 0, 0].imag, expect, atol=1e-12)
    assert torch.all(s.real == 0)


@pytest.mark.parametrize("t", [0.003, 0.1, 0.45, 0.5, 0.55, 1.0, 4.0])
def test_su2_kernel_normalised(t):
    th = torch.linspace(0, math.pi, 100001, dtype=F64)
    logk, h = su2_heat_kernel(torch.cos(th), torch.sin(th), torch.tensor(t, dtype=F64))
    assert torch.isfinite(logk).all() and torch.isfinite(h).all()
    haar = (2 / math.pi) * torch.sin(th) ** 2
    assert abs(float(torch.trapezoid(torch.exp(logk) * haar, th)) - 1) < 1e-8


def test_su2_winding_and_character_forms_agree():
    th = torch.tensor([1e-7, 0.3, 1.2, 1.5707, 1.5709, 2.5, 3.1, math.pi - 1e-6], dtype=F64)
    t = torch.full_like(th, 0.45)
    lk_c, h_c = D._su2_region_c(torch.cos(th), t)
    a = th <= math.pi / 2
    lk_a, h_a = D._su2_region_a(th[a], t[a])
    lk_b, h_b = D._su2_region_b(th[~a], t[~a])
    assert torch.allclose(torch.cat((lk_a, lk_b)), lk_c, rtol=0, atol=1e-8)
    assert torch.allclose(torch.cat((h_a, h_b)), h_c, rtol=1e-7, atol=1e-7)


def test_su2_score_small_angle_limit():
    """h -> -1/t + 1/6 at theta -> 0 (the Gaussian term and the curvature correction)."""
    t = torch.tensor([0.01, 0.2], dtype=F64)
    th = torch.tensor([1e-9, 1e-9], dtype=F64)
    _, h = su2_heat_kernel(torch.cos(th), torch.sin(th), t)
    assert torch.allclose(h, -1 / t + 1.0 / 6, rtol=1e-10)


@pytest.mark.parametrize("sigma", [0.2, 0.8, 1.6])
def test_heat_kernel_sample_moments(group, sigma):
    """E[Re tr V / N] = exp(-c t): U(1) c = 1/2, SU(2) 3/4 (spin 1/2), U(2) 1; SU(2) also the
    spin-1 character E[chi_1] = 3 exp(-2t)."""
    gen = torch.Generator().manual_seed(7)
    n = 40000
    V = heat_kernel_sample(group, (n,), sigma, generator=gen)
    t = sigma ** 2
    c = D.FUNDAMENTAL_DECAY[group.name]
    x = torch.diagonal(V, dim1=-2, dim2=-1).sum(-1).real / group.N
    assert abs(float(x.mean()) - math.exp(-c * t)) < 5 * float(x.std()) / math.sqrt(n)
    if group is SU2:
        chi1 = (2 * x) ** 2 - 1
        assert abs(float(chi1.mean()) - 3 * math.exp(-2 * t)) < 5 * float(chi1.std()) / math.sqrt(n)
    # unitary with the right determinant
    eye = torch.eye(group.N, dtype=V.dtype)
    assert torch.allclose(V @ V.conj().transpose(-1, -2), eye.expand_as(V), atol=1e-12)


@pytest.mark.parametrize("t", [0.05, 0.7, 3.0])
def test_su2_sample_angle_distribution(t):
    """Kolmogorov-Smirnov: sampled eigenphases follow K_t(theta) (2/pi) sin^2 theta."""
    gen = torch.Generator().manual_seed(11)
    n = 20000
    V = heat_kernel_sample(SU2, (n,), math.sqrt(t), generator=gen)
    theta = torch.arccos((V[..., 0, 0] + V[..., 1, 1]).real.clamp(-2, 2) / 2).sort().values
    grid = torch.linspace(0, math.pi, 200001, dtype=F64)
    logk, _ = su2_heat_kernel(torch.cos(grid), torch.sin(grid), torch.tensor(t, dtype=F64), want_h=False)
    dens = torch.exp(logk) * (2 / math.pi) * torch.sin(grid) ** 2
    cdf = torch.cat((torch.zeros(1, dtype=F64), torch.cumulative_trapezoid(dens, grid)))
    model_cdf = torch.from_numpy(__import__("numpy").interp(theta.numpy(), grid.numpy(), cdf.numpy()))
    emp = torch.arange(1, n + 1, dtype=F64) / n
    ks = float(torch.maximum((emp - model_cdf).abs(), (emp - 1 / n - model_cdf).abs()).max())
    assert ks < 1.63 / math.sqrt(n)  # 1% level


def test_u2_lifts_are_consistent(gen):
    """The U(2) density is a function of V only: -V = e^{i pi} V has its own density, and
    the density is invariant under conjugation (a class function)."""
    V = heat_kernel_sample(U2, (50,), 0.8, generator=gen)
    W = U2.haar((50,), generator=gen)
    a = heat_kernel_log_density(U2, V, 0.8)
    b = heat_kernel_log_density(U2, W @ V @ W.conj().transpose(-1, -2), 0.8)
    assert torch.allclose(a, b, atol=1e-10)


def test_u2_density_normalised():
    """Monte Carlo over Haar: E_Haar[K_t] = 1."""
    gen = torch.Generator().manual_seed(5)
    for sigma in (0.9, 2.0):
        V = U2.haar((200000,), generator=gen)
        k = torch.exp(heat_kernel_log_density(U2, V, sigma))
        assert abs(float(k.mean()) - 1) < 5 * float(k.std()) / math.sqrt(len(k))


def test_small_noise_approximation_difference():
    """Measured difference heat-kernel vs -X/sigma^2: ~sigma^2/6 relative on SU(2) at small
    sigma, zero for U(1) until windings matter, O(1) beyond sigma ~ 1."""
    rows = measure_score_approximation("su2", [0.05, 0.2, 2.0], n_links=2000)
    assert abs(rows[0]["rel_rms"] / (0.05 ** 2 / 6) - 1) < 0.05
    assert abs(rows[1]["rel_rms"] / (0.2 ** 2 / 6) - 1) < 0.1
    assert rows[2]["rel_rms"] > 1
    rows = measure_score_approximation("u1", [0.3, 1.5], n_links=2000)
    assert rows[0]["rel_rms"] < 1e-12 and rows[1]["rel_rms"] > 0.1


def test_small_noise_score_definition(group, gen):
    V = heat_kernel_sample(group, (20,), 0.1, generator=gen)
    assert torch.allclose(small_noise_score(group, V, 0.1), -group.log(V) / 0.01)


def test_perturb_is_left_multiplication_and_gauge_covariant(group, gen):
    U0 = group.haar((3, 2, 16, 16), generator=gen)
    sigma = torch.tensor([0.1, 0.5, 2.0], dtype=F64)
    U, V = perturb(group, U0, sigma, generator=gen)
    assert torch.allclose(U, V @ U0)
    # noise size follows sigma: mean |log V|^2 / dim ~ t for small sigma
    x = group.algebra_norm2(group.log(V)).mean((1, 2, 3)) / group.algebra_dim
    assert 0.8 < float(x[0]) / 0.01 < 1.2
    # V is a class-function (conjugation invariant) draw, so U_sigma of a gauge copy is a
    # gauge copy of a noised configuration: check the kernel density is equal
    omega = group.haar((3, 16, 16), generator=gen)
    Ug = gauge_transform(U, omega)
    U0g = gauge_transform(U0, omega)
    Vg = Ug @ U0g.conj().transpose(-1, -2)
    s = sigma.reshape(-1, 1, 1, 1)
    assert torch.allclose(heat_kernel_log_density(group, Vg, s), heat_kernel_log_density(group, V, s), atol=1e-10)


def test_sigma_sampling(gen):
    x = sample_sigma(20000, 0.01, 4.0, generator=gen)
    assert float(x.min()) >= 0.01 and float(x.max()) <= 4.0
    assert abs(float(torch.log(x).mean()) - 0.5 * (math.log(0.01) + math.log(4.0))) < 0.05


def test_score_model_small_sigma_limit_is_physics(group, gen):
    """With the physics skip term the model tends to -beta0 grad S as sigma -> 0."""
    model = ScoreModel(group, 2.0, 4, 0.01, 4.0).double()
    U = group.haar((2, 2, 4, 4), generator=gen)
    F = wilson_force(group, U, 2.0)
    s = model(U, torch.full((2,), 1e-6, dtype=F64))
    assert torch.allclose(s, -F, atol=1e-5)
    model_ns = ScoreModel(group, 2.0, 4, 0.01, 4.0, arch={"skip": False}).double()
    s = model_ns(U, torch.full((2,), 1e-6, dtype=F64)).detach()
    assert float(s.abs().max()) < 1e-5
    # large sigma: the exact score of any gauge-invariant density dies out like exp(-2 c_f t);
    # the parametrisation makes the model output vanish too
    assert float(model(U, torch.full((2,), 8.0, dtype=F64)).detach().abs().max()) < 1e-12
    for name in ("group", "beta0", "L0", "sigma_min", "sigma_max", "arch"):
        assert hasattr(model, name)


def test_dsm_loss_of_exact_score_is_the_floor(gen):
    """On Haar data (beta = 0) the exact marginal score is 0: the zero model attains the
    minimum; its loss equals the irreducible E sigma^2 |target|^2 per component."""
    class Zero(torch.nn.Module):
        group = SU2

        def forward(self, U, sigma):
            return torch.zeros_like(U)

    U0 = SU2.haar((64, 2, 4, 4), generator=gen)
    sigma = torch.full((64,), 0.05, dtype=F64)
    loss = dsm_loss(Zero(), U0, sigma, generator=gen)
    # small sigma: sigma^2 |grad log K|^2 ~ |eta|^2 -> 1 per component
    assert 0.9 < float(loss) < 1.1
