"""The simulator as a service: exchange, market, accounts, faults, REST and WS (shell).

:class:`SimService` owns one :class:`~adapters.mexc.sim.exchange.Exchange`, the seeded
:class:`~adapters.mexc.sim.market.SyntheticMarket` that trades in it, the API keys, the
:class:`~adapters.mexc.sim.faults.Faults` and the open WebSocket connections. It is served
three ways, all backed by the same :meth:`SimService.serve_rest` and connection runner:

* in process, for tests in virtual time: :meth:`SimService.rest_handler` is an async
  handler for ``httpx.MockTransport``, :meth:`SimService.ws_connect` the ``connect`` of
  ``open_mexc_ws`` (in-memory channels, no sockets);
* as an ASGI application (:attr:`SimService.asgi_app`, see :mod:`adapters.mexc.sim.asgi`);
* on a real socket with :func:`adapters.mexc.sim.asgi.serve_sim` (hypercorn, trio).

Time. Server time is ``clock.time_ms()`` plus the ``clock_skew_s`` fault; the exchange gets
the same time, held monotonic. :meth:`SimService.run` is the market driver: every
``step_s`` seconds of trio time (virtual under ``autojump_clock``) it steps the market, every
``ticker_every_s`` it ticks the exchange (funding settlement, ``push.ticker``,
``push.tickers``, ``push.funding.rate``), and then fans the pushes out. Pushes caused by a
REST call are fanned out as soon as that call has run. Without ``run`` the market stands
still, but REST and WS work.

Fan-out never waits: each connection has a bounded outbox, and a connection that falls too
far behind is closed (code 1008).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import trio
from attrs import frozen

from adapters.mexc.config import Generation, RateLimit, default_rate_limits
from adapters.mexc.sim.contracts import Contract
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.faults import Faults, FaultUpdateError
from adapters.mexc.sim.gate import ApiAccount, RateLimits
from adapters.mexc.sim.market import MarketParams, SyntheticMarket
from adapters.mexc.sim.rest_api import RestApi, RestReply, RestRequest, not_found
from adapters.mexc.sim.rest_handlers import HANDLERS
from adapters.mexc.sim.wire import dumps, error_envelope
from adapters.mexc.sim.ws_api import SubKey, WsSession, render_batch
from adapters.mexc.sim.ws_server import (
    MemoryClientTransport,
    ServerSocket,
    WsConnection,
    memory_pipe,
    serve_connection,
)
from adapters.mexc.ws_transport import reraise, single_exception
from engine.clock import Clock

__all__ = ["ADMIN_PATH", "WS_PATH", "RestOutcome", "SimService", "is_loopback"]

WS_PATH = "/edge"
"""Where the WebSocket endpoint lives (as on ``contract.mexc.com``)."""

ADMIN_PATH = "/_sim/faults"
"""The fault admin endpoint (loopback clients only)."""

_ORDER_PREFIX = "/api/v1/private/order/"
_5XX_BODY = "<html><body><h1>{status} Service Unavailable</h1></body></html>"


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IP addresses (None counts: in-process callers)."""
    if host is None or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@frozen
class RestOutcome:
    """How to answer one REST request: ``reply`` after ``delay_s`` seconds, unless ``drop``
    says to answer nothing (``"timeout"``: never answer; ``"close"``: close the connection)."""

    reply: RestReply | None
    delay_s: float = 0.0
    drop: str | None = None


class SimService:
    """A MEXC-compatible exchange to trade against (see the module docstring).

    ``clock`` tells server time: ``TrioClock()`` for in-process tests (virtual time),
    ``SystemClock()`` when real clients connect. ``seed`` seeds the synthetic market (and
    the faults' randomness when ``faults`` is not given). ``contracts`` default to BTC_USDT
    and ETH_USDT; ``start_prices`` must name every contract without a default price.
    ``rate_limits`` maps rate keys to ``(count, period_s)`` (default: the documented limits
    of the new API); ``rate_limiting=False`` switches limits off. ``restricted_symbols``
    refuse order placement (6005). ``drive_market=False`` keeps the synthetic market still
    (``run`` then only ticks and fans out). ``warmup_steps`` market steps run at
    construction so that books and prices exist from the start.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        seed: int = 0,
        contracts: Iterable[Contract] | None = None,
        start_prices: Mapping[str, Decimal] | None = None,
        market_params: MarketParams | None = None,
        faults: Faults | None = None,
        step_s: float = 0.1,
        ticker_every_s: float = 1.0,
        rate_limits: Mapping[str, RateLimit] | None = None,
        rate_limiting: bool = True,
        restricted_symbols: Iterable[str] = (),
        ping_timeout_s: float = 60.0,
        drive_market: bool = True,
        warmup_steps: int = 1,
        outbox_size: int = 4096,
        drop_hold_s: float = 60.0,
    ) -> None:
        if not step_s > 0 or not ticker_every_s > 0 or not ping_timeout_s > 0:
            raise ValueError("step_s, ticker_every_s and ping_timeout_s must be > 0")
        self.clock = clock
        self.faults = faults if faults is not None else Faults(seed=seed)
        self.step_s = step_s
        self.ticker_every_s = ticker_every_s
        self.ping_timeout_s = ping_timeout_s
        self.drive_market = drive_market
        self.outbox_size = outbox_size
        self.drop_hold_s = drop_hold_s
        self._last_now = self.server_ms()
        self._last_limit = self.clock.time_ms()
        self.exchange = Exchange(self._last_now, contracts)
        self.market = SyntheticMarket(
            self.exchange, seed=seed, start_prices=start_prices, params=market_params
        )
        self._accounts: dict[str, ApiAccount] = {}
        limits = default_rate_limits(Generation.NEW) if rate_limits is None else rate_limits
        self.api = RestApi(
            self.exchange,
            self._accounts,
            HANDLERS,
            rate_limits=RateLimits(limits) if rate_limiting else None,
            restricted_symbols=set(restricted_symbols),
        )
        self._connections: set[WsConnection] = set()
        for _ in range(warmup_steps):
            now = self.exchange_now()
            self.market.step(now)
            self.exchange.tick(now)
        self.exchange.drain_pushes()

    # ------------------------------------------------------------------ time, accounts

    def server_ms(self) -> int:
        """Server time in ms: the clock plus the ``clock_skew_s`` fault."""
        return self.clock.time_ms() + round(self.faults.clock_skew_s * 1000)

    def exchange_now(self) -> int:
        """Server time, never earlier than the last time the exchange was given."""
        self._last_now = max(self._last_now, self.server_ms())
        return self._last_now

    def limit_now(self) -> int:
        """The time rate-limit windows slide on: the clock without the skew fault, held
        monotonic. A skew that jumps back holds :meth:`exchange_now` still until the clock
        catches up; the windows must keep sliding meanwhile, or every request would 510."""
        self._last_limit = max(self._last_limit, self.clock.time_ms())
        return self._last_limit

    @property
    def restricted_symbols(self) -> set[str]:
        """Symbols whose order placement is refused with 6005 (mutable)."""
        return self.api.restricted_symbols

    @property
    def accounts(self) -> Mapping[str, ApiAccount]:
        """API key → account."""
        return self._accounts

    def add_account(
        self,
        api_key: str,
        secret: str,
        balance: Decimal | int | str = 0,
        *,
        user: str | None = None,
    ) -> str:
        """Register an API key with its secret and an account funded with ``balance`` USDT.

        ``user`` names the account (default ``user-<n>``); several keys may share one.
        Returns the account name.
        """
        if not api_key or not secret or any(c.isspace() for c in api_key + secret):
            raise ValueError("api_key and secret must be non-empty and without whitespace")
        if api_key in self._accounts:
            raise ValueError("this api_key is already registered")
        name = user or f"user-{len({a.user for a in self._accounts.values()}) + 1}"
        self._accounts[api_key] = ApiAccount(api_key, secret, name)
        self.exchange.open_account(name)
        amount = Decimal(balance)
        if amount > 0:
            self.exchange.deposit(name, amount, self.exchange_now())
        self.publish()
        return name

    # ---------------------------------------------------------------------- pushes

    @property
    def connections(self) -> frozenset[WsConnection]:
        """The WebSocket connections being served."""
        return frozenset(self._connections)

    def publish(self) -> None:
        """Fan the exchange's pending pushes out to the connections that want them."""
        pushes = self.exchange.drain_pushes()
        if not pushes or not self._connections:
            return
        keys: set[SubKey] = set()
        limits: dict[str, set[int]] = {}
        users: set[str] = set()
        for conn in self._connections:
            session = conn.session
            keys.update(session.subscriptions)
            for (channel, symbol, _), options in session.subscriptions.items():
                if channel == "depth.full" and symbol is not None:
                    limits.setdefault(symbol, set()).add(options.limit)
            if session.user is not None:
                users.add(session.user)
        frames = render_batch(
            pushes,
            self.exchange,
            self.exchange_now(),
            skip_commit=self.faults.take_depth_gap,
            full_limits=limits,
            public_keys=keys,
            users=users,
        )
        connections = list(self._connections)
        for frame in frames:
            for conn in connections:
                compressed = conn.session.wants(frame)
                if compressed is not None:
                    conn.offer(frame.payload(compressed))

    def drop_connections(self, code: int = 1001, reason: str = "dropped by fault") -> int:
        """Close every WebSocket connection now; returns how many there were."""
        connections = list(self._connections)
        for conn in connections:
            conn.drop(code, reason)
        return len(connections)

    # ---------------------------------------------------------------------- driver

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drive the market, tick the exchange and fan out, until cancelled."""
        start = trio.current_time()
        next_step = start + self.step_s
        next_tick = start + self.ticker_every_s
        next_drop: float | None = None
        task_status.started()
        while True:  # ends on cancellation
            await trio.sleep_until(next_step)
            t = trio.current_time()
            next_step = max(next_step + self.step_s, t)
            now = self.exchange_now()
            if self.drive_market:
                self.market.step(now)
            if t >= next_tick:
                self.exchange.tick(now)
                next_tick = max(next_tick + self.ticker_every_s, t)
            self.publish()
            every = self.faults.ws_drop_every_s
            if every is None:
                next_drop = None
            elif next_drop is None:
                next_drop = t + every
            elif t >= next_drop:
                self.drop_connections(1001, f"dropped by fault (every {every:g} s)")
                next_drop = t + every

    # ------------------------------------------------------------------------ REST

    async def serve_rest(self, request: RestRequest) -> RestOutcome:
        """Answer one REST request, faults included (see :mod:`adapters.mexc.sim.faults`)."""
        if request.path.rstrip("/") == ADMIN_PATH:
            return RestOutcome(self._admin(request))
        faults = self.faults
        server_ms = self.server_ms()
        if faults.order_404 and request.path.startswith(_ORDER_PREFIX):
            return RestOutcome(not_found(request.path, server_ms))
        covered = faults.applies_to(request.path)
        if covered:
            if faults.take_rest_drop():
                return RestOutcome(None, drop=faults.rest_drop_mode)
            status = faults.take_5xx()
            if status is not None:
                body = _5XX_BODY.format(status=status)
                return RestOutcome(RestReply(status, body, "text/html"))
            if faults.take_rate_limit():
                refused = error_envelope(510, "Requests are too frequent!")
                return RestOutcome(RestReply(200, refused))
        reply = self.api.handle(
            request, self.exchange_now(), server_ms, limit_ms=self.limit_now()
        )
        self.publish()
        if covered and faults.take_rest_drop_after():
            return RestOutcome(None, drop=faults.rest_drop_mode)
        return RestOutcome(reply, faults.rest_delay_s if covered else 0.0)

    def _admin(self, request: RestRequest) -> RestReply:
        if not is_loopback(request.client):
            return RestReply(403, dumps({"ok": False, "error": "loopback clients only"}))
        if request.method == "GET":
            return RestReply(200, dumps({"ok": True, "faults": self.faults.switches()}))
        if request.method != "POST":
            return RestReply(405, dumps({"ok": False, "error": "use GET or POST"}))
        try:
            changes = orjson.loads(request.body or b"{}")
        except orjson.JSONDecodeError:
            return RestReply(400, dumps({"ok": False, "error": "body must be a JSON object"}))
        if not isinstance(changes, dict):
            return RestReply(400, dumps({"ok": False, "error": "body must be a JSON object"}))
        drop_now = changes.pop("drop_ws_now", False) is True
        clear = changes.pop("clear", False) is True
        try:
            if clear:
                self.faults.clear()
            self.faults.update(changes)
        except FaultUpdateError as exc:
            return RestReply(400, dumps({"ok": False, "error": str(exc)}))
        dropped = self.drop_connections() if drop_now else 0
        body = {"ok": True, "faults": self.faults.switches(), "dropped_ws": dropped}
        return RestReply(200, dumps(body))

    async def rest_handler(self, request: httpx.Request) -> httpx.Response:
        """An async handler for ``httpx.MockTransport``: the REST API in process.

        Faults that drop an answer raise what httpx raises on a real connection:
        ``httpx.ReadTimeout`` (after the request's read timeout, in trio time) or
        ``httpx.RemoteProtocolError``. A delay longer than the read timeout is a
        ``ReadTimeout`` too, as it would be over a socket.
        """
        body = await request.aread()
        path, _, query = request.url.raw_path.partition(b"?")
        outcome = await self.serve_rest(
            RestRequest(
                request.method,
                path.decode("ascii"),
                query.decode("ascii"),
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        read_timeout = request.extensions.get("timeout", {}).get("read")
        if outcome.delay_s:
            if read_timeout is not None and outcome.delay_s >= read_timeout:
                await trio.sleep(read_timeout)
                raise httpx.ReadTimeout(
                    "simulated: the answer came later than the read timeout", request=request
                )
            await trio.sleep(outcome.delay_s)
        if outcome.drop == "close":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if outcome.reply is None:
            await trio.sleep(read_timeout if read_timeout is not None else self.drop_hold_s)
            raise httpx.ReadTimeout("simulated: the answer was dropped", request=request)
        reply = outcome.reply
        return httpx.Response(
            reply.status,
            content=reply.body.encode(),
            headers={"content-type": reply.content_type},
            request=request,
        )

    # -------------------------------------------------------------------------- WS

    def new_session(self) -> WsSession:
        """The protocol state of a new WebSocket connection."""
        return WsSession(self.exchange, self._accounts)

    async def serve_ws(self, socket: ServerSocket) -> None:
        """Serve one WebSocket connection over ``socket`` until it ends."""
        await serve_connection(
            socket,
            self.new_session(),
            server_ms=self.server_ms,
            answer_pings=lambda: not self.faults.silent_pongs,
            ping_timeout=self.ping_timeout_s,
            outbox_size=self.outbox_size,
            register=self._connections.add,
            unregister=self._connections.discard,
        )

    @asynccontextmanager
    async def ws_connect(self, url: str) -> AsyncIterator[MemoryClientTransport]:
        """``connect`` for ``open_mexc_ws``: an in-memory connection to this simulator.

        Any host is accepted; the path must be ``/edge`` (else ``OSError``, as a refused
        upgrade would be). The server side runs in a nursery owned by this context.
        """
        path = urlsplit(url).path or "/"
        if path.rstrip("/") != WS_PATH:
            raise OSError(f"no WebSocket endpoint at {path!r} (use {WS_PATH})")
        client, server = memory_pipe()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.serve_ws, server)
                try:
                    yield client
                finally:
                    await client.aclose()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # the caller's own exception, not a group
            leaf = single_exception(group)
            if leaf is None:
                raise
            reraise(leaf)

    @property
    def asgi_app(self) -> Any:
        """This simulator as an ASGI 3 application (HTTP, WebSocket, lifespan)."""
        from adapters.mexc.sim.asgi import build_asgi_app

        return build_asgi_app(self)
