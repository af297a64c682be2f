"""CUDA against CPU: the HMC molecular dynamics, the training loss and its gradients, and
the sampler's score agree within rounding when both devices start from the same numbers.
(Random streams differ between devices, so whole runs agree only statistically; here every
random input is drawn on the CPU and copied.)

The CUDA tests run when torch sees a GPU and are skipped, with the reason, otherwise.  The
same comparisons run on the CPU between float64 and float32, which keeps the helpers honest
where no GPU is present."""

from __future__ import annotations

import pytest
import torch

from campaign.diffusion import ScoreModel, kernel_score, perturb
from campaign.fields import field_for
from campaign.groups import get_group
from campaign.hmc import integrate

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device visible to torch (torch.cuda.is_available() is False)")
GROUPS = ("u1", "su2", "u2")


def hmc_trajectory(group_name: str, device: str, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """One Omelyan trajectory of 4 chains on a 6x6 lattice from links and momenta drawn on
    the CPU: the final links, momenta and energy change, on the CPU in float64."""
    group = get_group(group_name)
    gen = torch.Generator().manual_seed(11)
    U0 = group.haar((4, 2, 6, 6), generator=gen)
    cpu = field_for(group, dtype=torch.float64, device="cpu")
    q_cpu = cpu.from_links(U0)
    p_cpu = cpu.momenta(q_cpu, gen)
    fld = field_for(group, dtype=dtype, device=device)
    q = fld.from_links(U0.to(device=device, dtype=U0.dtype if not U0.is_complex() else
                                   (torch.complex64 if dtype == torch.float32 else torch.complex128)))
    p = p_cpu.to(device=device, dtype=dtype)
    h0 = fld.hamiltonian(q, p, 2.0)
    q1, p1 = integrate(fld, q, p, 2.0, 0.1, 5, "omelyan")
    dh = fld.hamiltonian(fld.normalise(q1), p1, 2.0) - h0
    links = fld.to_links(fld.normalise(q1))
    return {"links": links.cpu().to(torch.complex128 if links.is_complex() else torch.float64),
            "p": p1.cpu().double(), "dH": dh.cpu().double()}


def training_step(group_name: str, device: str, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """One training step's loss (denoising score matching, as campaign.diffusion.dsm_loss)
    and its parameter gradients, with weights, configurations and noise made on the CPU."""
    group = get_group(group_name)
    torch.manual_seed(5)
    model = ScoreModel(group, 2.0, 4, 0.05, 2.0, arch={"channels": 3, "layers": 1}).double()
    gen = torch.Generator().manual_seed(7)
    U0 = group.haar((3, 2, 4, 4), generator=gen)
    sigma = torch.tensor([0.1, 0.5, 1.5], dtype=torch.float64)
    U, V = perturb(group, U0, sigma, generator=gen)  # the noise, drawn on the CPU
    cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
    model = model.to(device=device, dtype=dtype)
    U, V = U.to(device=device, dtype=cdt), V.to(device=device, dtype=cdt)
    sigma = sigma.to(device=device, dtype=dtype)
    target = kernel_score(group, V, sigma.reshape(-1, 1, 1, 1), "heat")
    per_config = group.algebra_norm2(model(U, sigma) - target).sum((-1, -2, -3))
    loss = (sigma**2 * per_config).mean()
    loss.backward()
    grads = {n: p.grad.detach().cpu().double() for n, p in model.named_parameters() if p.grad is not None}
    assert grads, "no parameter got a gradient"
    return {"loss": loss.detach().cpu().double().reshape(1), **grads}


def sampler_score(group_name: str, device: str, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """The model's score (the sampler's drift) at noisy configurations, CPU-made inputs."""
    group = get_group(group_name)
    torch.manual_seed(9)
    model = ScoreModel(group, 2.0, 4, 0.05, 2.0, arch={"channels": 3, "layers": 1}).double()
    U = group.haar((2, 2, 6, 6), generator=torch.Generator().manual_seed(13))
    sigma = torch.tensor([0.2, 1.0], dtype=torch.float64)
    cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
    model = model.to(device=device, dtype=dtype)
    with torch.no_grad():
        s = model(U.to(device=device, dtype=cdt if U.is_complex() else dtype), sigma.to(device=device, dtype=dtype))
    return {"score": s.cpu().to(torch.complex128 if s.is_complex() else torch.float64)}


def assert_close(a: dict, b: dict, rtol: float, atol: float):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=rtol, atol=atol), (k, float((a[k] - b[k]).abs().max()))


STAGES = {"hmc": hmc_trajectory, "train": training_step, "sample": sampler_score}


@needs_cuda
@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_cuda_agrees_with_cpu(stage, group):
    cpu = STAGES[stage](group, "cpu")
    gpu = STAGES[stage](group, "cuda")
    assert_close(cpu, gpu, rtol=1e-9, atol=1e-9)  # float64: rounding only


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_float32_agrees_with_float64_on_cpu(stage, group):
    """The same comparison between precisions: float32 within its rounding of float64."""
    assert_close(STAGES[stage](group, "cpu"), STAGES[stage](group, "cpu", torch.float32), rtol=1e-3, atol=1e-3)
