"""When a long job writes its checkpoint, and how it stops when the scheduler asks.

A batch system warns a job before it ends it: SLURM sends SIGTERM at preemption and at the
time limit (then SIGKILL after its KillWait, typically 30 s), and, with ``--signal=USR1@120``
(the rules ask for it, workflow/rules/common.smk), SIGUSR1 two minutes before the time limit.
Inside ``stop_signals()`` these signals only raise a flag.  A job loop asks ``clock.due()`` at
every point where its state is consistent; the clock says yes every ``interval`` seconds, and
at once after such a signal.  After the checkpoint is written, ``clock.written()`` raises
``Preempted``: the CLI prints one line and exits with ``EXIT_PREEMPTED`` (75, EX_TEMPFAIL),
and the same command run again (by hand, or by Snakemake's ``retries``) resumes from the
checkpoint and writes the bytes an uninterrupted run would have written.

Under snakemake-executor-plugin-slurm the warning is what saves the work: SIGUSR1 reaches the
job's script (``spare_job_wrapper`` keeps the Snakemake processes around it alive), while
SIGTERM also reaches the plugin's ``srun`` in the batch step, which ends the job step at once
("forcing job termination"; seen with ``scancel --full --signal=TERM`` on SLURM 22.05); a
job stopped that way resumes from its last periodic checkpoint.

Repeated signals change nothing: under a batch system every process of the job gets the
signal, and a wrapper (the Snakemake job step, a shell) may pass its own on, so a second
SIGTERM is no request to hurry.  The hard stop is the scheduler's SIGKILL.  SIGINT (Ctrl-C)
is left alone: an interactive user who interrupts wants the process gone now, and loses at
most one checkpoint interval.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time

from .errors import CampaignError

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
EXIT_PREEMPTED = 75  # EX_TEMPFAIL (sysexits.h): try again later, nothing is lost

_received: list[str] = []  # names of the stop signals received inside stop_signals()
_depth = 0  # how many stop_signals() blocks are open


class Preempted(CampaignError):
    """The job wrote its checkpoint and stopped because the scheduler asked it to."""


def stop_requested() -> str | None:
    """The name of the first stop signal received, or None."""
    return _received[0] if _received else None


def stop_if_requested(label: str, detail: str = "") -> None:
    """Call right after a checkpoint is written: raises ``Preempted`` when a stop signal
    arrived (``detail`` says where the job stopped)."""
    name = stop_requested()
    if name is not None:
        raise Preempted(f"{label}: {name} received{detail}; checkpoint written, run the same command again to resume")


def _handler(signum, frame) -> None:
    if not _received:
        _received.append(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals():
    """Within this block SIGTERM and SIGUSR1 ask the job to checkpoint and stop (see the module
    docstring).  Only the outermost block installs the handlers, and only in the main thread
    (elsewhere Python cannot handle signals); leaving it restores the previous handlers."""
    global _depth
    install = _depth == 0 and threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _handler) for s in STOP_SIGNALS} if install else {}
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        for s, h in previous.items():
            signal.signal(s, h)
        if install:
            _received.clear()


def spare_job_wrapper() -> None:
    """Ignore SIGUSR1 in this process: call it in the Snakemake processes that wrap a job on a
    cluster node (workflow/rules/common.smk does).  SLURM's warning (``--signal=USR1@...``,
    or ``scancel --signal=USR1``) goes to every process of the job step, and SIGUSR1's
    default action would end the wrapper first; the step would then be torn down while the
    job's script writes its checkpoint.  Ignored, the wrapper lives on, waits for the script,
    and reports its exit status (``EXIT_PREEMPTED``) as a failure, which Snakemake retries.
    The script itself is unaffected: ``stop_signals()`` installs its own handler, and outside
    it the warning is ignored as well (the time limit's SIGTERM still stops the job)."""
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)


class CheckpointClock:
    """``due()``: time to write a checkpoint (``interval`` seconds since the last one, or a stop
    signal arrived); ``written()``: call after writing it; raises ``Preempted`` when a stop
    signal asked for it."""

    def __init__(self, interval: float, label: str = "job"):
        self.interval = float(interval)
        self.label = label
        self.last = time.monotonic()

    def due(self) -> bool:
        return bool(_received) or time.monotonic() - self.last >= self.interval

    def written(self) -> None:
        self.last = time.monotonic()
        stop_if_requested(self.label)
