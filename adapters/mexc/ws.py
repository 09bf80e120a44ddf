"""One MEXC Futures WebSocket connection (shell): login, subscriptions, keepalive, raw frames.

Theory of operation. :func:`open_mexc_ws` connects through an injectable ``connect``
(:func:`~adapters.mexc.ws_transport.open_websocket_transport` by default; tests pass
in-memory fakes), then, in
order: starts the *reader*; if credentials were given sends ``login`` and waits for
``rs.login`` (``rs.error`` raises :class:`WsLoginFailed`); sends ``personal.filter``; sends the
subscriptions; starts the *keepalive*; and yields a :class:`MexcWsConnection`.

* The reader task is the only caller of ``transport.get_message()``. It stamps each message
  with the injected clock the moment it arrives, gunzips binary frames when ``gzip`` was
  asked for, notes pongs, and hands a :class:`RawFrame` to a bounded memory channel that
  :meth:`MexcWsConnection.receive` (and ``async for``) drains. Frames seen while waiting for
  ``rs.login`` (including the ``rs.login`` frame itself) are kept and yielded first, so the
  caller can journal every frame. A slow consumer fills the channel, which stops the reader:
  keep up, or the pong watchdog will fire.
* The keepalive task sends ``{"method":"ping"}`` every ``ping_interval`` seconds and, unless
  ``pong_timeout`` is None, closes the connection with :class:`WsPongTimeout` when no
  ``pong`` has arrived for ``pong_timeout`` seconds (default 2 × ``ping_interval``).
* Every outbound message (pings included) goes through one FIFO lock and a token bucket
  (:class:`~adapters.mexc.ws_transport.SendThrottle`, default 20 msg/s with a burst of 10),
  so the exchange never sees a flood.
* Scheduling (ping times, timeouts, throttling) uses trio's monotonic clock, which is virtual
  under ``autojump_clock``; timestamps exposed to the caller come from the injected
  :class:`~engine.clock.Clock` (use ``TrioClock`` in virtual-time tests).
* Background tasks never raise into the caller's code; they record the failure, stop, and
  :meth:`MexcWsConnection.receive` raises it. A disconnect is :class:`WsDisconnected`
  (``reason``, ``code``). This object never reconnects: the owner (the market-data manager)
  catches the error, journals it, and opens a new connection.
* Nothing here logs or stores message text, the secret, or the login signature.

Errors::

    MexcError                    (adapters.mexc.errors)
    └── WsError                  anything on the WebSocket connection
        ├── WsConnectFailed      TCP/TLS/HTTP handshake failed          retryable
        ├── WsDisconnected       the connection is gone (reason, code)  retryable
        │   └── WsPongTimeout    no pong in time; we closed it          retryable
        ├── WsLoginFailed        rs.error answering login               rejected
        │                        (no answer in time: retryable)
        └── WsProtocolError      (+ DecodeError) a frame broke the contract,
                                 e.g. binary without gzip; the connection
                                 stays usable
"""

from __future__ import annotations

import collections
import json
import logging
import math
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any, Literal, NoReturn, Protocol

import attrs
import trio
import trio_websocket

from adapters.mexc.errors import Classification, DecodeError, MexcError
from adapters.mexc.ws_messages import (
    FilterSpec,
    channel_of,
    login,
    personal_filter,
    ping,
    sub,
    unsub,
)
from adapters.mexc.ws_transport import (
    DEFAULT_MAX_FRAME_BYTES,
    Connect,
    SendThrottle,
    WsTransport,
    decompress_frame,
    open_websocket_transport,
    reraise,
    single_exception,
)
from engine.clock import Clock

__all__ = [
    "AUTO",
    "Credentials",
    "MexcWsConnection",
    "RawFrame",
    "Subscription",
    "WsConnectFailed",
    "WsDisconnected",
    "WsError",
    "WsLoginFailed",
    "WsPongTimeout",
    "WsProtocolError",
    "WsStatistics",
    "open_mexc_ws",
]

log = logging.getLogger(__name__)

# -- errors ---------------------------------------------------------------------------------


class WsError(MexcError):
    """Root of the WebSocket connection's errors."""


class WsConnectFailed(WsError):
    """The connection could not be opened (DNS, TCP, TLS or the HTTP upgrade failed)."""

    classification = Classification.RETRYABLE

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"could not connect to {url}: {reason}")
        self.url = url
        self.reason = reason


class WsDisconnected(WsError):
    """The connection is gone. ``code`` is the WebSocket close code when there was one.

    ``local`` is True when this side closed it on purpose (:meth:`MexcWsConnection.close`).
    Requests sent just before a disconnect may or may not have been acted on; a subscriber
    simply reconnects and subscribes again.
    """

    classification = Classification.RETRYABLE

    def __init__(self, reason: str, code: int | None = None, *, local: bool = False) -> None:
        suffix = "" if code is None else f" (code {code})"
        super().__init__(f"websocket disconnected: {reason}{suffix}")
        self.reason = reason
        self.code = code
        self.local = local


class WsPongTimeout(WsDisconnected):
    """No ``pong`` arrived for ``timeout`` seconds; the connection was closed by us."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no pong for {timeout:g} s", 4000)
        self.timeout = timeout


class WsLoginFailed(WsError):
    """``login`` was refused (``rs.error``; ``detail`` is the server's text, ``REJECTED``) or
    not answered in time (``RETRYABLE``)."""

    def __init__(self, detail: str, *, refused: bool = True) -> None:
        super().__init__(f"websocket login failed: {detail}")
        self.detail = detail
        self.classification = Classification.REJECTED if refused else Classification.RETRYABLE


class WsProtocolError(WsError, DecodeError):
    """A frame broke the contract (binary frame without gzip, bad gzip, not UTF-8).

    Raised by :meth:`MexcWsConnection.receive` in the frame's place; the connection itself
    stays open, so the caller may record it and keep receiving. Also a ``DecodeError``
    (``where`` is ``"ws frame"``).
    """

    def __init__(self, reason: str, received_ns: int) -> None:
        DecodeError.__init__(self, "ws frame", reason)
        self.received_ns = received_ns


# -- values ---------------------------------------------------------------------------------


@attrs.frozen
class RawFrame:
    """One inbound message: its text (decompressed when it came gzipped), when it arrived
    (ns from the injected clock), and whether it came as a compressed binary frame."""

    text: str
    received_ns: int
    compressed: bool = False


@attrs.frozen
class WsStatistics:
    """A snapshot of one connection's counters (see :meth:`MexcWsConnection.statistics`)."""

    frames_received: int
    bytes_received: int
    compressed_frames: int
    frames_sent: int
    bytes_sent: int
    pings_sent: int
    pongs_received: int
    protocol_errors: int
    connected_ns: int
    last_received_ns: int | None
    last_pong_ns: int | None


@attrs.frozen
class Subscription:
    """A public subscription: ``Subscription("deal", {"symbol": "BTC_USDT"})``.

    Rendered by the connection with its own ``gzip`` choice; validated on construction.
    """

    channel: str
    params: tuple[tuple[str, object], ...] = attrs.field(
        default=(), converter=lambda p: tuple(sorted(dict(p).items()))
    )

    def __attrs_post_init__(self) -> None:
        self.sub_text()

    def sub_text(self, gzip: bool | None = None) -> str:
        """The ``sub.*`` request text."""
        params: dict[str, Any] = dict(self.params)
        return sub(self.channel, gzip=gzip, **params)

    def unsub_text(self) -> str:
        """The ``unsub.*`` request text."""
        params: dict[str, Any] = dict(self.params)
        return unsub(self.channel, **params)


class _RevealsSecret(Protocol):
    def reveal(self) -> str: ...


class Credentials(Protocol):
    """Anything with ``api_key`` and ``secret`` (a str, or a wrapper with ``reveal()`` such
    as :class:`adapters.mexc.auth.Secret`); read only to sign ``login``, never stored."""

    @property
    def api_key(self) -> str:
        """The public API key."""
        ...

    @property
    def secret(self) -> str | _RevealsSecret:
        """The secret key; used once to sign, never logged, stored or repr'd."""
        ...


def _secret_text(secret: str | _RevealsSecret) -> str:
    return secret if isinstance(secret, str) else secret.reveal()


_GONE = (
    trio_websocket.ConnectionClosed,
    trio.EndOfChannel,
    trio.ClosedResourceError,
    trio.BrokenResourceError,
)


def _disconnected(exc: BaseException) -> WsDisconnected:
    if isinstance(exc, trio_websocket.ConnectionClosed) and exc.reason is not None:
        return WsDisconnected(exc.reason.reason or exc.reason.name, exc.reason.code)
    return WsDisconnected(f"transport closed ({type(exc).__name__})")


# -- the connection -------------------------------------------------------------------------


class MexcWsConnection:
    """An open MEXC WebSocket; made by :func:`open_mexc_ws`, valid inside its ``async with``.

    ``await conn.receive()`` or ``async for frame in conn`` yields :class:`RawFrame` values in
    arrival order; ``await conn.send(text)`` sends through the throttle; ``await conn.close()``
    ends it (iteration then stops; ``receive`` raises a ``local`` :class:`WsDisconnected`).
    """

    def __init__(
        self,
        transport: WsTransport,
        *,
        url: str,
        clock: Clock,
        gzip: bool,
        ping_interval: float,
        pong_timeout: float | None,
        throttle: SendThrottle,
        buffer_size: int,
        close_timeout: float,
        max_frame_bytes: int,
    ) -> None:
        self.url = url
        self.gzip = gzip
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self._transport = transport
        self._clock = clock
        self._throttle = throttle
        self._close_timeout = close_timeout
        self._max_frame_bytes = max_frame_bytes
        self._frames_in, self._frames_out = trio.open_memory_channel[RawFrame | WsError](
            buffer_size
        )
        self._pending: collections.deque[RawFrame | WsError] = collections.deque()
        self._send_lock = trio.Lock()
        self._reader_scope = trio.CancelScope()
        self._keepalive_scope = trio.CancelScope()
        self._error: WsDisconnected | None = None
        self._closing = False
        self._connected_ns = clock.time_ns()
        self._last_pong_at = trio.current_time()  # monotonic, for the watchdog
        self._last_received_ns: int | None = None
        self._last_pong_ns: int | None = None
        self._frames_received = 0
        self._bytes_received = 0
        self._compressed_frames = 0
        self._frames_sent = 0
        self._bytes_sent = 0
        self._pings_sent = 0
        self._pongs_received = 0
        self._protocol_errors = 0

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<MexcWsConnection {self.url} {state}>"

    # -- state ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection failed or :meth:`close` was called."""
        return self._closing or self._error is not None

    @property
    def error(self) -> WsDisconnected | None:
        """Why the connection ended, once it has (None while open or after a local close)."""
        return None if self._error is not None and self._error.local else self._error

    @property
    def connected_ns(self) -> int:
        """When the connection was opened (injected clock, ns)."""
        return self._connected_ns

    @property
    def last_received_ns(self) -> int | None:
        """When the last frame of any kind arrived (injected clock, ns); None before any."""
        return self._last_received_ns

    @property
    def last_pong_ns(self) -> int | None:
        """When the last ``pong`` arrived (injected clock, ns); None before any."""
        return self._last_pong_ns

    def statistics(self) -> WsStatistics:
        """A snapshot of the counters."""
        return WsStatistics(
            frames_received=self._frames_received,
            bytes_received=self._bytes_received,
            compressed_frames=self._compressed_frames,
            frames_sent=self._frames_sent,
            bytes_sent=self._bytes_sent,
            pings_sent=self._pings_sent,
            pongs_received=self._pongs_received,
            protocol_errors=self._protocol_errors,
            connected_ns=self._connected_ns,
            last_received_ns=self._last_received_ns,
            last_pong_ns=self._last_pong_ns,
        )

    # -- receiving --------------------------------------------------------------------------

    async def receive(self) -> RawFrame:
        """The next frame. Raises :class:`WsDisconnected` once the connection is gone (after
        every frame that arrived before is delivered), :class:`WsProtocolError` for a bad
        frame (then carry on receiving)."""
        if self._pending:
            item = self._pending.popleft()
        else:
            try:
                item = await self._frames_out.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                self._raise_terminal()
        if isinstance(item, WsError):
            raise item
        return item

    def __aiter__(self) -> MexcWsConnection:
        return self

    async def __anext__(self) -> RawFrame:
        try:
            return await self.receive()
        except WsDisconnected as exc:
            if exc.local:
                raise StopAsyncIteration from None
            raise

    def _raise_terminal(self) -> NoReturn:
        error = self._error or WsDisconnected("closed by client", 1000, local=True)
        raise error.with_traceback(None)

    def _fail(self, error: WsDisconnected) -> None:
        if self._error is None:
            self._error = error
        self._reader_scope.cancel()
        self._keepalive_scope.cancel()

    async def _run_reader(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Pump transport messages into the frame channel until the connection ends."""
        with self._reader_scope, self._frames_in:
            task_status.started()
            try:
                while True:  # ends when the transport does, or on close()/failure (cancel)
                    message = await self._transport.get_message()
                    item = self._frame(message, self._clock.time_ns())
                    await self._frames_in.send(item)
            except _GONE as exc:
                self._fail(
                    WsDisconnected("closed by client", 1000, local=True)
                    if self._closing
                    else _disconnected(exc)
                )

    def _frame(self, message: str | bytes, now_ns: int) -> RawFrame | WsError:
        self._frames_received += 1
        self._last_received_ns = now_ns
        if isinstance(message, str):
            self._bytes_received += len(message.encode())
            self._note_pong(message, now_ns)
            return RawFrame(message, now_ns, False)
        self._bytes_received += len(message)
        if not self.gzip:
            self._protocol_errors += 1
            return WsProtocolError(
                f"binary frame of {len(message)} bytes but gzip was not requested", now_ns
            )
        try:
            text = decompress_frame(message, self._max_frame_bytes)
        except ValueError as exc:
            self._protocol_errors += 1
            return WsProtocolError(str(exc), now_ns)
        self._compressed_frames += 1
        self._note_pong(text, now_ns)
        return RawFrame(text, now_ns, True)

    def _note_pong(self, text: str, now_ns: int) -> None:
        # Cheap substring test first: only a frame that could be a pong is parsed.
        if '"pong"' in text and channel_of(text) == "pong":
            self._pongs_received += 1
            self._last_pong_ns = now_ns
            self._last_pong_at = trio.current_time()

    # -- sending ----------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        """Send one text frame, after the throttle allows it; FIFO among concurrent senders.

        Raises :class:`WsDisconnected` when the connection is gone. Never logs ``text``.
        """
        await self._send(text, is_ping=False)

    async def subscribe(self, channel: str, **params: object) -> None:
        """Send ``sub.<channel>`` with this connection's ``gzip`` choice."""
        await self.send(sub(channel, gzip=self.gzip, **params))

    async def unsubscribe(self, channel: str, **params: object) -> None:
        """Send ``unsub.<channel>``."""
        await self.send(unsub(channel, **params))

    async def _send(self, text: str, *, is_ping: bool) -> None:
        if not isinstance(text, str):
            raise TypeError(f"send() takes the JSON text (str), got {type(text).__name__}")
        async with self._send_lock:
            if self.closed:
                self._raise_terminal()
            await self._throttle.acquire()
            try:
                await self._transport.send_message(text)
            except _GONE as exc:
                self._fail(_disconnected(exc))
                self._raise_terminal()
            self._frames_sent += 1
            self._bytes_sent += len(text.encode())
            if is_ping:
                self._pings_sent += 1

    # -- keepalive --------------------------------------------------------------------------

    async def _run_keepalive(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Ping every ``ping_interval`` s; close with WsPongTimeout when pongs stop."""
        with self._keepalive_scope:
            task_status.started()
            start = trio.current_time()
            self._last_pong_at = max(self._last_pong_at, start)  # the watchdog starts now
            next_ping = start + self.ping_interval
            while True:  # ends on cancel (close/failure) or pong timeout
                deadline = next_ping
                if self.pong_timeout is not None:
                    deadline = min(deadline, self._last_pong_at + self.pong_timeout)
                await trio.sleep_until(deadline)
                now = trio.current_time()
                if self.pong_timeout is not None and now >= self._last_pong_at + self.pong_timeout:
                    log.warning(
                        "mexc ws %s: no pong for %g s, closing", self.url, self.pong_timeout
                    )
                    self._fail(WsPongTimeout(self.pong_timeout))
                    await self._close_transport(4000, "pong timeout")
                    return
                if now >= next_ping:
                    try:
                        await self._send(ping(), is_ping=True)
                    except WsDisconnected:
                        return  # the reader reports it
                    next_ping = max(next_ping + self.ping_interval, trio.current_time())

    # -- closing ----------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection (idempotent, bounded by ``close_timeout``, shielded)."""
        if self.closed:
            return
        self._closing = True
        self._fail(WsDisconnected("closed by client", code, local=True))
        await self._close_transport(code, reason)

    async def _close_transport(self, code: int, reason: str | None) -> None:
        cancelled = trio.current_effective_deadline() == -math.inf
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(0.05 if cancelled else self._close_timeout),
            suppress(*_GONE),
        ):
            await self._transport.aclose(code, reason)

    # -- start-up ---------------------------------------------------------------------------

    async def _login(self, credentials: Credentials, subscribe: bool, timeout: float) -> None:
        secret = _secret_text(credentials.secret)
        await self.send(login(credentials.api_key, secret, self._clock.time_ms(), subscribe))
        with trio.move_on_after(timeout):
            while True:  # bounded by the timeout
                item = await self._next_raw()
                self._pending.append(item)
                if isinstance(item, WsError):
                    continue
                channel = channel_of(item.text)
                if channel == "rs.login":
                    return
                if channel == "rs.error":
                    raise WsLoginFailed(_error_detail(item.text))
        raise WsLoginFailed(f"no rs.login within {timeout:g} s", refused=False)

    async def _next_raw(self) -> RawFrame | WsError:
        try:
            return await self._frames_out.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self._raise_terminal()


def _error_detail(text: str) -> str:
    try:
        data = json.loads(text).get("data")
    except (ValueError, AttributeError):
        return text[:200]
    return str(data)[:200]


AUTO: Literal["auto"] = "auto"
"""``pong_timeout=AUTO`` (the default) means ``2 * ping_interval``."""


@asynccontextmanager
async def open_mexc_ws(
    url: str,
    *,
    clock: Clock,
    credentials: Credentials | None = None,
    subscriptions: Iterable[str | Subscription] = (),
    login_subscribe: bool = True,
    personal_filters: FilterSpec | None = None,
    ping_interval: float = 15.0,
    pong_timeout: float | Literal["auto"] | None = AUTO,
    gzip: bool = False,
    connect: Connect | None = None,
    send_rate: float = 20.0,
    send_burst: int = 10,
    login_timeout: float = 10.0,
    close_timeout: float = 5.0,
    buffer_size: int = 1024,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> AsyncIterator[MexcWsConnection]:
    """Open, log in, filter, subscribe, keep alive; yield the :class:`MexcWsConnection`.

    ``subscriptions`` are request texts (sent verbatim) or :class:`Subscription` values
    (rendered with ``"gzip": <gzip>``). ``pong_timeout`` defaults to ``2 * ping_interval``;
    None disables the watchdog. ``connect(url)`` must return an async context manager
    yielding a :class:`WsTransport`. Exceptions leave as themselves, never as a group.
    """
    if not ping_interval > 0:
        raise ValueError(f"ping_interval must be > 0 s, got {ping_interval!r}")
    timeout = 2 * ping_interval if pong_timeout == AUTO else pong_timeout
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
    ):
        raise ValueError(f"pong_timeout must be > 0 s or None, got {pong_timeout!r}")
    if not isinstance(gzip, bool):
        raise ValueError(f"gzip must be a bool, got {gzip!r}")
    if personal_filters is not None and credentials is None:
        raise ValueError("personal_filters needs credentials (private streams need a login)")
    texts = [s.sub_text(gzip) if isinstance(s, Subscription) else s for s in subscriptions]
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"a subscription is a str or a Subscription, got {text!r}")
    filter_text = None if personal_filters is None else personal_filter(personal_filters)
    throttle = SendThrottle(send_rate, send_burst)
    opener: Connect = connect if connect is not None else open_websocket_transport

    async with AsyncExitStack() as stack:
        try:
            transport = await stack.enter_async_context(opener(url))
        except (trio_websocket.HandshakeError, OSError, trio.TooSlowError) as exc:
            raise WsConnectFailed(url, str(exc) or type(exc).__name__) from exc
        conn = MexcWsConnection(
            transport,
            url=url,
            clock=clock,
            gzip=gzip,
            ping_interval=float(ping_interval),
            pong_timeout=None if timeout is None else float(timeout),
            throttle=throttle,
            buffer_size=buffer_size,
            close_timeout=close_timeout,
            max_frame_bytes=max_frame_bytes,
        )
        log.debug("mexc ws %s: connected", url)
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(conn._run_reader)
                    if credentials is not None:
                        await conn._login(credentials, login_subscribe, login_timeout)
                    if filter_text is not None:
                        await conn.send(filter_text)
                    for text in texts:
                        await conn.send(text)
                    await nursery.start(conn._run_keepalive)
                    yield conn
                finally:
                    await conn.close()
        except BaseExceptionGroup as group:
            leaf = single_exception(group)
            if leaf is None:
                raise
            reraise(leaf)
        finally:
            log.debug("mexc ws %s: closed (%s)", url, conn.error or "by client")
