import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from campaign.groups import SU2, U1, U2
from campaign.samplers.scores import PhysicsScore

ALL_GROUPS = (U1, SU2, U2)


@pytest.fixture(params=ALL_GROUPS, ids=lambda g: g.name)
def group(request):
    return request.param


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: threads only add contention on a shared machine (module scope, so the
    module's own module-scoped fixtures run with one thread too)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class WrongBetaScore(PhysicsScore):
    """A deliberately poor model for the samplers: the physics score of a coupling half as
    large, plus a constant algebra-valued bias that is not a gradient (breaks proposal
    reversibility).  (Much worse drifts are exact too, see the one-link tests, but mix
    slowly on a lattice: the MH step size shrinks like 1 / (dof * mismatch^2).)"""

    def __call__(self, U, sigma):
        bias = torch.zeros_like(U)
        bias[..., 0, 0] = 0.1j
        if U.shape[-1] == 2:
            bias[..., 1, 1] = -0.1j
        return 0.5 * super().__call__(U, sigma) + bias


# ------------------------------------------------------------- jobs killed and resumed
def start_script(path, text: str, *args, **popen) -> subprocess.Popen:
    """Write a Python script to ``path`` and start it with ``args``, output piped."""
    path.write_text(text)
    return subprocess.Popen([sys.executable, str(path), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def kill_when_exists(proc: subprocess.Popen, path, timeout: float = 200.0, linger: float = 0.0) -> None:
    """SIGKILL ``proc`` (as a preempted job is killed) once ``path``, a checkpoint part,
    exists, ``linger`` seconds later; fails if the run ends before that."""
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        assert proc.poll() is None, "run finished before it could be killed; make it longer"
        time.sleep(0.02)
    time.sleep(linger)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def finish(proc: subprocess.Popen, timeout: float = 300.0) -> str:
    """Wait for ``proc``; its stderr (the caller checks the return code)."""
    _, err = proc.communicate(timeout=timeout)
    return err


def killed_and_resumed(run, tmp_path, kill_at: str = "batch_00001.pt", after_kill=None):
    """A sampling job killed and resumed against an uninterrupted one: ``run(out)`` starts
    the job; the second run is SIGKILLed once ``kill_at`` exists in its checkpoint, must leave
    no output, passes ``after_kill(parts)``, and is resumed.  Returns (reference file, resumed
    file, the resumed run's stderr)."""
    ref = tmp_path / "ref.h5"
    r = run(ref)
    err = finish(r)
    assert r.returncode == 0, err
    out = tmp_path / "killed.h5"
    parts = tmp_path / "killed.h5.parts"
    kill_when_exists(run(out), parts / kill_at)
    assert not out.exists(), "a killed run must not leave an output file"
    if after_kill is not None:
        after_kill(parts)
    proc = run(out)
    err = finish(proc)
    assert proc.returncode == 0, err
    assert "resuming with" in err
    return ref, out, err


def assert_same_history(a: dict, b: dict, skip=("batch_wall_s",)) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key not in skip:
            assert np.array_equal(a[key], b[key], equal_nan=True), key


# ------------------------------------------------------------------ command line
def cli_errors(main, argv, capsys) -> tuple[int, list[str]]:
    """(exit status, non-empty stderr lines) of ``main(argv)``, argparse's own exits included."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    return rc, [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def write_foreign_h5(path, **datasets):
    """An HDF5 file that is not a campaign file: just these datasets."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return path
