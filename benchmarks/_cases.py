"""Shared by the benchmark scripts: one measurement per fresh process, rows to JSON.

A fresh process per case keeps peak memory, allocator state and compiled kernels of one
case out of the next."""

from __future__ import annotations

import json
import subprocess
import sys


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
