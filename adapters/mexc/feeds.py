"""The market-data manager (shell): a pool of public MEXC WebSocket connections that journals
every frame, reconnects, rotates, and keeps the depth books in sync.

Theory of operation
-------------------
**Pool.** Subscriptions (``subscribe(channel, symbol, **params)``, before or while running)
are packed into *slots* of at most ``streams_per_connection`` each, in the order given; a
slot is one logical connection, run by its own supervisor task in the manager's nursery. A
subscription added while running goes to the first slot with room (and is sent at once on
its live connection), or opens a new slot.

**Frames.** Each connection's pump task takes frames in arrival order and hands each one,
unchanged, to ``emit`` as ``Input(ws_row(text, received_ns))``: pongs, acknowledgements and
errors included. ``emit`` may wait (the sequencer's channel is bounded); a slow journal slows
the pump, never reorders it.

**Journal of the connection's life.** ``Connected(conn_id, url)`` is emitted once a
connection is open and its subscriptions are sent, before its first frame;
``Disconnected(conn_id, reason)`` when it ends (``lost: ...``, ``stale: ...``, ``rotated``,
``shutdown``) and also for every attempt that failed to open (``connect failed: ...``).
Connection ids are ``md<slot>.<n>``, ``n`` counting every attempt of the manager.

**Reconnect.** When a connection ends, its supervisor sleeps ``Backoff.next()`` (1 s doubling
to ``reconnect_max_s``, jittered) and opens a new one with the slot's *current*
subscriptions; failed attempts back off further. The delay starts again from
``reconnect_initial_s`` once a connection has stayed up for ``healthy_after_s`` (default
``reconnect_max_s``), so a server that accepts and immediately drops is not hammered.

**Stale feed.** The pump gives up on a connection that delivered no frame but pongs for
``stale_after_s`` (pongs prove the socket, not the subscriptions): it closes it and the slot
reconnects. Dead sockets are caught earlier by the connection's own pong watchdog
(``2 × ping_interval``). Channels that are legitimately quiet for long (``deal`` on an
illiquid contract alone on a connection) need a larger ``stale_after_s``, or None.

**Rotation.** ``rotate_after_s`` (23.5 h) after a connection opened, before MEXC's 24 h
limit, the supervisor opens the replacement, waits until it has acknowledged every
subscription (at most ``rotation_overlap_s``), and only then closes the old one. Nothing is
missed; frames seen by both during the overlap are journaled twice. Depth is unharmed (the
fold ignores versions it already has) and tickers, prices and funding are idempotent, but a
trade in the overlap can appear twice: consumers that add up trade volume must deduplicate
by trade id (``i``) when it is present. A failed replacement is retried after a backoff
delay while the old connection keeps serving.

**Books.** After a (re)connect, every ``depth`` symbol of the connection gets a REST
snapshot, and gaps reported by the fold (``request_repair``) are repaired from
``depth_commits`` or a snapshot: see :mod:`adapters.mexc.book_sync`. A rotation needs no
snapshot: the old connection keeps the book continuous until the new one takes over, and a
gap at the handover would be repaired like any other.
"""

from __future__ import annotations

import itertools
import logging
import math
from typing import Any

import attrs
import trio

from adapters.mexc.book_sync import BookStatus, BookSyncer, BookSyncStatistics
from adapters.mexc.interpret import ws_row
from adapters.mexc.reconnect import Backoff, Emit, JitterSpec, StreamJournal
from adapters.mexc.ws import (
    MexcWsConnection,
    Subscription,
    WsDisconnected,
    WsError,
    WsProtocolError,
    open_mexc_ws,
)
from adapters.mexc.ws_transport import Connect
from engine.clock import Clock
from engine.sequencer import Input

__all__ = ["MarketDataManager", "MarketDataStatistics"]

log = logging.getLogger(__name__)

MARKET_CHANNELS = frozenset({
    "depth", "depth.full", "depth.step", "deal", "ticker", "tickers", "kline", "funding.rate",
    "index.price", "fair.price", "contract",
})  # fmt: skip
"""Public channels the manager subscribes to (see ``ws_messages.CHANNELS``)."""


@attrs.frozen
class MarketDataStatistics:
    """Counters of a :class:`MarketDataManager` (see :meth:`MarketDataManager.statistics`)."""

    connections: int
    """Connections open now (two per slot during a rotation)."""
    slots: int
    """Logical connections in the pool."""
    subscriptions: int
    frames: int
    """Frames received and emitted."""
    reconnects: int
    """Connections lost (each is then reopened); rotations are not counted here."""
    connect_failures: int
    stale: int
    """Connections dropped by the stale-feed watchdog."""
    rotations: int
    protocol_errors: int
    """Undecodable frames (binary without gzip...): counted, not journaled."""
    gaps: int
    repairs: int
    resyncs: int
    books: BookSyncStatistics


@attrs.define(eq=False)
class _Slot:
    index: int
    subs: list[Subscription] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)

    def add(self, sub: Subscription) -> None:
        self.subs.append(sub)
        changed, self.changed = self.changed, trio.Event()
        changed.set()


@attrs.define(eq=False)
class _Live:
    """One open connection of a slot."""

    conn: MexcWsConnection
    conn_id: str
    opened_at: float
    rotate_at: float
    sent: set[Subscription]
    pending_acks: int
    subscribed: trio.Event = attrs.Factory(trio.Event)
    ended: trio.Event = attrs.Factory(trio.Event)
    close_reason: str | None = None

    def answered(self) -> None:
        self.pending_acks -= 1
        if self.pending_acks <= 0:
            self.subscribed.set()


def _depth_symbol(sub: Subscription) -> str | None:
    if sub.channel != "depth":
        return None
    symbol = dict(sub.params).get("symbol")
    return symbol if isinstance(symbol, str) else None


class MarketDataManager:
    """Public market data over a pool of MEXC WebSocket connections; see the module docstring.

    ``rest`` is the :class:`~adapters.mexc.rest.MexcRestClient` built with
    ``on_response=journaling_hook(emit)`` (so snapshots and commits are journaled by it);
    ``emit`` the sequencer's input (``await emit(Input)``); ``book_status(symbol) ->
    (synced, version)`` reads the live projection; ``connect`` is the WebSocket transport
    seam (tests pass in-memory fakes). ``jitter`` is a seeded ``random.Random`` or a
    callable ``delay -> delay``.
    """

    def __init__(
        self,
        connect_url: str,
        *,
        rest: Any,
        emit: Emit,
        clock: Clock,
        book_status: BookStatus,
        connect: Connect | None = None,
        streams_per_connection: int = 30,
        ping_interval: float = 15.0,
        stale_after_s: float | None = 30.0,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        rotate_after_s: float = 23.5 * 3600,
        jitter: JitterSpec = None,
        depth_snapshot_limit: int | None = None,
        rotation_overlap_s: float = 5.0,
        healthy_after_s: float | None = None,
        repair_settle_s: float = 2.0,
    ) -> None:
        if streams_per_connection < 1:
            raise ValueError(f"streams_per_connection must be >= 1, got {streams_per_connection}")
        if stale_after_s is not None and not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0 or None, got {stale_after_s!r}")
        if not rotate_after_s > 0:
            raise ValueError(f"rotate_after_s must be > 0, got {rotate_after_s!r}")
        self.url = connect_url
        self.clock = clock
        self.streams_per_connection = streams_per_connection
        self.ping_interval = ping_interval
        self.stale_after_s = stale_after_s
        self.rotate_after_s = rotate_after_s
        self.rotation_overlap_s = rotation_overlap_s
        self.healthy_after_s = reconnect_max_s if healthy_after_s is None else healthy_after_s
        self._connect = connect
        self._emit = emit
        self._backoff_args: tuple[float, float, JitterSpec] = (
            reconnect_initial_s, reconnect_max_s, jitter)
        Backoff(*self._backoff_args)  # validate now, not in a task
        self._journal = StreamJournal(emit, clock, connect_url)
        self.books = BookSyncer(
            rest=rest, journal=self._journal, book_status=book_status,
            snapshot_limit=depth_snapshot_limit, settle_timeout_s=repair_settle_s,
            retry_initial_s=reconnect_initial_s, retry_max_s=reconnect_max_s, jitter=jitter,
        )
        self._slots: list[_Slot] = []
        self._subscribed: set[Subscription] = set()
        self._nursery: trio.Nursery | None = None
        self._ids = itertools.count()
        self._open = self._frames = self._reconnects = self._connect_failures = 0
        self._stale = self._rotations = self._protocol_errors = 0

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, channel: str, symbol: str | None = None, **params: object) -> Subscription:
        """Add a public subscription (idempotent); sent at once when running.

        ``channel`` is the bare name (``depth``, ``deal``, ``kline``...); ``params`` the
        channel's other parameters (``interval=``, ``limit=``, ``compress=``). Invalid
        combinations raise ``ValueError`` here, not on the wire.
        """
        if channel not in MARKET_CHANNELS:
            raise ValueError(f"not a public market channel: {channel!r}")
        if symbol is not None:
            params["symbol"] = symbol
        sub = Subscription(channel, params)
        if sub in self._subscribed:
            return sub
        self._subscribed.add(sub)
        slot = next((s for s in self._slots if len(s.subs) < self.streams_per_connection), None)
        if slot is None:
            slot = _Slot(len(self._slots))
            self._slots.append(slot)
            if self._nursery is not None:
                self._nursery.start_soon(self._run_slot, slot)
        slot.add(sub)
        return sub

    @property
    def subscriptions(self) -> tuple[tuple[Subscription, ...], ...]:
        """The subscriptions of each slot (connection), in order."""
        return tuple(tuple(slot.subs) for slot in self._slots)

    def request_repair(self, symbol: str, gap: tuple[int, int] | None) -> None:
        """The Core's ``on_gap``: queue the repair of ``symbol``'s book; never blocks."""
        self.books.request_repair(symbol, gap)

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the pool and the book workers until cancelled.

        Reports started as soon as the connection tasks are launched, without waiting for
        the exchange (an unreachable exchange is journaled, not awaited).
        """
        if self._nursery is not None:
            raise RuntimeError("MarketDataManager.run is already running")
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.books.run)
                self._nursery = nursery
                for slot in self._slots:
                    nursery.start_soon(self._run_slot, slot)
                task_status.started()
        finally:
            self._nursery = None

    async def _run_slot(self, slot: _Slot) -> None:
        """Supervise one slot: connect, watch, reconnect with backoff, rotate."""
        backoff = Backoff(*self._backoff_args)
        async with trio.open_nursery() as nursery:
            current: _Live | None = None
            while True:  # ends on cancellation
                if current is None:
                    current = await self._open_slot(slot, nursery, backoff)
                with trio.move_on_at(current.rotate_at):
                    await current.ended.wait()
                if current.ended.is_set():
                    if trio.current_time() - current.opened_at >= self.healthy_after_s:
                        backoff.reset()
                    current = None
                    self._reconnects += 1
                    await trio.sleep(backoff.next())
                else:
                    current = await self._rotate(slot, nursery, current, backoff)

    async def _open_slot(self, slot: _Slot, nursery: trio.Nursery, backoff: Backoff) -> _Live:
        while True:  # ends once connected, or on cancellation
            live = await self._try_connect(slot, nursery, resnapshot=True)
            if live is not None:
                return live
            await trio.sleep(backoff.next())

    async def _try_connect(
        self, slot: _Slot, nursery: trio.Nursery, *, resnapshot: bool
    ) -> _Live | None:
        conn_id = f"md{slot.index}.{next(self._ids)}"
        try:
            live: _Live = await nursery.start(self._connection, slot, conn_id, resnapshot)
        except WsError as exc:
            self._connect_failures += 1
            log.warning("market data %s: connect failed: %s", conn_id, exc)
            await self._journal.disconnected(conn_id, f"connect failed: {exc}")
            return None
        return live

    async def _rotate(
        self, slot: _Slot, nursery: trio.Nursery, old: _Live, backoff: Backoff
    ) -> _Live:
        """Open the replacement, let it subscribe, then close ``old``."""
        new = await self._try_connect(slot, nursery, resnapshot=False)
        if new is None:
            old.rotate_at = trio.current_time() + backoff.next()
            return old
        with trio.move_on_after(self.rotation_overlap_s):
            await new.subscribed.wait()
        if not old.ended.is_set():
            old.close_reason = "rotated"
            await old.conn.close(1000, "rotated")
        await old.ended.wait()
        self._rotations += 1
        backoff.reset()
        return new

    async def _connection(
        self,
        slot: _Slot,
        conn_id: str,
        resnapshot: bool,
        *,
        task_status: trio.TaskStatus[_Live],
    ) -> None:
        """Open one connection with the slot's subscriptions and pump it until it ends.

        Failures before ``started`` (cannot connect) are raised to the supervisor; after it,
        the end of the connection is journaled and ``ended`` set.
        """
        subs = list(slot.subs)
        live: _Live | None = None
        journaled = False
        try:
            async with open_mexc_ws(
                self.url, clock=self.clock, subscriptions=subs,
                ping_interval=self.ping_interval, connect=self._connect,
            ) as conn:
                now = trio.current_time()
                live = _Live(conn, conn_id, now, now + self.rotate_after_s, set(subs), len(subs))
                if not subs:
                    live.subscribed.set()
                await self._journal.connected(conn_id)
                self._open += 1
                if resnapshot:
                    for sub in subs:
                        symbol = _depth_symbol(sub)
                        if symbol is not None:
                            self.books.want_snapshot(symbol)
                task_status.started(live)
                reason = await self._serve(slot, live)
            await self._journal.disconnected(conn_id, reason)
            journaled = True
        finally:
            if live is not None:
                self._open -= 1
                if not journaled:
                    await self._journal.final_disconnect(conn_id, "shutdown")
                live.ended.set()

    async def _serve(self, slot: _Slot, live: _Live) -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_new_subscriptions, slot, live)
            reason = await self._pump(live)
            nursery.cancel_scope.cancel()
        return reason

    async def _send_new_subscriptions(self, slot: _Slot, live: _Live) -> None:
        """Send subscriptions added to the slot after the connection opened."""
        while True:  # ends on cancellation or when the connection is gone
            changed = slot.changed
            for sub in [s for s in slot.subs if s not in live.sent]:
                live.sent.add(sub)
                live.pending_acks += 1
                try:
                    await live.conn.send(sub.sub_text(live.conn.gzip))
                except WsDisconnected:
                    return  # the pump reports it
                symbol = _depth_symbol(sub)
                if symbol is not None:
                    self.books.want_snapshot(symbol)
            await changed.wait()

    async def _pump(self, live: _Live) -> str:
        """Emit every frame in order; return why the connection ended."""
        conn = live.conn
        stale = math.inf if self.stale_after_s is None else self.stale_after_s
        last_data = trio.current_time()
        while True:  # ends when the connection does
            frame = None
            with trio.move_on_at(last_data + stale):
                try:
                    frame = await conn.receive()
                except WsProtocolError:
                    self._protocol_errors += 1
                    continue
                except WsDisconnected as exc:
                    return live.close_reason or f"lost: {exc}"
            if frame is None:
                self._stale += 1
                live.close_reason = f"stale: no data for {self.stale_after_s:g} s"
                log.warning("market data %s: %s, reconnecting", live.conn_id, live.close_reason)
                await conn.close(4001, "stale feed")
                return live.close_reason
            row = ws_row(frame.text, frame.received_ns)
            await self._emit(Input(row))
            self._frames += 1
            kind = row.kind
            if kind != "ws.pong":
                last_data = trio.current_time()
            if live.pending_acks > 0 and (kind.startswith("ws.rs.sub.") or kind == "ws.rs.error"):
                live.answered()

    # -- introspection ----------------------------------------------------------------------

    def statistics(self) -> MarketDataStatistics:
        """A snapshot of the counters."""
        books = self.books.statistics()
        return MarketDataStatistics(
            connections=self._open, slots=len(self._slots), subscriptions=len(self._subscribed),
            frames=self._frames, reconnects=self._reconnects,
            connect_failures=self._connect_failures, stale=self._stale,
            rotations=self._rotations, protocol_errors=self._protocol_errors,
            gaps=books.gaps, repairs=books.repairs, resyncs=books.resyncs, books=books,
        )

