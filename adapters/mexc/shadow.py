"""Shadow mode: live market data, fills from the simulator's matching engine (shell).

Theory of operation
-------------------
:class:`LiveMirror` subscribes to an outside MEXC-compatible market (MEXC itself by default;
in tests another simulator) for depth, deals, fair and index prices, keeps a local copy of
each book (REST snapshot + versioned deltas, re-snapshot on a gap), and makes the liquidity
participant ``"market"`` of a local :class:`~adapters.mexc.sim.service.SimService` rest
exactly the outside book's top levels (:class:`adapters.mexc.sim.virtual_venue.BookMirror`); outside
deals are replayed as that participant's IOC orders, so resting strategy orders fill when the
outside market trades through them. The engine itself talks to the local simulator — its
REST answers, order pushes and the mirrored book — so it trades as in ``sim`` mode, but
against live prices, and no API key of the outside exchange is needed.

:func:`open_shadow_venue` wires this up and yields the engine's :class:`engine.runtime.Venue`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import trio

from adapters.mexc.auth import Credentials
from adapters.mexc.codecs import decode_ws
from adapters.mexc.config import MexcConfig
from adapters.mexc.errors import MexcError
from adapters.mexc.http11 import http_client
from adapters.mexc.rest import MexcRestClient
from adapters.mexc.sim.service import SimService
from adapters.mexc.sim.virtual_venue import BookMirror, SimVenue, contract_from_info
from adapters.mexc.ws import WsError, open_mexc_ws
from adapters.mexc.ws_messages import sub
from engine.clock import Clock
from engine.model import BookDelta, BookSnapshot, FairPrice, IndexPrice, Trade
from engine.runtime import Venue

__all__ = ["LiveMirror", "open_shadow_venue"]

log = logging.getLogger(__name__)
_IN_PROCESS_BASE = "http://shadow.invalid"


class LiveMirror:
    """Mirror an outside market's books, deals and prices into a local simulator."""

    def __init__(self, service: SimService, source: MexcRestClient, ws_url: str,
                 symbols: Iterable[str], clock: Clock, *, connect: Any = None,
                 levels: int = 20, reconnect_max_s: float = 30.0) -> None:
        self.service = service
        self.source = source
        self.ws_url = ws_url
        self.symbols = tuple(symbols)
        self.clock = clock
        self.connect = connect
        self.venue = SimVenue(service.exchange, user="shadow-mirror")
        self.mirror = BookMirror(self.venue, levels=levels)
        self.reconnect_max_s = reconnect_max_s
        self.frames = 0
        self.resnapshots = 0
        self.reconnects = 0

    def _now_ms(self) -> int:
        return self.service.exchange_now()

    def _apply(self, value: Any) -> None:
        ex = self.service.exchange
        now = self._now_ms()
        self.venue.traded = True  # refresh the mirrored orders' sizes on every update
        if isinstance(value, FairPrice):
            ex.set_fair_price(value.symbol, value.price, now)
        elif isinstance(value, IndexPrice):
            ex.set_index_price(value.symbol, value.price, now)
        elif isinstance(value, BookSnapshot | BookDelta | Trade):
            self.mirror.on_value(value, now)
        self.service.publish()

    async def _snapshot(self, symbol: str) -> None:
        snap = await self.source.depth(symbol)
        if isinstance(snap, BookSnapshot):
            self._apply(snap)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the outside market until cancelled, reconnecting with backoff."""
        subs = []
        for s in self.symbols:
            subs += [sub("depth", symbol=s), sub("deal", symbol=s),
                     sub("fair.price", symbol=s), sub("index.price", symbol=s)]
        started = False
        delay = 1.0
        while True:
            try:
                async with open_mexc_ws(self.ws_url, clock=self.clock, subscriptions=subs,
                                        connect=self.connect) as conn:
                    for s in self.symbols:
                        await self._snapshot(s)
                    if not started:
                        started = True
                        task_status.started()
                    delay = 1.0
                    async for frame in conn:
                        self.frames += 1
                        await self._on_frame(frame.text)
            except (WsError, MexcError, OSError) as exc:
                log.warning("shadow mirror: %s; reconnecting in %.0f s", exc, delay)
            self.reconnects += 1
            await trio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max_s)

    async def _on_frame(self, text: str) -> None:
        try:
            frame = decode_ws(text)
        except MexcError:
            return
        for value in frame.messages:
            self._apply(value)
            if isinstance(value, BookDelta):
                book = self.mirror.books.get(value.symbol)
                if book is not None and book.gap is not None:
                    self.resnapshots += 1
                    await self._snapshot(value.symbol)


@asynccontextmanager
async def open_shadow_venue(
    clock: Clock,
    *,
    source_config: MexcConfig,
    symbols: Iterable[str] = ("BTC_USDT",),
    balance: Decimal = Decimal("10000"),
    source_http: httpx.AsyncClient | None = None,
    source_connect: Any = None,
) -> AsyncIterator[Venue]:
    """A local simulator mirroring the outside market of ``source_config``; yields the venue."""
    symbols = tuple(symbols)
    own_http = source_http is None
    http_source = source_http or http_client(timeout=10.0)
    try:
        source = MexcRestClient(http_source, source_config, None, clock)
        infos = await source.contract_detail()
        infos = infos if isinstance(infos, tuple) else (infos,)
        contracts = [contract_from_info(i) for i in infos if i.symbol in symbols]
        missing = set(symbols) - {c.symbol for c in contracts}
        if missing:
            raise MexcError(f"shadow mode: {', '.join(sorted(missing))} not listed by "
                            f"{source_config.rest_base}")
        service = SimService(clock=clock, contracts=contracts, drive_market=False)
        api_key, secret = "mx0shadow" + secrets.token_hex(8), secrets.token_hex(16)
        service.add_account(api_key, secret, balance)
        mirror = LiveMirror(service, source, source_config.ws_url, symbols, clock,
                            connect=source_connect)
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            await nursery.start(mirror.run)
            config = MexcConfig.for_simulator(_IN_PROCESS_BASE)
            http = httpx.AsyncClient(transport=httpx.MockTransport(service.rest_handler))
            try:
                yield Venue(http, config.ws_url, config, Credentials(api_key, secret),
                            service.ws_connect,
                            f"shadow: fills simulated on books mirrored from "
                            f"{source_config.rest_base}")
            finally:
                await http.aclose()
                nursery.cancel_scope.cancel()
    finally:
        if own_http:
            await http_source.aclose()


_MARKET_KINDS = frozenset({
    "ws.push.depth", "ws.push.deal", "ws.push.fair.price", "ws.push.index.price", "rest.depth",
    "rest.depth_commits", "engine.book_resync", "engine.book_gap",
})


class JournalMarket:
    """Play a recorded session's market (books, deals, fair and index prices) into a local
    simulator at the recorded pace (times ``speed``), as the liquidity its users trade on."""

    def __init__(self, service: SimService, journal_path: str, *, session: str | None = None,
                 speed: float = 1.0, levels: int = 20) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.service = service
        self.journal_path = journal_path
        self.session = session
        self.speed = speed
        self.venue = SimVenue(service.exchange, user="journal-market")
        self.mirror = BookMirror(self.venue, levels=levels)
        self.played = 0
        self.finished = trio.Event()

    @staticmethod
    def contracts(journal_path: str, session: str | None = None) -> list[Any]:
        """The simulator contracts of the contracts a recorded session listed."""
        from adapters.mexc.errors import DecodeError
        from adapters.mexc.interpret import interpret
        from engine.journal import Journal
        from engine.model import ContractInfo

        found: dict[str, Any] = {}
        with Journal.open(journal_path, readonly=True) as j:
            sid = j.session(session).id if session else None
            for ev in j.read(session=sid, kinds=["rest.detail"]):
                try:
                    values = interpret(ev)
                except DecodeError:
                    continue
                for v in values:
                    if isinstance(v, ContractInfo):
                        found[v.symbol] = contract_from_info(v)
        return list(found.values())

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Play the recording once; the market then stands still."""
        from adapters.mexc.errors import DecodeError
        from adapters.mexc.interpret import interpret
        from engine.codec import JournalDecodeError
        from engine.journal import Journal

        task_status.started()
        with Journal.open(self.journal_path, readonly=True) as j:
            sid = j.session(self.session).id if self.session else None
            first_ns: int | None = None
            start = trio.current_time()
            for ev in j.read(session=sid):
                if ev.kind not in _MARKET_KINDS:
                    continue
                if first_ns is None:
                    first_ns = ev.ts_ns
                due = start + (ev.ts_ns - first_ns) / 1e9 / self.speed
                await trio.sleep_until(due)
                try:
                    values = interpret(ev)
                except (DecodeError, JournalDecodeError):
                    continue
                now = self.service.exchange_now()
                for value in values:
                    self.venue.traded = True
                    if isinstance(value, FairPrice):
                        self.service.exchange.set_fair_price(value.symbol, value.price, now)
                    elif isinstance(value, IndexPrice):
                        self.service.exchange.set_index_price(value.symbol, value.price, now)
                    else:
                        self.mirror.on_value(value, now)
                self.service.publish()
                self.played += 1
        self.finished.set()
