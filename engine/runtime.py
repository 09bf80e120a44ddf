"""The composition root: wires journal, projections, strategy, risk and the MEXC adapter (shell).

Theory of operation
-------------------
:func:`run_session` opens the journal (one writer), folds what it already holds (so a
restart knows its open orders), records a new session, and starts, in one nursery:

* the :class:`~engine.sequencer.Sequencer` (the only journal writer),
* the execution manager (REST), the market-data manager and the account stream (WS),
* the strategy's timers and the status line.

Everything that happens enters through one channel into the sequencer. On stop (duration
reached, Ctrl-C, or a kill switch with ``exit_on_kill``) it lets the strategy's ``on_stop``
decide, cancels all open orders if configured, waits (bounded) for executions in flight,
stops the feeds, journals ``SessionEnded`` and drains the sequencer.

The kill switch trips on a strategy exception (the core), a burst of unexpected REST
failures (execution), a stale account stream, a signal (SIGUSR1) or :meth:`Session.trip`.
It stops new orders, cancels all open ones, keeps recording, journals why, alerts the
operator (console, optional command or webhook) and, with ``exit_on_kill``, ends the
session with a non-zero outcome.
"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
from attrs import define, field, frozen

from adapters.mexc.account import AccountStream
from adapters.mexc.codecs import PARSER_VERSION
from adapters.mexc.errors import DecodeError, MexcError
from adapters.mexc.execution import ExecutionManager, journaling_hook
from adapters.mexc.feeds import MarketDataManager
from adapters.mexc.interpret import interpret
from adapters.mexc.rest import MexcRestClient
from engine import __version__
from engine.clock import Clock, TrioClock
from engine.commands import Command, PlaceOrder
from engine.core import Core
from engine.errors import ConfigError
from engine.events import (
    KillSwitchTripped,
    OrderOutcomeUnknown,
    SessionEnded,
    SessionStarted,
    StopRequested,
    TimerFired,
    canonical_json,
)
from engine.journal import Journal
from engine.model import PositionType
from engine.projections import OrderStatus, State
from engine.rebuild import rebuild_state
from engine.replay_plan import config_hash, risk_to_meta
from engine.risk import RiskGate, RiskLimits
from engine.sequencer import Input, Sequencer, engine_input
from engine.strategy import Strategy, StrategyContext, load_strategy_class, make_config

__all__ = ["MODES", "RunOptions", "Session", "SessionSummary", "Venue", "run_session"]

MODES = ("sim", "live", "shadow", "record")


@frozen
class Venue:
    """How to reach an exchange: an HTTP client, a WS URL and connector, credentials."""

    http: httpx.AsyncClient
    ws_url: str
    mexc_config: Any
    credentials: Any | None
    ws_connect: Any | None = None
    description: str = ""


@define
class RunOptions:
    """Everything a session needs to know; built from the CLI and the TOML config."""

    journal_path: Path
    mode: str = "sim"
    strategy: str | None = "market-maker"
    strategy_config: dict[str, Any] = field(factory=dict)
    symbols: tuple[str, ...] = ("BTC_USDT",)
    duration_s: float | None = None
    cancel_on_stop: bool = True
    exit_on_kill: bool = True
    risk: RiskLimits = field(factory=RiskLimits)
    alert_command: str | None = None
    alert_webhook: str | None = None
    status_every_s: float = 5.0
    synchronous: str = "FULL"
    stale_account_s: float = 60.0
    stop_timeout_s: float = 10.0

    def __attrs_post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.mode != "record" and not self.strategy:
            raise ConfigError(f"mode {self.mode!r} needs a strategy (--strategy NAME)")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError("duration must be positive")


@frozen
class SessionSummary:
    """What a finished session did."""

    session: str
    journal: str
    mode: str
    events: int
    orders: int
    filled_orders: int
    fills: int
    realised_pnl: Decimal
    balance: Decimal | None
    killed: str | None
    duration_s: float

    @property
    def exit_code(self) -> int:
        """0 for a clean session, 2 when the kill switch ended it."""
        return 2 if self.killed else 0

    def lines(self) -> list[str]:
        """A short human report."""
        out = [
            f"session {self.session} ({self.mode}) — {self.duration_s:.1f} s",
            f"  events journaled: {self.events}",
            f"  orders: {self.orders} ({self.filled_orders} filled), fills: {self.fills}",
            f"  realised PnL: {self.realised_pnl} USDT"
            + (f", balance: {self.balance} USDT" if self.balance is not None else ""),
            f"  journal: {self.journal}",
        ]
        if self.killed:
            out.append(f"  KILL SWITCH: {self.killed}")
        return out


class Session:
    """A running session; :func:`run_session` creates it. Useful to tests and the CLI."""

    def __init__(self, opts: RunOptions, journal: Journal, session_id: str, clock: Clock,
                 out: Callable[[str], None]) -> None:
        self.opts = opts
        self.journal = journal
        self.id = session_id
        self.clock = clock
        self.out = out
        self.stop_event = trio.Event()
        self.killed: str | None = None
        self.sequencer: Sequencer | None = None
        self.executor: ExecutionManager | None = None
        self.feeds: MarketDataManager | None = None
        self.account: AccountStream | None = None
        self.state: State | None = None
        self._emit: Callable[[Input], Any] | None = None
        self._alerts: trio.MemorySendChannel[str] | None = None
        self.emitted = 0

    async def emit(self, item: Input) -> None:
        """Send a fact to the sequencer."""
        assert self._emit is not None
        await self._emit(item)

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until everything emitted so far is journaled and folded."""
        assert self.sequencer is not None
        target = self.emitted
        with trio.move_on_after(timeout_s):
            while self.sequencer.events_in < target:
                await trio.sleep(0.005)
            return True
        return False

    async def trip(self, reason: str) -> None:
        """Trip the kill switch (journaled; the core cancels all open orders)."""
        await self.emit(engine_input(KillSwitchTripped(reason, self.clock.time_ns())))

    def request_stop(self) -> None:
        """Ask the session to stop cleanly."""
        self.stop_event.set()

    def on_kill(self, reason: str) -> None:
        """Called by the core when the kill switch trips (once)."""
        self.killed = reason
        if self._alerts is not None:
            with contextlib.suppress(trio.WouldBlock):
                self._alerts.send_nowait(reason)
        if self.opts.exit_on_kill:
            self.stop_event.set()


async def _alert_task(session: Session, alerts: trio.MemoryReceiveChannel[str],
                      http: httpx.AsyncClient | None) -> None:
    opts = session.opts
    async with alerts:
        async for reason in alerts:
            session.out(f"!! KILL SWITCH TRIPPED: {reason}")
            if opts.alert_command:
                try:
                    await trio.run_process(
                        [*opts.alert_command.split(), reason], check=False,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                except OSError as exc:
                    session.out(f"!! alert command failed: {exc}")
            if opts.alert_webhook:
                try:
                    async with httpx.AsyncClient(timeout=5.0) as client:
                        await client.post(opts.alert_webhook, json={
                            "event": "kill_switch", "session": session.id, "reason": reason})
                except httpx.HTTPError as exc:
                    session.out(f"!! alert webhook failed: {exc}")


async def _timer(session: Session, name: str, every_s: float) -> None:
    while True:
        await trio.sleep(every_s)
        await session.emit(engine_input(TimerFired(name, session.clock.time_ns())))


def _status_line(session: Session, events_before: int, dt: float) -> str:
    assert session.sequencer is not None and session.state is not None
    view = session.state.view()
    stats = session.sequencer.statistics()
    rate = (stats["events_in"] - events_before) / dt if dt > 0 else 0.0
    positions = []
    for sym in session.opts.symbols:
        for pt in (PositionType.LONG, PositionType.SHORT):
            p = view.position(sym, pt)
            if p is not None and p.hold_vol:
                positions.append(f"{sym} {pt.name.lower()} {p.hold_vol}@{p.hold_avg_price}")
    bal = view.balance("USDT")
    feed = session.feeds.statistics() if session.feeds is not None else None
    ws = (f"ws {feed.connections} conn, {feed.reconnects} reconnects, {feed.frames} frames"
          if feed is not None else "ws -")
    health = "ok" if not session.killed else "KILLED"
    return (f"[{session.id[:8]}] {rate:7.1f} ev/s | open orders {len(view.open_orders())} | "
            f"pos {', '.join(positions) or 'flat'} | "
            f"equity {bal.equity if bal and bal.equity is not None else '-'} | "
            f"{ws} | {health}")


async def _status_task(session: Session) -> None:
    assert session.sequencer is not None
    every = session.opts.status_every_s
    before = session.sequencer.statistics()["events_in"]
    while True:
        await trio.sleep(every)
        session.out(_status_line(session, before, every))
        before = session.sequencer.statistics()["events_in"]


async def _signals(session: Session) -> None:
    if not hasattr(signal, "SIGUSR1"):
        return
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGUSR1) as signals:
        async for signum in signals:
            if signum == signal.SIGUSR1:
                await session.trip("operator request (SIGUSR1)")
            else:
                session.out("stopping (signal received): cancelling orders, flushing the journal")
                session.request_stop()


def _summary(session: Session, started: float) -> SessionSummary:
    assert session.state is not None
    view = session.state.view()
    orders = [o for o in view.orders() if o.external_oid and o.external_oid.startswith(
        f"tl{session.id[:12]}")]
    fills = sum(1 for _ in session.journal.read(session=session.id,
                                                 kind_prefix="ws.push.personal.order.deal"))
    realised = sum((p.realised for p in view.positions()), Decimal(0))
    bal = view.balance("USDT")
    info = session.journal.session(session.id)
    return SessionSummary(
        session=session.id, journal=str(session.journal.path), mode=session.opts.mode,
        events=info.events, orders=len(orders),
        filled_orders=sum(1 for o in orders if o.status is OrderStatus.FILLED),
        fills=fills, realised_pnl=realised,
        balance=(bal.equity if bal is not None and bal.equity is not None else
                 (bal.available + bal.frozen + bal.position_margin) if bal else None),
        killed=session.killed, duration_s=time.monotonic() - started,
    )


async def run_session(
    opts: RunOptions,
    open_venue: Callable[[Clock], AbstractAsyncContextManager[Venue]],
    *,
    clock: Clock | None = None,
    out: Callable[[str], None] | None = None,
    on_started: Callable[[Session], Any] | None = None,
    handle_signals: bool = False,
) -> SessionSummary:
    """Run one session to its end and return its summary."""
    started = time.monotonic()
    clock = clock or TrioClock(time.time_ns() - int(trio.current_time() * 1e9))
    out = out or (lambda line: print(line, file=sys.stderr, flush=True))
    strategy: Strategy | None = None
    strategy_cls = None
    config = None
    if opts.mode != "record":
        assert opts.strategy is not None
        strategy_cls = load_strategy_class(opts.strategy)
        config = make_config(strategy_cls, opts.strategy_config)
        strategy = strategy_cls()
    journal = Journal.open(opts.journal_path, synchronous=opts.synchronous)
    try:
        journal.checkpoint_in_background()  # no WAL checkpoint inside a commit
        state, folded, bad = rebuild_state(journal, interpret, decode_errors=(DecodeError,))
        if folded:
            out(f"folded {folded} journaled events of earlier sessions ({bad} unreadable)")
        meta = canonical_json({"symbols": list(opts.symbols), "engine": __version__,
                               "strategy_spec": opts.strategy,
                               "strategy_config": opts.strategy_config,
                               "risk": risk_to_meta(opts.risk)})
        sid = journal.start_session(
            started_ns=clock.time_ns(),
            strategy=getattr(strategy_cls, "name", None),
            strategy_version=getattr(strategy_cls, "version", None),
            config_hash=config_hash(opts.mode, opts.strategy, opts.strategy_config,
                                    opts.symbols, opts.risk),
            parser_version=PARSER_VERSION, mode=opts.mode,
            meta=meta)
        session = Session(opts, journal, sid, clock, out)
        session.state = state
        await _run(session, strategy, config, open_venue, on_started, handle_signals)
        return _summary(session, started)
    finally:
        journal.close()


async def _run(session: Session, strategy: Strategy | None, config: Any,
               open_venue: Callable[[Clock], AbstractAsyncContextManager[Venue]],
               on_started: Callable[[Session], Any] | None, handle_signals: bool) -> None:
    opts, clock = session.opts, session.clock
    assert session.state is not None
    inputs_send, inputs_recv = trio.open_memory_channel[Input](8192)
    # unbounded: the sequencer hands over commands without waiting (send_nowait) and they are
    # already journaled; the risk gate bounds how many placements can arrive
    cmd_send, cmd_recv = trio.open_memory_channel[tuple[int, Command]](math.inf)
    alerts_send, alerts_recv = trio.open_memory_channel[str](16)
    session._alerts = alerts_send

    async def emit(item: Input) -> None:
        session.emitted += 1
        await inputs_send.send(item)

    session._emit = emit

    def dispatch(seq: int, command: Command) -> None:
        cmd_send.send_nowait((seq, command))

    async with open_venue(clock) as venue, trio.open_nursery() as nursery:
        rest = MexcRestClient(venue.http, venue.mexc_config, venue.credentials, clock,
                              on_response=journaling_hook(emit))
        feeds = MarketDataManager(
            venue.ws_url, rest=rest, emit=emit, clock=clock, connect=venue.ws_connect,
            book_status=lambda sym: _book_status(session, sym))
        session.feeds = feeds
        core = Core(session.state, interpret, strategy=strategy, risk=RiskGate(opts.risk),
                    on_gap=feeds.request_repair, decode_errors=(DecodeError,),
                    on_kill=session.on_kill)
        sequencer = Sequencer(session.journal, session.id, core, dispatch,
                              on_fatal=lambda why: session.on_kill(why),
                              threaded_commits=opts.synchronous.upper() != "NORMAL")
        session.sequencer = sequencer
        executor = ExecutionManager(rest, emit, clock, on_burst=session.trip)
        session.executor = executor
        await nursery.start(sequencer.run, inputs_recv)
        executor_scope = trio.CancelScope()
        executor_done = trio.Event()

        async def run_executor(*, task_status: trio.TaskStatus[None]) -> None:
            with executor_scope:
                await executor.run(cmd_recv, task_status=task_status)
            executor_done.set()

        await nursery.start(run_executor)
        nursery.start_soon(_alert_task, session, alerts_recv, None)
        # the strategy starts before the first event reaches it (replay does the same)
        ctx = StrategyContext.create(session.id, config, opts.symbols)
        if strategy is not None:
            strategy.on_start(ctx)
        else:
            for sym in opts.symbols:
                for channel in ("depth", "deal", "ticker"):
                    ctx.subscribe(channel, sym)
        await emit(engine_input(SessionStarted(opts.mode, opts.strategy or "", canonical_json({
            "venue": venue.description, "symbols": list(opts.symbols)}), clock.time_ns())))

        async with trio.open_nursery() as feeds_nursery:
            try:
                await rest.contract_detail()  # capability probe; the answer is journaled
            except MexcError as exc:
                session.out(f"contract detail unavailable: {exc}")
            await session.flush()
            _probe(session, strategy is not None)
            for sub in ctx.subscriptions:
                feeds.subscribe(sub.channel, sub.symbol, **dict(sub.params))
            await feeds_nursery.start(feeds.run)
            if venue.credentials is not None and opts.mode in ("sim", "live", "shadow"):
                account = AccountStream(
                    venue.ws_url, rest=rest, emit=emit, clock=clock,
                    credentials=venue.credentials, state_view=session.state.view(),
                    connect=venue.ws_connect, stale_after_s=opts.stale_account_s,
                    on_stale=lambda why: feeds_nursery.start_soon(
                        session.trip, f"stale account stream: {why}"))
                session.account = account
                await feeds_nursery.start(account.run)
            for timer in ctx.timers:
                feeds_nursery.start_soon(_timer, session, timer.name, timer.every_s)
            if opts.status_every_s > 0:
                feeds_nursery.start_soon(_status_task, session)
            if handle_signals:
                feeds_nursery.start_soon(_signals, session)
            if on_started is not None:
                on_started(session)
            with trio.move_on_after(opts.duration_s if opts.duration_s else float("inf")):
                await session.stop_event.wait()
            await _stop(session, dispatch_done=lambda: executor.in_flight == 0)
            feeds_nursery.cancel_scope.cancel()
        # executions still in flight (e.g. a cancel-all retrying) get a bounded grace period,
        # then are cancelled: nothing may emit after the input channel closes
        await cmd_send.aclose()
        with trio.move_on_after(opts.stop_timeout_s):
            await executor_done.wait()
        abandoned = executor.abandon()
        executor_scope.cancel()
        await executor_done.wait()
        if abandoned:
            session.out(f"stop: {len(abandoned)} request(s) still in flight abandoned; the "
                        "next start reconciles them")
        # a placement cut short before any answer may or may not be at the exchange: say so
        # in the journal (as a crash would leave it, the next start settles it by query)
        for command, cause, answered in abandoned:
            if isinstance(command, PlaceOrder) and not answered:
                await emit(engine_input(OrderOutcomeUnknown(
                    command.external_oid, "abandoned at stop: no answer within the stop "
                    "timeout (settled by the next start)", clock.time_ns()),
                    stream=command.external_oid, cause=cause))
        await emit(engine_input(SessionEnded(
            f"kill switch: {session.killed}" if session.killed else "stopped",
            clock.time_ns())))
        await inputs_send.aclose()
        await alerts_send.aclose()


def _book_status(session: Session, symbol: str) -> tuple[bool, int]:
    assert session.state is not None
    book = session.state.view().book(symbol)
    return (book.synced, book.version) if book is not None else (False, -1)


def _probe(session: Session, trading: bool) -> None:
    """Say plainly when order placement is unavailable for a symbol."""
    assert session.state is not None
    view = session.state.view()
    for sym in session.opts.symbols:
        c = view.contract(sym)
        if c is None:
            session.out(f"warning: {sym} is not listed by the exchange")
        elif trading and (not c.api_allowed or c.state != 0):
            session.out(
                f"warning: order placement unavailable for {sym} (apiAllowed={c.api_allowed}, "
                f"state={c.state}); orders will be refused — consider --mode shadow")


async def _stop(session: Session, dispatch_done: Callable[[], bool]) -> None:
    """Journal StopRequested (the core runs on_stop and the optional cancel-all), then wait,
    bounded, for the executions in flight.

    A placement that was in flight when the cancel-all ran can still land afterwards; so
    after the executions finish and the account is reconciled, open orders that remain are
    cancelled by another journaled StopRequested (bounded rounds), keeping replay exact."""
    reason = f"kill switch: {session.killed}" if session.killed else "stop requested"
    await session.emit(engine_input(StopRequested(
        reason, session.opts.cancel_on_stop, session.clock.time_ns())))
    with trio.move_on_after(session.opts.stop_timeout_s):
        for _round in range(3):
            await trio.sleep(0.05)
            while not dispatch_done():
                await trio.sleep(0.05)
            # the last pushes may not arrive before the feeds close: settle every order the
            # journal still thinks open by asking the exchange, so no final fill is lost
            if session.account is not None:
                await session.flush()
                await session.account.reconcile("session stop")
            await session.flush()
            if not session.opts.cancel_on_stop or not _still_open(session):
                return
            await session.emit(engine_input(StopRequested(
                "orders opened after the cancel-all", True, session.clock.time_ns())))


def _still_open(session: Session) -> bool:
    assert session.state is not None
    return any(o.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED,
                            OrderStatus.ACCEPTED, OrderStatus.SENT)
               for o in session.state.view().open_orders())


def json_summary(summary: SessionSummary) -> str:
    """The summary as JSON (for scripts)."""
    return orjson.dumps({
        "session": summary.session, "journal": summary.journal, "mode": summary.mode,
        "events": summary.events, "orders": summary.orders,
        "filled_orders": summary.filled_orders, "fills": summary.fills,
        "realised_pnl": str(summary.realised_pnl),
        "balance": None if summary.balance is None else str(summary.balance),
        "killed": summary.killed, "duration_s": round(summary.duration_s, 3),
    }).decode()
