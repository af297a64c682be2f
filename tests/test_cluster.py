"""Cluster facts: the first line of every job log (device, dtype, threads), the one-line
stop of a "cuda" job that sees no GPU, and the SLURM/GPU facts in provenance."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from campaign import io

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


def run_job(tmp_path, *, rule, device, dtype=None, threads=2, env=None,
            body='print("job body ran")') -> tuple[subprocess.CompletedProcess, Path]:
    """Run _common.start() in a fresh Python with a stand-in for Snakemake's object."""
    log = tmp_path / "logs" / f"{rule}.log"
    params = {"dtype": dtype} if dtype else {}
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SCRIPTS)!r})

        class Params(dict):
            __getattr__ = dict.__getitem__

        class Job:
            rule = {rule!r}
            log = [{str(log)!r}]
            threads = {threads}
            params = Params({params!r})
            config = {{"device": {device!r}}}

        from _common import start
        start(Job())
    """) + body
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **(env or {})})
    return res, log


def test_first_log_line_names_device_dtype_threads(tmp_path):
    res, log = run_job(tmp_path, rule="hmc", device="cpu", dtype="float32", threads=2)
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    assert lines[0] == "hmc: device=cpu dtype=float32 torch_threads=2", lines
    assert lines[1] == "job body ran"
    # a CPU-only stage says so too
    res, log = run_job(tmp_path, rule="measure", device="auto", threads=1)
    assert log.read_text().splitlines()[0] == "measure: device=cpu dtype=float64 torch_threads=1"


def test_first_log_line_names_the_slurm_job(tmp_path):
    res, log = run_job(tmp_path, rule="train", device="cpu", dtype="float64", threads=1,
                       env={"SLURM_JOB_ID": "4242", "SLURMD_NODENAME": "gpu017"})
    assert res.returncode == 0, res.stderr
    assert log.read_text().splitlines()[0] == (
        "train: device=cpu dtype=float64 torch_threads=1 slurm_job=4242 node=gpu017")


def test_cuda_without_a_visible_gpu_stops_with_one_line(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides every GPU, so this holds on a GPU machine too
    res, log = run_job(tmp_path, rule="sample", device="cuda", dtype="float32",
                       env={"CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 1
    text = log.read_text()
    assert "job body ran" not in text
    assert text.count("\n") == 1 and text.startswith("error: device: cuda, but this job sees no GPU"), text


def test_a_preempted_job_ends_with_one_line_and_exit_75(tmp_path):
    """A workflow script stopped by the scheduler's signal (its checkpoint written) exits
    with EXIT_PREEMPTED, which Snakemake retries, and says so in one line; other errors keep
    their traceback."""
    from campaign.preemption import EXIT_PREEMPTED

    stop = "from campaign.preemption import Preempted\nraise Preempted('hmc u1 beta=2 L=8: SIGUSR1 received')\n"
    res, log = run_job(tmp_path, rule="hmc", device="cpu", threads=1, body=stop)
    assert res.returncode == EXIT_PREEMPTED, res.stderr
    assert log.read_text().splitlines()[1:] == ["hmc: stopped: hmc u1 beta=2 L=8: SIGUSR1 received"]
    res, log = run_job(tmp_path, rule="hmc", device="cpu", threads=1, body="raise ValueError('broken')\n")
    assert res.returncode == 1 and "Traceback" in log.read_text() and "ValueError: broken" in log.read_text()


def test_provenance_names_the_slurm_job_and_node(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    monkeypatch.setenv("SLURMD_NODENAME", "node03")
    io.cluster_facts.cache_clear()
    try:
        p = io.provenance()
        assert p["slurm_job_id"] == "777" and p["slurm_node"] == "node03"
        monkeypatch.delenv("SLURM_JOB_ID")
        monkeypatch.delenv("SLURMD_NODENAME")
        io.cluster_facts.cache_clear()
        assert "slurm_job_id" not in io.provenance()
    finally:
        io.cluster_facts.cache_clear()


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device visible to torch")
def test_provenance_names_the_gpu():
    io.cluster_facts.cache_clear()
    p = io.provenance()
    assert p["gpu_model"] and p["cuda_version"] not in ("", "None")
