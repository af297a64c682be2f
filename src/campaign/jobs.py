"""One resumable job writing one output file: the safety rules HMC, training and sampling share.

``ResumableJob(out, settings, inputs)`` is a context manager that, before any work,

* checks that ``out`` can be written (its folder exists or can be made and takes a file,
  ``out`` is not a folder), so a bad ``--out`` fails at once, not after hours;
* takes an exclusive lock on the output: ``OUT.lock`` beside it, held with ``fcntl`` by this
  process.  A second run on the same output fails at once with one line naming the holder's
  pid and host.  The kernel drops the lock when its process dies, so the lock file of a
  killed run (``kill -9``, an orphan of a killed snakemake) never blocks a rerun;
* refuses to replace a finished ``out`` unless ``force`` (Snakemake deletes a job's outputs
  itself before it reruns the job, so the workflow never needs ``force``);
* removes the temporary files that a killed run left beside ``out`` and in its checkpoint;
* opens the checkpoint folder ``OUT.parts/`` with a fingerprint (``fingerprint.json``): every
  setting, and the sha256 of the content of every input file.  A checkpoint whose inputs
  changed (ensemble regenerated, model retrained) is discarded with a one-line note and the
  job starts afresh; one made with other settings is refused (the user asked for something
  else: a typo must not silently throw away hours of work).

``job.check_count(n)`` is the final check that the output holds what was asked, and
``job.finish()`` removes the checkpoint atomically: the folder is first renamed away, then
deleted, so a kill during the deletion leaves either the complete checkpoint (the rerun
resumes from it and writes the same file) or none, never a half-deleted one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from .errors import CampaignError
from .io import hold_for_test
from .preemption import stop_signals

FINGERPRINT_FILE = "fingerprint.json"
# lock files this process holds: POSIX (fcntl) locks belong to a process, so a second job on
# the same output inside one process would otherwise be granted the lock again
_HELD: set[str] = set()


def parts_dir(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".parts")


def lock_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".lock")


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_writable(out) -> None:
    """One-line error unless a file can be created as ``out``."""
    out = Path(out)
    if out.is_dir():
        raise CampaignError(f"output {out} is an existing directory, not a file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CampaignError(f"cannot write output {out}: {exc.strerror or exc}") from None


class OutputLock:
    """Exclusive, non-blocking lock on an output (``OUT.lock``, pid and host inside)."""

    def __init__(self, out):
        self.out = Path(out)
        self.path = lock_path(out)
        self.fd: int | None = None

    def acquire(self) -> None:
        key = str(self.path.resolve())
        if key in _HELD:
            raise CampaignError(f"output {self.out} is being written by this process already (lock {self.path})")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    os.close(fd)
                    raise CampaignError(f"cannot lock output {self.out}: {exc.strerror}") from None
                holder = os.pread(fd, 200, 0).decode(errors="replace").split()
                os.close(fd)
                pid, host = (holder + ["?", "?"])[:2]
                raise CampaignError(
                    f"output {self.out} is being written by another run (pid {pid} on host {host}); "
                    f"wait for it or stop it (lock {self.path})") from None
            # the previous holder unlinks the file before it unlocks: if we locked a file that
            # is no longer the one under this name, try again on the new one
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        self.fd = fd
        _HELD.add(key)

    def release(self) -> None:
        if self.fd is None:
            return
        _HELD.discard(str(self.path.resolve()))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self.fd)  # closing drops the lock
        self.fd = None


def _jsonable(obj):
    """The fingerprint as it reads back from JSON (tuples become lists, ...)."""
    return json.loads(json.dumps(obj, default=str, sort_keys=True))


def _sweep_temporaries(out: Path, parts: Path) -> None:
    """Remove what killed runs left: temporary files of atomic writes (``.NAME.xxxxxxxx.ext``,
    ``campaign.io.atomic_path``) beside the output and in the checkpoint, and checkpoint
    folders renamed away for deletion.  Only called while holding the output's lock."""
    mine = re.compile(r"^\.%s\.([a-z0-9_]{8}\.[A-Za-z0-9]+|parts\.trash\.[0-9]+)$" % re.escape(out.name))
    places = [(out.parent, mine)]
    if parts.is_dir():
        places.append((parts, re.compile(r"^\..+\.[a-z0-9_]{8}\.[A-Za-z0-9]+$")))
    for folder, pattern in places:
        for entry in folder.iterdir():
            if pattern.match(entry.name):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()


def remove_tree_atomically(folder: Path, out: Path) -> None:
    """Rename ``folder`` away (one atomic step), then delete it: a kill in between leaves
    a hidden ``.NAME.parts.trash.PID`` that the next run sweeps, never a half checkpoint."""
    if not folder.exists():
        return
    trash = folder.with_name(f".{out.name}.parts.trash.{os.getpid()}")
    if trash.exists():
        shutil.rmtree(trash)
    os.replace(folder, trash)
    hold_for_test("before-delete")
    shutil.rmtree(trash, ignore_errors=True)


class ResumableJob:
    """See the module docstring.  ``settings``: every setting that determines the output
    (JSON-able); ``inputs``: {name: path} of input files, fingerprinted by content;
    ``resume=False`` discards any checkpoint; ``label`` prefixes the notes on stderr."""

    def __init__(self, out, settings: dict, inputs: dict | None = None, *, force: bool = False,
                 resume: bool = True, label: str = "job"):
        self.out = Path(out)
        check_writable(self.out)  # before anything else: "." or a folder has no parts beside it
        self.parts = parts_dir(self.out)
        self.settings = settings
        self.inputs = {k: Path(v) for k, v in (inputs or {}).items()}
        self.force = bool(force)
        self.resume = bool(resume)
        self.label = label
        self.lock = OutputLock(self.out)
        self.fingerprint: dict | None = None
        self.resumed = False

    def __enter__(self) -> "ResumableJob":
        self.lock.acquire()
        self._signals = stop_signals()  # SIGTERM/SIGUSR1: checkpoint and stop (campaign.preemption)
        self._signals.__enter__()
        try:
            # first, so that even a refused run leaves no temporaries of a killed one
            _sweep_temporaries(self.out, self.parts)
            if self.out.exists() and not self.force:
                raise CampaignError(f"output {self.out} exists already; delete it or use --force to overwrite it")
            hashes = {}
            for name, path in self.inputs.items():
                if not path.is_file():
                    raise CampaignError(f"{name} file not found: {path}")
                hashes[name] = file_sha256(path)
            self.fingerprint = _jsonable({"settings": self.settings, "inputs_sha256": hashes})
            self._open_parts()
        except BaseException:
            self._signals.__exit__(None, None, None)
            self.lock.release()
            raise
        hold_for_test("started")
        return self

    def __exit__(self, *exc) -> None:
        self._signals.__exit__(None, None, None)
        self.lock.release()

    # ------------------------------------------------------------------ checkpoint
    def _open_parts(self) -> None:
        fp_file = self.parts / FINGERPRINT_FILE
        if self.parts.exists() and not self.resume:
            remove_tree_atomically(self.parts, self.out)
        if self.parts.exists():
            saved = None
            if fp_file.exists():
                try:
                    saved = json.loads(fp_file.read_text())
                except (OSError, ValueError):
                    saved = None  # unreadable: only an atomic write could have made it, so foreign
                    print(f"{self.label}: note: unreadable {fp_file}; starting afresh", file=sys.stderr)
                    remove_tree_atomically(self.parts, self.out)
            if saved is not None:
                changed = [k for k in sorted(set(saved.get("inputs_sha256", {})) | set(self.fingerprint["inputs_sha256"]))
                           if saved.get("inputs_sha256", {}).get(k) != self.fingerprint["inputs_sha256"].get(k)]
                if changed:
                    print(f"{self.label}: note: the {' and '.join(changed)} changed since checkpoint {self.parts} "
                          "was written (sha256 differs); starting afresh", file=sys.stderr)
                    remove_tree_atomically(self.parts, self.out)
                elif saved.get("settings") != self.fingerprint["settings"] and not self._has_progress():
                    # killed before its first checkpoint: nothing to lose
                    remove_tree_atomically(self.parts, self.out)
                elif saved.get("settings") != self.fingerprint["settings"]:
                    old, new = saved.get("settings", {}), self.fingerprint["settings"]
                    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
                    detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
                    raise CampaignError(f"checkpoint {self.parts} was made with different settings ({detail}); "
                                        "delete it to start afresh")
            self.resumed = self.parts.exists()
        # a checkpoint from before fingerprints were written is adopted; the jobs' own
        # checks on their state still compare settings
        self.parts.mkdir(parents=True, exist_ok=True)
        if not fp_file.exists():
            from .io import atomic_path

            with atomic_path(fp_file, suffix=".json") as tmp:
                tmp.write_text(json.dumps(self.fingerprint, indent=1, sort_keys=True))

    def _has_progress(self) -> bool:
        return any(p.name != FINGERPRINT_FILE and not p.name.startswith(".") for p in self.parts.iterdir())

    def check_count(self, n_written: int, n_asked: int, what: str = "configurations") -> None:
        if int(n_written) != int(n_asked):
            raise CampaignError(f"{self.out}: the run produced {n_written} {what}, {n_asked} were asked for; "
                                f"not writing an incomplete output (checkpoint kept in {self.parts})")

    def finish(self) -> None:
        """The output is complete: remove the checkpoint (atomically)."""
        hold_for_test("before-rename")
        remove_tree_atomically(self.parts, self.out)
