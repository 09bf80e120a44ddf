"""Backtests: recorded market data drives a strategy; fills come from the simulator's
matching engine in virtual time (shell: reads one journal, writes another).

Theory of operation
-------------------
:func:`run_backtest` reads the market data of a recorded session (public ``ws.push.*``
frames, public REST answers such as ``depth`` snapshots, and the feed's own engine events:
gaps, resyncs, connects) and plays it, in recorded time order, into a new session of
``out`` (mode ``backtest``) through the live pipeline pieces: a
:class:`~engine.core.Core` with the strategy and the default risk gate, and the
:class:`~engine.sequencer.Sequencer`, which journals every input, then the decisions it
caused. Time is virtual: every row keeps its recorded ``ts_ns``, and the strategy's timers
tick on that clock.

The venue is the simulator's pure exchange core. A liquidity participant mirrors the top
levels of the recorded book (:class:`~adapters.mexc.sim.virtual_venue.BookMirror`) and, optionally,
replays recorded deals as IOC orders, so strategy orders trade against recorded liquidity.
An accepted command reaches the exchange ``latency_ms`` after the decision; its REST answer
and the private pushes it caused arrive ``latency_ms`` later, journaled as the live adapter
journals them (``rest.*`` rows of a ``RawResponse``, ``ws.push.personal.*`` frames). So a
backtest session is an ordinary recorded session: :func:`engine.replay.replay_session`
verifies it like any other.

Limits: the strategy's own orders do not move the recorded market (no market impact);
queue position is approximated by the exchange's price-time priority among mirrored
orders, which are re-placed whenever their level changes size; only the top ``depth_levels``
levels are mirrored; funding is settled only when the exchange is ticked (once a virtual
minute); plan, stop and trigger orders are not simulated.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
from attrs import evolve, frozen

from adapters.mexc.codecs import PARSER_VERSION
from adapters.mexc.endpoints import ENDPOINTS
from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret, rest_row, ws_row
from adapters.mexc.sim.contracts import Contract, default_contracts
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.virtual_venue import BookMirror, SimVenue, contract_from_info
from engine import __version__
from engine.commands import Command
from engine.core import Core
from engine.errors import EngineError, PluginError
from engine.events import (
    Event,
    NewEvent,
    SessionEnded,
    SessionStarted,
    StopRequested,
    TimerFired,
    canonical_json,
)
from engine.journal import Journal
from engine.model import ContractInfo, FairPrice, Fill, IndexPrice
from engine.rebuild import rebuild_state
from engine.replay import config_hash
from engine.risk import RiskGate, RiskLimits
from engine.sequencer import Input, Sequencer, engine_input
from engine.strategy import StrategyContext, load_strategy_class, make_config

__all__ = ["BacktestError", "BacktestResult", "run_backtest"]

_MARKET_ENGINE_KINDS: Final = frozenset({
    "engine.book_gap", "engine.book_resync", "engine.connected", "engine.disconnected"})
_TICK_EVERY_NS: Final = 60_000_000_000
_DRAIN_LIMIT: Final = 100_000
_USER: Final = "backtest"
_ZERO: Final = Decimal(0)


class BacktestError(EngineError):
    """A backtest cannot run (no market data, bad strategy or options)."""


@frozen
class BacktestResult:
    """What a backtest did."""

    session: str
    journal: str
    source_session: str
    strategy: str
    market_events: int
    inputs: int
    orders: int
    denied: int
    fills: int
    fees: Decimal
    realised_pnl: Decimal
    start_balance: Decimal
    end_equity: Decimal | None
    elapsed_s: float

    def lines(self) -> list[str]:
        """A short human report."""
        eq = "-" if self.end_equity is None else f"{self.end_equity} USDT"
        return [
            f"backtest {self.session} of {self.strategy} over session {self.source_session}"
            f" — {self.elapsed_s:.1f} s",
            f"  market events: {self.market_events}, inputs journaled: {self.inputs}",
            f"  orders: {self.orders} ({self.denied} denied by risk), fills: {self.fills}",
            f"  realised PnL: {self.realised_pnl} USDT, fees: {self.fees} USDT",
            f"  balance: {self.start_balance} USDT -> equity {eq}",
            f"  journal: {self.journal} (replay it: tapeline replay {self.journal} "
            f"--session {self.session[:8]})",
        ]


def _is_market(ev: Event) -> bool:
    if ev.source == "ws":
        return ev.kind.startswith("ws.push.") and not ev.kind.startswith("ws.push.personal.")
    if ev.source == "rest":
        ep = ENDPOINTS.get(ev.kind[5:])
        return ep is not None and not ep.private and ep.name != "detail"
    return ev.kind in _MARKET_ENGINE_KINDS


def _contracts(source: Journal, session: str, maker_fee: Decimal | None,
               taker_fee: Decimal | None) -> list[Contract]:
    found: dict[str, Contract] = dict(default_contracts())
    for ev in source.read(session=session, kinds=["rest.detail"]):
        try:
            values = interpret(ev)
        except DecodeError:
            continue
        for v in values:
            if isinstance(v, ContractInfo):
                found[v.symbol] = contract_from_info(v)
    out = []
    for c in found.values():
        if maker_fee is not None:
            c = evolve(c, maker_fee_rate=maker_fee)
        if taker_fee is not None:
            c = evolve(c, taker_fee_rate=taker_fee)
        out.append(c)
    return out


class _Interpret:
    """The adapter's ``interpret``, answering from values already decoded for the mirror."""

    def __init__(self) -> None:
        self.body: str | None = None
        self.values: Sequence[Any] = ()

    def preset(self, body: str, values: Sequence[Any]) -> None:
        self.body, self.values = body, values

    def __call__(self, ev: Event) -> Sequence[Any]:
        if ev.body is self.body:
            self.body = None
            return self.values
        return interpret(ev)


class _Backtest:
    """One run: the event queue in virtual time, the venue, the pipeline."""

    def __init__(self, out: Journal, session: str, core: Core, venue: SimVenue,
                 mirror: BookMirror, interp: _Interpret, latency_ns: int) -> None:
        self.out, self.session, self.core = out, session, core
        self.venue, self.mirror, self.interp = venue, mirror, interp
        self.latency_ns = latency_ns
        self.queue: list[tuple[int, int, str, Any]] = []
        self._n = 0
        self.dispatched: list[tuple[int, Command]] = []
        self.sequencer = Sequencer(out, session, core,
                                   lambda seq, cmd: self.dispatched.append((seq, cmd)))
        self.now_ns = 0
        self.timer_until_ns = 0

    def schedule(self, at_ns: int, what: str, payload: Any) -> None:
        self._n += 1
        heapq.heappush(self.queue, (at_ns, self._n, what, payload))

    def feed(self, item: Input, ts_ns: int) -> None:
        """Journal one input; schedule the execution of the commands it caused."""
        self.sequencer.process([item])
        for cause, cmd in self.dispatched:
            self.schedule(ts_ns + self.latency_ns, "execute", (cause, cmd, ts_ns))
        self.dispatched.clear()

    def deliver(self, frames: Sequence[str], at_ns: int) -> None:
        for text in frames:
            self.schedule(at_ns, "input", Input(ws_row(text, at_ns)))

    def market(self, ev: Event) -> None:
        """A recorded market row: move the mirrored exchange, then show it to the strategy."""
        try:
            values: Sequence[Any] = interpret(ev)
        except DecodeError:
            values = ()
        now_ms = ev.ts_ns // 1_000_000
        ex = self.venue.exchange
        for v in values:
            if isinstance(v, FairPrice) and ex.contract(v.symbol) is not None:
                ex.set_fair_price(v.symbol, v.price, now_ms)
            elif isinstance(v, IndexPrice) and ex.contract(v.symbol) is not None:
                ex.set_index_price(v.symbol, v.price, now_ms)
            else:
                self.mirror.on_value(v, now_ms)
        self.deliver(self.venue.drain(), ev.ts_ns + self.latency_ns)
        row = NewEvent(ts_ns=ev.ts_ns, source=ev.source, kind=ev.kind,  # type: ignore[arg-type]
                       body=ev.body, venue_ts_ms=ev.venue_ts_ms, stream=ev.stream)
        self.interp.preset(ev.body, values)
        self.feed(Input(row), ev.ts_ns)

    def scheduled(self, at_ns: int, what: str, payload: Any) -> None:
        if what == "input":
            self.feed(payload, at_ns)
        elif what == "execute":
            cause, cmd, decided_ns = payload
            raw, frames = self.venue.execute(cmd, decided_ns, at_ns, at_ns + self.latency_ns)
            stream = getattr(cmd, "external_oid", None) or getattr(cmd, "symbol", None)
            self.schedule(at_ns + self.latency_ns, "input",
                          Input(rest_row(raw, stream=stream, cause=cause)))
            self.deliver(frames, at_ns + self.latency_ns)
        elif what == "timer":
            name, every_ns = payload
            self.feed(engine_input(TimerFired(name, at_ns)), at_ns)
            if at_ns + every_ns <= self.timer_until_ns:
                self.schedule(at_ns + every_ns, "timer", payload)
        elif what == "tick":
            self.venue.exchange.tick(at_ns // 1_000_000)
            self.deliver(self.venue.drain(), at_ns + self.latency_ns)
            if at_ns + _TICK_EVERY_NS <= self.timer_until_ns:
                self.schedule(at_ns + _TICK_EVERY_NS, "tick", None)

    def run(self, rows: Iterator[Event], progress: Callable[[int], None] | None) -> int:
        """Merge recorded rows and scheduled events in time order; return market rows played."""
        n = 0
        nxt = next(rows, None)
        while nxt is not None or self.queue:
            if nxt is not None and (not self.queue or nxt.ts_ns <= self.queue[0][0]):
                self.now_ns = max(self.now_ns, nxt.ts_ns)
                self.market(nxt)
                n += 1
                if progress is not None and n % 10_000 == 0:
                    progress(n)
                nxt = next(rows, None)
                continue
            at, _, what, payload = heapq.heappop(self.queue)
            self.now_ns = max(self.now_ns, at)
            self.scheduled(self.now_ns, what, payload)
        return n

    def drain(self) -> None:
        """Run what is scheduled (answers to the stop's commands), boundedly."""
        for _ in range(_DRAIN_LIMIT):
            if not self.queue:
                return
            at, _, what, payload = heapq.heappop(self.queue)
            if what in ("timer", "tick"):
                continue
            self.now_ns = max(self.now_ns, at)
            self.scheduled(self.now_ns, what, payload)


def _span(source: Journal, session: str) -> tuple[int, int]:
    first = last = None
    for ev in source.read(session=session):
        if _is_market(ev):
            first = ev.ts_ns
            break
    info = source.session(session)
    if info.last_seq is not None:
        for ev in source.read(session=session, from_seq=info.last_seq):
            last = ev.ts_ns
    if first is None or last is None:
        raise BacktestError(f"session {session} holds no market data to backtest on")
    return first, max(first, last)


def run_backtest(
    source: Journal,
    session_id: str,
    strategy_spec: str,
    strategy_config: Mapping[str, Any] | None,
    out: Journal,
    *,
    latency_ms: float = 10.0,
    maker_fee: Decimal | None = None,
    taker_fee: Decimal | None = None,
    balance: Decimal = Decimal("10000"),
    depth_levels: int = 20,
    fills_from_deals: bool = True,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Backtest ``strategy_spec`` over the market data of ``session_id``; write a new
    session (mode ``backtest``) into ``out`` and return its summary."""
    t0 = time.perf_counter()
    if latency_ms < 0 or depth_levels < 1 or balance <= 0:
        raise BacktestError("latency must be >= 0, depth levels >= 1 and the balance positive")
    info = source.session(session_id)
    try:
        cls = load_strategy_class(strategy_spec)
        config_values = dict(strategy_config or {})
        config = make_config(cls, config_values)
    except PluginError as exc:
        raise BacktestError(str(exc)) from exc
    meta = _meta(info.meta)
    start_ns, end_ns = _span(source, info.id)
    contracts = _contracts(source, info.id, maker_fee, taker_fee)
    symbols = tuple(meta.get("symbols") or ()) or tuple(c.symbol for c in contracts[:1])
    exchange = Exchange(start_ns // 1_000_000, contracts)
    exchange.deposit(_USER, balance, start_ns // 1_000_000)
    venue = SimVenue(exchange, _USER)
    mirror = BookMirror(venue, levels=depth_levels, deals=fills_from_deals)
    options = {"source": str(source.path), "source_session": info.id,
               "latency_ms": latency_ms, "maker_fee": maker_fee, "taker_fee": taker_fee,
               "balance": balance, "depth_levels": depth_levels,
               "fills_from_deals": fills_from_deals}
    sid = out.start_session(
        started_ns=start_ns, strategy=getattr(cls, "name", None),
        strategy_version=getattr(cls, "version", None),
        config_hash=config_hash("backtest", strategy_spec, config_values, symbols, RiskLimits()),
        parser_version=PARSER_VERSION, mode="backtest",
        meta=canonical_json({"symbols": list(symbols), "engine": __version__,
                             "strategy_spec": strategy_spec,
                             "strategy_config": config_values, "backtest": options}))
    state, _, _ = rebuild_state(out, interpret, decode_errors=(DecodeError,))
    interp = _Interpret()
    strategy = cls()
    core = Core(state, interp, strategy=strategy, risk=RiskGate(RiskLimits()),
                decode_errors=(DecodeError,))
    bt = _Backtest(out, sid, core, venue, mirror, interp, int(latency_ms * 1_000_000))
    bt.timer_until_ns = end_ns
    ctx = StrategyContext.create(sid, config, symbols)
    strategy.on_start(ctx)
    bt.feed(engine_input(SessionStarted("backtest", strategy_spec,
                                        canonical_json({"venue": "simulator (backtest)",
                                                        "symbols": list(symbols)}),
                                        start_ns)), start_ns)
    bt.feed(Input(rest_row(venue.contract_detail(start_ns, start_ns))), start_ns)
    bt.deliver(venue.drain(), start_ns)
    for timer in ctx.timers:
        every = max(1, int(timer.every_s * 1e9))
        bt.schedule(start_ns + every, "timer", (timer.name, every))
    bt.schedule(start_ns + _TICK_EVERY_NS, "tick", None)
    rows = (ev for ev in source.read(session=info.id) if _is_market(ev))
    market_events = bt.run(rows, progress)
    stop_ns = max(bt.now_ns, end_ns)
    bt.feed(engine_input(StopRequested("backtest finished", True, stop_ns)), stop_ns)
    bt.drain()
    bt.feed(engine_input(SessionEnded("backtest finished", max(bt.now_ns, stop_ns))),
            max(bt.now_ns, stop_ns))
    return _result(out, sid, info.id, strategy_spec, market_events, bt, balance, t0)


def _meta(text: str) -> dict[str, Any]:
    try:
        data = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _result(out: Journal, sid: str, source_session: str, spec: str, market_events: int,
            bt: _Backtest, balance: Decimal, t0: float) -> BacktestResult:
    fills = 0
    fees = pnl = _ZERO
    seen: set[tuple[str, str]] = set()
    for ev in out.read(session=sid, kinds=["ws.push.personal.order.deal"]):
        for v in interpret(ev):
            if isinstance(v, Fill) and (v.order_id, v.fill_id) not in seen:
                seen.add((v.order_id, v.fill_id))
                fills += 1
                fees += v.fee
                pnl += v.profit
    orders = sum(1 for _ in out.read(session=sid, kinds=["cmd.place_order"]))
    denied = sum(1 for ev in out.read(session=sid, kinds=["risk.denied"])
                 if ev.stream is not None and ev.stream.startswith("tl"))
    bal = bt.core.view.balance("USDT")
    equity = None
    if bal is not None:
        equity = bal.equity if bal.equity is not None else (
            bal.available + bal.frozen + bal.position_margin)
    return BacktestResult(
        session=sid, journal=str(out.path), source_session=source_session, strategy=spec,
        market_events=market_events, inputs=bt.sequencer.events_in, orders=orders,
        denied=denied, fills=fills, fees=fees, realised_pnl=pnl, start_balance=balance,
        end_equity=equity, elapsed_s=time.perf_counter() - t0)
