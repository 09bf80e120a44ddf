"""The simulator as an ASGI application, and serving it on a real socket (shell).

:func:`build_asgi_app` adapts a :class:`~adapters.mexc.sim.service.SimService` to ASGI 3:
HTTP requests go to :meth:`SimService.serve_rest` (the client host is passed on, so the
fault admin endpoint answers loopback clients only; a body longer than
:data:`~adapters.mexc.sim.rest_api.MAX_BODY_BYTES` is answered 413 as soon as its length is
declared or exceeded, without reading the rest), the WebSocket at ``/edge`` to the
connection runner, and lifespan events are acknowledged. A dropped answer is dropped for
real: ``"close"`` starts a response and closes the connection without its body (the
client sees a protocol error); ``"timeout"`` answers nothing until the client gives up
(bounded by ``SimService.drop_hold_s``).

:func:`serve_sim` serves it with hypercorn's trio worker on loopback (another address only
with ``allow_remote=True``) and reports the bound port through ``task_status``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from adapters.mexc.sim.rest_api import MAX_BODY_BYTES, RestReply, RestRequest, not_found
from adapters.mexc.sim.service import WS_PATH, SimService, is_loopback
from adapters.mexc.sim.ws_server import ClientGone

__all__ = ["build_asgi_app", "rest_base_url", "serve_sim", "ws_url"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def rest_base_url(host: str, port: int) -> str:
    """``http://HOST:PORT``: the REST base (paths start with ``/api/v1/...``)."""
    return f"http://{_host_for_url(host)}:{port}"


def ws_url(host: str, port: int) -> str:
    """``ws://HOST:PORT/edge``: the WebSocket URL."""
    return f"ws://{_host_for_url(host)}:{port}{WS_PATH}"


class _AsgiSocket:
    """The server end of an ASGI WebSocket as a ``ServerSocket``."""

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._closed = False

    async def receive(self) -> str | bytes:
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            return text if text is not None else bytes(message.get("bytes") or b"")
        self._closed = True
        raise ClientGone

    async def send(self, message: str | bytes) -> None:
        if self._closed:
            raise ClientGone
        event: Message = {"type": "websocket.send"}
        event["text" if isinstance(message, str) else "bytes"] = message
        try:
            await self._send(event)
        except Exception as exc:  # hypercorn raises when the client has gone
            self._closed = True
            raise ClientGone from exc

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except Exception:  # the client is gone already: nothing left to close
            log.debug("websocket close after the client left", exc_info=True)


class _TooLarge(Exception):
    """The request body is longer than ``MAX_BODY_BYTES``."""


async def _read_body(receive: Receive, declared: int | None) -> bytes | None:
    """The whole body, None on disconnect; :class:`_TooLarge` (before reading it all) when
    it is declared or turns out larger than ``MAX_BODY_BYTES``: memory stays bounded."""
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    while True:  # ends with the last body chunk, a disconnect, or too many bytes
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = bytes(message.get("body", b""))
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            return int(value) if value.isdigit() and len(value) < 20 else None
    return None


async def _http(service: SimService, scope: Scope, receive: Receive, send: Send) -> None:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    try:
        body = await _read_body(receive, _content_length(scope))
    except _TooLarge:
        path = raw_path.split(b"?", 1)[0].decode("latin-1")
        await _reply(send, not_found(path, service.server_ms(), 413))
        return
    if body is None:
        return
    client = scope.get("client")
    request = RestRequest(
        scope["method"],
        raw_path.split(b"?", 1)[0].decode("latin-1"),
        bytes(scope.get("query_string", b"")).decode("latin-1"),
        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        body,
        client[0] if client else None,
    )
    outcome = await service.serve_rest(request)
    if outcome.delay_s:
        await trio.sleep(outcome.delay_s)
    if outcome.drop == "close":
        # A promised body that never comes: the server closes the connection mid-answer.
        headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        return
    if outcome.reply is None:
        with trio.move_on_after(service.drop_hold_s):
            while True:  # wait for the client to give up (bounded by drop_hold_s)
                if (await receive())["type"] == "http.disconnect":
                    return
        return
    await _reply(send, outcome.reply)


async def _reply(send: Send, reply: RestReply) -> None:
    payload = reply.body.encode()
    headers = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _websocket(service: SimService, scope: Scope, receive: Receive, send: Send) -> None:
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    if scope["path"].rstrip("/") != WS_PATH:
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    await service.serve_ws(_AsgiSocket(receive, send))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:  # ends with the shutdown event
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_asgi_app(service: SimService) -> ASGIApp:
    """An ASGI 3 application serving ``service`` (see the module docstring)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await _http(service, scope, receive, send)
        elif kind == "websocket":
            await _websocket(service, scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    return app


async def serve_sim(
    service: SimService,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_remote: bool = False,
    run_market: bool = True,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service`` over HTTP and WebSocket on ``host:port`` until cancelled.

    ``port`` 0 picks a free port; ``task_status.started`` reports the bound port. Only
    loopback addresses are accepted unless ``allow_remote`` is True (the simulator has no
    TLS and its fault admin endpoint must not be reachable from elsewhere). With
    ``run_market`` the market driver (:meth:`SimService.run`) runs alongside.
    """
    if not allow_remote and not is_loopback(host):
        raise ValueError(f"refusing to bind {host!r}: not a loopback address (allow_remote)")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    config = Config()
    config.bind = [f"{_host_for_url(host)}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("adapters.mexc.sim.http")
    config.graceful_timeout = 1.0
    config.websocket_ping_interval = None
    async with trio.open_nursery() as nursery:
        if run_market:
            await nursery.start(service.run)
        binds: list[str] = await nursery.start(
            partial(serve, build_asgi_app(service), config, mode="asgi")  # type: ignore[arg-type]
        )
        bound = int(binds[0].rsplit(":", 1)[1])
        task_status.started(bound)
