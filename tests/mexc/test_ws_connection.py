"""The WS connection: real sockets on 127.0.0.1 (real time, guarded), then an in-memory fake
transport under ``autojump_clock`` for pings, pong timeouts and the send throttle."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

import attrs
import pytest
import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)

from adapters.mexc.auth import Credentials
from adapters.mexc.errors import Classification, DecodeError, MexcError
from adapters.mexc.ws import (
    MexcWsConnection,
    RawFrame,
    Subscription,
    WsConnectFailed,
    WsDisconnected,
    WsError,
    WsLoginFailed,
    WsPongTimeout,
    WsProtocolError,
    open_mexc_ws,
)
from adapters.mexc.ws_transport import SendThrottle, decompress_frame
from engine.clock import TrioClock

API_KEY = "mx0testkey"
SECRET = "do-not-leak-this-secret"


@attrs.frozen
class Creds:
    api_key: str
    secret: str = attrs.field(repr=False)


CREDS = Creds(API_KEY, SECRET)


def signed_ok(login_text: str) -> bool:
    """The server's check of a login request, computed independently."""
    param = json.loads(login_text)["param"]
    expected = hmac.new(
        SECRET.encode(), (param["apiKey"] + param["reqTime"]).encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, param["signature"])


def ack(method: str) -> str:
    return json.dumps({"channel": f"rs.{method}", "data": "success", "ts": 1})


# == (a) real sockets on 127.0.0.1, real time, no autojump ==================================

Handler = Callable[[WebSocketConnection, list[str]], Awaitable[None]]


@asynccontextmanager
async def local_server(script: Handler) -> AsyncIterator[tuple[str, list[str]]]:
    """A trio-websocket server on 127.0.0.1:0 running ``script`` per connection; yields the
    URL and the list of texts it received (in order)."""
    received: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with suppress(ConnectionClosed):
            await script(ws, received)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            yield f"ws://127.0.0.1:{server.port}/edge", received
            nursery.cancel_scope.cancel()


async def exchange(ws: WebSocketConnection, received: list[str]) -> None:
    """A tiny MEXC: checks login, acks requests, then pushes one deal per subscription."""
    for _ in range(100):  # bounded: ends when the client closes
        text = await ws.get_message()
        assert isinstance(text, str)
        received.append(text)
        method = json.loads(text)["method"]
        if method == "login":
            if signed_ok(text):
                await ws.send_message(ack("login"))
            else:
                await ws.send_message('{"channel":"rs.error","data":"signature failed","ts":1}')
        elif method.startswith("sub."):
            await ws.send_message(ack(method))
            symbol = json.loads(text)["param"].get("symbol", "")
            await ws.send_message(json.dumps({"channel": "push.deal", "symbol": symbol}))
        else:
            await ws.send_message(ack(method))


async def test_login_filter_and_subscriptions_over_a_socket() -> None:
    clock = TrioClock()
    async with local_server(exchange) as (url, received):
        before = clock.time_ns()
        async with open_mexc_ws(
            url,
            clock=clock,
            credentials=Credentials(API_KEY, SECRET),  # the engine's own (secret wrapped)
            personal_filters={"order": ["BTC_USDT"], "asset": None},
            subscriptions=[
                Subscription("deal", {"symbol": "BTC_USDT"}),
                '{"method":"sub.ticker","param":{"symbol":"ETH_USDT"}}',
                Subscription("kline", {"symbol": "BTC_USDT", "interval": "Min1"}),
            ],
        ) as conn:
            frames = [await conn.receive() for _ in range(8)]
            after = clock.time_ns()
            stats = conn.statistics()
    channels = [json.loads(f.text)["channel"] for f in frames]
    assert channels == [
        "rs.login",  # the login answer is handed over too, first
        "rs.personal.filter",
        "rs.sub.deal",
        "push.deal",
        "rs.sub.ticker",
        "push.deal",
        "rs.sub.kline",
        "push.deal",
    ]
    methods = [json.loads(t)["method"] for t in received]
    assert methods == ["login", "personal.filter", "sub.deal", "sub.ticker", "sub.kline"]
    assert json.loads(received[2]) == {
        "method": "sub.deal",
        "param": {"symbol": "BTC_USDT"},
        "gzip": False,
    }
    assert received[3] == '{"method":"sub.ticker","param":{"symbol":"ETH_USDT"}}'  # verbatim
    stamps = [f.received_ns for f in frames]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after
    assert not any(f.compressed for f in frames)
    assert stats.frames_received == 8 and stats.frames_sent == 5
    assert stats.last_received_ns == stamps[-1]


async def test_login_refused_over_a_socket() -> None:
    wrong = Creds(API_KEY, "not-the-secret")
    async with local_server(exchange) as (url, received):
        with pytest.raises(WsLoginFailed) as info:
            async with open_mexc_ws(url, clock=TrioClock(), credentials=wrong):
                pytest.fail("the body must not run when login fails")
    assert info.value.detail == "signature failed"
    assert isinstance(info.value, MexcError)
    assert "not-the-secret" not in str(info.value) and "not-the-secret" not in repr(info.value)
    assert [json.loads(t)["method"] for t in received] == ["login"]


async def test_gzip_frames_are_decoded_over_a_socket() -> None:
    push = {"channel": "push.deal", "symbol": "BTC_USDT", "data": [{"p": 1.5}]}

    async def gzipping(ws: WebSocketConnection, received: list[str]) -> None:
        text = await ws.get_message()
        assert isinstance(text, str)
        received.append(text)
        await ws.send_message(ack("sub.deal"))  # acks may stay plain text
        await ws.send_message(gzip.compress(json.dumps(push).encode()))
        await ws.get_message()

    async with (
        local_server(gzipping) as (url, received),
        open_mexc_ws(
            url,
            clock=TrioClock(),
            gzip=True,
            subscriptions=[Subscription("deal", {"symbol": "BTC_USDT"})],
        ) as conn,
    ):
        plain = await conn.receive()
        packed = await conn.receive()
        stats = conn.statistics()
    assert json.loads(received[0])["gzip"] is True
    assert plain.compressed is False and json.loads(plain.text)["channel"] == "rs.sub.deal"
    assert packed.compressed is True and json.loads(packed.text) == push
    assert stats.compressed_frames == 1


async def test_server_close_surfaces_ws_disconnected_over_a_socket() -> None:
    async def closing(ws: WebSocketConnection, received: list[str]) -> None:
        await ws.send_message('{"channel":"push.tickers","data":[]}')
        await ws.aclose(code=4001, reason="maintenance")

    async with local_server(closing) as (url, _):
        seen: list[RawFrame] = []
        with pytest.raises(WsDisconnected) as info:
            async with open_mexc_ws(url, clock=TrioClock()) as conn:
                async for frame in conn:
                    seen.append(frame)
    assert len(seen) == 1  # what arrived before the close is delivered first
    assert info.value.code == 4001 and info.value.reason == "maintenance"
    assert not info.value.local
    assert conn.error is info.value and conn.closed


async def test_connect_failure_is_ws_connect_failed() -> None:
    with trio.fail_after(5):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        await listener.aclose()  # nothing listens there any more
        with pytest.raises(WsConnectFailed, match=f"127.0.0.1:{port}"):
            async with open_mexc_ws(f"ws://127.0.0.1:{port}/edge", clock=TrioClock()):
                pytest.fail("unreachable")


# == (b) in memory, virtual time ============================================================


class FakeExchange:
    """An in-memory transport playing the exchange: records what the client sends (with trio
    time) and answers pings, login and subscriptions as configured."""

    def __init__(
        self, *, pongs: int | float = math.inf, login_reply: str | None = ack("login")
    ) -> None:
        self.pongs_left = pongs
        self.login_reply = login_reply
        self.sent: list[tuple[float, str]] = []
        self.urls: list[str] = []
        self.close_reason: CloseReason | None = None
        self._to_client, self._inbox = trio.open_memory_channel[str | bytes](math.inf)

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[FakeExchange]:
        self.urls.append(url)
        try:
            yield self
        finally:
            await self.aclose()

    # -- the transport seen by the client --

    async def get_message(self) -> str | bytes:
        try:
            return await self._inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(self.close_reason) from None

    async def send_message(self, message: str | bytes) -> None:
        if self.close_reason is not None:
            raise ConnectionClosed(self.close_reason)
        assert isinstance(message, str)
        self.sent.append((trio.current_time(), message))
        method = json.loads(message)["method"]
        if method == "ping" and self.pongs_left > 0:
            self.pongs_left -= 1
            self.push(json.dumps({"channel": "pong", "data": int(trio.current_time() * 1000)}))
        elif method == "login" and self.login_reply is not None:
            self.push(self.login_reply)

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if self.close_reason is None:
            self.close_reason = CloseReason(code, reason)
        self._inbox.close()

    # -- the exchange's side --

    def push(self, message: str | bytes) -> None:
        self._to_client.send_nowait(message)

    def drop(self, code: int, reason: str) -> None:
        self.close_reason = CloseReason(code, reason)
        self._to_client.close()

    def methods(self) -> list[str]:
        return [json.loads(text)["method"] for _, text in self.sent]

    def ping_times(self) -> list[float]:
        return [t for t, text in self.sent if text == '{"method":"ping"}']


def fake_ws(fake: FakeExchange, **kwargs: Any) -> AbstractAsyncContextManager[MexcWsConnection]:
    """``open_mexc_ws`` over ``fake``, with a virtual-time clock."""
    return open_mexc_ws(
        "wss://contract.mexc.test/edge", clock=TrioClock(), connect=fake.connect, **kwargs
    )


async def test_pings_every_15_s(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange()
    async with fake_ws(fake) as conn:
        start = trio.current_time()
        await trio.sleep(61)
        stats = conn.statistics()
        last_pong = conn.last_pong_ns
        now_ns = TrioClock().time_ns()
    assert [t - start for t in fake.ping_times()] == pytest.approx([15, 30, 45, 60])
    assert stats.pings_sent == 4 and stats.pongs_received == 4
    assert last_pong == stats.last_received_ns
    assert last_pong is not None and now_ns - last_pong == pytest.approx(1e9, rel=1e-6)


async def test_pong_timeout_closes_and_raises(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange(pongs=0)
    with pytest.raises(WsPongTimeout) as info:
        async with fake_ws(fake) as conn:
            start = trio.current_time()
            async for _ in conn:
                pytest.fail("a silent exchange sends no frames")
    assert trio.current_time() - start == pytest.approx(30)  # 2 × ping_interval
    assert len(fake.ping_times()) == 1  # 15 s; at 30 s the watchdog fires first
    assert info.value.timeout == 30 and isinstance(info.value, WsDisconnected)
    assert fake.close_reason is not None and fake.close_reason.code == 4000
    assert conn.error is info.value and conn.last_pong_ns is None


async def test_a_pong_rearms_the_watchdog(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange(pongs=2)  # answers the pings at 15 s and 30 s, then goes quiet
    frames: list[RawFrame] = []
    with pytest.raises(WsPongTimeout):
        async with fake_ws(fake, ping_interval=15.0, pong_timeout=20.0) as conn:
            start = trio.current_time()
            async for frame in conn:
                frames.append(frame)
    assert trio.current_time() - start == pytest.approx(50)  # last pong at 30 s + 20 s
    assert [json.loads(f.text)["channel"] for f in frames] == ["pong", "pong"]
    assert conn.statistics().pongs_received == 2


async def test_pong_timeout_can_be_disabled(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange(pongs=0)
    async with fake_ws(fake, pong_timeout=None) as conn:
        await trio.sleep(125)
        assert not conn.closed
        assert conn.statistics().pings_sent == 8


async def test_outbound_token_bucket(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange()
    subs = [Subscription("ticker", {"symbol": f"S{i}_USDT"}) for i in range(20)]
    start = trio.current_time()
    async with fake_ws(fake, subscriptions=subs, send_rate=10.0, send_burst=5) as conn:
        opened = trio.current_time()
        await conn.send('{"method":"sub.tickers","param":{}}')
    times = [t - start for t, _ in fake.sent]
    expected = [max(0.0, (i - 4) * 0.1) for i in range(21)]  # 5 at once, then 10/s
    assert times == pytest.approx(expected, abs=1e-9)
    assert opened - start == pytest.approx(1.5)  # open returns once all 20 are out
    assert [json.loads(t)["param"].get("symbol") for _, t in fake.sent[:3]] == [
        "S0_USDT",
        "S1_USDT",
        "S2_USDT",
    ]


async def test_throttle_refills_over_time(autojump_clock: trio.testing.MockClock) -> None:
    throttle = SendThrottle(rate=2.0, burst=2)
    start = trio.current_time()
    stamps = []
    for _ in range(3):
        await throttle.acquire()
        stamps.append(trio.current_time() - start)
    await trio.sleep(10)  # idle: the bucket refills, but never beyond the burst
    for _ in range(3):
        await throttle.acquire()
        stamps.append(trio.current_time() - start)
    assert stamps == pytest.approx([0, 0, 0.5, 10.5, 10.5, 11.0])
    with pytest.raises(ValueError):
        SendThrottle(rate=0)
    with pytest.raises(ValueError):
        SendThrottle(burst=0)


async def test_login_handshake_order_in_memory(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeExchange()
    clock = TrioClock()
    async with open_mexc_ws(
        "wss://contract.mexc.test/edge",
        clock=clock,
        connect=fake.connect,
        credentials=CREDS,
        login_subscribe=False,
        personal_filters=[{"filter": "order.deal", "rules": ["BTC_USDT"]}],
        subscriptions=[Subscription("depth", {"symbol": "BTC_USDT", "compress": False})],
    ) as conn:
        first = await conn.receive()
    assert fake.urls == ["wss://contract.mexc.test/edge"]
    assert fake.methods() == ["login", "personal.filter", "sub.depth"]
    login_msg = json.loads(fake.sent[0][1])
    assert login_msg["subscribe"] is False
    sent_at_ns = clock.epoch_ns + round(fake.sent[0][0] * 1e9)
    assert login_msg["param"]["reqTime"] == str(sent_at_ns // 1_000_000)  # the injected clock
    assert signed_ok(fake.sent[0][1])
    assert json.loads(first.text)["channel"] == "rs.login"
    assert "filters" in json.loads(fake.sent[1][1])["param"]
    assert SECRET not in repr(conn)
    assert caplog.records  # something was logged, and none of it is secret
    assert SECRET not in caplog.text and login_msg["param"]["signature"] not in caplog.text


async def test_login_unanswered_times_out(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange(login_reply=None)
    start = trio.current_time()
    with pytest.raises(WsLoginFailed, match=r"no rs\.login within 10 s"):
        async with fake_ws(fake, credentials=CREDS):
            pytest.fail("unreachable")
    assert trio.current_time() - start == pytest.approx(10)
    assert fake.close_reason is not None  # the transport was closed on the way out


async def test_login_error_reply(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange(login_reply='{"channel":"rs.error","data":"Api key info invalid"}')
    with pytest.raises(WsLoginFailed) as info:
        async with fake_ws(fake, credentials=CREDS):
            pytest.fail("unreachable")
    assert info.value.detail == "Api key info invalid"
    assert SECRET not in str(info.value)


async def test_binary_without_gzip_is_a_protocol_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExchange()
    async with fake_ws(fake) as conn:
        fake.push(gzip.compress(b'{"channel":"push.tickers"}'))
        fake.push('{"channel":"push.ticker"}')
        with pytest.raises(WsProtocolError, match="gzip was not requested"):
            await conn.receive()
        frame = await conn.receive()  # the connection carries on
        assert frame.text == '{"channel":"push.ticker"}'
        assert conn.statistics().protocol_errors == 1


async def test_bad_gzip_is_a_protocol_error(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange()
    async with fake_ws(fake, gzip=True) as conn:
        fake.push(b"\x1f\x8bnot really gzip")
        with pytest.raises(WsProtocolError, match="not gzip"):
            await conn.receive()


def test_decompress_frame_formats_and_limits() -> None:
    import zlib

    text = '{"channel":"push.deal"}'
    assert decompress_frame(gzip.compress(text.encode())) == text
    assert decompress_frame(zlib.compress(text.encode())) == text
    raw = zlib.compressobj(wbits=-15)
    assert decompress_frame(raw.compress(text.encode()) + raw.flush()) == text
    with pytest.raises(ValueError, match="inflates past"):
        decompress_frame(gzip.compress(b"x" * 10_000), max_bytes=100)
    with pytest.raises(ValueError, match="truncated"):
        decompress_frame(gzip.compress(text.encode())[:-12])
    with pytest.raises(ValueError, match="not UTF-8"):
        decompress_frame(gzip.compress(b"\xff\xfe"))


async def test_peer_drop_after_frames(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange()
    clock = TrioClock()
    with pytest.raises(WsDisconnected) as info:
        async with fake_ws(fake) as conn:
            await trio.sleep(3)
            fake.push('{"channel":"push.deal"}')
            fake.drop(1006, "gone")
            frame = await conn.receive()
            assert frame.received_ns == clock.time_ns()  # stamped on arrival, virtual time
            assert conn.last_received_ns == frame.received_ns
            await conn.receive()
    assert (info.value.code, info.value.reason, info.value.local) == (1006, "gone", False)
    with pytest.raises(WsDisconnected):
        await conn.send("{}")


async def test_local_close_ends_iteration(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange()
    async with fake_ws(fake) as conn, trio.open_nursery() as nursery:
        seen: list[RawFrame] = []

        async def consume() -> None:
            async for frame in conn:
                seen.append(frame)

        nursery.start_soon(consume)
        fake.push('{"channel":"push.ticker"}')
        await trio.sleep(1)
        await conn.close()
    assert [f.text for f in seen] == ['{"channel":"push.ticker"}']
    assert conn.closed and conn.error is None
    assert fake.close_reason is not None and fake.close_reason.code == 1000
    with pytest.raises(WsDisconnected) as info:
        await conn.receive()
    assert info.value.local
    with pytest.raises(WsDisconnected):
        await conn.send('{"method":"ping"}')


async def test_body_errors_are_not_wrapped(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeExchange()
    with pytest.raises(KeyError):
        async with fake_ws(fake):
            raise KeyError("strategy bug")
    assert fake.close_reason is not None


async def test_subscribe_helpers_use_the_gzip_choice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExchange()
    async with fake_ws(fake, gzip=True) as conn:
        await conn.subscribe("depth.full", symbol="BTC_USDT", limit=10)
        await conn.unsubscribe("depth.full", symbol="BTC_USDT")
    assert [json.loads(t) for _, t in fake.sent] == [
        {"method": "sub.depth.full", "param": {"symbol": "BTC_USDT", "limit": 10}, "gzip": True},
        {"method": "unsub.depth.full", "param": {"symbol": "BTC_USDT"}},
    ]


async def test_argument_validation() -> None:
    fake = FakeExchange()
    bad: list[dict[str, object]] = [
        {"personal_filters": {"asset": None}},  # no credentials
        {"ping_interval": 0},
        {"pong_timeout": -1},
        {"gzip": "yes"},
        {"subscriptions": [42]},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            async with fake_ws(fake, **kwargs):
                pytest.fail("unreachable")
    with pytest.raises(ValueError, match="interval"):
        Subscription("kline", {"symbol": "BTC_USDT", "interval": "Min2"})
    assert fake.urls == []  # validated before connecting
    with pytest.raises(ValueError, match="not a ws:// or wss:// URL"):
        async with open_mexc_ws("https://contract.mexc.test/edge", clock=TrioClock()):
            pytest.fail("unreachable")


def test_error_tree() -> None:
    for cls in (WsConnectFailed, WsDisconnected, WsLoginFailed, WsProtocolError):
        assert issubclass(cls, WsError) and issubclass(cls, MexcError)
    assert issubclass(WsPongTimeout, WsDisconnected)
    assert issubclass(WsProtocolError, DecodeError)
    assert WsProtocolError("bad", 1).where == "ws frame"
    assert WsConnectFailed("ws://x", "refused").classification is Classification.RETRYABLE
    assert WsPongTimeout(30).classification is Classification.RETRYABLE
    assert WsLoginFailed("bad key").classification is Classification.REJECTED
    assert WsLoginFailed("silence", refused=False).classification is Classification.RETRYABLE
    assert MexcWsConnection.__doc__
