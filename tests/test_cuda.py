"""CUDA against CPU: the HMC molecular dynamics, the training loss and its gradients, and
the sampler's score agree within rounding when both devices start from the same numbers.
(Random streams differ between devices, so whole runs agree only statistically; here every
random input is drawn on the CPU and copied.)  Checkpoints move between the devices: a job
stopped on one resumes on the other and continues the same chain.

The CUDA tests run when torch sees a GPU and are skipped, with the reason, otherwise.  The
same comparisons run on the CPU between float64 and float32, and a checkpoint relabelled as
made on a GPU (tensor locations "cuda:0", a CUDA random state, device "cuda" in its
settings) resumes on the CPU, which keeps the helpers honest where no GPU is present."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from campaign import hmc as hmc_module
from campaign import io
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


# ---------------------------------------------------------------- checkpoints across devices
class StopAtTrajectory(hmc_module.CheckpointClock):
    """A checkpoint clock that writes one checkpoint at trajectory ``AT`` and stops there,
    as a scheduler's signal would."""

    AT = 25

    def due(self) -> bool:
        self.calls = getattr(self, "calls", 0) + 1
        return self.calls == self.AT

    def written(self) -> None:
        from campaign.preemption import Preempted

        raise Preempted("stopped by the test")


HMC_RUN = dict(group="u1", beta=1.0, L=4, n_configs=40, chains=2, therm=10, sep=2, seed=3, progress=False)


def hmc_stopped(out: Path, device: str, monkeypatch) -> Path:
    """An HMC run on ``device`` stopped at trajectory StopAtTrajectory.AT; its parts folder."""
    from campaign.preemption import Preempted

    with monkeypatch.context() as m:
        m.setattr(hmc_module, "CheckpointClock", StopAtTrajectory)
        with pytest.raises(Preempted):
            hmc_module.generate_ensemble(out, device=device, **HMC_RUN)
    parts = Path(f"{out}.parts")
    assert (parts / "state.pt").exists()
    return parts


def relabel_locations(path: Path, location: str = "cuda:0") -> None:
    """Rewrite a torch file as if its tensors had been saved on ``location`` (the storage
    location is a pickled string in data.pkl); torch.load without map_location then fails
    on a machine without that device."""
    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info.filename)) for info in z.infolist()]
    new = location.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            if name.endswith("/data.pkl"):
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X" + len(new).to_bytes(4, "little") + new)
            z.writestr(name, data)


def as_if_made_on_cuda(parts: Path, state_name: str, setting_key: str | None = "settings") -> None:
    """Turn a CPU checkpoint into one a CUDA run would have left: device "cuda" in the
    recorded settings, a CUDA random state (Philox seed and offset, 16 bytes), and every
    tensor located on cuda:0."""
    state_path = parts / state_name
    state = io.load_torch(state_path)
    if setting_key and "device" in state[setting_key]:
        state[setting_key]["device"] = "cuda"
    state["generator"] = torch.zeros(16, dtype=torch.uint8)
    torch.save(state, state_path)
    for path in parts.glob("*.pt"):
        relabel_locations(path)
    if not CUDA:
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(state_path, weights_only=False)  # the relabelling took


def configs(path: Path) -> np.ndarray:
    with h5py.File(path) as f:
        return f["links"][()]


def test_hmc_checkpoint_does_not_record_the_device():
    run = hmc_module.HMCRun(hmc_module.HMCSettings(group="u1", beta=1.0, L=4, n_configs=8, device="cpu"), Path("unused"),
                            torch.device("cpu"))
    assert "device" not in run._fingerprint()


def test_hmc_checkpoint_made_on_cuda_continues_on_cpu(tmp_path, monkeypatch, capfd):
    ref = hmc_module.generate_ensemble(tmp_path / "ref.h5", device="cpu", **HMC_RUN)
    out = tmp_path / "run.h5"
    parts = hmc_stopped(out, "cpu", monkeypatch)
    as_if_made_on_cuda(parts, "state.pt")
    twin = tmp_path / "twin.h5"
    shutil.copytree(parts, f"{twin}.parts")
    capfd.readouterr()
    hmc_module.generate_ensemble(out, device="cpu", **HMC_RUN)
    assert "random state belongs to another kind of device than cpu" in capfd.readouterr().err
    a, b = configs(ref), configs(out)
    assert a.shape == b.shape
    # configurations stored before the stop (trajectories 12, 14, ..., 24; 2 chains) are the
    # uninterrupted run's; after it the chain continues with a fresh random stream
    before = 2 * ((StopAtTrajectory.AT - HMC_RUN["therm"]) // HMC_RUN["sep"])
    assert np.array_equal(a[:before], b[:before])
    assert not np.array_equal(a[before:], b[before:])
    # ... which is fixed by the seed and the trajectory: a second resume writes the same chain
    hmc_module.generate_ensemble(twin, device="cpu", **HMC_RUN)
    assert np.array_equal(configs(twin), b)


def tiny_training(tmp_path: Path, device: str):
    from campaign.training import TrainSettings

    ens = tmp_path / "ens.h5"
    if not ens.exists():
        hmc_module.generate_ensemble(ens, device="cpu", **HMC_RUN)
    return ens, TrainSettings(steps=12, batch_size=2, channels=2, layers=1, seed=4, device=device,
                              checkpoint_interval=3600)


def test_training_checkpoint_made_on_cuda_continues_on_cpu(tmp_path, capfd):
    from campaign.training import train_model

    ens, settings = tiny_training(tmp_path, "cpu")
    ckpt = train_model(ens, tmp_path / "model.pt", settings, stop_after=5, progress=False)
    as_if_made_on_cuda(ckpt.parent, ckpt.name, setting_key=None)
    capfd.readouterr()
    out = train_model(ens, tmp_path / "model.pt", settings, progress=False)
    assert "train: note: the checkpoint's random state belongs to another kind of device" in capfd.readouterr().err
    meta = io.load_torch(out, "model")
    assert meta["meta"]["training"]["steps_done"] == settings.steps


def test_sampling_checkpoint_made_on_cuda_resumes_bit_identically_on_cpu(tmp_path, monkeypatch):
    """Every batch of chains has its own seed, so the batches done before the stop (made
    "on the GPU") and those made after it on the CPU give the file of an uninterrupted run."""
    from campaign.preemption import Preempted
    from campaign.samplers import job
    from campaign.samplers.settings import SampleSettings
    from campaign.training import train_model

    ens, settings = tiny_training(tmp_path, "cpu")
    model = train_model(ens, tmp_path / "model.pt", settings, progress=False)
    s = SampleSettings(beta=1.0, L=4, n_samples=8, batch=4, n_levels=4, pilot_chains=4, tail_steps=2, seed=6)
    ref = job.sample_to_file(model, tmp_path / "ref_s.h5", s, progress=False)

    def stop(label, detail=""):
        raise Preempted(f"{label}: stopped by the test{detail}")

    out = tmp_path / "run_s.h5"
    with monkeypatch.context() as m:
        m.setattr(job, "stop_if_requested", stop)
        with pytest.raises(Preempted):
            job.sample_to_file(model, out, s, progress=False)
    parts = Path(f"{out}.parts")
    assert (parts / "batch_00000.pt").exists() and not (parts / "batch_00001.pt").exists()
    for path in parts.glob("*.pt"):
        relabel_locations(path)
    job.sample_to_file(model, out, s, progress=False)
    with h5py.File(ref) as A, h5py.File(out) as B:
        names = []
        A.visit(lambda n: names.append(n) if isinstance(A[n], h5py.Dataset) else None)
        for n in names:
            if "wall" not in n:
                assert np.array_equal(A[n][()], B[n][()], equal_nan=True), n


@needs_cuda
@pytest.mark.parametrize("first,then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_hmc_checkpoint_moves_between_cpu_and_cuda(tmp_path, monkeypatch, first, then):
    """A real cross-device resume: stopped on one device, finished on the other.  The
    configurations stored before the stop are those of an uninterrupted run on the first."""
    ref = hmc_module.generate_ensemble(tmp_path / "ref.h5", device=first, **HMC_RUN)
    out = tmp_path / "run.h5"
    hmc_stopped(out, first, monkeypatch)
    hmc_module.generate_ensemble(out, device=then, **HMC_RUN)
    a, b = configs(ref), configs(out)
    before = 2 * ((StopAtTrajectory.AT - HMC_RUN["therm"]) // HMC_RUN["sep"])
    assert a.shape == b.shape and np.array_equal(a[:before], b[:before])
    with h5py.File(out) as f:
        assert np.all(np.isfinite(f["history/plaquette"][()]))


@needs_cuda
def test_training_and_sampling_checkpoints_move_from_cuda_to_cpu(tmp_path, monkeypatch):
    from campaign.preemption import Preempted
    from campaign.samplers import job
    from campaign.samplers.settings import SampleSettings
    from campaign.training import train_model

    ens, settings = tiny_training(tmp_path, "cuda")
    train_model(ens, tmp_path / "model.pt", settings, stop_after=5, progress=False)
    settings.device = "cpu"
    model = train_model(ens, tmp_path / "model.pt", settings, progress=False)
    assert io.load_torch(model, "model")["meta"]["training"]["steps_done"] == settings.steps

    s = SampleSettings(beta=1.0, L=4, n_samples=8, batch=4, n_levels=4, pilot_chains=4, tail_steps=2, seed=6,
                       device="cuda")
    out = tmp_path / "run_s.h5"

    def stop(label, detail=""):
        raise Preempted(f"{label}: stopped by the test{detail}")

    with monkeypatch.context() as m:
        m.setattr(job, "stop_if_requested", stop)
        with pytest.raises(Preempted):
            job.sample_to_file(model, out, s, progress=False)
    s.device = "cpu"
    job.sample_to_file(model, out, s, progress=False)
    assert configs(out).shape[0] == s.n_samples
