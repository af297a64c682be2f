"""Process setup (campaign.runtime) and the compile and fusion decisions of the HMC path."""

import os

import numpy as np
import pytest
import torch

import campaign.fields.compile as C
import campaign.fields.fast as fast
from campaign import hmc, io, runtime
from campaign.cli import main
from campaign.fields import field_for
from campaign.groups import U1
from campaign.hmc import HMCRun, HMCSettings, force_evaluations, generate_ensemble
from campaign.observables import plaquette


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_threads_from_argument_then_slurm(monkeypatch, restore_threads):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert runtime.setup()["threads"] == 1 == torch.get_num_threads()
    assert runtime.thread_count(3) == 3
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert runtime.thread_count() is None  # torch's default stays


def test_compile_cache_points_inductor_at_the_directory(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "from_env"))
    assert runtime.use_compile_cache() == str(tmp_path / "from_env")
    target = tmp_path / "campaign" / ".cache" / "torch"
    assert runtime.use_compile_cache(target) == str(target)  # the argument wins
    assert cache_dir() == str(target) and target.is_dir()


def test_allocator_left_alone_when_the_environment_decides(monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1000000")
    assert runtime.tune_allocator() is False


def test_cli_sets_threads_and_cache(tmp_path, monkeypatch, restore_threads):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    monkeypatch.setenv(runtime.CACHE_ENV, "")  # restored afterwards (delenv of an unset variable is not)
    out, cache = tmp_path / "e.h5", tmp_path / "cache"
    rc = main(["hmc", "--group", "u1", "--beta", "1", "--L", "4", "--n-configs", "2", "--chains", "2",
               "--therm", "1", "--sep", "1", "--n-leapfrog", "2", "--out", str(out), "--quiet",
               "--threads", "1", "--compile-cache", str(cache)])
    assert rc == 0 and out.exists()
    assert torch.get_num_threads() == 1
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(cache) and cache.is_dir()
    assert os.environ[runtime.CACHE_ENV] == str(cache)  # where campaign.fields keeps its packages


def test_auto_compiles_from_the_run_length(monkeypatch, tmp_path):
    monkeypatch.setattr(C.aot, "_broken", None)
    monkeypatch.setenv("CAMPAIGN_COMPILE", "auto")
    monkeypatch.setenv(runtime.CACHE_ENV, "")  # restored afterwards (delenv of an unset variable is not)
    monkeypatch.setattr(C, "_compile_disabled_reason", None)
    fld = field_for(U1, torch.float32)
    q = fld.cold_start(64, 32)
    assert fld.compiles(q)  # no plan: the lattice size decides, as before
    per_trajectory = 2 * 32 * 32 * 64 * force_evaluations("omelyan", 10)
    fld.plan(32 * per_trajectory)  # 32 trajectories: under a second uncompiled
    assert not fld.compiles(q)
    fld.plan(2000 * per_trajectory)
    assert fld.compiles(q)
    assert not fld.compiles(fld.cold_start(2, 8))  # a long run on a tiny lattice stays eager
    fld.plan(32 * per_trajectory)
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path))  # a cache does not change the decision:
    assert not fld.compiles(q)  # a short job's bytes must not depend on which job filled it
    monkeypatch.setenv(runtime.CACHE_ENV, "")
    monkeypatch.setenv("CAMPAIGN_COMPILE", "always")
    fld.plan(1)
    assert fld.compiles(q)


def test_hmc_run_plans_its_work(tmp_path):
    s = HMCSettings(group="u1", beta=1.0, L=8, n_configs=12, chains=3, therm=5, sep=2, n_leapfrog=4, dtype="float32")
    run = HMCRun(s, tmp_path, torch.device("cpu"))
    assert run.field.expected_work == s.total_trajectories * 3 * 2 * 64 * force_evaluations("omelyan", 4)


@pytest.mark.parametrize("limit, fused_calls", [(2**40, 2), (0, 0)])
def test_fused_pairs_only_up_to_the_measured_size(monkeypatch, limit, fused_calls):
    fld = field_for(U1)
    gen = torch.Generator().manual_seed(1)
    q = fld.from_links(U1.haar((2, 2, 4, 4), generator=gen))
    p = fld.momenta(q, gen)
    calls = []
    kernels = {n: (lambda k, n=n: lambda *a: calls.append(n) or k(*a))(k) for n, k in fld._fused_drift_kicks.items()}
    monkeypatch.setattr(type(fld), "_fused_drift_kicks", kernels)
    monkeypatch.setattr(fast, "FUSE_MAX_BYTES", limit)
    kicks = [0.1, 0.2, -0.1, 0.05, 0.3, 0.1, 0.2, 0.1, 0.4]
    q1, p1 = fld.drift_kicks(q, p, 0.05, 1.0, kicks)
    assert len(calls) == fused_calls
    q2, p2 = q, p
    for c in kicks:
        q2, p2 = fld.drift_kick(q2, p2, 0.05, 1.0, c)
    assert torch.equal(q1, q2) and torch.equal(p1, p2)  # eager: the same numbers either way


def test_stored_coordinates_become_the_links_of_before(tmp_path):
    s = HMCSettings(group="u1", beta=1.0, L=4, n_configs=4, chains=2, therm=0, sep=1, n_leapfrog=2)
    run = HMCRun(s, tmp_path, torch.device("cpu"))
    q = run.field.normalise(run.field.from_links(U1.haar((2, 2, 4, 4), generator=torch.Generator().manual_seed(2))))
    stored = torch.stack([q.clone(memory_format=torch.contiguous_format)] * 3)
    links = run._links(stored)
    assert torch.equal(links[1], run.field.to_links(q))  # the conversion the loop used to make
    assert run._links(links) is links  # parts of older versions hold links already


def test_links_written_block_by_block_are_the_stored_configurations(tmp_path, monkeypatch):
    """One measurement per block, a checkpointed part after every trajectory, and a count that
    is not a whole number of measurements: every row holds the links its step and chain name
    (their plaquette is the one the history recorded then), the same as one block of all."""
    kw = dict(group="u1", beta=1.0, L=4, n_configs=7, chains=3, therm=1, sep=2, seed=5, progress=False)
    whole = io.read_ensemble(generate_ensemble(tmp_path / "whole.h5", **kw))
    monkeypatch.setattr(hmc, "LINK_BLOCK_BYTES", 1)
    for parts, interval in (("one part", 1e9), ("a part per trajectory", 0.0)):
        ens = io.read_ensemble(generate_ensemble(tmp_path / f"{interval}.h5", checkpoint_interval=interval, **kw))
        assert ens.links.shape[0] == 7 and list(ens.chain) == [0, 1, 2] * 2 + [0], parts
        recorded = ens.history["plaquette"][ens.step - 1, ens.chain]
        np.testing.assert_allclose(plaquette(ens.links).numpy(), recorded, rtol=1e-12, err_msg=parts)
        assert torch.equal(ens.links, whole.links), parts


def test_blocks_short_of_their_rows_leave_no_file(tmp_path):
    U = U1.haar((4, 2, 4, 4), generator=torch.Generator().manual_seed(0))
    rows = io.RowBlocks((5, *U.shape[1:]), U.numpy().dtype, iter([U[:2], U[2:]]))
    with pytest.raises(ValueError, match="blocks gave 4 rows, expected 5"):
        io.write_ensemble(tmp_path / "e.h5", rows, {"group": "u1", "beta": 1.0, "L": 4, "algorithm": "haar"})
    assert list(tmp_path.iterdir()) == []


def test_concatenated_rows_are_the_first_n_of_the_parts_in_order(tmp_path):
    """What the samplers write from: their batches' samples, one after another, cut at
    n_samples, with no concatenated copy."""
    U = U1.haar((7, 2, 4, 4), generator=torch.Generator().manual_seed(1))
    parts = [U[:2], U[2:5], U[5:]]
    attrs = {"group": "u1", "beta": 1.0, "L": 4, "algorithm": "haar"}
    for n in (7, 4, 2, 1):
        rows = io.RowBlocks.concatenated(parts, n)
        assert rows.shape == (n, *U.shape[1:])
        ens = io.read_ensemble(io.write_ensemble(tmp_path / f"{n}.h5", rows, attrs))
        assert torch.equal(ens.links, U[:n]), n
    with pytest.raises(ValueError, match="8 rows asked of 7"):
        io.RowBlocks.concatenated(parts, 8)
