"""Progress output for long jobs (HMC, training, sampling) on stderr, where cluster
logs collect it."""

from __future__ import annotations

import math
import sys
import time


class Progress:
    """A progress line on stderr at most every ``every`` seconds (and at the end)."""

    def __init__(self, label: str, total: int, enabled: bool = True, every: float = 5.0):
        self.label, self.total, self.enabled, self.every = label, total, enabled, every
        self.start = time.monotonic()
        self.last = -math.inf

    def update(self, done: int, extra="", force: bool = False) -> None:
        """``extra`` may be a callable, evaluated only when a line is printed (so the
        device is not synchronised for lines that are never shown)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        if callable(extra):
            extra = extra()
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else math.inf
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(20 * frac)
        eta_txt = f"{eta:6.0f}s" if math.isfinite(eta) else "     ?"
        print(
            f"{self.label} [{bar:<20}] {done}/{self.total} {rate:.1f}/s eta {eta_txt} {extra}",
            file=sys.stderr, flush=True,
        )
