"""The fault matrix: sessions against the in-process simulator, in virtual time, under faults.

A :class:`FaultCase` is a strategy session with :class:`FaultWindow` s: each window sets some
of the simulator's fault switches (:class:`adapters.mexc.sim.faults.Faults`) at ``at_s``
seconds into the session and puts them back at ``until_s``. ``quiet_s`` seconds before the
end every fault is cleared and the market frozen (``sim.drive_market = False``), so that the
session's own stop (cancel-all, then a reconciliation) ends at a quiet moment, where the
journal can be compared with the exchange (:func:`bench.reliability.checks.check_journal`).

Besides the invariants of the check, each case says what *safe* means for its fault
(:attr:`FaultCase.safe`) and asserts it through :attr:`FaultCase.kill` (must the kill switch
trip, must it not, or may it) and :attr:`FaultCase.evidence` (journal kinds that must appear,
showing the fault was met and handled). Whenever the kill switch tripped, no placement may
have passed the risk gate after it. :data:`CASES` is the full matrix; :data:`DEFAULT_SUBSET`
names the cases the default test suite runs.

:func:`run_case` runs under a trio run with a virtual clock (pytest's ``autojump_clock``);
:func:`run_case_blocking` starts one itself.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
import orjson
import trio
import trio.testing
from attrs import Factory, field, frozen

from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.sim.faults import Faults
from adapters.mexc.sim.service import SimService
from adapters.mexc.venue import open_sim_venue, sim_contracts
from bench.reliability.checks import Verdict, check_journal, view_of_sim
from engine.clock import Clock, TrioClock
from engine.journal import Journal
from engine.runtime import RunOptions, SessionSummary, Venue, run_session

__all__ = ["CASES", "DEFAULT_SUBSET", "CaseResult", "FaultCase", "FaultWindow", "case_named",
           "reopen_sim_venue", "run_case", "run_case_blocking", "run_matrix",
           "settle_by_restart"]

Kill = Literal["never", "must", "may"]
SHAPING_SWITCHES = frozenset({"rest_match", "rest_drop_mode", "rest_5xx_status", "seed"})
"""Fault switches that only say where or how another fault applies."""
SCRIPTED = "tests.e2e.scripted:Scripted"


@frozen
class FaultWindow:
    """Set ``switches`` at ``at_s`` seconds into the session; restore them at ``until_s``
    (None: they stay until the quiet phase clears every fault)."""

    at_s: float
    switches: Mapping[str, Any]
    until_s: float | None = None


@frozen
class FaultCase:
    """One row of the matrix (see the module docstring)."""

    name: str
    fault: str
    safe: str
    windows: tuple[FaultWindow, ...] = field(converter=tuple)
    kill: Kill = "never"
    evidence: Mapping[str, int] = Factory(dict)
    strategy: str = "market-maker"
    strategy_config: Mapping[str, Any] = Factory(dict)
    duration_s: float = 90.0
    quiet_s: float = 15.0
    exit_on_kill: bool = False
    seed: int = 1

    @property
    def switches(self) -> tuple[str, ...]:
        """The fault switches this case turns on."""
        return tuple(dict.fromkeys(k for w in self.windows for k in w.switches))

    @property
    def faults(self) -> tuple[str, ...]:
        """The faults themselves: the switches less those that only shape another one."""
        return tuple(s for s in self.switches if s not in SHAPING_SWITCHES)


@frozen
class CaseResult:
    """What one case did and whether it was safe."""

    case: FaultCase
    summary: SessionSummary
    verdict: Verdict
    kinds: Mapping[str, int]
    placed_after_kill: tuple[str, ...]
    missing_evidence: tuple[str, ...]
    wall_s: float
    lines: tuple[str, ...] = ()
    open_at_end: int = 0
    settled_by_restart: tuple[str, ...] = ()
    """Intents the session left unsettled, which a restart on the journal then settled."""

    @property
    def killed(self) -> str | None:
        """Why the kill switch tripped, or None."""
        return self.summary.killed

    def problems(self) -> list[str]:
        """Every way the case was unsafe or broke an invariant; empty when it passed."""
        out = self.verdict.problems()
        if self.case.kill == "never" and self.killed:
            out.append(f"kill switch tripped: {self.killed}")
        if self.case.kill == "must" and not self.killed:
            out.append("the kill switch should have tripped and did not")
        out += [f"placed after the kill switch: {key}" for key in self.placed_after_kill]
        out += [f"no evidence: {what}" for what in self.missing_evidence]
        return out

    @property
    def ok(self) -> bool:
        """True when the case was safe and every invariant held."""
        return not self.problems()

    def line(self) -> str:
        """One line for a console report."""
        outcome = "ok" if self.ok else "FAIL"
        killed = f"killed ({self.killed[:60]})" if self.killed else "kept running"
        if self.settled_by_restart:
            killed += f", {len(self.settled_by_restart)} settled by a restart"
        return (f"{self.case.name:<28} {outcome:<4} {killed:<40} orders {self.summary.orders:>4}"
                f" fills {self.summary.fills:>4} events {self.verdict.events:>6} "
                f"({self.wall_s:.1f} s)")


def _w(at: float, until: float | None = None, **switches: Any) -> FaultWindow:
    return FaultWindow(at, switches, until)


_NEVER_KILL = ("keeps trading; after the fault the journal equals the exchange")
_MAY_KILL = ("either keeps trading or trips the kill switch (then places nothing more and "
             "cancels everything); the journal equals the exchange at the end")

CASES: tuple[FaultCase, ...] = (
    FaultCase("ws-drops", "every WebSocket connection closed every 8 s for 40 s",
              _NEVER_KILL + "; reconnects, resubscribes, reconciles after each reconnect",
              [_w(20, 60, ws_drop_every_s=8.0)], evidence={"engine.disconnected": 4}),
    FaultCase("silent-pongs", "the server stops answering pings for 50 s",
              _NEVER_KILL + "; the pong watchdog closes and reopens the connections",
              [_w(20, 70, silent_pongs=True)], evidence={"engine.disconnected": 2}),
    FaultCase("depth-gaps", "5 % of depth commits left out of the stream for 40 s",
              _NEVER_KILL + "; every gap detected and the book resynced",
              [_w(20, 60, depth_gap_probability=0.05)],
              evidence={"engine.book_gap": 1, "engine.book_resync": 2}),
    FaultCase("depth-gap-burst", "the next 5 depth commits left out",
              _NEVER_KILL + "; the gap detected and the book resynced",
              [_w(25, depth_gap_next=5)], evidence={"engine.book_gap": 1}),
    FaultCase("rest-delay-short", "every REST answer 1.5 s late for 30 s",
              _NEVER_KILL, [_w(20, 50, rest_delay_s=1.5)]),
    FaultCase("rest-delay-timeout", "every REST answer later than the 10 s read timeout "
              "for 30 s (requests still run)",
              _MAY_KILL + "; timed-out placements are unknown and settled by query, never "
              "re-sent", [_w(20, 50, rest_delay_s=12.0)], kill="may",
              evidence={"order.unknown": 1}, duration_s=120.0),
    FaultCase("lost-answer-after", "the answers to 3 placements dropped after the order was "
              "accepted (read timeout)",
              _NEVER_KILL + "; each settled by query to exactly one order",
              [_w(20, rest_drop_after_next=3, rest_match="order/create")],
              evidence={"order.unknown": 3, "rest.order_external": 3}),
    FaultCase("lost-answer-after-close", "the connection closed instead of answering 3 "
              "accepted placements",
              _NEVER_KILL + "; each settled by query to exactly one order",
              [_w(20, rest_drop_after_next=3, rest_match="order/create",
                  rest_drop_mode="close")],
              evidence={"order.unknown": 3, "rest.order_external": 3}),
    FaultCase("lost-request", "3 placements dropped before reaching the matching engine",
              _NEVER_KILL + "; the orders are settled as never placed, nothing is orphaned",
              [_w(20, rest_drop_next=3, rest_match="order/create")],
              evidence={"order.unknown": 3}),
    FaultCase("lost-requests-any", "the next 4 REST requests of any kind dropped",
              _NEVER_KILL, [_w(20, rest_drop_next=4)]),
    FaultCase("5xx-blip", "the next 3 REST requests answered 503", _NEVER_KILL,
              [_w(20, rest_5xx_next=3)]),
    FaultCase("5xx-burst", "the next 25 REST requests answered 502",
              _MAY_KILL, [_w(20, rest_5xx_next=25, rest_5xx_status=502)], kill="may"),
    FaultCase("order-404", "HTTP 404 on every order endpoint for 15 s (an API change)",
              "trips the kill switch, places nothing more, cancel-all retries until it lands",
              [_w(20, 35, order_404=True)], kill="must", evidence={"engine.kill_switch": 1}),
    FaultCase("order-404-exit", "HTTP 404 on every order endpoint from 20 s on, exit on kill",
              "trips the kill switch and ends the session; what it could not cancel is open "
              "in the journal as at the exchange, and the next start settles what was in "
              "flight", [_w(20, None, order_404=True)], kill="must",
              exit_on_kill=True, evidence={"engine.kill_switch": 1}),
    FaultCase("rate-limit-storm", "the next 40 REST requests refused with 510",
              _MAY_KILL + "; 510 is a refusal: nothing was placed", [_w(20, rate_limit_next=40)],
              kill="may"),
    FaultCase("clock-skew-ahead", "the server clock 30 s ahead for 30 s (outside the 10 s "
              "receive window: every signed request gets 513)",
              _MAY_KILL + "; no order is placed while requests are refused",
              [_w(20, 50, clock_skew_s=30.0)], kill="may"),
    FaultCase("clock-skew-behind", "the server clock 30 s behind for 30 s",
              _MAY_KILL, [_w(20, 50, clock_skew_s=-30.0)], kill="may"),
    # ----------------------------------------------------------------- combinations
    FaultCase("drops+lost-answers+gaps", "WS drops every 10 s, 2 placement answers lost "
              "after acceptance, 5 % depth gaps",
              _NEVER_KILL, [_w(20, 60, ws_drop_every_s=10.0, depth_gap_probability=0.05),
                            _w(25, rest_drop_after_next=2, rest_match="order/create")],
              evidence={"order.unknown": 2, "engine.book_gap": 1}),
    FaultCase("5xx+510+delay", "3 answers 503, 10 refused with 510, every answer 1 s late",
              _MAY_KILL, [_w(20, 50, rest_delay_s=1.0), _w(22, rest_5xx_next=3),
                          _w(30, rate_limit_next=10)], kill="may"),
    FaultCase("pongs+skew", "silent pongs for 40 s and the clock 20 s ahead for 20 s",
              _MAY_KILL, [_w(20, 60, silent_pongs=True), _w(30, 50, clock_skew_s=20.0)],
              kill="may"),
    FaultCase("everything", "drops, silent pongs, gaps, delays, lost answers and requests, "
              "5xx, 510 and skew in one minute",
              _MAY_KILL, [_w(20, 80, ws_drop_every_s=12.0, depth_gap_probability=0.03),
                          _w(25, 45, silent_pongs=True), _w(30, 60, rest_delay_s=0.5),
                          _w(32, rest_drop_after_next=2, rest_match="order/create"),
                          _w(40, rest_drop_next=2), _w(45, rest_5xx_next=4),
                          _w(55, rate_limit_next=8), _w(65, 75, clock_skew_s=15.0)],
              kill="may", duration_s=120.0),
    # ----------------------------------------------------------------- scripted
    FaultCase("scripted-lost-fill-answer", "a market buy whose answer is lost after it "
              "filled, then a close",
              _NEVER_KILL + "; the fill is learnt from the stream or the settle query",
              [_w(0, rest_drop_after_next=1, rest_match="order/create")],
              strategy=SCRIPTED, strategy_config={
                  "actions": ["buy_market", "noop", "noop", "noop", "noop", "noop", "noop",
                              "noop", "noop", "noop", "noop", "noop", "noop", "noop", "noop",
                              "close_long"], "every_s": 2.0},
              duration_s=60.0, evidence={"order.unknown": 1}),
)

DEFAULT_SUBSET: tuple[str, ...] = (
    "ws-drops", "depth-gaps", "lost-answer-after", "lost-request", "5xx-burst", "order-404",
    "clock-skew-ahead", "drops+lost-answers+gaps",
)
"""The cases the default test suite runs (< 60 s together)."""


def case_named(name: str) -> FaultCase:
    """The case called ``name``."""
    for case in CASES:
        if case.name == name:
            return case
    raise KeyError(f"no fault case {name!r}; have {', '.join(c.name for c in CASES)}")


# ----------------------------------------------------------------------------- running


async def _apply_windows(sim: SimService, case: FaultCase) -> None:
    """Switch the case's faults on and off on schedule, then clear and freeze."""
    t0 = trio.current_time()
    defaults = Faults().switches()
    edges: list[tuple[float, int, dict[str, Any]]] = []
    for w in case.windows:
        edges.append((w.at_s, 1, dict(w.switches)))
        if w.until_s is not None:
            edges.append((w.until_s, 0, {k: defaults[k] for k in w.switches}))
    for at, _, switches in sorted(edges, key=lambda e: (e[0], e[1])):
        await trio.sleep_until(t0 + at)
        sim.faults.update(switches)
    await trio.sleep_until(t0 + case.duration_s - case.quiet_s)
    sim.faults.clear()
    sim.drive_market = False


def _placed_after_kill(journal: Journal) -> list[str]:
    trip = next((ev.seq for ev in journal.read(kinds=["engine.kill_switch"])), None)
    if trip is None:
        return []
    # decisions follow their sequencer batch, so judge by cause (the input decided on)
    keys = [orjson.loads(ev.body).get("key", "") for ev in
            journal.read(kinds=["risk.accepted"], from_seq=trip)
            if ev.cause is not None and ev.cause >= trip]
    return [k for k in keys if isinstance(k, str) and k.startswith("tl")]


async def run_case(case: FaultCase, workdir: Path) -> CaseResult:
    """Run ``case`` (virtual time: call under a trio run with an autojump clock)."""
    t0 = time.perf_counter()
    clock = TrioClock()
    symbols = ("BTC_USDT",)
    sim = SimService(clock=clock, seed=case.seed, contracts=sim_contracts(symbols),
                     faults=Faults(seed=case.seed))
    journal_path = workdir / f"{case.name}.sqlite"
    opts = RunOptions(journal_path=journal_path, strategy=case.strategy,
                      strategy_config=dict(case.strategy_config), symbols=symbols,
                      duration_s=case.duration_s, synchronous="NORMAL", status_every_s=0,
                      exit_on_kill=case.exit_on_kill)
    lines: list[str] = []
    summary: SessionSummary | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_apply_windows, sim, case)
        summary = await run_session(
            opts, partial(open_sim_venue, symbols=symbols, seed=case.seed, in_process=True,
                          sim=sim),
            clock=clock, out=lines.append)
        nursery.cancel_scope.cancel()
    assert summary is not None
    sim.faults.clear()
    verdict = check_journal(journal_path, view_of_sim(sim))
    settled_by_restart: tuple[str, ...] = ()
    if verdict.dangling:
        # intents the session ended without settling (it abandoned them at its stop): the
        # next start must settle them; run one on the same journal and account, then judge
        settled_by_restart = verdict.dangling
        await settle_by_restart(journal_path, sim, clock, lines)
        verdict = check_journal(journal_path, view_of_sim(sim))
    with Journal.open(journal_path, readonly=True) as journal:
        kinds = Counter(ev.kind for ev in journal.read())
        placed = _placed_after_kill(journal)
    missing = [f"{kind} >= {n} (found {kinds.get(kind, 0)})"
               for kind, n in case.evidence.items() if kinds.get(kind, 0) < n]
    exchange = view_of_sim(sim)
    return CaseResult(case, summary, verdict, dict(kinds), tuple(placed), tuple(missing),
                      time.perf_counter() - t0, tuple(lines), len(exchange.open_order_ids),
                      settled_by_restart)


@asynccontextmanager
async def reopen_sim_venue(clock: Clock, *, sim: SimService) -> AsyncIterator[Venue]:
    """A venue on ``sim`` with the account (and credentials) an earlier session created."""
    (account,) = {a.user: a for a in sim.accounts.values()}.values()
    async with trio.open_nursery() as nursery:
        await nursery.start(sim.run)
        config = MexcConfig.for_simulator("http://sim.invalid")
        http = httpx.AsyncClient(transport=httpx.MockTransport(sim.rest_handler))
        try:
            yield Venue(http, config.ws_url, config,
                        Credentials(account.api_key, account.secret), sim.ws_connect,
                        "bundled simulator (in process, reopened)")
        finally:
            await http.aclose()
            nursery.cancel_scope.cancel()


async def settle_by_restart(journal_path: Path, sim: SimService, clock: Clock,
                            lines: list[str], duration_s: float = 15.0) -> SessionSummary:
    """Start again on ``journal_path`` with a strategy that does nothing, so that only the
    start-up reconciliation acts, and stop after ``duration_s``."""
    opts = RunOptions(journal_path=journal_path, strategy=SCRIPTED,
                      strategy_config={"actions": []}, symbols=("BTC_USDT",),
                      duration_s=duration_s, synchronous="NORMAL", status_every_s=0)
    return await run_session(opts, partial(reopen_sim_venue, sim=sim), clock=clock,
                             out=lines.append)


def run_case_blocking(case: FaultCase, workdir: Path) -> CaseResult:
    """:func:`run_case` in its own trio run with a virtual clock."""
    return trio.run(run_case, case, workdir,
                    clock=trio.testing.MockClock(autojump_threshold=0))


def run_matrix(cases: tuple[FaultCase, ...] = CASES, workdir: Path | None = None,
               out: Any = print) -> list[CaseResult]:
    """Run ``cases`` one after another; print a line for each."""
    results = []
    with tempfile.TemporaryDirectory(prefix="tapeline-matrix-") as tmp:
        where = workdir or Path(tmp)
        for case in cases:
            result = run_case_blocking(case, where)
            out(result.line())
            for problem in result.problems():
                out(f"    {problem}")
            results.append(result)
    return results
