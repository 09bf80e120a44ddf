"""``docs/reliability.md`` from the results of a reliability run, and the bad-input count.

:func:`count_bad_inputs` runs ``tests/test_bad_input.py`` (owned elsewhere; only run and
read here) with Hypothesis statistics and counts the inputs it tried: every passing
generated or explicit example of the property tests, plus one per plain (parametrized)
test. :func:`render` turns the matrix, soak and crash results into Markdown.
"""

from __future__ import annotations

import datetime as dt
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from attrs import frozen

from bench.reliability.checks import Verdict
from bench.reliability.crash import CrashResult
from bench.reliability.matrix import CaseResult
from bench.reliability.soak import SoakResult

__all__ = ["BadInputs", "count_bad_inputs", "render"]

BAD_INPUT_TESTS = "tests/test_bad_input.py"


@frozen
class BadInputs:
    """What the bad-input suite tried and how it went."""

    examples: int
    property_tests: int
    plain_tests: int
    passed: int
    failed: int
    ok: bool
    note: str = ""


def count_bad_inputs(root: Path) -> BadInputs:
    """Run the bad-input suite once and count the inputs it tried."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", BAD_INPUT_TESTS, "-p", "no:cacheprovider",
         "--hypothesis-show-statistics"],
        cwd=root, capture_output=True, text=True, check=False, timeout=900)
    out = proc.stdout
    examples = sum(int(n) for n in re.findall(r"(\d+) passing", out))
    property_tests = len(re.findall(r"^tests/test_bad_input\.py::\S+:$", out, re.M))
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", out)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", out)) else 0
    plain = max(0, passed + failed - property_tests)
    return BadInputs(examples + plain, property_tests, plain, passed, failed,
                     proc.returncode == 0,
                     "" if proc.returncode == 0 else out.strip().splitlines()[-1][:200])


FINDINGS = (
    "## What the campaigns found",
    "",
    "* **Fixed** (`adapters/mexc/execution.py`, `ExecutionManager.settle`): a placement that "
    "never reached the exchange (request dropped, 5xx without running) stayed `unknown` for "
    "the rest of the session once six queries had answered \"does not exist\" (2040); the "
    "market maker, waiting on it, never quoted that side again. Now, once the request is "
    "older than two receive windows (so the exchange can no longer accept it) and the "
    "exchange still answers 2040, the placement is rejected (2040). Seen in `lost-request`, "
    "`5xx-blip`, `5xx-burst`, `everything`.",
    "* **Fixed** (`engine/runtime.py`): with `exit_on_kill` during a 404 storm, cancel-all "
    "was still retrying when the session closed its input channel, and the session crashed "
    "with `trio.ClosedResourceError` (`order-404-exit`). The stop now gives executions a "
    "bounded grace period and then cancels them (fixed concurrently in the same way); "
    "a placement abandoned there without an answer is journaled `order.unknown` and the next "
    "start settles it (`rate-limit-storm` shows it: 510 backoff held two placements past the "
    "stop).",
    "* **Fixed** (`adapters/mexc/account.py`, `AccountStream.reconcile`): a position closed "
    "while the account stream was down (a dropped connection, or the engine killed) stayed "
    "open in the journal for good: the reconciliation's `open_positions` answer lists only "
    "open positions, so nothing closed it, and every later reconciliation reported the same "
    "`position_changed`. The reconciliation now reads the position history for such a "
    "position; its closed record, journaled and folded, closes it. Seen once in "
    "`drops+lost-answers+gaps`; an early crash campaign showed the same mismatch once.",
    "* Not changed: the market maker re-issues its cancel of a stale quote every tick while "
    "the first one waits behind the client's 510 backoff (up to 30 s), so cancels queue up; "
    "placements decided during a backoff go out late. The simulator holds its exchange time "
    "monotonic, so a clock skew that goes back freezes its rate-limit window until real "
    "time catches up (510s for that long). Projections keep every order of a session, so "
    "memory grows with the number of orders (the soak's traced heap growth), not with time.",
)
"""The findings of the campaigns (kept with the generated figures)."""


def _counts(verdict: Verdict) -> tuple[int, int, int]:
    """(lost, duplicated, unverifiable) of one verdict."""
    lost = len(verdict.lost) + len(verdict.orphans) + len(verdict.dangling)
    unverifiable = (1 if verdict.chain else 0) + len(verdict.replay)
    return lost, len(verdict.duplicates), unverifiable


def _yes(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def _summary(matrix: Sequence[CaseResult], soak: SoakResult | None,
             crash: CrashResult | None, bad: BadInputs | None) -> list[str]:
    lines = ["| campaign | tried | sessions run | lost orders | duplicated orders | "
             "unverifiable journals | result |", "|---|---|---|---|---|---|---|"]
    if matrix:
        faults = sorted({s for r in matrix for s in r.case.faults})
        sessions = sum(1 + bool(r.settled_by_restart) for r in matrix)
        totals = [sum(x) for x in zip(*(_counts(r.verdict) for r in matrix), strict=True)]
        lines.append(
            f"| fault matrix | {len(faults)} faults ({', '.join(faults)}) alone and combined "
            f"in {len(matrix)} cases ({sum(len(r.case.faults) > 1 for r in matrix)} "
            f"combined); {sum(bool(r.killed) for r in matrix)} tripped the kill switch | "
            f"{sessions} | {totals[0]} | {totals[1]} | {totals[2]} | "
            f"{_yes(all(r.ok for r in matrix))} |")
    if soak is not None:
        lost, dup, unver = _counts(soak.verdict)
        lines.append(f"| soak | {soak.config.hours:g} virtual hours, {len(soak.faults)} random "
                     f"faults | 1 | {lost} | {dup} | {unver} | {_yes(not soak.problems())} |")
    if crash is not None:
        lost, dup, unver = _counts(crash.verdict)
        survived = len(crash.rounds) - crash.unverifiable
        lines.append(f"| crash campaign | {len(crash.rounds)} SIGKILLs, each restarted on the "
                     f"same journal; {survived} survived (journal verified, restart "
                     f"reconciled) | {len(crash.rounds) + 1} | {lost} | {dup} | "
                     f"{unver + crash.unverifiable} | {_yes(not crash.problems())} |")
    if bad is not None:
        lines.append(f"| bad input | {bad.examples} inputs ({bad.property_tests} property "
                     f"tests, {bad.plain_tests} fixed cases) | - | - | - | - | "
                     f"{_yes(bad.ok)} |")
    return lines


def _matrix(matrix: Sequence[CaseResult]) -> list[str]:
    lines = ["## Fault matrix", "",
             "Each case is a market-maker (or scripted) session against the in-process "
             "simulator in virtual time. Faults switch on and off on schedule; 15 s before "
             "the end every fault is cleared and the market frozen, the session stops "
             "(cancel-all, reconciliation) and its journal is compared with the simulator. "
             "A case passes when the outcome is *safe* as defined in its row, the journal "
             "verifies, every session replays identically, no order is lost, duplicated or "
             "orphaned, and positions, open orders and the balance equal the exchange's. "
             "When a session ends with intents it could not settle (abandoned at its stop), "
             "a restart on the same journal must settle them; the row says so.", "",
             "| case | fault | safe means | outcome | orders | fills | events | result |",
             "|---|---|---|---|---|---|---|---|"]
    for r in matrix:
        outcome = f"kill switch: {r.killed}" if r.killed else "kept running"
        if r.settled_by_restart:
            outcome += f"; {len(r.settled_by_restart)} intent(s) settled by a restart"
        result = _yes(r.ok) + ("" if r.ok else ": " + "; ".join(r.problems())[:300])
        lines.append(f"| {r.case.name} | {r.case.fault} | {r.case.safe} | {outcome} | "
                     f"{r.summary.orders} | {r.summary.fills} | {r.verdict.events} | "
                     f"{result} |")
    return lines


def _soak(soak: SoakResult) -> list[str]:
    cfg = soak.config
    rss, heap = soak.rss_growth_mb_per_hour, soak.heap_growth_mb_per_hour
    faults: dict[str, int] = {}
    for _, name in soak.faults:
        faults[name] = faults.get(name, 0) + 1
    lines = ["## Soak", "",
             f"{cfg.hours:g} virtual hours of the market maker (quoting every "
             f"{cfg.quote_every_s:g} s; market step {cfg.step_s:g} s), seed {cfg.seed}, "
             f"{len(soak.faults)} faults at random moments "
             f"({', '.join(f'{k} ×{v}' for k, v in sorted(faults.items()))}); "
             f"{soak.wall_s:.0f} s of wall time. Samples every "
             f"{cfg.sample_every_s / 3600:g} virtual hour(s); tracemalloc ran during the last "
             f"{cfg.trace_periods} period(s) only (it slows Python several times), so the "
             "traced heap is what was allocated in that window and still alive at its end.",
             "", *soak.table(), "",
             f"* resident memory growth after the warm-up: "
             f"{'-' if rss is None else f'{rss:.1f} MB/h'} (bound {cfg.max_rss_mb_per_hour:g})",
             f"* Python heap growth over the traced window: "
             f"{'-' if heap is None else f'{heap:.1f} MB/h'} (bound "
             f"{cfg.max_heap_mb_per_hour:g})",
             f"* journal growth per period: "
             f"{', '.join(f'{g / 1e6:.1f} MB' for g in soak.journal_growth())}",
             f"* kill switch: {soak.summary.killed or 'never tripped'}; invariants: "
             f"{'all hold' if soak.verdict.ok else '; '.join(soak.verdict.problems())}"]
    if soak.top_allocations:
        lines += ["", "Where the traced heap growth was allocated (biggest first):", ""]
        lines += [f"* {a}" for a in soak.top_allocations]
    problems = soak.problems()
    if problems:
        lines += ["", "**Problems:**", "", *[f"* {p}" for p in problems]]
    return lines


def _crash(crash: CrashResult) -> list[str]:
    def fig(which: str) -> str:
        r = crash.recovery(which)
        return "-" if r is None else f"median {r[0]:.2f} s, p95 {r[1]:.2f} s, max {r[2]:.2f} s"

    at_start = sum(r.killed_at.startswith("start-up") for r in crash.rounds)
    v = crash.verdict
    lines = ["## Crash campaign", "",
             f"`tapeline run --mode live` against a `tapeline sim` process, SIGKILLed "
             f"{len(crash.rounds)} times at seeded random moments ({at_start} during start-up, "
             f"the rest while trading), restarted each time on the same journal; then a final "
             f"clean run of {crash.config.final_duration_s:g} s. {crash.wall_s:.0f} s of wall "
             "time.", "",
             f"* journal verified after every kill: {len(crash.rounds) - crash.unverifiable} of "
             f"{len(crash.rounds)}; sessions in the journal: {v.sessions} ({v.events} events; "
             "a kill early in start-up comes before the session is recorded)",
             f"* orders requested: {v.orders_requested}; orders at the exchange: "
             f"{v.exchange_orders}; duplicated: {len(v.duplicates)}; lost or orphaned: "
             f"{len(v.lost) + len(v.orphans) + len(v.dangling)}",
             f"* sessions replayed identically: {v.sessions - len(v.replay)} of {v.sessions}"
             + (f" ({v.replays_cut} cut by a kill between a batch's inputs and its "
                "decisions, identical up to there)" if v.replays_cut else ""),
             f"* time to recover, process start to first status line (printed every "
             f"0.5 s): {fig('first_status')}",
             f"* time to recover, process start to reconciled (first reconciliation "
             "answered): "
             f"{fig('reconciled')}",
             f"* final clean run exit code: {crash.final_exit}"]
    problems = crash.problems()
    if problems:
        lines += ["", "**Problems:**", "", *[f"* {p}" for p in problems]]
    return lines


def render(*, command: str, matrix: Sequence[CaseResult], soak: SoakResult | None,
           crash: CrashResult | None, bad: BadInputs | None, wall_s: float) -> str:
    """The whole of ``docs/reliability.md``."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Reliability", "",
        "What tapeline was put through, and what came out. Generated by "
        f"`{command}` on {when} ({platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}; {wall_s:.0f} s); every figure "
        "below is from that run.", "",
        "*Lost* counts orders whose fills or final state the journal got wrong, orders the "
        "exchange holds that the journal never requested (orphans) and intents left "
        "unsettled; *duplicated* counts externalOids requested or sent twice and exchange "
        "orders sharing one; *unverifiable* counts journals whose hash chain breaks and "
        "sessions whose replay is not identical.", "",
        *_summary(matrix, soak, crash, bad), "",
    ]
    if matrix:
        parts += [*_matrix(matrix), ""]
    if soak is not None:
        parts += [*_soak(soak), ""]
    if crash is not None:
        parts += [*_crash(crash), ""]
    if bad is not None:
        parts += ["## Bad input", "",
                  f"`{BAD_INPUT_TESTS}` (fuzzed configuration files, command lines, damaged "
                  "journals, malformed requests to the simulator) was run once: "
                  f"{bad.passed} tests passed, {bad.failed} failed; {bad.examples} inputs in "
                  f"all ({bad.property_tests} Hypothesis tests' passing examples plus "
                  f"{bad.plain_tests} fixed cases)." + (f" {bad.note}" if bad.note else ""),
                  ""]
    parts += [*FINDINGS, ""]
    parts += [
        "## Reproduce", "",
        "```",
        "nox -s reliability          # everything below, and this page",
        "nox -s soak                 # the soak alone: python -m bench.reliability soak",
        "nox -s crash                # the crash campaign alone",
        "python -m bench.reliability matrix [CASE ...]",
        "python -m bench.reliability soak --hours 6 --seed 7",
        "python -m bench.reliability crash --kills 50 --seed 20261121",
        "python -m bench.reliability all --hours 6 --kills 50   # writes docs/reliability.md",
        "```", "",
        "The default test suite runs a subset: `tests/e2e/test_fault_matrix.py` (8 cases "
        "and the regression tests) and `tests/e2e/test_soak_short.py` (a quarter of a "
        "virtual hour); `tests/e2e/test_restart.py` kills the engine 4 times.", "",
    ]
    return "\n".join(parts)
