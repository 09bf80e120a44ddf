"""``python -m bench.reliability {matrix,soak,crash,all}``: the reliability campaigns.

* ``matrix [CASE ...]`` — the fault matrix (every case, or those named);
* ``soak [--hours H] [--seed S] [--sample-every S]`` — the soak;
* ``crash [--kills N] [--seed S]`` — the crash campaign;
* ``all [--hours H] [--kills N] [--write PATH]`` — all three and the bad-input suite, then
  ``docs/reliability.md`` (or ``--write PATH``).

Exit status 0 when every invariant held, 1 otherwise. Journals of a failing campaign are
kept under ``bench/out/reliability/`` for inspection.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.reliability.crash import CrashConfig, CrashResult, run_campaign
from bench.reliability.matrix import CASES, CaseResult, case_named, run_matrix
from bench.reliability.report import count_bad_inputs, render
from bench.reliability.soak import SoakConfig, SoakResult, run_soak_blocking

ROOT = Path(__file__).resolve().parents[2]
KEEP = ROOT / "bench" / "out" / "reliability"


def _keep(workdir: Path, name: str) -> None:
    target = KEEP / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(workdir, target)
    print(f"   journals kept in {target}", flush=True)


def _matrix(names: Sequence[str]) -> list[CaseResult]:
    cases = tuple(case_named(n) for n in names) if names else CASES
    print(f"== fault matrix: {len(cases)} cases", flush=True)
    with tempfile.TemporaryDirectory(prefix="tapeline-matrix-") as tmp:
        results = run_matrix(cases, Path(tmp), out=lambda line: print(line, flush=True))
        if not all(r.ok for r in results):
            _keep(Path(tmp), "matrix")
    return results


def _soak(args: argparse.Namespace) -> SoakResult:
    seed = {"seed": args.seed} if args.seed is not None else {}
    cfg = SoakConfig(hours=args.hours, sample_every_s=args.sample_every, **seed)
    print(f"== soak: {cfg.hours:g} virtual hours, seed {cfg.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tapeline-soak-") as tmp:
        result = run_soak_blocking(cfg, Path(tmp),
                                   progress=lambda line: print(line, flush=True))
        for line in result.problems():
            print(f"   {line}", flush=True)
        if result.problems():
            _keep(Path(tmp), "soak")
    print(f"   ({result.wall_s:.0f} s)", flush=True)
    return result


def _crash(args: argparse.Namespace) -> CrashResult:
    seed = {"seed": args.seed} if args.seed is not None else {}
    cfg = CrashConfig(kills=args.kills, **seed)
    print(f"== crash campaign: {cfg.kills} kills, seed {cfg.seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tapeline-crash-") as tmp:
        result = run_campaign(cfg, Path(tmp), progress=lambda line: print(line, flush=True))
        for line in result.problems():
            print(f"   {line}", flush=True)
        if result.problems():
            _keep(Path(tmp), "crash")
    for which in ("first_status", "reconciled"):
        fig = result.recovery(which)
        if fig is not None:
            print(f"   recovery to {which.replace('_', ' ')}: median {fig[0]:.2f} s, "
                  f"p95 {fig[1]:.2f} s, max {fig[2]:.2f} s", flush=True)
    print(f"   ({result.wall_s:.0f} s)", flush=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen campaign(s); 0 when every invariant held."""
    parser = argparse.ArgumentParser(prog="python -m bench.reliability",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("matrix", "soak", "crash", "all"))
    parser.add_argument("cases", nargs="*", metavar="CASE", help="matrix cases (default all)")
    parser.add_argument("--hours", type=float, default=6.0, help="soak length (virtual)")
    parser.add_argument("--sample-every", type=float, default=3600.0,
                        help="soak sample period in virtual seconds")
    parser.add_argument("--kills", type=int, default=50, help="crash campaign kills")
    parser.add_argument("--seed", type=int, default=None,
                        help="soak/crash seed (default: each campaign's own)")
    parser.add_argument("--write", type=Path, default=None,
                        help="with 'all': where to write the report "
                             "(default docs/reliability.md)")
    parser.add_argument("--no-bad-input", action="store_true",
                        help="with 'all': do not run the bad-input suite")
    args = parser.parse_args(argv)
    if args.cases and args.what != "matrix":
        parser.error("CASE names go with 'matrix' only")
    t0 = time.perf_counter()
    if args.what == "matrix":
        return 0 if all(r.ok for r in _matrix(args.cases)) else 1
    if args.what == "soak":
        return 0 if not _soak(args).problems() else 1
    if args.what == "crash":
        return 0 if not _crash(args).problems() else 1
    matrix = _matrix(())
    soak = _soak(args)
    crash = _crash(args)
    bad = None
    if not args.no_bad_input:
        print("== bad input suite", flush=True)
        bad = count_bad_inputs(ROOT)
        print(f"   {bad.examples} inputs, {bad.passed} passed, {bad.failed} failed", flush=True)
    command = "python -m bench.reliability " + " ".join(argv if argv is not None
                                                        else sys.argv[1:])
    text = render(command=command.strip(), matrix=matrix, soak=soak, crash=crash, bad=bad,
                  wall_s=time.perf_counter() - t0)
    out = args.write or ROOT / "docs" / "reliability.md"
    out.write_text(text)
    print(f"wrote {out}", flush=True)
    ok = (all(r.ok for r in matrix) and not soak.problems() and not crash.problems()
          and (bad is None or bad.ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
