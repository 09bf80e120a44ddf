"""The plain-http transport (adapters.mexc.http11) against real servers on 127.0.0.1 in the
test's trio loop: a tiny h11 server written here, and the bundled simulator (hypercorn).

Real time, every test under ``trio.fail_after``; the tests that wait for a timeout use
``autojump_clock`` and servers that read and then never answer (nothing else is pending,
so virtual time only jumps to the timeout being tested)."""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial

import h11
import httpx
import pytest
import trio
import trio.testing

from adapters.mexc import http11
from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig, Timeouts
from adapters.mexc.errors import RejectedError, ResponseLost, TransportError
from adapters.mexc.http11 import H11Transport, http_client, plain_http_mounts
from adapters.mexc.rest import MexcRestClient
from adapters.mexc.sim.asgi import rest_base_url, serve_sim
from adapters.mexc.sim.service import SimService
from engine.clock import SystemClock
from engine.commands import PlaceOrder
from engine.model import OpenType, OrderType, Side

KEY = "mx0h11testkey01"
SECRET = "h11-test-secret-01"
BTC = "BTC_USDT"


# ----------------------------------------------------------------------------- the server


class Peer:
    """The server end of one connection: h11 server state over the accepted stream."""

    def __init__(self, server: Server, stream: trio.SocketStream) -> None:
        self.server = server
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER)

    async def request(self) -> tuple[h11.Request, bytes] | None:
        """The next whole request, or None once the client closed the connection."""
        head: h11.Request | None = None
        body: list[bytes] = []
        while True:  # bounded by the test's fail_after
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                self.server.requests.append((head, b"".join(body)))
                return head, b"".join(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:
                raise AssertionError(event)

    async def answer(self, body: bytes = b'{"ok":true}', status: int = 200,
                     headers: list[tuple[str, str]] | None = None) -> None:
        """One Content-Length answer; ready for the next request if keep-alive holds."""
        hs = [("Content-Length", str(len(body))), ("Content-Type", "application/json"),
              *(headers or [])]
        data = self.h11.send(h11.Response(status_code=status, headers=hs, reason=b"OK")) or b""
        data += (self.h11.send(h11.Data(data=body)) or b"") + (
            self.h11.send(h11.EndOfMessage()) or b"")
        await self.stream.send_all(data)
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()

    async def eof(self) -> bool:
        """Whether the client closed this connection (read until EOF)."""
        return await self.stream.receive_some(65536) == b""


Handler = Callable[[Peer], Awaitable[None]]


class Server:
    """Counts the connections it accepted and the requests it read."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0
        self.requests: list[tuple[h11.Request, bytes]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def answer_all(peer: Peer) -> None:
    """Answer every request on the connection, numbering them."""
    while (got := await peer.request()) is not None:
        head, body = got
        await peer.answer(b'{"n":%d,"path":"%s","len":%d}' % (
            len(peer.server.requests), head.target, len(body)))


@asynccontextmanager
async def tcp_server(handler: Handler = answer_all) -> AsyncIterator[Server]:
    """``handler`` serving each connection accepted on 127.0.0.1 (a free port)."""
    server = Server()

    async def on_connection(stream: trio.SocketStream) -> None:
        server.accepted += 1
        try:
            await handler(Peer(server, stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            pass
        finally:
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, on_connection, 0, host="127.0.0.1"))
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def order(oid: str, price: str = "50000", vol: int = 1) -> PlaceOrder:
    return PlaceOrder(BTC, Side.OPEN_LONG, OrderType.LIMIT, Decimal(vol), oid,
                      price=Decimal(price), open_type=OpenType.ISOLATED, leverage=10)


def rest(http: httpx.AsyncClient, base: str, timeouts: Timeouts | None = None
         ) -> MexcRestClient:
    config = MexcConfig.for_simulator(base, timeouts=timeouts or Timeouts())
    return MexcRestClient(http, config, Credentials(KEY, SECRET), SystemClock())


# ----------------------------------------------------------------------------- keep-alive


async def test_sequential_requests_share_one_connection() -> None:
    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server() as server, http_client(transport=transport) as client:
            for i in range(5):
                answer = await client.post(server.base + f"/p{i}", content=b"x" * i)
                assert answer.json() == {"n": i + 1, "path": f"/p{i}", "len": i}
            assert server.accepted == 1
            assert transport.opened == 1
            assert transport.idle_connections == 1
            assert answer.http_version == "HTTP/1.1"
            assert answer.reason_phrase == "OK"
            assert answer.extensions["http_version"] == b"HTTP/1.1"
    assert transport.open_connections == 0  # the client closed its transport


async def test_concurrent_requests_get_their_own_connections() -> None:
    n = 5
    arrived = trio.Event()

    async def wait_for_all(peer: Peer) -> None:
        while (got := await peer.request()) is not None:
            if len(peer.server.requests) == n:
                arrived.set()
            await arrived.wait()  # nobody is answered before all n requests are in
            await peer.answer(b'{"path":"%s"}' % got[0].target)

    transport = H11Transport()
    results: dict[int, str] = {}
    with trio.fail_after(5):
        async with tcp_server(wait_for_all) as server, http_client(
                transport=transport) as client:

            async def one(i: int) -> None:
                results[i] = (await client.get(f"{server.base}/c{i}")).json()["path"]

            async with trio.open_nursery() as nursery:
                for i in range(n):
                    nursery.start_soon(one, i)
            assert results == {i: f"/c{i}" for i in range(n)}
            assert server.accepted == n
            assert transport.opened == n
            assert transport.idle_connections == n
            await client.get(server.base + "/again")  # reuses one of them
            assert transport.opened == n


async def test_an_idle_connection_closed_by_the_server_is_not_reused() -> None:
    closed = trio.Event()

    async def one_then_close(peer: Peer) -> None:
        got = await peer.request()
        assert got is not None
        await peer.answer()
        await peer.stream.aclose()  # keep-alive promised, then closed while idle
        closed.set()

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(one_then_close) as server, http_client(
                transport=transport) as client:
            assert (await client.post(server.base + "/a", content=b"1")).status_code == 200
            await closed.wait()
            assert transport.idle_connections == 1
            # a POST: on the dead connection it would have been an unknown outcome
            assert (await client.post(server.base + "/b", content=b"2")).status_code == 200
            assert server.accepted == 2
            assert transport.opened == 2
            assert [h.target for h, _ in server.requests] == [b"/a", b"/b"]


async def test_unasked_bytes_on_an_idle_connection_discard_it() -> None:
    chatter = trio.Event()

    async def answer_then_chatter(peer: Peer) -> None:
        while (await peer.request()) is not None:
            await peer.answer()
            await chatter.wait()
            await peer.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(answer_then_chatter) as server, http_client(
                transport=transport) as client:
            await client.get(server.base + "/a")
            chatter.set()
            (idle,) = transport._idle[("127.0.0.1", server.port)]
            await trio.lowlevel.wait_readable(idle.socket)  # the unasked bytes arrived
            assert (await client.get(server.base + "/b")).json() == {"ok": True}
            assert transport.opened == 2


async def test_bytes_after_the_answer_discard_the_connection() -> None:
    async def answer_and_more(peer: Peer) -> None:
        while (await peer.request()) is not None:
            await peer.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                                       b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
            peer.h11 = h11.Connection(h11.SERVER)

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(answer_and_more) as server, http_client(
                transport=transport) as client:
            for _ in range(3):
                assert (await client.get(server.base + "/a")).text == "ok"  # never "stale"
            assert transport.idle_connections == 0
            assert 2 <= server.accepted <= 3  # split packets may pool one that is then dropped


async def test_a_reused_connection_reset_before_the_request_is_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the readability check cannot close: the server resets the connection just
    as it is taken. The first send fails before a byte went out, so the request goes out
    again, once, on a new connection."""
    reset = trio.Event()

    async def one_then_reset(peer: Peer) -> None:
        if await peer.request() is None:
            return
        await peer.answer()
        peer.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close → RST
        await peer.stream.aclose()
        reset.set()

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(one_then_reset) as server, http_client(
                transport=transport) as client:
            await client.get(server.base + "/a")
            await reset.wait()
            (idle,) = transport._idle[("127.0.0.1", server.port)]
            await trio.lowlevel.wait_readable(idle.socket)  # the reset arrived
            monkeypatch.setattr(http11._Connection, "readable", lambda self: False)
            answer = await client.post(server.base + "/b", content=b"{}")
            assert answer.status_code == 200
            assert transport.opened == 2


async def test_connection_close_and_http_1_0_answers_are_not_pooled() -> None:
    async def closing(peer: Peer) -> None:
        got = await peer.request()
        assert got is not None
        if got[0].target == b"/close":
            await peer.answer(headers=[("Connection", "close")])
        else:
            await peer.stream.send_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        assert await peer.eof()  # the client closed its end

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(closing) as server, http_client(transport=transport) as client:
            assert (await client.get(server.base + "/close")).status_code == 200
            assert transport.idle_connections == 0
            answer = await client.get(server.base + "/old")
            assert (answer.text, answer.http_version) == ("ok", "HTTP/1.0")
            assert transport.idle_connections == 0
            assert transport.open_connections == 0
            assert server.accepted == 2


async def test_chunked_answer() -> None:
    async def chunked(peer: Peer) -> None:
        while (await peer.request()) is not None:
            await peer.stream.send_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                       b"X-Odd-Case: Yes\r\n\r\n")
            for part in (b'{"a":', b"[1,2,3]", b"}"):
                await peer.stream.send_all(b"%x\r\n%s\r\n" % (len(part), part))
                await trio.sleep(0)
            await peer.stream.send_all(b"0\r\n\r\n")
            peer.h11 = h11.Connection(h11.SERVER)  # answered by hand: a fresh state

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(chunked) as server, http_client(transport=transport) as client:
            for _ in range(2):
                answer = await client.get(server.base + "/chunked")
                assert answer.json() == {"a": [1, 2, 3]}
                assert answer.headers.raw[-1] == (b"X-Odd-Case", b"Yes")  # raw case kept
            assert transport.opened == 1


@pytest.mark.parametrize(("encoding", "compress"), [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
])
async def test_compressed_answers_decode_as_with_the_default_transport(
        encoding: str, compress: Callable[[bytes], bytes]) -> None:
    text = '{"success":true,"code":0,"data":"' + "é" * 500 + '"}'
    packed = compress(text.encode())

    async def compressed(peer: Peer) -> None:
        while (got := await peer.request()) is not None:
            assert b"gzip" in dict(got[0].headers)[b"accept-encoding"]
            await peer.answer(packed, headers=[("Content-Encoding", encoding)])

    with trio.fail_after(5):
        async with tcp_server(compressed) as server, http_client() as ours, \
                httpx.AsyncClient() as default:
            mine = await ours.get(server.base + "/z")
            theirs = await default.get(server.base + "/z")
    assert mine.text == theirs.text == text
    assert mine.content == theirs.content == text.encode()
    assert mine.headers.raw == theirs.headers.raw
    assert (mine.status_code, mine.http_version, mine.reason_phrase) == (
        theirs.status_code, theirs.http_version, theirs.reason_phrase)
    assert "network_stream" in theirs.extensions and "network_stream" not in mine.extensions


# ----------------------------------------------------------------------------- failures


async def test_the_server_dropping_the_answer_midway() -> None:
    async def half(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"su")

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(half) as server, http_client(transport=transport) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(server.base + "/x", content=b"{}")
            assert transport.open_connections == 0
            with pytest.raises(ResponseLost, match="RemoteProtocolError"):
                await rest(client, server.base).place_order(order("lost-1"))
            assert len(server.requests) == 2  # both went out


async def test_the_server_closing_before_any_answer() -> None:
    async def hang_up(peer: Peer) -> None:
        await peer.request()

    with trio.fail_after(5):
        async with tcp_server(hang_up) as server, http_client() as client:
            with pytest.raises(httpx.RemoteProtocolError, match="without a complete answer"):
                await client.get(server.base + "/x")
            with pytest.raises(ResponseLost):
                await rest(client, server.base).place_order(order("lost-2"))


async def test_garbage_is_a_remote_protocol_error() -> None:
    async def garbage(peer: Peer) -> None:
        if await peer.request() is not None:
            await peer.stream.send_all(b"SPDY/9 what\r\n\r\n")

    with trio.fail_after(5):
        async with tcp_server(garbage) as server, http_client() as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.base + "/x")


async def test_a_server_that_never_answers(autojump_clock: trio.abc.Clock) -> None:
    async def silent(peer: Peer) -> None:
        while (await peer.request()) is not None:
            pass  # reads every request, answers none

    timeouts = Timeouts(connect=1, read=7, write=1, pool=1)
    transport = H11Transport()
    with trio.fail_after(60):
        async with tcp_server(silent) as server, http_client(transport=transport) as client:
            start = trio.current_time()
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.base + "/x", timeout=httpx.Timeout(1, read=3))
            assert 3 <= trio.current_time() - start < 3.5
            with pytest.raises(TransportError, match="ReadTimeout") as caught:
                await rest(client, server.base, timeouts).ping()
            assert type(caught.value) is TransportError  # a GET: retryable
            with pytest.raises(ResponseLost, match="ReadTimeout"):
                await rest(client, server.base, timeouts).place_order(order("t-1"))
            assert transport.open_connections == 0
            assert len(server.requests) == 3


async def test_connect_refused() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with trio.fail_after(5):
        async with http_client() as client:
            with pytest.raises(httpx.ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
                await client.get(base + "/x")
            with pytest.raises(TransportError, match="ConnectError") as caught:
                await rest(client, base).place_order(order("never-sent"))
    assert type(caught.value) is TransportError  # nothing went out: not an unknown outcome


async def test_pool_timeout(autojump_clock: trio.abc.Clock) -> None:
    async def silent(peer: Peer) -> None:
        await peer.request()
        await trio.sleep_forever()

    transport = H11Transport(max_connections=1)
    with trio.fail_after(60):
        async with tcp_server(silent) as server, http_client(
                timeout=httpx.Timeout(None), transport=transport) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.get, server.base + "/holds-the-slot")
                while not server.requests:  # bounded by fail_after
                    await trio.sleep(0.01)
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(server.base + "/waits", timeout=httpx.Timeout(None, pool=2))
                with pytest.raises(TransportError, match="PoolTimeout") as caught:
                    timeouts = Timeouts(pool=2)
                    await rest(client, server.base, timeouts).place_order(order("p-1"))
                assert type(caught.value) is TransportError  # not sent
                nursery.cancel_scope.cancel()
            assert transport.open_connections == 0  # the cancelled request closed its own
            assert server.accepted == 1


async def test_a_waiting_request_gets_the_freed_slot() -> None:
    release = trio.Event()

    slow_in = trio.Event()

    async def slow_first(peer: Peer) -> None:
        while (got := await peer.request()) is not None:
            if got[0].target == b"/slow":
                slow_in.set()
                await release.wait()
            await peer.answer(b'{"path":"%s"}' % got[0].target)

    transport = H11Transport(max_connections=1)
    paths: list[str] = []
    with trio.fail_after(5):
        async with tcp_server(slow_first) as server, http_client(
                transport=transport) as client:

            async def get(path: str) -> None:
                paths.append((await client.get(server.base + path)).json()["path"])

            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, "/slow")
                await slow_in.wait()
                nursery.start_soon(get, "/next")
                await trio.testing.wait_all_tasks_blocked()
                assert paths == []  # /next waits for the only slot
                assert len(server.requests) == 1 and transport.open_connections == 1
                release.set()
            assert paths == ["/slow", "/next"]
            assert server.accepted == 1 and transport.opened == 1


async def test_the_connection_bound_closes_idle_connections_of_other_hosts() -> None:
    transport = H11Transport(max_connections=2)
    with trio.fail_after(5):
        async with tcp_server() as a, tcp_server() as b, tcp_server() as c, http_client(
                transport=transport) as client:
            for server in (a, b, c, a):
                await client.get(server.base + "/x")
                assert transport.open_connections <= 2
            assert (a.accepted, b.accepted, c.accepted) == (2, 1, 1)


async def test_concurrent_new_connections_respect_the_bound() -> None:
    """Two requests opening connections at once, with the bound's last place held by an
    idle connection elsewhere: the idle one is closed, never three open."""
    both = trio.Event()
    seen_open: list[int] = []
    transport = H11Transport(max_connections=2)

    async def wait_for_both(peer: Peer) -> None:
        while (got := await peer.request()) is not None:
            if len(peer.server.requests) == 2:
                seen_open.append(transport.open_connections)
                both.set()
            await both.wait()
            await peer.answer(b'{"path":"%s"}' % got[0].target)

    with trio.fail_after(5):
        async with tcp_server() as a, tcp_server(wait_for_both) as b, http_client(
                transport=transport) as client:
            await client.get(a.base + "/idle")
            assert transport.idle_connections == 1
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.get, b.base + "/one")
                nursery.start_soon(client.get, b.base + "/two")
            assert seen_open == [2]
            assert b.accepted == 2 and transport.open_connections == 2


async def test_idle_bound_and_expiry(autojump_clock: trio.abc.Clock) -> None:
    transport = H11Transport(max_keepalive_connections=1, keepalive_expiry=5)
    with trio.fail_after(60):
        async with tcp_server() as a, tcp_server() as b, http_client(
                transport=transport) as client:
            await client.get(a.base + "/x")
            await client.get(b.base + "/x")
            assert transport.idle_connections == transport.open_connections == 1
            await client.get(b.base + "/y")
            await trio.sleep(4)
            await client.get(b.base + "/z")  # younger than 5 s: reused
            assert b.accepted == 1
            await trio.sleep(6)
            await client.get(b.base + "/w")
            assert b.accepted == 2
            assert transport.opened == 3


async def test_cancellation_mid_request_leaves_nothing_half_used() -> None:
    got_it = trio.Event()
    closed = trio.Event()

    async def slow(peer: Peer) -> None:
        while (got := await peer.request()) is not None:
            if got[0].target == b"/slow":
                got_it.set()
                if await peer.eof():  # the cancelled client closed the connection
                    closed.set()
                return
            await peer.answer()

    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server(slow) as server, http_client(transport=transport) as client:
            await client.get(server.base + "/warm")
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(partial(client.post, server.base + "/slow", content=b"{}"))
                    await got_it.wait()
                    scope.cancel()
            assert scope.cancelled_caught
            await closed.wait()
            assert transport.open_connections == 0
            assert transport.idle_connections == 0
            assert (await client.get(server.base + "/after")).status_code == 200
            assert server.accepted == 2  # /warm and /slow shared the first


async def test_a_failed_write_before_any_byte_is_not_sent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A new connection whose first send fails: ConnectError, so the REST client knows
    the POST did not go out."""
    async def dead_stream(host: str, port: int) -> trio.SocketStream:
        a, b = trio.socket.socketpair()
        b.close()
        return trio.SocketStream(a)

    monkeypatch.setattr(http11.trio, "open_tcp_stream", dead_stream)
    transport = H11Transport()
    with trio.fail_after(5):
        async with http_client(transport=transport) as client:
            with pytest.raises(httpx.ConnectError, match="before the request went out"):
                await client.post("http://127.0.0.1:9/x", content=b"{}")
            with pytest.raises(TransportError, match="ConnectError") as caught:
                await rest(client, "http://127.0.0.1:9").place_order(order("ns-1"))
            assert type(caught.value) is TransportError
            assert transport.open_connections == 0


async def test_write_timeout(monkeypatch: pytest.MonkeyPatch,
                             autojump_clock: trio.abc.Clock) -> None:
    peers: list[trio.socket.SocketType] = []

    async def deaf_stream(host: str, port: int) -> trio.SocketStream:
        a, b = trio.socket.socketpair()
        peers.append(b)  # never read: the body fills the socket buffers
        return trio.SocketStream(a)

    monkeypatch.setattr(http11.trio, "open_tcp_stream", deaf_stream)
    with trio.fail_after(60):
        async with http_client(transport=H11Transport()) as client:
            with pytest.raises(httpx.WriteTimeout):
                await client.post("http://127.0.0.1:9/x", content=b"x" * (4 << 20),
                                  timeout=httpx.Timeout(None, write=2))
    for peer in peers:
        peer.close()


async def test_an_invalid_header_is_refused_without_its_value() -> None:
    with trio.fail_after(5):
        async with tcp_server() as server, http_client() as client:
            with pytest.raises(httpx.LocalProtocolError) as caught:
                await client.get(server.base + "/x", headers={"Signature": "abc\x00SECRET"})
    assert "SECRET" not in str(caught.value) and "SECRET" not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert server.accepted == 0


async def test_other_schemes_are_refused() -> None:
    transport = H11Transport()
    for url in ("https://127.0.0.1/x", "ftp://127.0.0.1/x"):
        with pytest.raises(httpx.UnsupportedProtocol):
            await transport.handle_async_request(httpx.Request("GET", url))
    assert transport.opened == 0


async def test_aclose_closes_everything() -> None:
    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server() as server:
            client = http_client(transport=transport)
            await client.get(server.base + "/x")
            assert transport.open_connections == 1
            await client.aclose()
            assert transport.open_connections == 0
            with pytest.raises(RuntimeError, match="closed"):
                await transport.handle_async_request(httpx.Request("GET", server.base))


# ----------------------------------------------------------------------------- routing


def test_mounts_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = H11Transport()
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert plain_http_mounts(transport) == {"http://": transport}
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1,.example.com")
    assert plain_http_mounts(transport) == {
        "http://": transport, "http://127.0.0.1": transport, "http://localhost": transport,
        "http://[::1]": transport, "http://*.example.com": transport}
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert "http://" not in plain_http_mounts(transport)  # proxied plain http stays httpx's
    assert plain_http_mounts(transport, trust_env=False) == {"http://": transport}


async def test_no_proxy_hosts_still_use_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx mounts NO_PROXY hosts to its default transport with a pattern more specific
    than ``http://``; the factory must win there too (CI machines often set NO_PROXY)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    transport = H11Transport()
    with trio.fail_after(5):
        async with tcp_server() as server, http_client(transport=transport) as client:
            answer = await client.get(server.base + "/x")
    assert answer.status_code == 200 and transport.opened == 1


# ----------------------------------------------------------------------------- cookies


async def test_cookies_are_kept_as_by_httpx() -> None:
    """The factory's client skips cookie parsing only for answers that set none."""
    async def cookie_server(peer: Peer) -> None:
        while (got := await peer.request()) is not None:
            sent = dict(got[0].headers).get(b"cookie", b"").decode()
            extra = [("Set-Cookie", "a=1; Path=/")] if got[0].target == b"/set" else []
            await peer.answer(b'{"cookie":"%s"}' % sent.encode(), headers=extra)

    with trio.fail_after(5):
        async with tcp_server(cookie_server) as server:
            for make in (http_client, httpx.AsyncClient):
                async with make() as client:
                    assert (await client.get(server.base + "/none")).json() == {"cookie": ""}
                    assert not client.cookies
                    await client.get(server.base + "/set")
                    assert dict(client.cookies) == {"a": "1"}
                    assert (await client.get(server.base + "/x")).json() == {"cookie": "a=1"}


# ----------------------------------------------------------------------------- simulator


async def test_rest_client_against_the_simulator() -> None:
    sim = SimService(clock=SystemClock(), seed=5)
    sim.add_account(KEY, SECRET, Decimal(10000))
    transport = H11Transport()
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_sim, sim)
            base = rest_base_url("127.0.0.1", port)
            async with http_client(transport=transport) as client:
                client_rest = rest(client, base)
                order_id = await client_rest.place_order(order("h11-1", price="1000"))
                assert (await client_rest.order_get(order_id)).external_oid == "h11-1"
                (result,) = await client_rest.cancel_orders([order_id])
                assert result.error_code == 0
                with pytest.raises(RejectedError):
                    await client_rest.place_order(order("h11-2", price="1000", vol=10**9))
                assert transport.opened == 1  # one keep-alive connection throughout
                sim.faults.update({"rest_drop_after_next": 1, "rest_drop_mode": "close"})
                with pytest.raises(ResponseLost, match="RemoteProtocolError"):
                    await client_rest.place_order(order("h11-3", price="1000"))
                found = await client_rest.order_by_external(BTC, "h11-3")
                assert found.external_oid == "h11-3"  # it was placed: settled by query
            nursery.cancel_scope.cancel()
