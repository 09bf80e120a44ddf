"""The crash campaign: SIGKILL the engine process at random points, restart it on the same
journal, many times; then check that nothing was lost or duplicated.

Real processes (the helpers of ``tests/e2e/procs.py``): one ``tapeline sim`` outlives every
engine; each round starts ``tapeline run --mode live`` against it on the same journal and
kills it with SIGKILL at a seeded random moment: sometimes during start-up (a random delay
after the start, waiting on the engine's output, never sleeping blind), mostly while it
trades (after a random number of status lines, plus a random fraction of one). After every
kill the journal must verify. A final run stops cleanly (its stop cancels everything), and
the whole journal is checked against the exchange's own state read over REST
(:func:`bench.reliability.checks.check_journal`): no order sent twice, no orphan, every
order's dealt volume equal, every session replays identically (a killed session may lack
the decisions of its very last inputs, which the kill cut off before their commit).

Recovery time is measured per restart: from the process start to its first status line
(trading again), and to the answer of its first reconciliation (``rest.assets``, the last
call of :meth:`adapters.mexc.account.AccountStream.reconcile`), from the journal.
"""

from __future__ import annotations

import random
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import trio
from attrs import frozen

from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.rest import MexcRestClient
from bench.reliability.checks import ExchangeView, Verdict, check_journal, view_over_rest
from engine.clock import SystemClock
from engine.journal import Journal
from tests.e2e.procs import (
    API_KEY,
    API_SECRET,
    LineReader,
    SimProcess,
    start_engine,
    write_config,
)

__all__ = ["CrashConfig", "CrashResult", "Round", "run_campaign"]

STATUS = " ev/s "


@frozen
class CrashConfig:
    """How many kills, where, and how long to wait for an engine before calling it stuck."""

    kills: int = 50
    seed: int = 20261121
    startup_kill_share: float = 0.2
    max_status_lines: int = 6
    final_duration_s: float = 4.0
    line_timeout_s: float = 60.0
    replay: bool = True


@frozen
class Round:
    """One engine process: how it was killed and how fast it came back."""

    index: int
    killed_at: str
    to_first_status_s: float | None
    to_reconciled_s: float | None
    verified: bool
    journal_rows: int


@frozen
class CrashResult:
    """The rounds, the final check and the recovery figures."""

    config: CrashConfig
    rounds: tuple[Round, ...]
    verdict: Verdict
    final_exit: int
    wall_s: float
    final_output: tuple[str, ...] = ()

    @property
    def unverifiable(self) -> int:
        """Kills after which the journal did not verify."""
        return sum(1 for r in self.rounds if not r.verified)

    def recovery(self, which: str) -> tuple[float, float, float] | None:
        """(median, 95th percentile, max) seconds ``to_first_status`` or ``to_reconciled``."""
        values = sorted(v for r in self.rounds
                        if (v := getattr(r, f"to_{which}_s")) is not None)
        if not values:
            return None
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        return statistics.median(values), p95, values[-1]

    def problems(self) -> list[str]:
        """Every breach; empty when the campaign passed."""
        out = self.verdict.problems()
        out += [f"round {r.index}: the journal did not verify after the kill"
                for r in self.rounds if not r.verified]
        if self.final_exit != 0:
            out.append(f"the final clean run exited with {self.final_exit}")
        return out


def _kill_plan(rng: random.Random, cfg: CrashConfig) -> tuple[str, float, int]:
    """(label, seconds after start or after the chosen status line, status lines to wait)."""
    if rng.random() < cfg.startup_kill_share:
        delay = rng.uniform(0.0, 2.5)
        return f"start-up +{delay:.2f} s", delay, 0
    lines = rng.randint(1, cfg.max_status_lines)
    extra = rng.uniform(0.0, 0.5)
    return f"after {lines} status lines +{extra:.2f} s", extra, lines


def _read_until(reader: LineReader, deadline: float, seen: list[str],
                status_lines: int | None = None) -> bool:
    """Read output until ``deadline`` (monotonic) or, with ``status_lines``, until that many
    status lines have passed; False when the engine went quiet or ended first."""
    while True:
        if status_lines is not None and sum(STATUS in s for s in seen) >= status_lines:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return status_lines is None
        line = reader.read_line(left)
        if line is None:
            return status_lines is None and time.monotonic() >= deadline
        seen.append(line)


def _reconciled_after(journal: Path, started_ns: int) -> float | None:
    """Seconds from ``started_ns`` to the first reconciliation's last answer in the
    session that process started (None: it got no session or no answer before the kill)."""
    if not journal.exists():
        return None
    with Journal.open(journal, readonly=True) as j:
        mine = [s for s in j.sessions() if s.started_ns >= started_ns]
        if not mine:
            return None
        first = next(iter(j.read(session=mine[0].id, kinds=["rest.assets"])), None)
    return (first.ts_ns - started_ns) / 1e9 if first is not None else None


def _verify(journal: Path) -> tuple[bool, int]:
    if not journal.exists():
        return True, 0
    with Journal.open(journal, readonly=True) as j:
        result = j.verify()
        return result.ok, result.checked


def _one_round(index: int, rng: random.Random, cfg: CrashConfig, config: Path,
               journal: Path) -> Round:
    label, delay, lines = _kill_plan(rng, cfg)
    started_ns = time.time_ns()
    t0 = time.monotonic()
    proc = start_engine(config, journal)
    assert proc.stdout is not None
    reader = _StampingReader(proc.stdout)
    seen: list[str] = []
    try:
        if lines:
            if not _read_until(reader, t0 + cfg.line_timeout_s, seen, lines):
                raise RuntimeError(f"round {index}: the engine stalled or ended:\n"
                                   + "".join(seen[-20:]))
            _read_until(reader, time.monotonic() + delay, seen)
        else:
            _read_until(reader, t0 + delay, seen)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
    first_status = _first_status(seen, t0)
    ok, rows = _verify(journal)
    reconciled = _reconciled_after(journal, started_ns)
    return Round(index, label, first_status, reconciled, ok, rows)


def _first_status(seen: list[str], t0: float) -> float | None:
    stamps = [s for s in seen if s.startswith("@") and STATUS in s]
    if stamps:
        return float(stamps[0][1:].split(" ", 1)[0]) - t0
    return None


class _StampingReader(LineReader):
    """A :class:`LineReader` that prefixes each line with ``@<monotonic time> ``."""

    def read_line(self, timeout_s: float) -> str | None:
        line = super().read_line(timeout_s)
        return None if line is None else f"@{time.monotonic():.6f} {line}"


async def _exchange(sim: SimProcess) -> ExchangeView:
    config = MexcConfig.for_simulator(sim.urls["rest_base"])
    async with httpx.AsyncClient(timeout=10) as http:
        rest = MexcRestClient(http, config, Credentials(API_KEY, API_SECRET), SystemClock())
        return await view_over_rest(rest, ["BTC_USDT"])


def run_campaign(cfg: CrashConfig, workdir: Path | None = None,
                 progress: Callable[[str], None] = print) -> CrashResult:
    """Run the campaign (see the module docstring) in ``workdir`` or a temporary one."""
    with tempfile.TemporaryDirectory(prefix="tapeline-crash-") as tmp:
        return _campaign(cfg, workdir or Path(tmp), progress)


def _campaign(cfg: CrashConfig, where: Path, progress: Callable[[str], None]) -> CrashResult:
    t0 = time.perf_counter()
    rng = random.Random(cfg.seed)
    sim = SimProcess(seed=cfg.seed % 1000)
    rounds: list[Round] = []
    try:
        config = write_config(where / "tapeline.toml", sim)
        journal = where / "crash.sqlite"
        for index in range(cfg.kills):
            result = _one_round(index, rng, cfg, config, journal)
            rounds.append(result)
            progress(f"  kill {index + 1:>3}/{cfg.kills} {result.killed_at:<32} "
                     f"status after {_s(result.to_first_status_s)}, reconciled after "
                     f"{_s(result.to_reconciled_s)}, journal {result.journal_rows} rows "
                     f"{'verifies' if result.verified else 'DOES NOT VERIFY'}")
        final = start_engine(config, journal, "--duration", f"{cfg.final_duration_s:g}s")
        try:
            output, _ = final.communicate(timeout=cfg.line_timeout_s + cfg.final_duration_s)
        except subprocess.TimeoutExpired:
            final.kill()
            output, _ = final.communicate()
        exchange = trio.run(_exchange, sim)
    finally:
        sim.stop()
    verdict = check_journal(journal, exchange, replay=cfg.replay)
    tail = output.decode(errors="replace").splitlines()[-12:]
    return CrashResult(cfg, tuple(rounds), verdict, final.returncode,
                       time.perf_counter() - t0, tuple(tail))


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
