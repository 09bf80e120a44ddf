"""``python -m bench [--quick] [--out PATH] [NAME ...]``: run the benchmark modules (dev tool).

NAME is ``journal`` or ``bench_journal`` for ``bench/bench_journal.py``; with no NAME every
``bench/bench_*.py`` runs. The table is printed and the rows merged into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

import bench
from bench.common import DEFAULT_OUT, Report


def discover() -> list[str]:
    """The short names of every ``bench/bench_*.py`` module, sorted."""
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(bench.__path__)
        if m.name.startswith("bench_") and not m.ispkg
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen modules; 0 when all ran, 1 when one failed, 2 on bad arguments."""
    available = discover()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"modules to run (default: all of {', '.join(available)})")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (< 10 s a module)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"JSON file to merge the rows into (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    names = [n.removeprefix("bench_").removesuffix(".py") for n in args.names] or available
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(
            f"no benchmark module named {', '.join(unknown)} (have: {', '.join(available)})"
        )

    report = Report(args.out)
    failed = []
    for name in names:
        print(f"== bench_{name}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            module.run(report, args.quick)
        except Exception:  # one broken module must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)

    print()
    print(report.table())
    if report.rows:
        print(f"\nwrote {report.write()}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
