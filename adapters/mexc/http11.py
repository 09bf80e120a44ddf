"""HTTP/1.1 over trio sockets with h11: the REST client's transport for plain ``http://``
(shell: sockets, the trio clock).

Why: the round trip of a signed ``POST order/create`` to the bundled simulator is the
engine's tick-to-ack, and httpx's default transport (httpcore over anyio) spends most of a
millisecond of client CPU per request on it: headers and body go out in two ``send`` calls
(each wakes the server on loopback), and the connection pool runs anyio locks, events and
state machines around every request. :class:`H11Transport` is the same h11 state machine
with nothing around it: one ``send`` per request, a plain dict of idle connections per
(host, port), a trio semaphore for the connection limit.

Theory of operation, per request:

1. only ``http://`` is served (:class:`httpx.UnsupportedProtocol` otherwise); the request
   head is built and validated by h11 before anything else;
2. a connection slot is taken (``pool`` timeout → :class:`httpx.PoolTimeout`);
3. the most recently used idle connection to (host, port) is taken if it is younger than
   ``keepalive_expiry`` and its socket is not readable (a readable idle socket means the
   server closed it or sent something unasked: it is closed, never used); otherwise a new
   connection is opened (``connect`` timeout → :class:`httpx.ConnectTimeout`, an OS error
   → :class:`httpx.ConnectError`);
4. request head, body and end of message go out in one write (``write`` timeout →
   :class:`httpx.WriteTimeout`, an OS error → :class:`httpx.WriteError`). If the very
   first ``send`` fails before the kernel took a byte, nothing went out: on a reused
   connection the request is sent again once on a new connection, on a new one it is a
   :class:`httpx.ConnectError` (a *not sent* failure for the REST client);
5. the whole answer is read (``read`` timeout per receive → :class:`httpx.ReadTimeout`, an
   OS error → :class:`httpx.ReadError`, the server closing before the end of the answer or
   breaking HTTP → :class:`httpx.RemoteProtocolError`) and returned as an
   :class:`httpx.Response` whose body httpx decodes (gzip, deflate) as usual;
6. the connection goes back to the idle list only if both sides finished the exchange
   cleanly and keep-alive holds (no ``Connection: close``, not HTTP/1.0) and no unread
   byte follows the answer; any failure or cancellation closes it.

Timeouts come from ``request.extensions["timeout"]`` (what httpx puts there; a missing key
or ``None`` means no limit). Error messages name the host and port and the OS error, never
a header: an invalid request head is reported without its values (they may hold the API
key or the signature).

Not done here: TLS (``https://`` keeps httpx's default transport, see :func:`http_client`),
proxies, HTTP/2, streaming answers (the whole body is read before returning; REST answers
are small), ``Expect: 100-continue``, protocol upgrades. Trio only.
"""

from __future__ import annotations

import ipaddress
import math
import select
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import h11
import httpx
import trio

__all__ = ["EngineClient", "H11Transport", "http_client", "plain_http_mounts"]

_Key = tuple[str, int]
_IO_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)
_HAVE_POLL = hasattr(select, "poll")


def _scope(timeout: float | None) -> trio.CancelScope:
    return trio.move_on_after(math.inf if timeout is None else timeout)


class _NothingSent(Exception):
    """The first ``send`` of a request failed before the kernel took a byte."""


class _Connection:
    """One keep-alive socket and its h11 client state."""

    __slots__ = ("_poll", "h11", "idle_since", "key", "socket")

    def __init__(self, key: _Key, stream: trio.SocketStream) -> None:
        self.key = key
        self.socket = stream.socket  # the stream only set TCP_NODELAY; we use the socket
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self._poll: Any = None

    def readable(self) -> bool:
        """Whether the socket has data, an EOF or an error waiting (checked while idle)."""
        fd = self.socket.fileno()
        if fd < 0:
            return True
        if _HAVE_POLL:
            if self._poll is None:
                self._poll = select.poll()
                self._poll.register(fd, select.POLLIN)
            return bool(self._poll.poll(0))
        return bool(select.select([fd], [], [], 0)[0])  # pragma: no cover - no poll()

    def close(self) -> None:
        self.socket.close()


class H11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for ``http://`` URLs over trio sockets with h11, with keep-alive pooling.

    ``max_connections`` bounds the connections open at once (idle ones included; ``None``:
    no bound), like httpx's ``Limits``; a request that finds every slot taken waits for
    one within its ``pool`` timeout. ``max_keepalive_connections`` bounds the idle list
    (the oldest idle connection is closed first) and ``keepalive_expiry`` (seconds, trio's
    clock; ``None``: forever) how long an idle connection may be reused. ``opened`` counts
    the connections opened so far.
    """

    def __init__(
        self,
        *,
        max_connections: int | None = 100,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 5.0,
        read_size: int = 65_536,
    ) -> None:
        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be at least 1 (or None)")
        if max_keepalive_connections is not None and max_keepalive_connections < 0:
            raise ValueError("max_keepalive_connections must not be negative (or None)")
        if read_size < 1:
            raise ValueError("read_size must be at least 1")
        self._max = max_connections
        self._max_idle = max_keepalive_connections
        self._expiry = keepalive_expiry
        self._read_size = read_size
        self._slots = None if max_connections is None else trio.Semaphore(max_connections)
        self._idle: dict[_Key, list[_Connection]] = {}
        self._n_idle = 0
        self._open: set[_Connection] = set()
        self._connecting = 0
        self._closed = False
        self.opened = 0

    @property
    def idle_connections(self) -> int:
        """How many connections wait in the idle list."""
        return self._n_idle

    @property
    def open_connections(self) -> int:
        """How many connections are open (idle or serving a request)."""
        return len(self._open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the whole answer (see the module for the details)."""
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                f"H11Transport serves http:// only, not {url.scheme or 'a relative'!r} URLs",
                request=request,
            )
        host = url.host
        if not host:
            raise httpx.UnsupportedProtocol("the request URL has no host", request=request)
        if self._closed:
            raise RuntimeError("the transport is closed")
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout") or {}
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = await request.aread()
        try:
            head = h11.Request(method=request.method, target=url.raw_path,
                               headers=request.headers.raw)
        except h11.LocalProtocolError:
            raise _invalid_head(request) from None
        slots = self._slots
        if slots is not None:
            try:
                slots.acquire_nowait()
            except trio.WouldBlock:
                with _scope(timeouts.get("pool")) as scope:
                    await slots.acquire()
                if scope.cancelled_caught:  # not acquired: nothing to release
                    raise httpx.PoolTimeout(
                        f"no free connection (max_connections={self._max}) within the pool "
                        "timeout", request=request) from None
        try:
            return await self._exchange(request, (host, url.port or 80), head, body, timeouts)
        finally:
            if slots is not None:
                slots.release()

    async def _exchange(self, request: httpx.Request, key: _Key, head: h11.Request, body: bytes,
                        timeouts: Mapping[str, float | None]) -> httpx.Response:
        reuse = True
        while True:  # at most twice: again only after a reused connection took no byte
            conn = self._take_idle(key) if reuse else None
            reused = conn is not None
            if conn is None:
                conn = await self._connect(key, timeouts.get("connect"), request)
            done = False
            try:
                data = self._request_bytes(conn, head, body, request)
                try:
                    response = await self._round_trip(conn, data, request, timeouts)
                except _NothingSent as exc:
                    if reused:
                        reuse = False
                        continue
                    raise httpx.ConnectError(
                        f"connection to {_where(key)} failed before the request went out: "
                        f"{exc}", request=request) from exc
                done = True
                return response
            finally:
                if done:
                    self._release(conn)
                else:
                    self._discard(conn)

    def _request_bytes(self, conn: _Connection, head: h11.Request, body: bytes,
                       request: httpx.Request) -> bytes:
        state = conn.h11
        try:
            data = state.send(head) or b""
            if body:
                data += state.send(h11.Data(data=body)) or b""
            return data + (state.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            raise _invalid_head(request) from None

    async def _connect(self, key: _Key, timeout: float | None,
                       request: httpx.Request) -> _Connection:
        self._make_room()
        host, port = key
        self._connecting += 1
        try:
            with _scope(timeout) as scope:
                try:
                    stream = await trio.open_tcp_stream(host, port)
                except OSError as exc:
                    raise httpx.ConnectError(f"cannot connect to {_where(key)}: {exc}",
                                             request=request) from exc
        finally:
            self._connecting -= 1
        if scope.cancelled_caught:
            raise httpx.ConnectTimeout(f"connecting to {_where(key)} timed out",
                                       request=request)
        conn = _Connection(key, stream)
        self._open.add(conn)
        self.opened += 1
        if self._closed:  # closed while connecting
            self._discard(conn)
            raise RuntimeError("the transport is closed")
        return conn

    async def _round_trip(self, conn: _Connection, data: bytes, request: httpx.Request,
                          timeouts: Mapping[str, float | None]) -> httpx.Response:
        """Send ``data`` and read the whole answer, under one cancel scope whose deadline
        is the write timeout, then the read timeout before each receive (a trio cancel scope
        costs as much as the rest of the exchange's Python code; re-arming one is cheap)."""
        sock = conn.socket
        total = 0
        reading = False
        read_timeout = timeouts.get("read")
        with _scope(timeouts.get("write")) as scope:
            try:
                total = await sock.send(data)
                if total < len(data):
                    with memoryview(data) as view:
                        while total < len(view):
                            total += await sock.send(view[total:])
            except _IO_ERRORS as exc:
                if total == 0:
                    raise _NothingSent(_describe(exc)) from exc
                raise httpx.WriteError(f"sending to {_where(conn.key)} failed: {_describe(exc)}",
                                       request=request) from exc
            reading = True
            return await self._receive(conn, request, scope, read_timeout)
        if reading:
            raise httpx.ReadTimeout(f"{_where(conn.key)} did not answer within the read "
                                    "timeout", request=request)
        if total == 0:  # not a byte left: the REST client must see "not sent"
            raise httpx.ConnectTimeout(
                f"{_where(conn.key)} took no byte of the request within the write timeout",
                request=request)
        raise httpx.WriteTimeout(f"sending to {_where(conn.key)} timed out", request=request)

    async def _receive(self, conn: _Connection, request: httpx.Request, scope: trio.CancelScope,
                       timeout: float | None) -> httpx.Response:
        state = conn.h11
        sock = conn.socket
        answer: h11.Response | None = None
        chunks: list[bytes] = []
        while True:  # ends with the answer's EndOfMessage or an exception
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                closed = state.trailing_data[1]
                raise httpx.RemoteProtocolError(
                    f"{_where(conn.key)} closed the connection without a complete answer"
                    if closed else f"{_where(conn.key)} broke HTTP/1.1: {exc}",
                    request=request) from exc
            kind = type(event)
            if event is h11.NEED_DATA:
                scope.deadline = math.inf if timeout is None else trio.current_time() + timeout
                try:
                    data = await sock.recv(self._read_size)
                except _IO_ERRORS as exc:
                    raise httpx.ReadError(
                        f"receiving from {_where(conn.key)} failed: {_describe(exc)}",
                        request=request) from exc
                state.receive_data(data)  # b"": the server closed its side
            elif kind is h11.Data:
                chunks.append(event.data)  # type: ignore[union-attr]
            elif kind is h11.Response:
                answer = event  # type: ignore[assignment]
            elif kind is h11.EndOfMessage:
                break
            elif kind is h11.InformationalResponse:
                continue
            else:  # ConnectionClosed, or PAUSED after a protocol switch we never ask for
                raise httpx.RemoteProtocolError(
                    f"{_where(conn.key)} closed the connection without a complete answer"
                    if kind is h11.ConnectionClosed
                    else f"{_where(conn.key)} switched protocols", request=request)
        assert answer is not None  # h11 gives the head before the end of the message
        return httpx.Response(
            answer.status_code,
            headers=answer.headers.raw_items(),
            stream=httpx.ByteStream(b"".join(chunks)),
            extensions={"http_version": b"HTTP/" + answer.http_version,
                        "reason_phrase": answer.reason},
            request=request,
        )

    # ------------------------------------------------------------------ the pool

    def _take_idle(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            self._n_idle -= 1
            if (self._expiry is not None
                    and trio.current_time() - conn.idle_since > self._expiry) or conn.readable():
                self._discard(conn)
                continue
            return conn
        return None

    def _release(self, conn: _Connection) -> None:
        """Back to the idle list if the exchange ended cleanly and keep-alive holds."""
        state = conn.h11
        if (self._closed or state.our_state is not h11.DONE
                or state.their_state is not h11.DONE or any(state.trailing_data)
                or self._max_idle == 0):
            self._discard(conn)
            return
        state.start_next_cycle()
        conn.idle_since = trio.current_time()
        self._idle.setdefault(conn.key, []).append(conn)
        self._n_idle += 1
        if self._max_idle is not None and self._n_idle > self._max_idle:
            self._close_oldest_idle()

    def _make_room(self) -> None:
        """Close the oldest idle connection if opening one more would exceed the bound
        (connections being opened count: each holds a slot but is not in ``_open`` yet)."""
        if (self._max is not None and self._n_idle
                and len(self._open) + self._connecting >= self._max):
            self._close_oldest_idle()

    def _close_oldest_idle(self) -> None:
        key = min((k for k, v in self._idle.items() if v),
                  key=lambda k: self._idle[k][0].idle_since)
        idle = self._idle[key]
        conn = idle.pop(0)
        if not idle:
            del self._idle[key]
        self._n_idle -= 1
        self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conn.close()

    async def aclose(self) -> None:
        """Close every connection, idle or in use; later requests raise ``RuntimeError``."""
        self._closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        self._n_idle = 0
        await trio.lowlevel.checkpoint()


def _where(key: _Key) -> str:
    host, port = key
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else None
    return f"{type(exc).__name__}: {exc}" if cause is None else f"{type(cause).__name__}: {cause}"


def _invalid_head(request: httpx.Request) -> httpx.LocalProtocolError:
    # h11's message quotes the offending value, which may be the API key or the signature.
    return httpx.LocalProtocolError(
        f"{request.method} {request.url.scheme}://{request.url.netloc.decode('ascii')}: "
        "invalid HTTP/1.1 request head (method, target, or a header name or value)",
        request=request)


# ---------------------------------------------------------------------------- the client


def plain_http_mounts(transport: httpx.AsyncBaseTransport,
                      trust_env: bool = True) -> dict[str, httpx.AsyncBaseTransport]:
    """httpx ``mounts`` sending plain ``http://`` through ``transport`` wherever httpx
    itself would connect directly (no proxy).

    With ``trust_env`` (httpx's default) the environment's proxies apply: if an ``http``
    or ``all`` proxy is set, plain http keeps httpx's (proxying) transport except for the
    hosts in ``NO_PROXY``; those hosts are mounted explicitly either way, because httpx
    mounts them to its default transport with a pattern more specific than ``http://``.
    The rules mirror httpx 0.28's ``get_environment_proxies``.
    """
    if not trust_env:
        return {"http://": transport}
    proxies = urllib.request.getproxies()
    no_proxy = [host.strip() for host in proxies.get("no", "").split(",") if host.strip()]
    if "*" in no_proxy:
        return {"http://": transport}
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    if not (proxies.get("http") or proxies.get("all")):
        mounts["http://"] = transport
    for host in no_proxy:
        if "://" in host:
            scheme, _, rest = host.partition("://")
            if scheme in ("http", "all"):
                mounts[f"http://{rest}"] = transport
        elif _is_ip(host, ipaddress.IPv4Address) or host.lower() == "localhost":
            mounts[f"http://{host}"] = transport
        elif _is_ip(host, ipaddress.IPv6Address):
            mounts[f"http://[{host}]"] = transport
        else:
            mounts[f"http://*{host}"] = transport
    return mounts


def _is_ip(host: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(host.split("/")[0])
    except ValueError:
        return False
    return True


class _AnswerCookies(httpx.Cookies):
    """A cookie jar that skips the stdlib's cookie parsing for an answer with no
    ``Set-Cookie``/``Set-Cookie2`` header (``http.cookiejar`` would find nothing in it, after
    building a ``urllib`` request and two ``email`` messages: ~20 % of the client's
    Python time for an order)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the answer's cookies, if it sets any."""
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class EngineClient(httpx.AsyncClient):
    """An :class:`httpx.AsyncClient` whose cookie jar skips answers without cookies (see
    :func:`http_client`); everything else is httpx's own."""

    def __init__(self, *, cookies: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = cookies  # through the setter below: the same jar, the quick pass

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookie jar (httpx's, with a quick pass over cookie-less answers)."""
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._cookies = _AnswerCookies(cookies)


EventHook = Callable[..., Awaitable[Any]]


def http_client(
    timeout: httpx.Timeout | float | None = 10.0,
    *,
    event_hooks: Mapping[str, Sequence[EventHook]] | None = None,
    transport: H11Transport | None = None,
    trust_env: bool = True,
) -> httpx.AsyncClient:
    """The engine's HTTP client: an :class:`httpx.AsyncClient` whose plain ``http://``
    requests go through an :class:`H11Transport` (``transport``, or a new one).

    ``https://`` and everything else keep httpx's default transport, so TLS, certificates
    and proxies for the live exchange behave as with ``httpx.AsyncClient(...)``; see
    :func:`plain_http_mounts` for how the environment's proxies are honoured.
    """
    plain = transport if transport is not None else H11Transport()
    hooks = {name: list(fns) for name, fns in (event_hooks or {}).items()}
    return EngineClient(timeout=timeout, event_hooks=hooks, trust_env=trust_env,
                        mounts=plain_http_mounts(plain, trust_env))
