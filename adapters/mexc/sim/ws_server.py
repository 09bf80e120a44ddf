"""Serving one WebSocket connection of the simulator, and the in-memory transport (shell).

:func:`serve_connection` runs one connection over any :class:`ServerSocket` (an in-memory
pipe here, an ASGI WebSocket in :mod:`adapters.mexc.sim.asgi`) with three tasks in one
nursery: the *reader* feeds client frames to the connection's
:class:`~adapters.mexc.sim.ws_api.WsSession` and queues the answers; the *writer* drains the
connection's outbox (answers and fanned-out pushes, in order) to the socket; the *watchdog*
closes the connection when no ``ping`` arrived for ``ping_timeout`` seconds (MEXC: 60 s).
Whichever ends first ends the others. The outbox is bounded: a client that does not keep
up is disconnected (close code 1008) rather than slowing the exchange down.

:func:`memory_pipe` makes a connected (client, server) pair backed by trio memory channels;
the client end meets :class:`adapters.mexc.ws_transport.WsTransport`, so
``open_mexc_ws(url, connect=sim.ws_connect)`` runs against the simulator in virtual time.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

import trio
from attrs import frozen
from trio_websocket import CloseReason, ConnectionClosed

from adapters.mexc.sim.ws_api import WsSession

__all__ = [
    "ClientGone",
    "MemoryClientTransport",
    "MemoryServerSocket",
    "ServerSocket",
    "WsConnection",
    "memory_pipe",
    "serve_connection",
]

SLOW_CONSUMER_CODE = 1008
"""Close code for a client whose outbox overflowed."""


class ClientGone(Exception):
    """The client closed the connection or it broke."""


class ServerSocket(Protocol):
    """The server's end of one WebSocket connection."""

    async def receive(self) -> str | bytes:
        """The next client frame; raises :class:`ClientGone` once the client is gone."""
        ...

    async def send(self, message: str | bytes) -> None:
        """Send one frame (text for ``str``, binary for ``bytes``); may raise ClientGone."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the connection (idempotent)."""
        ...


# ------------------------------------------------------------------- in-memory transport


@frozen
class _Close:
    code: int
    reason: str | None


_Item = str | bytes | _Close
_GONE = (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError)


class MemoryClientTransport:
    """The client end of :func:`memory_pipe` (a ``WsTransport``: get/send/aclose)."""

    def __init__(
        self, outgoing: trio.MemorySendChannel[_Item], incoming: trio.MemoryReceiveChannel[_Item]
    ) -> None:
        self._out = outgoing
        self._in = incoming
        self._reason: CloseReason | None = None

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the connection closed (None while open)."""
        return self._reason

    async def get_message(self) -> str | bytes:
        """The next server frame; raises ``trio_websocket.ConnectionClosed`` once closed."""
        if self._reason is not None:
            raise ConnectionClosed(self._reason)
        try:
            item = await self._in.receive()
        except _GONE:
            if self._reason is None:
                self._reason = CloseReason(1006, "connection lost")
            raise ConnectionClosed(self._reason) from None
        if isinstance(item, _Close):
            self._reason = CloseReason(item.code, item.reason)
            self._out.close()
            self._in.close()
            raise ConnectionClosed(self._reason)
        return item

    async def send_message(self, message: str | bytes) -> None:
        """Send one frame to the server."""
        if self._reason is not None:
            raise ConnectionClosed(self._reason)
        try:
            await self._out.send(message)
        except _GONE:
            self._reason = self._reason or CloseReason(1006, "connection lost")
            raise ConnectionClosed(self._reason) from None

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close from the client side (idempotent; a pending ``get_message`` raises)."""
        if self._reason is None:
            self._reason = CloseReason(code, reason)
            try:
                self._out.send_nowait(_Close(code, reason))
            except (trio.WouldBlock, *_GONE):
                pass
        self._out.close()
        self._in.close()
        await trio.lowlevel.checkpoint()


class MemoryServerSocket:
    """The server end of :func:`memory_pipe`."""

    def __init__(
        self, outgoing: trio.MemorySendChannel[_Item], incoming: trio.MemoryReceiveChannel[_Item]
    ) -> None:
        self._out = outgoing
        self._in = incoming

    async def receive(self) -> str | bytes:
        """The next client frame; :class:`ClientGone` once the client closed."""
        try:
            item = await self._in.receive()
        except _GONE:
            raise ClientGone from None
        if isinstance(item, _Close):
            raise ClientGone
        return item

    async def send(self, message: str | bytes) -> None:
        """Send one frame to the client."""
        try:
            await self._out.send(message)
        except _GONE:
            raise ClientGone from None

    async def close(self, code: int, reason: str) -> None:
        """Tell the client the connection is closed, then close both directions."""
        try:
            self._out.send_nowait(_Close(code, reason))
        except (trio.WouldBlock, *_GONE):
            pass
        self._out.close()
        self._in.close()
        await trio.lowlevel.checkpoint()


def memory_pipe(buffer: int = 256) -> tuple[MemoryClientTransport, MemoryServerSocket]:
    """A connected (client, server) pair of in-memory WebSocket ends."""
    to_server, from_client = trio.open_memory_channel[_Item](buffer)
    to_client, from_server = trio.open_memory_channel[_Item](buffer)
    return (
        MemoryClientTransport(to_server, from_server),
        MemoryServerSocket(to_client, from_client),
    )


# ------------------------------------------------------------------------- a connection


class WsConnection:
    """One connection being served: its session, bounded outbox and cancel scope."""

    def __init__(self, session: WsSession, outbox_size: int) -> None:
        self.session = session
        self.outbox, self._outbox_out = trio.open_memory_channel[str | bytes](outbox_size)
        self.scope = trio.CancelScope()
        self.close_code = 1000
        self.close_reason = "closed by server"
        self.last_ping = trio.current_time()
        self.client_left = False

    def offer(self, payload: str | bytes) -> None:
        """Queue one frame without waiting; a full outbox disconnects the client."""
        try:
            self.outbox.send_nowait(payload)
        except trio.WouldBlock:
            self.drop(SLOW_CONSUMER_CODE, "slow consumer: outbox full")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def drop(self, code: int, reason: str) -> None:
        """End the connection from the server side with ``code`` and ``reason``."""
        if not self.scope.cancel_called:
            self.close_code, self.close_reason = code, reason
        self.scope.cancel()


def _text(message: str | bytes) -> str:
    if isinstance(message, str):
        return message
    try:
        return zlib.decompress(message, wbits=47).decode()
    except (zlib.error, UnicodeDecodeError):
        return message.decode("utf-8", errors="replace")


async def serve_connection(
    socket: ServerSocket,
    session: WsSession,
    *,
    server_ms: Callable[[], int],
    answer_pings: Callable[[], bool],
    ping_timeout: float,
    outbox_size: int,
    register: Callable[[WsConnection], None],
    unregister: Callable[[WsConnection], None],
) -> None:
    """Serve one connection until the client leaves, the watchdog fires or it is dropped."""
    conn = WsConnection(session, outbox_size)
    register(conn)

    async def reader() -> None:
        while True:  # ends when the client goes (or on cancel)
            try:
                message = await socket.receive()
            except ClientGone:
                conn.client_left = True
                conn.scope.cancel()
                return
            pings = session.pings
            for reply in session.receive(_text(message), server_ms(), answer_pings=answer_pings()):
                conn.offer(reply)
            if session.pings != pings:
                conn.last_ping = trio.current_time()

    async def writer() -> None:
        async with conn._outbox_out:
            async for payload in conn._outbox_out:  # ends on cancel
                try:
                    await socket.send(payload)
                except ClientGone:
                    conn.client_left = True
                    conn.scope.cancel()
                    return

    async def watchdog() -> None:
        while True:  # ends when it closes the connection (or on cancel)
            deadline = conn.last_ping + ping_timeout
            if trio.current_time() >= deadline:
                conn.drop(1000, f"no ping for {ping_timeout:g} s")
                return
            await trio.sleep_until(deadline)

    try:
        with conn.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                nursery.start_soon(writer)
                nursery.start_soon(watchdog)
    finally:
        unregister(conn)
        conn.outbox.close()
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await socket.close(conn.close_code, conn.close_reason)
