"""Record sessions for tests without a network: the live pipeline pieces, driven directly.

:class:`Recorder` opens a journal, records a session the way :mod:`engine.runtime` does
(the ``sessions`` row with strategy, versions, config hash and meta), builds the real
:class:`~engine.core.Core` and :class:`~engine.sequencer.Sequencer`, and feeds it
:class:`~engine.sequencer.Input` items: wire-format WebSocket frames (``ws_row``), REST answers
(``rest_row`` of a :class:`~adapters.mexc.rest_call.RawResponse`) and engine events
(``engine_input``). A tiny scripted venue answers the commands the sequencer dispatches
(placements are acknowledged and rest; deals at or through a resting price fill it).

:func:`record_session` is the one-call version: "record a session with strategy X over a
scripted market" of ``steps`` market events from a seeded random walk.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from attrs import define

from adapters.mexc.bodies import (
    cancel_all_body,
    cancel_orders_body,
    cancel_with_external_body,
    json_bytes,
    place_order_body,
)
from adapters.mexc.codecs import PARSER_VERSION
from adapters.mexc.config import Generation
from adapters.mexc.endpoints import ENDPOINTS
from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret, rest_row, ws_row
from adapters.mexc.rest_call import RawResponse
from adapters.mexc.sim.contracts import BTC_USDT
from adapters.mexc.sim.wire import dumps, ok_envelope
from engine import __version__
from engine.commands import CancelAll, CancelByExternalOid, CancelOrder, Command, PlaceOrder
from engine.core import Core
from engine.events import SessionEnded, SessionStarted, StopRequested, TimerFired, canonical_json
from engine.journal import Journal
from engine.model import OrderState, PositionType
from engine.rebuild import rebuild_state
from engine.replay import config_hash
from engine.risk import RiskGate, RiskLimits
from engine.sequencer import Input, Sequencer, engine_input
from engine.strategy import StrategyContext, load_strategy_class, make_config

T0_NS = 1_767_225_600_000_000_000
"""2026-01-01 00:00:00 UTC, the first event's time."""
SYMBOL = "BTC_USDT"
TICK = Decimal("0.1")
LATENCY_NS = 5_000_000
NONDET_SPEC = str(Path(__file__).resolve().parent / "nondet_strategy.py") + ":WallClockMaker"
"""A market maker that reads the wall clock in ``on_event`` (deliberately non-deterministic)."""


def _raw(endpoint: str, body_text: str, sent_ns: int, *, path_params: Mapping[str, str] = {},
         query: str = "", request: Any = None, status: int = 200) -> RawResponse:
    ep = ENDPOINTS[endpoint]
    return RawResponse(
        endpoint=endpoint, method=ep.method, path=ep.path(**path_params), query=query,
        request_body=json_bytes(request).decode() if request is not None else None,
        status=status, headers=(("content-type", "application/json"),), body_text=body_text,
        sent_ns=sent_ns, received_ns=sent_ns + LATENCY_NS)


def frame(channel: str, data: Any, ts_ms: int, symbol: str | None = SYMBOL) -> str:
    """A WS push frame as MEXC sends it."""
    out: dict[str, Any] = {"channel": channel, "data": data}
    if symbol is not None:
        out["symbol"] = symbol
    out["ts"] = ts_ms
    return dumps(out)


@define
class _Order:
    order_id: str
    command: PlaceOrder
    state: OrderState = OrderState.OPEN
    filled: Decimal = Decimal(0)
    version: int = 1


class Recorder:
    """One recorded session: feed inputs, get the commands the engine dispatched."""

    def __init__(self, journal: Journal, strategy_spec: str | None = "market-maker",
                 strategy_config: Mapping[str, Any] | None = None, *,
                 symbols: Sequence[str] = (SYMBOL,), mode: str = "sim",
                 t0_ns: int = T0_NS, risk: RiskLimits | None = None,
                 session_id: str | None = None) -> None:
        self.journal = journal
        self.now_ns = t0_ns
        config_values = dict(strategy_config or {})
        strategy = config = cls = None
        if strategy_spec is not None:
            cls = load_strategy_class(strategy_spec)
            config = make_config(cls, config_values)
            strategy = cls()
        limits = risk or RiskLimits()
        state, _, _ = rebuild_state(journal, interpret, decode_errors=(DecodeError,))
        meta = canonical_json({"symbols": list(symbols), "engine": __version__,
                               "strategy_spec": strategy_spec,
                               "strategy_config": config_values})
        self.session = journal.start_session(
            started_ns=t0_ns, strategy=getattr(cls, "name", None),
            strategy_version=getattr(cls, "version", None),
            config_hash=config_hash(mode, strategy_spec, config_values, symbols, limits),
            parser_version=PARSER_VERSION, mode=mode, meta=meta, session_id=session_id)
        self.core = Core(state, interpret, strategy=strategy, risk=RiskGate(limits),
                         decode_errors=(DecodeError,))
        self.dispatched: list[tuple[int, Command]] = []
        self.sequencer = Sequencer(journal, self.session, self.core,
                                   lambda seq, cmd: self.dispatched.append((seq, cmd)))
        if strategy is not None:
            strategy.on_start(StrategyContext.create(self.session, config, symbols))
        self.orders: dict[str, _Order] = {}
        self.position: dict[PositionType, Decimal] = {PositionType.LONG: Decimal(0),
                                                      PositionType.SHORT: Decimal(0)}
        self._next_order = 9_000_000
        self.feed(engine_input(SessionStarted(mode, strategy_spec or "", "{}", self.now_ns)))

    # ------------------------------------------------------------------ feeding

    @property
    def now_ms(self) -> int:
        """The recorder's clock in ms."""
        return self.now_ns // 1_000_000

    def advance(self, ms: int) -> None:
        """Move the clock on."""
        self.now_ns += ms * 1_000_000

    def feed(self, *items: Input) -> list[tuple[int, Command]]:
        """Journal ``items`` as one sequencer batch; return the commands dispatched."""
        before = len(self.dispatched)
        self.sequencer.process(list(items))
        return self.dispatched[before:]

    def ws(self, channel: str, data: Any, *, symbol: str | None = SYMBOL) -> Input:
        """A received WS frame as an input."""
        return Input(ws_row(frame(channel, data, self.now_ms, symbol), self.now_ns))

    def rest(self, endpoint: str, body_text: str, **kwargs: Any) -> Input:
        """A REST answer (sent now, received after the latency) as an input."""
        stream = kwargs.pop("stream", None)
        cause = kwargs.pop("cause", None)
        return Input(rest_row(_raw(endpoint, body_text, self.now_ns, **kwargs),
                              stream=stream, cause=cause))

    # ------------------------------------------------------------------ market data

    def contract_detail(self) -> Input:
        """``contract/detail`` answered with the simulator's BTC_USDT contract."""
        return self.rest("detail", ok_envelope([BTC_USDT.wire()]))

    def depth_snapshot(self, bids: Iterable[tuple[Decimal, int]],
                       asks: Iterable[tuple[Decimal, int]], version: int) -> Input:
        """A REST ``depth`` answer (the book snapshot)."""
        data = {"asks": [[p, v, 1] for p, v in asks], "bids": [[p, v, 1] for p, v in bids],
                "version": version, "timestamp": self.now_ms}
        return self.rest("depth", ok_envelope(data), path_params={"symbol": SYMBOL})

    def depth_delta(self, version: int, bids: Iterable[tuple[Decimal, int]] = (),
                    asks: Iterable[tuple[Decimal, int]] = ()) -> Input:
        """A ``push.depth`` frame (absolute quantities, 0 deletes)."""
        return self.ws("push.depth", {"asks": [[p, v, 1 if v else 0] for p, v in asks],
                                      "bids": [[p, v, 1 if v else 0] for p, v in bids],
                                      "version": version})

    def deal(self, price: Decimal, vol: int, taker_buys: bool) -> Input:
        """A ``push.deal`` frame (one trade)."""
        return self.ws("push.deal", [{"p": price, "v": vol, "T": 1 if taker_buys else 2,
                                      "O": 3, "M": 2, "t": self.now_ms}])

    def ticker(self, last: Decimal, bid: Decimal, ask: Decimal) -> Input:
        """A ``push.ticker`` frame."""
        return self.ws("push.ticker", {"symbol": SYMBOL, "lastPrice": last, "bid1": bid,
                                       "ask1": ask, "fairPrice": last, "indexPrice": last,
                                       "fundingRate": Decimal("0.0001"), "holdVol": 1000,
                                       "volume24": 50000, "timestamp": self.now_ms})

    def timer(self, name: str = "quote") -> Input:
        """A journaled timer tick."""
        return engine_input(TimerFired(name, self.now_ns))

    def stop(self, cancel_all: bool = True) -> Input:
        """The session's stop request."""
        return engine_input(StopRequested("stop requested", cancel_all, self.now_ns))

    def ended(self) -> Input:
        """The session's last row."""
        return engine_input(SessionEnded("stopped", self.now_ns))

    # ------------------------------------------------------------------ the scripted venue

    def asset(self, available: Decimal = Decimal("10000")) -> Input:
        """A ``push.personal.asset`` frame."""
        return self.ws("push.personal.asset", {
            "currency": "USDT", "availableBalance": available, "frozenBalance": 0,
            "positionMargin": 0, "cashBalance": available, "equity": available},
            symbol=None)

    def _order_push(self, o: _Order) -> Input:
        c = o.command
        o.version += 1
        return self.ws("push.personal.order", {
            "orderId": o.order_id, "symbol": c.symbol, "side": int(c.side),
            "orderType": int(c.order_type), "openType": int(c.open_type), "price": c.price,
            "vol": c.vol, "dealVol": o.filled, "dealAvgPrice": c.price if o.filled else 0,
            "state": int(o.state), "externalOid": c.external_oid, "errorCode": 0,
            "leverage": c.leverage or 0, "positionId": 0, "takerFee": 0, "makerFee": 0,
            "profit": 0, "feeCurrency": "USDT", "createTime": self.now_ms,
            "updateTime": self.now_ms, "version": o.version, "category": 1}, symbol=None)

    def answer(self, commands: Iterable[tuple[int, Command]]) -> list[Input]:
        """The venue's answers (REST rows and order pushes) to dispatched commands."""
        out: list[Input] = []
        for cause, cmd in commands:
            if isinstance(cmd, PlaceOrder):
                self._next_order += 1
                o = _Order(str(self._next_order), cmd)
                self.orders[cmd.external_oid] = o
                out.append(self.rest("order_create", ok_envelope(
                    {"orderId": o.order_id, "ts": self.now_ms}), request=place_order_body(cmd),
                    stream=cmd.external_oid, cause=cause))
                out.append(self._order_push(o))
            elif isinstance(cmd, CancelByExternalOid):
                known = self.orders.get(cmd.external_oid)
                ok = known is not None and known.state is OrderState.OPEN
                out.append(self.rest("order_cancel_with_external", ok_envelope([{
                    "orderId": known.order_id if known else "0", "errorCode": 0 if ok else 2041,
                    "errorMsg": "success" if ok else "order state cannot be cancelled"}]),
                    request=cancel_with_external_body(cmd.symbol, cmd.external_oid,
                                                      Generation.NEW),
                    stream=cmd.external_oid, cause=cause))
                if ok and known is not None:
                    known.state = OrderState.CANCELLED
                    out.append(self._order_push(known))
            elif isinstance(cmd, CancelAll):
                out.append(self.rest("order_cancel_all", ok_envelope(),
                                     request=cancel_all_body(cmd.symbol, Generation.NEW),
                                     stream=cmd.symbol, cause=cause))
                for o in self.orders.values():
                    if o.state is OrderState.OPEN:
                        o.state = OrderState.CANCELLED
                        out.append(self._order_push(o))
            elif isinstance(cmd, CancelOrder):
                out.append(self.rest("order_cancel", ok_envelope([]),
                                     request=cancel_orders_body([cmd.order_id]), cause=cause))
        return out

    def fill(self, o: _Order) -> list[Input]:
        """Fill a resting order completely: the deal, the order, the position pushes."""
        c = o.command
        assert c.price is not None
        o.filled, o.state = c.vol, OrderState.FILLED
        kind = c.side.position_type
        self.position[kind] += c.vol if c.side.opens else -c.vol
        fill = self.ws("push.personal.order.deal", {
            "id": f"f{o.order_id}", "orderId": o.order_id, "symbol": c.symbol,
            "side": int(c.side), "vol": c.vol, "price": c.price, "fee": Decimal("0.001"),
            "feeCurrency": "USDT", "profit": 0, "isTaker": False, "category": 1,
            "timestamp": self.now_ms, "externalOid": c.external_oid}, symbol=None)
        hold = self.position[kind]
        position = self.ws("push.personal.position", {
            "positionId": 1 if kind is PositionType.LONG else 2, "symbol": c.symbol,
            "positionType": int(kind), "openType": int(c.open_type), "state": 1 if hold else 3,
            "holdVol": hold, "holdAvgPrice": c.price, "openAvgPrice": c.price,
            "leverage": c.leverage or 10, "updateTime": self.now_ms}, symbol=None)
        return [fill, self._order_push(o), position]

    def fills_for_deal(self, price: Decimal, taker_buys: bool) -> list[Input]:
        """Fill every resting order a deal at ``price`` reached."""
        out: list[Input] = []
        for o in list(self.orders.values()):
            p = o.command.price
            if o.state is not OrderState.OPEN or p is None:
                continue
            is_buy = o.command.side.is_buy
            if (is_buy and not taker_buys and p >= price) or (
                    not is_buy and taker_buys and p <= price):
                out += self.fill(o)
        return out


@define
class Recording:
    """What :func:`record_session` produced."""

    path: Path
    session: str
    inputs: int
    commands: int
    fills: int


def record_session(path: Path, strategy_spec: str | None = "market-maker",
                   strategy_config: Mapping[str, Any] | None = None, *, steps: int = 200,
                   seed: int = 1, stop: bool = True, session_id: str | None = None,
                   risk: RiskLimits | None = None) -> Recording:
    """Record a session of ``strategy_spec`` over ``steps`` scripted market events.

    The market: contract detail, a funded account, a 10-level book snapshot, then a random
    walk of depth deltas, deals and tickers every 100 ms, a ``quote`` timer every 2 s, the
    venue's answers 5 ms after each command, and (with ``stop``) a stop with cancel-all.
    Some inputs share a sequencer batch, so decisions follow later inputs, as live.
    """
    rng = random.Random(seed)
    with Journal.open(path, synchronous="NORMAL") as journal:
        rec = Recorder(journal, strategy_spec, strategy_config, session_id=session_id,
                       risk=risk)
        pending: list[tuple[int, Command]] = []
        n_commands = n_fills = 0

        def feed(*items: Input) -> None:
            nonlocal n_commands
            got = rec.feed(*items)
            pending.extend(got)
            n_commands += len(got)

        mid = 1_000_000  # in ticks: 100000.0
        version = 5_000
        feed(rec.contract_detail(), rec.asset())
        book = {True: {mid - i: 10 + i for i in range(1, 11)},
                False: {mid + i: 10 + i for i in range(1, 11)}}
        feed(rec.depth_snapshot(((TICK * p, v) for p, v in sorted(book[True].items())[::-1]),
                                ((TICK * p, v) for p, v in sorted(book[False].items())),
                                version))
        for step in range(steps):
            rec.advance(100)
            if pending:
                answers = rec.answer(pending)
                pending.clear()
                rec.advance(5)
                feed(*answers)
            move = rng.choice((-1, 0, 0, 1))
            mid += move
            version += 1
            new = {True: {mid - i: rng.randint(5, 50) for i in range(1, 11)},
                   False: {mid + i: rng.randint(5, 50) for i in range(1, 11)}}
            sides = {}
            for is_bid in (True, False):
                gone = {p: 0 for p in book[is_bid] if p not in new[is_bid]}
                sides[is_bid] = [(TICK * p, v) for p, v in sorted({**gone, **new[is_bid]}.items())]
            book = new
            batch = [rec.depth_delta(version, bids=sides[True], asks=sides[False])]
            if rng.random() < 0.4:
                taker_buys = rng.random() < 0.5
                price = TICK * (mid + 1 if taker_buys else mid - 1)
                batch.append(rec.deal(price, rng.randint(1, 5), taker_buys))
                fills = rec.fills_for_deal(price, taker_buys)
                n_fills += sum(1 for f in fills if f.row.kind == "ws.push.personal.order.deal")
                batch += fills
            if rng.random() < 0.1:
                batch.append(rec.ticker(TICK * mid, TICK * (mid - 1), TICK * (mid + 1)))
            if step % 20 == 19:  # the timer comes first or last in its batch
                batch.insert(0 if rng.random() < 0.5 else len(batch), rec.timer("quote"))
            # usually one input a batch; sometimes several, as the live sequencer groups them
            if rng.random() < 0.4:
                feed(*batch)
            else:
                for item in batch:
                    feed(item)
        if stop:
            rec.advance(100)
            if pending:
                feed(*rec.answer(pending))
                pending.clear()
            rec.advance(100)
            feed(rec.stop())
            rec.advance(5)
            feed(*rec.answer(pending))
            pending.clear()
            feed(rec.ended())
        inputs = rec.sequencer.events_in
        session = rec.session
    return Recording(path, session, inputs, n_commands, n_fills)


def fixture_payload(name: str, index: int = 0) -> Any:
    """The ``index``-th variant's payload of a golden sample in ``tests/mexc/fixtures``."""
    path = Path(__file__).resolve().parent / "mexc" / "fixtures" / f"{name}.json"
    return orjson.loads(path.read_bytes())["variants"][index]["payload"]


__all__ = ["NONDET_SPEC", "T0_NS", "Recorder", "Recording", "fixture_payload", "frame",
           "record_session"]
