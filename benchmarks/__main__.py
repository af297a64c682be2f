"""Run every benchmark module in this folder, one after the other.

    python -m benchmarks [--quick] [--device DEV] [--dtype DTYPE] [--only NAME ...] [--list]

Every ``benchmarks/<name>.py`` (other than ``__init__``/``__main__`` and names starting
with ``_``) is a benchmark: it runs as ``python benchmarks/<name>.py`` and accepts the
common options ``--quick``, ``--device`` and ``--dtype``, which are passed on to it (only
those given).  Modules added later are picked up without changes here.  The exit status
is non-zero if any module failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def modules() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these modules")
    p.add_argument("--list", action="store_true", help="list the benchmark modules and exit")
    a = p.parse_args(argv)

    found = modules()
    if a.list:
        print("\n".join(m.stem for m in found))
        return 0
    if a.only:
        unknown = set(a.only) - {m.stem for m in found}
        if unknown:
            p.error(f"no benchmark module named {', '.join(sorted(unknown))}; have {', '.join(m.stem for m in found)}")
        found = [m for m in found if m.stem in a.only]
    passed = (["--quick"] if a.quick else []) + [
        x for opt, v in (("--device", a.device), ("--dtype", a.dtype)) if v is not None for x in (opt, v)
    ]
    failed = []
    for m in found:
        print(f"\n=== benchmarks/{m.name} {' '.join(passed)}".rstrip(), flush=True)
        t = time.perf_counter()
        rc = subprocess.call([sys.executable, str(m), *passed])
        print(f"=== benchmarks/{m.name}: {'ok' if rc == 0 else f'exit status {rc}'} "
              f"({time.perf_counter() - t:.0f} s)", flush=True)
        if rc:
            failed.append(m.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
