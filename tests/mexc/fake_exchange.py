"""Test doubles for the stream tests: an in-memory MEXC WebSocket endpoint, a REST handler for
``httpx.MockTransport`` built from the documented samples, and a fold pipeline (the real
interpreter, Core and projections, without the journal file).

Everything runs in trio time, so tests use ``autojump_clock`` and never sleep for real.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio
from trio_websocket import CloseReason, ConnectionClosed

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret, ws_row
from engine.core import Core
from engine.events import Event
from engine.projections import State
from engine.sequencer import Input, engine_input

FIXTURES = Path(__file__).parent / "fixtures"


def sample(name: str, variant: int = 0) -> Any:
    """The payload of a documented sample (``tests/mexc/fixtures/<name>.json``)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())["variants"][variant]["payload"]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- WebSocket -----------------------------------------------------------------------------


class FakeWsConn:
    """One connection as the client's transport sees it (``get_message``, ``send_message``,
    ``aclose``) plus the exchange's hands (``push``, ``drop``)."""

    def __init__(self, server: FakeWsServer, index: int) -> None:
        self.server = server
        self.index = index
        self.received: list[str] = []
        self.closed_by: str | None = None
        self._to_client, self._inbox = trio.open_memory_channel[str](math.inf)

    # the transport
    async def get_message(self) -> str:
        try:
            return await self._inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1006, "dropped by the exchange")) from None

    async def send_message(self, message: str | bytes) -> None:
        if self.closed_by is not None:
            raise ConnectionClosed(CloseReason(1006, "closed"))
        assert isinstance(message, str)
        self.received.append(message)
        self.server.note(self.index, "recv", message)
        self.server.answer(self, json.loads(message))

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self.closed_by is None:
            self.closed_by = "client"
            self.server.note(self.index, "close", reason or "")
            self._to_client.close()

    # the exchange
    @property
    def open(self) -> bool:
        return self.closed_by is None

    def push(self, frame: str | dict[str, Any]) -> None:
        if self.closed_by is None:
            self._to_client.send_nowait(frame if isinstance(frame, str) else dumps(frame))

    def drop(self) -> None:
        if self.closed_by is None:
            self.closed_by = "server"
            self.server.note(self.index, "drop", "")
            self._to_client.close()

    def methods(self) -> list[str]:
        return [json.loads(m)["method"] for m in self.received]


class FakeWsServer:
    """An in-memory MEXC WebSocket endpoint: answers ping, login, personal.filter and sub.*;
    refuses the next ``refuse`` connection attempts; logs (trio time, conn, event, text)."""

    def __init__(self, *, pong: bool = True, ack: bool = True) -> None:
        self.pong = pong
        self.ack = ack
        self.refuse = 0
        self.connections: list[FakeWsConn] = []
        self.attempts: list[float] = []
        self.log: list[tuple[float, int, str, str]] = []
        self.on_sub: Callable[[FakeWsConn, dict[str, Any]], None] | None = None

    def note(self, index: int, event: str, text: str) -> None:
        self.log.append((trio.current_time(), index, event, text))

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[FakeWsConn]:
        self.attempts.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if self.refuse > 0:
            self.refuse -= 1
            self.note(-1, "refused", url)
            raise OSError("connection refused")
        conn = FakeWsConn(self, len(self.connections))
        self.connections.append(conn)
        self.note(conn.index, "open", url)
        try:
            yield conn
        finally:
            await conn.aclose()

    def answer(self, conn: FakeWsConn, request: dict[str, Any]) -> None:
        method = request.get("method", "")
        ts = int(trio.current_time() * 1000)
        if method == "ping":
            if self.pong:
                conn.push({"channel": "pong", "data": ts})
        elif method == "login":
            conn.push({"channel": "rs.login", "data": "success", "ts": ts})
        elif method == "personal.filter":
            conn.push({"channel": "rs.personal.filter", "data": "success", "ts": ts})
        elif method.startswith("sub."):
            if self.ack:
                conn.push({"channel": f"rs.{method}", "data": "success", "ts": ts})
            if self.on_sub is not None:
                self.on_sub(conn, request)

    def live(self) -> list[FakeWsConn]:
        return [c for c in self.connections if c.open]


async def wait_until(predicate: Callable[[], bool], timeout: float = 600.0) -> None:
    """Poll ``predicate`` in (virtual) trio time."""
    with trio.fail_after(timeout):
        while not predicate():  # bounded by fail_after
            await trio.sleep(0.01)


# -- REST ----------------------------------------------------------------------------------


def envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "code": 0, "data": data}


class FakeRest:
    """A ``MockTransport`` handler: answers are callables of the request, set per path
    suffix; every request is recorded with its trio time."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[httpx.Request], Any]] = {}
        self.requests: list[tuple[float, str]] = []

    def route(self, suffix: str, answer: Callable[[httpx.Request], Any] | Any) -> None:
        if callable(answer):
            self.routes[suffix] = answer
        else:

            def fixed(_request: httpx.Request, body: Any = answer) -> Any:
                return body

            self.routes[suffix] = fixed

    def paths(self, part: str) -> list[str]:
        return [p for _, p in self.requests if part in p]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append((trio.current_time(), path))
        for suffix, answer in sorted(self.routes.items(), key=lambda kv: -len(kv[0])):
            if path.endswith(suffix):
                body = answer(request)
                status = 200
                if isinstance(body, tuple):
                    status, body = body
                return httpx.Response(status, text=body if isinstance(body, str) else dumps(body))
        return httpx.Response(404, text="")


def depth_answer(version: int, bid: str = "100.0", ask: str = "100.5") -> dict[str, Any]:
    """The documented depth answer with our own version and levels."""
    payload = sample("rest_depth")
    payload["data"].update(
        version=version, bids=[[float(bid), 10, 1]], asks=[[float(ask), 10, 1]]
    )
    return dict(payload)


def commits_answer(versions: list[int]) -> dict[str, Any]:
    """The documented depth_commits answer (newest first, as in the sample) for ``versions``."""
    payload = sample("rest_depth_commits")
    template = payload["data"][0]
    payload["data"] = [
        {**template, "bids": [[99.0 - v % 7 * 0.1, 5 + v % 3, 1]], "version": v}
        for v in sorted(versions, reverse=True)
    ]
    return dict(payload)


def depth_push(symbol: str, version: int) -> dict[str, Any]:
    """A ``push.depth`` frame shaped like the documented sample."""
    frame = sample("ws_push_depth")["push"]
    frame["symbol"] = symbol
    frame["data"] = {"asks": [[100.5 + version % 5 * 0.1, 3, 1]], "bids": [], "version": version}
    return dict(frame)


# -- the fold ------------------------------------------------------------------------------


class Pipeline:
    """``emit`` for the streams under test: records every input and folds it at once with the
    real interpreter, Core and projections (what the sequencer does, minus the journal)."""

    def __init__(self) -> None:
        self.state = State()
        self.core = Core(self.state, interpret, decode_errors=(DecodeError,))
        self.inputs: list[Input] = []

    async def emit(self, item: Input) -> None:
        r = item.row
        seq = len(self.inputs) + 1
        self.inputs.append(item)
        ev = Event(seq, "test", r.ts_ns, r.venue_ts_ms, r.source, r.kind, r.stream, r.cause,
                   r.body, "")
        self.core.handle(ev, item.value)

    def feed_ws(self, frame: dict[str, Any], received_ns: int = 1) -> None:
        """Fold a frame as if an earlier session had journaled it."""
        row = ws_row(dumps(frame), received_ns)
        ev = Event(0, "earlier", row.ts_ns, row.venue_ts_ms, row.source, row.kind, row.stream,
                   None, row.body, "")
        self.core.handle(ev)

    def feed_event(self, event: Any, stream: str | None = None) -> None:
        """Fold an engine event as if an earlier session had journaled it."""
        r = engine_input(event, stream=stream).row
        ev = Event(0, "earlier", r.ts_ns, None, r.source, r.kind, r.stream, None, r.body, "")
        self.core.handle(ev, event)

    def book_status(self, symbol: str) -> tuple[bool, int]:
        book = self.state.view().book(symbol)
        return (False, -1) if book is None else (book.synced, book.version)

    def kinds(self, until: int | None = None) -> list[str]:
        """The kinds of the rows emitted (the first ``until`` of them)."""
        return [i.row.kind for i in self.inputs[:until]]

    def values(self, cls: type | tuple[type, ...], until: int | None = None) -> list[Any]:
        """The engine events of type ``cls`` emitted (among the first ``until`` rows)."""
        return [i.value for i in self.inputs[:until] if isinstance(i.value, cls)]
