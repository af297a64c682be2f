"""Shared by the benchmark scripts: one measurement per fresh process, rows to JSON.

A fresh process per case keeps peak memory, allocator state and compiled kernels of one
case out of the next."""

from __future__ import annotations

import json
import subprocess
import sys
import time


def run_in_fresh_process(script: str, args: list[str], env: dict | None = None) -> tuple[dict | None, str]:
    """Run ``python script *args``; return the JSON object its last stdout line holds,
    or (None, its stderr) when it failed."""
    proc = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, env=env)
    if proc.returncode:
        return None, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def write_json(path: str | None, data) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)


def seconds_per_item(call, items: int, device, calls: int) -> float:
    """Seconds per item (chain, configuration) of ``call()`` on a batch of ``items``: two
    untimed calls first (a shape's first call runs eagerly), then ``calls`` timed ones; on CUDA
    the clock waits for the device."""
    import torch

    for _ in range(2):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(calls):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / (calls * items)


def batching_note(rates: dict, peaks: dict, part_s: dict, unit: str, part: str, rest: str) -> str:
    """Why per-item throughput stops growing with the batch (empty when it grows >= 3x).
    rates: items (chain-steps, configurations) per second at each batch; part_s: seconds per
    item of the part that dominates (the score evaluation, the network's forward and backward
    pass), timed alone at each batch; peaks: MB at each batch.  The note gives ms per item at
    batch 1 and at the best batch, split into that part and the rest, and the bound it implies."""
    bs = sorted(rates)
    if rates[bs[-1]] >= 3 * rates[bs[0]]:
        return ""
    best = max(bs, key=lambda b: rates[b])
    first = bs[0]
    step = {b: 1e3 / rates[b] for b in (first, best)}  # ms per item
    timed = {b: min(1e3 * part_s[b], step[b]) for b in (first, best)}
    other = {b: step[b] - timed[b] for b in (first, best)}
    if best == first:
        return (f"no batch beats batch {first} per {unit} (working set {peaks[bs[-1]]:.0f} MB at batch {bs[-1]}); "
                f"the {part} is {timed[first] / step[first]:.0%} of a {unit} at batch {first}")
    where = f"peaks at batch {best} ({peaks[best]:.0f} MB); " if best < bs[-1] else ""
    share, gain = timed[first] / step[first], timed[first] / timed[best]
    return (f"{where}ms per {unit}, batch {first} -> {best}: {part} {timed[first]:.2f} -> {timed[best]:.2f} "
            f"({gain:.1f}x), the rest ({rest}) {other[first]:.2f} -> {other[best]:.2f}; the {part} is "
            f"{share:.0%} of a {unit} at batch {first}, so batching gains at most {gain / share:.1f}x even if the "
            "rest cost nothing")
