"""The account stream (shell): one authenticated MEXC WebSocket for private pushes, journaled,
kept alive, and reconciled against REST after every (re)connect.

Theory of operation
-------------------
**Connection.** :meth:`AccountStream.run` opens the connection with the credentials. Without
``channels`` or ``symbols`` it logs in with the default push (every private stream). With
either, it logs in with ``subscribe: false`` and sends ``personal.filter`` for exactly those
streams (and symbols; ``asset`` and ``adl.level`` cannot be narrowed by symbol). Every frame
(``rs.login`` first, pongs included) is emitted as ``Input(ws_row(text, received_ns))``;
``Connected`` / ``Disconnected`` are journaled as for the market feed (ids ``acct.<n>``,
failed attempts included). A lost connection is reopened after a backoff delay (1 s doubling
to ``reconnect_max_s``, jittered; reset once a connection lived ``healthy_after_s``).

**Reconciliation.** Pushes can be lost while disconnected, so after every (re)connect a
reconciler task runs :meth:`AccountStream.reconcile`: it reads the journal's belief from
``state_view`` first (open orders, open positions, the balances of the known currencies),
then asks REST for open orders (every page), open positions and assets. The REST client's
journaling hook records each answer, and the sequencer folds it, so the state heals itself;
what this adds is the record of *what was different*: one ``ReconcileDifference`` per
difference (see :mod:`adapters.mexc.reconcile`), emitted after all the answers (the same
emit channel keeps the order). Each believed-open order the exchange no longer lists is
queried by id (or ``externalOid``), and the position history is read for each believed-open
position it no longer lists, so that the fold learns how they ended. The reconciler
runs beside the connection, not inside it: a drop does not cut a reconciliation short, and
requests made while one runs are coalesced into one more run.

**Stale stream.** A watchdog notes the trio time of the last frame (pongs count). When
``stale_after_s`` pass without one, because the connection is silent or cannot be opened
again, it closes a silent connection (so that the loop reconnects) and calls
``on_stale(reason)`` once; the runtime trips the kill switch. It fires again only after
frames have flowed again.

Balances are compared for ``currencies`` plus every currency a previous reconciliation saw
at the exchange (``StateView`` offers no list of the journal's currencies).
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import attrs
import trio

from adapters.mexc.errors import ExchangeError, MexcError
from adapters.mexc.interpret import ws_row
from adapters.mexc.reconcile import (
    Belief,
    BeliefSource,
    balance_differences,
    missing_order_difference,
    order_differences,
    position_differences,
)
from adapters.mexc.reconnect import Backoff, Emit, JitterSpec, StreamJournal
from adapters.mexc.ws import (
    Credentials,
    MexcWsConnection,
    WsDisconnected,
    WsError,
    WsProtocolError,
    open_mexc_ws,
)
from adapters.mexc.ws_messages import (
    PERSONAL_FILTER_KEYS,
    UNFILTERABLE_BY_SYMBOL,
    FilterSpec,
    personal_filter,
)
from adapters.mexc.ws_transport import Connect
from engine.clock import Clock
from engine.events import OrderRejected, ReconcileDifference
from engine.model import OrderUpdate, PositionUpdate
from engine.projections.order_view import OrderView
from engine.sequencer import Input, engine_input

__all__ = ["AccountStatistics", "AccountStream", "OnStale", "personal_filters"]

log = logging.getLogger(__name__)

OnStale = Callable[[str], Awaitable[None] | None]
"""``on_stale(reason)``, sync or async: the account stream is blind (trip the kill switch)."""


def personal_filters(
    channels: Iterable[str] | None, symbols: Iterable[str] | None
) -> FilterSpec | None:
    """The ``personal.filter`` for ``channels`` (default all) narrowed to ``symbols``; None
    (default push, no filter) when neither is given."""
    if channels is None and symbols is None:
        return None
    keys = PERSONAL_FILTER_KEYS if channels is None else tuple(dict.fromkeys(channels))
    rules = None if symbols is None else list(dict.fromkeys(symbols))
    spec = {key: None if key in UNFILTERABLE_BY_SYMBOL else rules for key in keys}
    personal_filter(spec)  # validate now: ValueError names the bad key or symbol
    return spec


@attrs.frozen
class AccountStatistics:
    """Counters of an :class:`AccountStream` (see :meth:`AccountStream.statistics`)."""

    connected: bool
    frames: int
    connects: int
    reconnects: int
    connect_failures: int
    protocol_errors: int
    reconciles: int
    reconcile_failures: int
    """REST calls of a reconciliation that failed (that part was not compared)."""
    differences: int
    stale_reports: int


class AccountStream:
    """Private pushes over one authenticated WebSocket, with REST reconciliation.

    ``rest`` is the :class:`~adapters.mexc.rest.MexcRestClient` built with
    ``on_response=journaling_hook(emit)``; ``state_view`` the live
    :class:`~engine.projections.StateView`; ``credentials`` anything with ``api_key`` and
    ``secret``; ``on_stale`` is called (sync or async) when the stream has been silent or down
    for ``stale_after_s``.
    """

    def __init__(
        self,
        connect_url: str,
        *,
        rest: Any,
        emit: Emit,
        clock: Clock,
        credentials: Credentials,
        state_view: BeliefSource,
        channels: Iterable[str] | None = None,
        symbols: Iterable[str] | None = None,
        connect: Connect | None = None,
        ping_interval: float = 15.0,
        stale_after_s: float = 60.0,
        on_stale: OnStale | None = None,
        reconnect_initial_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        healthy_after_s: float | None = None,
        jitter: JitterSpec = None,
        currencies: Iterable[str] = ("USDT",),
        open_orders_page_size: int = 100,
        max_open_order_pages: int = 20,
        max_history_pages: int = 5,
    ) -> None:
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {stale_after_s!r}")
        self.url = connect_url
        self.rest = rest
        self.clock = clock
        self.started_ns = clock.time_ns()
        self.state_view = state_view
        self.filters = personal_filters(channels, symbols)
        self.ping_interval = ping_interval
        self.stale_after_s = stale_after_s
        self.on_stale = on_stale
        self.healthy_after_s = reconnect_max_s if healthy_after_s is None else healthy_after_s
        self.currencies: dict[str, None] = dict.fromkeys(currencies)
        self.open_orders_page_size = open_orders_page_size
        self.max_open_order_pages = max_open_order_pages
        self.max_history_pages = max_history_pages
        self._credentials = credentials
        self._connect = connect
        self._emit = emit
        self._journal = StreamJournal(emit, clock, connect_url)
        self._backoff_args: tuple[float, float, JitterSpec] = (
            reconnect_initial_s, reconnect_max_s, jitter)
        Backoff(*self._backoff_args)  # validate now
        self._ids = itertools.count()
        self._conn: MexcWsConnection | None = None
        self._close_reason: str | None = None
        self._last_failure = "none yet"
        self._last_alive = 0.0
        self._revived: trio.Event | None = None
        self._reconcile_wanted: str | None = None
        self._reconcile_wake = trio.Event()
        self._reconcile_lock = trio.Lock()
        self._running = False
        self._frames = self._connects = self._connect_failures = self._protocol_errors = 0
        self._reconciles = self._reconcile_failures = self._differences = 0
        self._stale_reports = 0

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, pump, reconnect and reconcile until cancelled.

        Reports started before the first connection attempt: an unreachable exchange is
        journaled and, after ``stale_after_s``, reported through ``on_stale``.
        """
        if self._running:
            raise RuntimeError("AccountStream.run is already running")
        self._running = True
        self._last_alive = trio.current_time()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watchdog)
                nursery.start_soon(self._reconciler)
                task_status.started()
                await self._connect_loop()
        finally:
            self._running = False

    async def _connect_loop(self) -> None:
        backoff = Backoff(*self._backoff_args)
        while True:  # ends on cancellation
            conn_id = f"acct.{next(self._ids)}"
            opened_at = await self._connection(conn_id)
            if opened_at is None:
                self._connect_failures += 1
            elif trio.current_time() - opened_at >= self.healthy_after_s:
                backoff.reset()
            await trio.sleep(backoff.next())

    async def _connection(self, conn_id: str) -> float | None:
        """One connection from open to end; returns when it opened (trio time), or None."""
        opened_at: float | None = None
        journaled = False
        self._close_reason = None
        try:
            async with open_mexc_ws(
                self.url, clock=self.clock, credentials=self._credentials,
                login_subscribe=self.filters is None, personal_filters=self.filters,
                ping_interval=self.ping_interval, connect=self._connect,
            ) as conn:
                opened_at = trio.current_time()
                self._conn = conn
                await self._journal.connected(conn_id)
                self._connects += 1
                self.request_reconcile("connected" if self._connects == 1 else "reconnected")
                reason = await self._pump(conn)
            await self._journal.disconnected(conn_id, reason)
            journaled = True
        except WsError as exc:
            if opened_at is not None:
                raise  # not a failure to open: a bug worth surfacing
            self._last_failure = str(exc)
            log.warning("account stream %s: connect failed: %s", conn_id, exc)
            await self._journal.disconnected(conn_id, f"connect failed: {exc}")
            journaled = True
        finally:
            self._conn = None
            if opened_at is not None and not journaled:
                await self._journal.final_disconnect(conn_id, "shutdown")
        return opened_at

    async def _pump(self, conn: MexcWsConnection) -> str:
        """Emit every frame in order; return why the connection ended."""
        while True:  # ends when the connection does
            try:
                frame = await conn.receive()
            except WsProtocolError:
                self._protocol_errors += 1
                continue
            except WsDisconnected as exc:
                reason = self._close_reason or f"lost: {exc}"
                self._last_failure = reason
                return reason
            self._alive()
            await self._emit(Input(ws_row(frame.text, frame.received_ns)))
            self._frames += 1

    def _alive(self) -> None:
        self._last_alive = trio.current_time()
        if self._revived is not None:
            self._revived.set()

    async def _watchdog(self) -> None:
        """Call ``on_stale`` once the stream has been silent or down for ``stale_after_s``."""
        while True:  # ends on cancellation
            await trio.sleep_until(self._last_alive + self.stale_after_s)
            if trio.current_time() < self._last_alive + self.stale_after_s:
                continue  # a frame arrived meanwhile
            revived = self._revived = trio.Event()
            conn = self._conn
            if conn is not None:
                reason = f"account stream silent for {self.stale_after_s:g} s"
                self._close_reason = f"stale: no frame for {self.stale_after_s:g} s"
                await conn.close(4001, "stale")
            else:
                reason = (f"account stream down for {self.stale_after_s:g} s "
                          f"(last failure: {self._last_failure})")
            self._stale_reports += 1
            log.error("%s", reason)
            if self.on_stale is not None:
                result = self.on_stale(reason)
                if inspect.isawaitable(result):
                    await result
            await revived.wait()

    # -- reconciliation ---------------------------------------------------------------------

    def request_reconcile(self, reason: str) -> None:
        """Ask the reconciler task for a run (coalesced with one already waiting)."""
        self._reconcile_wanted = reason
        self._reconcile_wake.set()

    async def _reconciler(self) -> None:
        while True:  # ends on cancellation
            await self._reconcile_wake.wait()
            self._reconcile_wake = trio.Event()
            reason, self._reconcile_wanted = self._reconcile_wanted, None
            if reason is not None:
                await self.reconcile(reason)

    async def reconcile(self, reason: str) -> tuple[ReconcileDifference, ...]:
        """Compare the journal's belief with REST; journal and return the differences.

        The belief is read before any request. Answers are journaled by the REST hook as
        they come; the differences are emitted after the last answer. A failed request
        leaves its part uncompared (counted in ``reconcile_failures``).
        """
        async with self._reconcile_lock:
            belief = Belief.read(self.state_view, self.currencies)
            note = f"{reason}: "
            orders = await self._ask("open_orders", self._open_orders)
            positions = await self._ask("open_positions", self.rest.open_positions)
            assets = await self._ask("assets", self.rest.assets)
            diffs: list[ReconcileDifference] = []
            if orders is not None:
                found, missing = order_differences(belief.orders, orders, self._now(), note)
                for order in missing:
                    answer, failure = await self._query(order)
                    diffs.append(missing_order_difference(order, answer, failure, self._now(),
                                                          note))
                    if self._never_placed(order, failure):
                        assert order.external_oid is not None
                        await self._emit(engine_input(OrderRejected(
                            order.external_oid, 2040,
                            "not found at the exchange when reconciling after a restart: "
                            "the request never reached it", self._now()),
                            stream=order.external_oid))
                diffs.extend(found)
            if positions is not None:
                diffs.extend(position_differences(belief.positions, positions, self._now(), note))
                await self._fetch_closings(belief.positions, positions)
            if assets is not None:
                diffs.extend(balance_differences(dict(belief.balances), assets, self._now(), note))
                self.currencies.update(dict.fromkeys(b.currency for b in assets))
            for diff in diffs:
                await self._emit(engine_input(diff, stream=diff.key))
            self._reconciles += 1
            self._differences += len(diffs)
            return tuple(diffs)

    async def _ask(self, what: str, call: Callable[[], Awaitable[Any]]) -> tuple[Any, ...] | None:
        try:
            return tuple(await call())
        except MexcError as exc:
            self._reconcile_failures += 1
            log.warning("reconcile: %s failed: %s", what, exc)
            return None

    async def _fetch_closings(self, believed: Iterable[PositionUpdate],
                              listed: Iterable[PositionUpdate]) -> None:
        """Ask the position history for each position the journal holds open that the
        exchange no longer lists, nor a newer one on its side: it was closed while its
        pushes were lost, and an ``open_positions`` answer, listing only open positions,
        cannot say so. The history's closed record of that position id, journaled by the
        REST hook and folded, closes it in the projection too (older closed ids in the
        answer change nothing there). Newest first; at most ``max_history_pages`` pages."""
        listed_sides = {(p.symbol, p.position_type) for p in listed if p.hold_vol}
        for position in believed:
            if not position.hold_vol or (position.symbol, position.position_type) in listed_sides:
                continue
            size = self.open_orders_page_size
            for page in range(1, self.max_history_pages + 1):
                try:
                    answer = await self.rest.history_positions(
                        symbol=position.symbol, position_type=int(position.position_type),
                        page_num=page, page_size=size)
                except MexcError as exc:
                    self._reconcile_failures += 1
                    log.warning("reconcile: history_positions failed: %s", exc)
                    break
                items = getattr(answer, "items", answer)
                if (len(items) < size
                        or any(p.position_id == position.position_id for p in items)):
                    break

    async def _open_orders(self) -> tuple[OrderUpdate, ...]:
        """Every page of the account's open orders."""
        out: list[OrderUpdate] = []
        size = self.open_orders_page_size
        for page in range(1, self.max_open_order_pages + 1):
            answer = await self.rest.open_orders(page_num=page, page_size=size)
            items = getattr(answer, "items", answer)
            out.extend(items)
            if len(items) < size:
                break
        return tuple(out)

    def _never_placed(self, order: OrderView, failure: str | None) -> bool:
        """An intent of an earlier run that the exchange answers "does not exist" (2040).

        Only orders requested before this stream started are concluded on: a request of
        this run could still be on its way.
        """
        return (failure is not None and failure.startswith("2040") and not order.order_id
                and order.external_oid is not None and order.requested_ns is not None
                and order.requested_ns < self.started_ns)

    async def _query(self, order: OrderView) -> tuple[OrderUpdate | None, str | None]:
        try:
            if order.order_id:
                return await self.rest.order_get(order.order_id, order.symbol), None
            if order.external_oid:
                return await self.rest.order_by_external(order.symbol, order.external_oid), None
        except ExchangeError as exc:
            self._reconcile_failures += 1
            return None, f"{exc.code} {exc}"[:200]
        except MexcError as exc:
            self._reconcile_failures += 1
            return None, str(exc)[:200]
        return None, "no order id or externalOid to query by"

    def _now(self) -> int:
        return self.clock.time_ns()

    # -- introspection ----------------------------------------------------------------------

    def statistics(self) -> AccountStatistics:
        """A snapshot of the counters."""
        return AccountStatistics(
            connected=self._conn is not None, frames=self._frames, connects=self._connects,
            reconnects=max(0, self._connects - 1), connect_failures=self._connect_failures,
            protocol_errors=self._protocol_errors, reconciles=self._reconciles,
            reconcile_failures=self._reconcile_failures, differences=self._differences,
            stale_reports=self._stale_reports,
        )
