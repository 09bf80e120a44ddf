"""The WebSocket transport seam (shell): the protocol a transport meets, the default
trio-websocket connector, the outbound throttle, and frame decompression.

:func:`open_websocket_transport` differs from ``trio_websocket.open_websocket_url`` in one
way that matters to a long-running engine: it owns the TCP/TLS stream and always closes
it, including after a server-initiated close (trio-websocket 0.12 leaves the client socket
to the garbage collector in that case, which shows up as a ``ResourceWarning``).
"""

from __future__ import annotations

import math
import ssl
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import NoReturn, Protocol
from urllib.parse import urlsplit

import trio
import trio_websocket

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "RECEIVE_BUFFER_BYTES",
    "Connect",
    "SendThrottle",
    "WsTransport",
    "decompress_frame",
    "open_websocket_transport",
]

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
"""The largest inflated frame :func:`decompress_frame` accepts by default (16 MiB)."""


RECEIVE_BUFFER_BYTES = 64 * 1024
"""How much :func:`open_websocket_transport` reads from the socket at a time. trio-websocket's
default, 4 KiB, is about five ~800-byte depth pushes; with 64 KiB a burst of pushes costed the
engine (reader tasks, sequencer, journal) about a third less CPU a frame in the engine
benchmark (a bare client reading the same burst gains nothing)."""


class WsTransport(Protocol):
    """What ``connect(url)`` yields: a ``trio_websocket.WebSocketConnection`` or a test fake.

    ``get_message`` raises ``trio_websocket.ConnectionClosed`` (or a trio channel/stream
    error) once the connection is gone; ``aclose`` is idempotent and makes a pending
    ``get_message`` raise likewise.
    """

    async def get_message(self) -> str | bytes:
        """The next message: ``str`` for a text frame, ``bytes`` for a binary one."""
        ...

    async def send_message(self, message: str | bytes) -> None:
        """Send one frame."""
        ...

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection with a WebSocket close code."""
        ...


Connect = Callable[[str], AbstractAsyncContextManager[WsTransport]]
"""``connect(url)``: an async context manager yielding a :class:`WsTransport`."""


def reraise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` from inside an ``except`` block without chaining the handled group."""
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context


def single_exception(group: BaseExceptionGroup) -> BaseException | None:
    """The one exception worth raising out of a nursery's ``group`` (``Cancelled`` only when
    nothing else is there), or None when it holds several real ones."""
    real = [e for e in group.exceptions if not isinstance(e, trio.Cancelled)]
    candidates = real if real else list(group.exceptions)
    if len(candidates) != 1:
        return None
    only = candidates[0]
    return single_exception(only) if isinstance(only, BaseExceptionGroup) else only


def _target(url: str) -> tuple[str, int, str, bool]:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a ws:// or wss:// URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, port, resource, secure


@asynccontextmanager
async def open_websocket_transport(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = 10.0,
    close_timeout: float = 5.0,
    max_message_size: int = 2**24,
    receive_buffer_size: int = RECEIVE_BUFFER_BYTES,
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """The default ``connect``: a trio-websocket client over a stream this function opens
    and always closes. Raises ``OSError``, ``trio.TooSlowError`` or
    ``trio_websocket.HandshakeError`` when the connection cannot be opened."""
    host, port, resource, secure = _target(url)
    host_header = host if port in (80, 443) else f"{host}:{port}"
    try:
        async with trio.open_nursery() as nursery:  # trio-websocket's reader task lives here
            with trio.fail_after(connect_timeout):
                stream: trio.abc.HalfCloseableStream | trio.SSLStream[trio.SocketStream]
                if secure:
                    context = ssl_context or ssl.create_default_context()
                    stream = await trio.open_ssl_over_tcp_stream(
                        host, port, ssl_context=context, https_compatible=True
                    )
                else:
                    stream = await trio.open_tcp_stream(host, port)
            try:
                with trio.fail_after(connect_timeout):
                    connection = await trio_websocket.wrap_client_stream(
                        nursery, stream, host_header, resource, max_message_size=max_message_size,
                        receive_buffer_size=receive_buffer_size,
                    )
                try:
                    yield connection
                finally:
                    # when we are being cancelled the reader task is gone too, so nobody
                    # would read the peer's close reply: don't wait for the handshake
                    wait = close_timeout if not _cancelled() else 0.05
                    with trio.CancelScope(shield=True), trio.move_on_after(wait):
                        await connection.aclose()
            finally:
                await trio.aclose_forcefully(stream)
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        leaf = single_exception(group)
        if leaf is None:
            raise
        reraise(leaf)


def _cancelled() -> bool:
    """True when the calling task's scope has been cancelled."""
    return trio.current_effective_deadline() == -math.inf


def decompress_frame(data: bytes, max_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> str:
    """Inflate a gzip (or zlib, or raw deflate) binary frame to text; ValueError if invalid.

    Refuses to inflate past ``max_bytes`` so that a hostile frame cannot exhaust memory.
    """
    for wbits in (47, -15):  # 47: gzip or zlib header, auto-detected; -15: raw deflate
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            out = inflater.decompress(data, max_bytes + 1)
        except zlib.error:
            continue
        if len(out) > max_bytes:
            raise ValueError(f"compressed frame inflates past {max_bytes} bytes")
        if not inflater.eof:
            raise ValueError("compressed frame is truncated")
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"decompressed frame is not UTF-8: {exc}") from None
    raise ValueError(f"binary frame of {len(data)} bytes is not gzip/zlib/deflate data")


class SendThrottle:
    """A token bucket for outbound messages (GCRA form), in trio time (virtual under autojump).

    ``rate`` messages per second on average, up to ``burst`` back to back. ``acquire`` books
    the next slot before sleeping, so concurrent callers are served in order without a loop.
    """

    def __init__(self, rate: float = 20.0, burst: int = 10) -> None:
        if isinstance(rate, bool) or not isinstance(rate, int | float):
            raise ValueError(f"rate must be a positive number of messages/s, got {rate!r}")
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of messages/s, got {rate!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"burst must be an int >= 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = -math.inf  # theoretical arrival time of the next message
        self.delayed = 0  # how many acquisitions had to wait

    async def acquire(self) -> None:
        """Wait until one more message may go out."""
        now = trio.current_time()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        delay = tat - self._tolerance - now
        if delay > 0:
            self.delayed += 1
            await trio.sleep(delay)
