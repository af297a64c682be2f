"""L-CNN layers and the score network: gauge equivariance of every layer and of the whole
model (float64, relative error < 1e-10), translation equivariance, any L, O(1) outputs."""

import pytest
import torch

from campaign.diffusion import ScoreModel
from campaign.groups import dagger
from campaign.lattice import gauge_transform, transform_link_algebra, transform_site_field
from campaign.diffusion.lcnn import (
    LCNN, LAct, LBilin, LConv, LinkHead, LTrace, NoiseEmbedding, TraceNorm, input_loops,
)

TOL = 1e-10


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def setup(group, gen, B=2, L=6, C=3):
    U = group.haar((B, 2, L, L), generator=gen)
    omega = group.haar((B, L, L), generator=gen)
    # a generic site field: products of random group elements and a non-unitary part
    W = group.haar((B, C, L, L), generator=gen) + 0.3 * torch.randn(B, C, L, L, group.N, group.N, generator=gen, dtype=torch.float64)
    return U, omega, W


def gt_site(W, omega):
    return transform_site_field(W, omega.unsqueeze(1))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_input_loops_covariant(group, gen):
    U, omega, _ = setup(group, gen)
    for loops in ("plaquette", "rect"):
        a = input_loops(gauge_transform(U, omega), loops)
        b = gt_site(input_loops(U, loops), omega)
        assert rel(a, b) < TOL
    W0 = input_loops(U, "plaquette")
    assert torch.allclose(W0[:, 1], dagger(W0[:, 0]))


@pytest.mark.parametrize("kernel_size", [1, 2, 3])
def test_lconv_equivariant(group, gen, kernel_size):
    U, omega, W = setup(group, gen)
    conv = LConv(3, 4, kernel_size).double()
    a = conv(gauge_transform(U, omega), gt_site(W, omega))
    b = gt_site(conv(U, W), omega)
    assert a.shape == (2, 4, 6, 6, group.N, group.N)
    assert rel(a, b) < TOL


def test_lconv_is_parallel_transport(group, gen):
    """With one input channel and a one-hot weight the layer is U_0(x) W(x+0) U_0(x)^dag."""
    U, _, W = setup(group, gen, C=1)
    conv = LConv(1, 1, 2).double()
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 1, 0] = 1.0  # term order: W, T_{0,+1}, T_{0,-1}, T_{1,+1}, T_{1,-1}
    u0 = U[:, 0].unsqueeze(1)
    expect = u0 @ torch.roll(W, -1, dims=2) @ dagger(u0)
    assert rel(conv(U, W), expect) < 1e-13


def test_bilin_norm_act_trace(group, gen):
    U, omega, W = setup(group, gen)
    W2 = W.flip(1) * 1.7
    g = lambda f: gt_site(f, omega)  # noqa: E731
    bil = LBilin(3, 3, 5).double()
    assert rel(bil(g(W), g(W2)), g(bil(W, W2))) < TOL
    norm = TraceNorm()
    assert rel(norm(g(W)), g(norm(W))) < TOL
    act = LAct(3).double()
    shift_ = torch.randn(2, 3, dtype=torch.float64)
    assert rel(act(g(W), shift_), g(act(W, shift_))) < TOL
    tr = LTrace()
    assert rel(tr(g(W)), tr(W)) < TOL  # invariant


def test_trace_norm_bounds_growth(group, gen):
    _, _, W = setup(group, gen)
    big = TraceNorm()(W * 1e8)
    rms = (big.abs() ** 2).sum((-1, -2)).mean(1) / group.N
    assert float(rms.max()) < 1.0 + 1e-12


def test_link_head_covariant(group, gen):
    U, omega, W = setup(group, gen)
    head = LinkHead(group, 3).double()
    a = head(gauge_transform(U, omega), gt_site(W, omega))
    s = head(U, W)
    assert rel(a, transform_link_algebra(s, omega)) < TOL
    # output lies in the algebra
    assert rel(group.project_algebra(s), s) < 1e-14


@pytest.mark.parametrize("loops", ["plaquette", "rect"])
def test_network_gauge_equivariant(group, gen, loops):
    U, omega, _ = setup(group, gen, B=3)
    net = LCNN(group, channels=4, layers=3, kernel_size=2, loops=loops).double()
    for p in net.embed.parameters():  # make sigma matter
        torch.nn.init.normal_(p, std=0.3)
    sigma = torch.tensor([0.02, 0.5, 3.0], dtype=torch.float64)
    a = net(gauge_transform(U, omega), sigma)
    b = transform_link_algebra(net(U, sigma), omega)
    assert rel(a, b) < TOL


def make_model(group, beta0=1.5, **arch):
    torch.manual_seed(1)
    model = ScoreModel(group, beta0, 8, 0.01, 4.0, arch={"channels": 4, "layers": 2, **arch}).double()
    for p in model.net.embed.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model


def test_score_model_gauge_equivariant(group, gen):
    model = make_model(group, kernel_size=3)
    U, omega, _ = setup(group, gen, B=3, L=5)
    sigma = torch.tensor([0.01, 0.3, 2.0], dtype=torch.float64)
    a = model(gauge_transform(U, omega), sigma)
    b = transform_link_algebra(model(U, sigma), omega)
    assert a.shape == U.shape
    assert rel(a, b) < TOL


def test_translation_equivariant(group, gen):
    model = make_model(group)
    U = group.haar((2, 2, 6, 6), generator=gen)
    sigma = torch.tensor([0.1, 1.0], dtype=torch.float64)
    s = model(U, sigma)
    for shifts in ((1, 0), (0, 2), (3, 5)):
        Ur = torch.roll(U, shifts, dims=(2, 3))
        assert rel(model(Ur, sigma), torch.roll(s, shifts, dims=(2, 3))) < TOL


def test_same_weights_any_L(group, gen):
    """One model runs on L=8 and L=16; on an L=16 field that tiles an L=8 one periodically
    it returns the tiled L=8 output (the network is local and periodic)."""
    model = make_model(group)
    U8 = group.haar((2, 2, 8, 8), generator=gen)
    U16 = U8.repeat(1, 1, 2, 2, 1, 1)
    sigma = torch.tensor([0.05, 0.7], dtype=torch.float64)
    s8, s16 = model(U8, sigma), model(U16, sigma)
    assert s16.shape == U16.shape
    assert rel(s16, s8.repeat(1, 1, 2, 2, 1, 1)) < TOL
    U16b = group.haar((1, 2, 16, 16), generator=gen)
    assert torch.isfinite(model(U16b, sigma[:1])).all()


@pytest.mark.parametrize("layers", [2, 6])
def test_random_init_output_order_one(group, gen, layers):
    """Trace normalisation keeps random-init outputs O(1) however deep (no 1e12 blow-ups)."""
    torch.manual_seed(3)
    net = LCNN(group, channels=8, layers=layers, kernel_size=3).double()
    U = group.haar((2, 2, 8, 8), generator=gen)
    out = net(U, torch.tensor([0.1, 2.0], dtype=torch.float64))
    rms = float((group.algebra_norm2(out.detach()).mean() / group.algebra_dim).sqrt())
    assert 1e-2 < rms < 3.0
    # also for near-identity (cold) links
    cold = group.identity((1, 2, 8, 8))
    out = net(cold, torch.tensor([0.1], dtype=torch.float64))
    assert float(out.detach().abs().max()) < 10.0


def test_noise_embedding_starts_at_zero():
    emb = NoiseEmbedding(6).double()
    assert torch.all(emb(torch.tensor([0.01, 1.0], dtype=torch.float64)) == 0)


def test_bad_options():
    with pytest.raises(ValueError):
        LConv(2, 2, 0)
    with pytest.raises(ValueError):
        LCNN("u1", loops="hexagon")
    with pytest.raises(ValueError):
        ScoreModel("u1", 1.0, 8, 0.01, 4.0, arch={"widht": 3})


def test_float32_model_accepts_complex128(group, gen):
    model = ScoreModel(group, 1.0, 4, 0.01, 4.0)  # float32 parameters
    U = group.haar((2, 2, 4, 4), generator=gen)
    s = model(U, torch.tensor([0.1, 1.0], dtype=torch.float64))
    assert s.dtype == U.dtype and s.shape == U.shape
