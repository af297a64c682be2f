"""The real-arithmetic L-CNN (``FastLCNN``, the default) against the complex-matrix
reference (``LCNN``): the same function for the same parameters (float64, relative error
< 1e-12), in its building blocks and end to end, with gradients; every parameter
matters; model files written with the reference load into the default ScoreModel, same
scores; the compiled path equals the eager one and falls back to it when compiling fails."""

import pytest
import torch

import campaign.fields.compile as compile_module
from campaign import io
from campaign.diffusion import ScoreModel
from campaign.diffusion import fast_lcnn
from campaign.diffusion.fast_lcnn import FastLCNN, compile_pays, links_real, product, rotate, rotation
from campaign.diffusion.lcnn import LCNN
from campaign.groups import dagger, get_group
from campaign.lattice import gauge_transform, transform_link_algebra

TOL = 1e-12


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def pair(group, **kw):
    torch.manual_seed(2)
    ref = LCNN(group, **kw).double()
    for p in ref.embed.parameters():  # make sigma matter
        torch.nn.init.normal_(p, std=0.3)
    fast = FastLCNN(group, **kw).double()
    fast.load_state_dict(ref.state_dict())
    return ref, fast


def components(M):
    """Complex matrices (B, L, L, N, N) -> the real components (B, K, 2, L, L)."""
    return links_real(torch.view_as_real(torch.stack((M, M), 1)))[0]


@pytest.mark.parametrize("N", [1, 2])
def test_product_is_matrix_product(N, gen):
    A = torch.randn(3, 4, 4, N, N, dtype=torch.complex128, generator=gen)
    B = torch.randn(3, 4, 4, N, N, dtype=torch.complex128, generator=gen)
    assert rel(product(components(A), components(B)), components(A @ B)) < TOL
    if N == 2:  # the form for autograd, and the written-out one
        for form in (fast_lcnn._product_vectorised, fast_lcnn._product_written_out):
            assert rel(form(components(A), components(B)), components(A @ B)) < TOL


@pytest.mark.parametrize("name", ["su2", "u2"])
def test_rotation_is_conjugation(name, gen):
    u = get_group(name).haar((2, 3, 3), generator=gen)
    W = torch.randn(2, 3, 3, 2, 2, dtype=torch.complex128, generator=gen)
    X = components(W)[:, :, :, None]  # one channel
    expect = components(u @ W @ dagger(u))[:, :, :, None]
    assert rel(rotate(rotation(components(u)), X), expect) < TOL


@pytest.mark.parametrize("kernel_size,loops", [(1, "plaquette"), (2, "plaquette"), (3, "rect")])
def test_equals_reference(group, gen, kernel_size, loops):
    ref, fast = pair(group, channels=4, layers=3, kernel_size=kernel_size, loops=loops)
    U = group.haar((3, 2, 6, 6), generator=gen)
    sigma = torch.tensor([0.02, 0.5, 3.0], dtype=torch.float64)
    a, b = fast(U, sigma), ref(U, sigma)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert rel(a, b) < TOL
    # gradients with respect to every parameter (training runs through them)
    (a.real.square().sum() + a.imag.sum()).backward()
    (b.real.square().sum() + b.imag.sum()).backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        assert rel(p.grad, q.grad) < 1e-10, name


def test_every_parameter_matters(group, gen):
    """Changing any one parameter entry changes the output, by what it changes the
    reference's: the equality above is not that of two networks that ignore their weights."""
    ref, fast = pair(group, channels=3, layers=2, kernel_size=2)
    U = group.haar((2, 2, 4, 4), generator=gen)
    sigma = torch.tensor([0.1, 1.0], dtype=torch.float64)
    with torch.no_grad():
        a0, b0 = fast(U, sigma), ref(U, sigma)
        for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
            p.view(-1)[-1] += 0.5
            q.view(-1)[-1] += 0.5
            da, db = fast(U, sigma) - a0, ref(U, sigma) - b0
            assert float(da.abs().max()) > 1e-6 * float(a0.abs().max()), name
            assert rel(da, db) < 1e-9, name
            p.view(-1)[-1] -= 0.5
            q.view(-1)[-1] -= 0.5


def test_float32_close_to_reference(group, gen):
    ref, fast = pair(group, channels=6, layers=2)
    fast = fast.float()
    U = group.haar((2, 2, 8, 8), generator=gen)
    sigma = torch.tensor([0.1, 1.0], dtype=torch.float64)
    a = fast(U.to(torch.complex64), sigma.float())
    assert a.dtype == torch.complex64
    assert rel(a.to(torch.complex128), ref(U, sigma)) < 1e-4


def test_fast_network_gauge_equivariant(group, gen):
    _, fast = pair(group, channels=4, layers=2, kernel_size=3, loops="rect")
    U = group.haar((2, 2, 5, 5), generator=gen)
    omega = group.haar((2, 5, 5), generator=gen)
    sigma = torch.tensor([0.05, 2.0], dtype=torch.float64)
    assert rel(fast(gauge_transform(U, omega), sigma), transform_link_algebra(fast(U, sigma), omega)) < 1e-10


def test_reference_model_file_loads_with_same_scores(group, gen, tmp_path):
    """A model file written by the complex-matrix ScoreModel loads into the default one
    unchanged (same state_dict), same scores."""
    torch.manual_seed(5)
    old = ScoreModel(group, 1.5, 8, 0.01, 4.0, arch={"channels": 4}, fast=False).double()
    for p in old.net.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    path = io.save_model(tmp_path / "m.pt", old)
    loaded = io.load_model(path).double()
    assert isinstance(loaded.net, FastLCNN) and not isinstance(old.net, FastLCNN)
    U = group.haar((2, 2, 8, 8), generator=gen)
    sigma = torch.tensor([0.03, 1.2], dtype=torch.float64)
    assert rel(loaded(U, sigma), old(U, sigma)) < TOL


def test_compile_policy(monkeypatch):
    monkeypatch.setenv("CAMPAIGN_COMPILE", "never")
    assert not compile_pays("su2", torch.float32, 1e15)
    monkeypatch.setenv("CAMPAIGN_COMPILE", "always")
    assert compile_pays("su2", torch.float32, 1.0)
    monkeypatch.setenv("CAMPAIGN_COMPILE", "auto")
    rate = fast_lcnn.EAGER_LINK_EVALUATIONS_PER_S[("su2", "float32")]
    assert not compile_pays("su2", torch.float32, rate * 5)  # a 5 s run
    assert not compile_pays("su2", torch.float32, rate * 600)  # a 10 min run: the cold compile would not pay
    assert compile_pays("su2", torch.float32, rate * 1800)  # half an hour
    model = ScoreModel("su2", 1.0, 8, 0.01, 4.0)
    assert model.plan(rate * 1800) and model.net.use_compiled
    assert not ScoreModel("su2", 1.0, 8, 0.01, 4.0, fast=False).plan(rate * 1800)


def test_failed_compile_warns_once_and_runs_eagerly(monkeypatch, gen):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(compile_module, "_compile_disabled_reason", None)
    _, fast = pair("su2", channels=2, layers=1)
    fast.use_compiled = True
    U = get_group("su2").haar((1, 2, 4, 4), generator=gen)
    sigma = torch.tensor([0.5], dtype=torch.float64)
    eager = fast.forward_real(torch.view_as_real(U), sigma)
    fast(U, sigma)  # first call of a shape: eager, no compilation tried
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        out = fast(U, sigma)
    assert torch.equal(torch.view_as_real(out), eager)
    assert compile_module.compile_disabled_reason() is not None
    assert torch.equal(torch.view_as_real(fast(U, sigma)), eager)  # no second warning, eager


@pytest.mark.slow
def test_compiled_equals_eager(gen):
    """The compiled network (fused, FMA contraction) equals the eager one to rounding."""
    ref, fast = pair("u2", channels=2, layers=1)
    fast.use_compiled = True
    U = get_group("u2").haar((2, 2, 4, 4), generator=gen)
    sigma = torch.tensor([0.1, 1.0], dtype=torch.float64)
    with torch.no_grad():
        fast(U, sigma)
        out = fast(U, sigma)
    assert fast._compiled_fn is not None and compile_module.compile_disabled_reason() is None
    assert rel(out, ref(U, sigma)) < TOL
    # the score model's output (scaled, minus the Wilson force) through the same compiled function
    from campaign.actions import wilson_force

    scale, weight = torch.tensor([0.5, 2.0], dtype=torch.float64), torch.tensor([1.0, 3.0], dtype=torch.float64)
    with torch.no_grad():
        fast(U, sigma, out_scale=scale, force_weight=weight)
        out = fast(U, sigma, out_scale=scale, force_weight=weight)
    assert rel(out, ref(U, sigma) * scale.reshape(-1, 1, 1, 1, 1, 1) - wilson_force(get_group("u2"), U, weight)) < TOL


@pytest.mark.parametrize("B,L", [(1, 32), (2, 32), (5, 32), (9, 16), (64, 32), (3, 64)])
def test_cache_blocks_cover_the_batch_without_single_chains(B, L):
    Ur = torch.zeros(B, 2, L, L, 2, 2, 2)
    sizes = fast_lcnn._cache_block_sizes(Ur)
    blocks = fast_lcnn._split(sizes, Ur, torch.arange(B, dtype=torch.float32), None)
    assert sum(sizes) == B and [u.shape[0] for u, _, _ in blocks] == sizes
    assert torch.equal(torch.cat([s for _, s, _ in blocks]), torch.arange(B, dtype=torch.float32))
    assert all(none is None for _, _, none in blocks)
    assert min(sizes) >= 2 or sizes == [1]


def test_score_output_with_wilson_force(group, gen):
    """out_scale * net - wilson_force(U, force_weight) in one pass equals the two computed
    apart (the complex-matrix Wilson force), with gradients for the weights (the skip
    weight is learnt); a wrong sign or direction of the force fails."""
    from campaign.actions import wilson_force

    _, fast = pair(group, channels=4, layers=2)
    U = group.haar((3, 2, 5, 5), generator=gen)  # odd L: a transport in the wrong direction shows
    sigma = torch.tensor([0.02, 0.5, 3.0], dtype=torch.float64)
    scale = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    weight = torch.tensor([0.5, 1.5, 4.0], dtype=torch.float64, requires_grad=True)
    expect = fast(U, sigma) * scale.reshape(-1, 1, 1, 1, 1, 1) - wilson_force(group, U, weight)
    got = fast(U, sigma, out_scale=scale, force_weight=weight)
    assert rel(got, expect) < TOL
    assert rel(fast(U, sigma, out_scale=scale, force_weight=torch.zeros(3, dtype=torch.float64)),
               fast(U, sigma) * scale.detach().reshape(-1, 1, 1, 1, 1, 1)) < TOL
    (ga,) = torch.autograd.grad(got.abs().square().sum(), weight)
    (gb,) = torch.autograd.grad(expect.abs().square().sum(), weight)
    assert rel(ga, gb) < 1e-10
    assert rel(fast(U, sigma, out_scale=scale, force_weight=-weight), expect) > 1e-3


def test_eager_blocks_equal_one_call(group, gen, monkeypatch):
    """A batch larger than an eager block goes through in blocks: the same scores and
    gradients as the reference evaluated on the whole batch at once."""
    ref, fast = pair(group, channels=4, layers=2)
    U = group.haar((5, 2, 4, 4), generator=gen)
    sigma = torch.tensor([0.02, 0.1, 0.5, 1.0, 3.0], dtype=torch.float64)
    monkeypatch.setattr(fast_lcnn, "EAGER_BLOCK_SITES", 2 * 16)  # blocks of 2, 2, 1 chains
    calls = []
    monkeypatch.setattr(fast, "forward_real", lambda u, *a, f=fast.forward_real: calls.append(len(u)) or f(u, *a))
    a, b = fast(U, sigma), ref(U, sigma)
    assert calls == [2, 2, 1]
    assert rel(a, b) < TOL
    a.real.square().sum().backward()
    b.real.square().sum().backward()
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        assert rel(p.grad, q.grad) < 1e-10, name
