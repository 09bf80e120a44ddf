"""The simulator's WebSocket, through tapeline's own ``open_mexc_ws`` over the in-memory
transport (``connect=sim.ws_connect``), in virtual time: subscriptions and their pushes,
depth versions, login and private pushes, ``personal.filter``, gzip, the ping timeout."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from adapters.mexc.codecs import decode_ws
from adapters.mexc.sim.service import SimService
from adapters.mexc.ws import (
    MexcWsConnection,
    Subscription,
    WsConnectFailed,
    WsDisconnected,
    WsLoginFailed,
    open_mexc_ws,
)
from adapters.mexc.ws_messages import KLINE_INTERVALS, personal_filter
from engine.model import OrderType

from .server_support import (
    BTC,
    ETH,
    WS,
    credentials,
    limit_order,
    new_sim,
    rest_client,
    running,
)


@asynccontextmanager
async def ws(
    sim: SimService, *subs: str | Subscription, **kwargs: Any
) -> AsyncIterator[MexcWsConnection]:
    """``open_mexc_ws`` on the simulator with virtual-time defaults."""
    async with open_mexc_ws(
        WS, clock=sim.clock, connect=sim.ws_connect, subscriptions=subs, **kwargs
    ) as conn:
        yield conn


async def collect(conn: MexcWsConnection, seconds: float) -> list[dict[str, Any]]:
    """Every frame (parsed) that arrives within ``seconds`` of virtual time."""
    out: list[dict[str, Any]] = []
    with trio.move_on_after(seconds):
        async for frame in conn:
            out.append(json.loads(frame.text))
    return out


def channels(frames: list[dict[str, Any]]) -> list[str]:
    return [f["channel"] for f in frames]


def sub(channel: str, **param: Any) -> str:
    return json.dumps({"method": f"sub.{channel}", "param": param})


async def test_ping_is_answered_with_pong(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with ws(sim, '{"method":"ping"}') as conn:
        (frame,) = await collect(conn, 0.5)
    assert frame["channel"] == "pong"
    assert frame["data"] == frame["ts"] and abs(frame["ts"] - sim.server_ms()) < 1000


async def test_public_subscriptions_are_acked_and_pushed(autojump_clock: MockClock) -> None:
    sim = new_sim()
    subs = [
        '{"method":"sub.tickers","params":{}}',  # ccxt's plural
        sub("ticker", symbol=BTC),
        sub("deal", symbol=BTC),
        sub("funding.rate", symbol=BTC),
        sub("index.price", symbol=ETH),
        sub("fair.price", symbol=ETH),
        sub("kline", symbol=BTC, interval="Min1"),
    ]
    async with running(sim), ws(sim, *subs) as conn:
        frames = await collect(conn, 3.05)
    seen = channels(frames)
    for channel in ("tickers", "ticker", "deal", "funding.rate", "index.price", "fair.price"):
        assert f"rs.sub.{channel}" in seen
    assert seen.count("push.ticker") == 3 and seen.count("push.tickers") == 3  # once a second
    assert seen.count("push.funding.rate") == 3
    assert seen.count("push.index.price") >= 25  # every market step
    for frame in frames:
        if frame["channel"].startswith("push."):
            decode_ws(json.dumps(frame))
        if frame["channel"] in ("push.ticker", "push.deal", "push.funding.rate", "push.kline"):
            assert frame["symbol"] == BTC
        if frame["channel"] in ("push.index.price", "push.fair.price"):
            assert frame["symbol"] == ETH
        if frame["channel"] == "push.deal":
            assert isinstance(frame["data"], list) and frame["data"]
        if frame["channel"] == "push.kline":
            assert frame["data"]["interval"] == "Min1"
    assert {len(f["data"]) for f in frames if f["channel"] == "push.tickers"} == {2}


async def test_every_kline_interval_can_be_subscribed(autojump_clock: MockClock) -> None:
    sim = new_sim()
    subs = [sub("kline", symbol=BTC, interval=i) for i in KLINE_INTERVALS]
    async with running(sim), ws(sim, *subs) as conn:
        frames = await collect(conn, 2)
    assert channels(frames).count("rs.sub.kline") == len(KLINE_INTERVALS)
    pushed = {f["data"]["interval"] for f in frames if f["channel"] == "push.kline"}
    assert pushed == set(KLINE_INTERVALS)


@pytest.mark.parametrize(
    ("request_text", "error"),
    [
        (sub("deal", symbol="NOPE_USDT"), "Contract [NOPE_USDT] not exists"),
        (sub("kline", symbol=BTC, interval="Min2"), "interval"),
        (sub("depth.full", symbol=BTC, limit=7), "limit"),
        (sub("depth", symbol=BTC, compress="yes"), "compress"),
        (sub("deal"), "symbol is required"),
        (sub("nothing", symbol=BTC), "not supported"),
        ('{"method":"sub.deal","param":"BTC_USDT"}', "param"),
        ("not json", "Invalid JSON"),
        ('{"method":"personal.filter"}', "Not logged in"),
        ('{"method":"dance"}', "Unknown method"),
    ],
)
async def test_bad_requests_get_rs_error(
    autojump_clock: MockClock, request_text: str, error: str
) -> None:
    sim = new_sim()
    async with ws(sim, request_text) as conn:
        (frame,) = await collect(conn, 0.5)
    assert frame["channel"] == "rs.error" and error in frame["data"]
    assert decode_ws(json.dumps(frame)).error == frame["data"]


async def test_unsubscribe_stops_the_pushes(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with running(sim), ws(sim, sub("index.price", symbol=BTC)) as conn:
        before = await collect(conn, 1)
        await conn.send('{"method":"unsub.index.price","param":{"symbol":"BTC_USDT"}}')
        after = await collect(conn, 1)
    assert "push.index.price" in channels(before)
    acked = channels(after).index("rs.unsub.index.price")
    assert channels(after)[acked + 1 :] == []


async def test_depth_versions_grow_by_exactly_one(autojump_clock: MockClock) -> None:
    sim = new_sim()
    subs = [sub("depth", symbol=BTC), sub("depth", symbol=ETH, compress=False)]
    async with running(sim), ws(sim, *subs) as conn:
        frames = await collect(conn, 3)
    merged = [f["data"] for f in frames if f["channel"] == "push.depth" and f["symbol"] == BTC]
    single = [f["data"] for f in frames if f["channel"] == "push.depth" and f["symbol"] == ETH]
    assert len(merged) > 10 and len(single) > 10
    for previous, data in itertools.pairwise(merged):
        assert data["begin"] == previous["end"] + 1 and data["version"] == data["end"]
    for previous, data in itertools.pairwise(single):
        assert "begin" not in data and data["version"] == previous["version"] + 1
    assert len(single) > len(merged)  # ETH got one frame per commit, BTC one per batch


async def test_rest_snapshot_plus_ws_deltas_give_the_current_book(
    autojump_clock: MockClock,
) -> None:
    sim = new_sim()
    async with running(sim), ws(sim, sub("depth", symbol=BTC)) as conn:
        await collect(conn, 0.3)
        async with rest_client(sim) as rest:
            snapshot = await rest.depth(BTC)
            await trio.sleep(1.5)  # the deltas wait in the connection's buffer
            final = await rest.depth(BTC)
        asks = {p: v for p, v, _ in snapshot.asks}
        bids = {p: v for p, v, _ in snapshot.bids}
        last = snapshot.version
        with trio.fail_after(5):
            while last < final.version:  # bounded by fail_after
                delta = decode_ws((await conn.receive()).text).messages[0]
                if delta.last_version <= snapshot.version:
                    continue
                assert delta.first_version <= last + 1
                for side, levels in ((asks, delta.asks), (bids, delta.bids)):
                    for price, vol, _ in levels:
                        if vol:
                            side[price] = vol
                        else:
                            side.pop(price, None)
                last = delta.last_version
    assert last == final.version > snapshot.version
    assert asks == {p: v for p, v, _ in final.asks}
    assert bids == {p: v for p, v, _ in final.bids}


@pytest.mark.parametrize("limit", [5, 10, 20])
async def test_depth_full_sends_top_n_snapshots(autojump_clock: MockClock, limit: int) -> None:
    sim = new_sim()
    async with running(sim), ws(sim, sub("depth.full", symbol=BTC, limit=limit)) as conn:
        frames = await collect(conn, 1)
    pushes = [f["data"] for f in frames if f["channel"] == "push.depth.full"]
    assert pushes
    assert all(0 < len(p["asks"]) <= limit and 0 < len(p["bids"]) <= limit for p in pushes)
    assert max(len(p["asks"]) for p in pushes) == min(limit, 10)  # the ladder is 10 deep
    versions = [p["version"] for p in pushes]
    assert versions == sorted(versions)


async def test_sub_contract_pushes_the_contract(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with ws(sim, sub("contract", symbol=ETH), '{"method":"sub.contract"}') as conn:
        frames = await collect(conn, 0.5)
    assert channels(frames) == [
        "rs.sub.contract", "push.contract", "rs.sub.contract", "push.contract", "push.contract",
    ]  # fmt: skip
    assert frames[1]["data"]["symbol"] == ETH and frames[1]["symbol"] == ETH


async def test_login_then_private_pushes_follow_a_placement(autojump_clock: MockClock) -> None:
    sim = new_sim()
    sim.add_account("other-key", "other-secret", 500)
    async with (
        ws(sim, credentials=credentials()) as mine,
        ws(sim, credentials=credentials("other-key", "other-secret")) as theirs,
        ws(sim) as anonymous,
    ):
        assert (await mine.receive()).text.startswith('{"channel":"rs.login","data":"success"')
        await theirs.receive()
        async with rest_client(sim) as rest:
            await rest.place_order(limit_order("0", 2, oid="p-1", order_type=OrderType.MARKET))
        mine_frames = await collect(mine, 0.5)
        their_frames = await collect(theirs, 0.01)
        anonymous_frames = await collect(anonymous, 0.01)
    seen = channels(mine_frames)
    for channel in ("order", "order.deal", "position", "asset"):
        assert f"push.personal.{channel}" in seen
    orders = [f["data"] for f in mine_frames if f["channel"] == "push.personal.order"]
    assert orders[-1]["externalOid"] == "p-1" and orders[-1]["state"] == 3
    assert their_frames == [] and anonymous_frames == []


async def test_subscribe_false_switches_the_default_push_off(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with ws(sim, credentials=credentials(), login_subscribe=False) as conn:
        await conn.receive()  # rs.login
        async with rest_client(sim) as rest:
            await rest.place_order(limit_order("95000", oid="q-1"))
        assert await collect(conn, 0.5) == []
        await conn.send(personal_filter({"asset": None}))
        async with rest_client(sim) as rest:
            await rest.place_order(limit_order("95000", oid="q-2"))
        frames = await collect(conn, 0.5)
    assert channels(frames) == ["rs.personal.filter", "push.personal.asset"]


async def test_personal_filter_selects_streams_and_symbols_and_can_be_reset(
    autojump_clock: MockClock,
) -> None:
    sim = new_sim()
    async with ws(sim, credentials=credentials()) as conn, rest_client(sim) as rest:
        await conn.receive()  # rs.login
        await conn.send(personal_filter({"order": [ETH]}))
        await rest.place_order(limit_order("95000", oid="f-1"))
        await rest.place_order(limit_order("2900", oid="f-2", symbol=ETH))
        first = await collect(conn, 0.5)
        assert channels(first) == ["rs.personal.filter", "push.personal.order"]
        assert first[1]["data"]["symbol"] == ETH
        await conn.send(personal_filter({"asset": None}))  # replaces the order filter
        await rest.place_order(limit_order("2900", oid="f-3", symbol=ETH))
        second = await collect(conn, 0.5)
        assert channels(second) == ["rs.personal.filter", "push.personal.asset"]
        await conn.send(personal_filter([]))  # empty: everything again
        await rest.place_order(limit_order("95000", oid="f-4"))
        third = await collect(conn, 0.5)
        assert channels(third) == [
            "rs.personal.filter", "push.personal.order", "push.personal.asset",
        ]  # fmt: skip
        await conn.send('{"method":"personal.filter","param":{"filters":[{"filter":"orders"}]}}')
        (error,) = await collect(conn, 0.5)
        assert error["channel"] == "rs.error" and "orders" in error["data"]


async def test_a_bad_login_is_refused(autojump_clock: MockClock) -> None:
    sim = new_sim()
    with pytest.raises(WsLoginFailed) as caught:
        async with ws(sim, credentials=credentials(secret="wrong")):
            pytest.fail("logged in with a wrong secret")
    assert "Signature" in caught.value.detail
    with pytest.raises(WsLoginFailed):
        async with ws(sim, credentials=credentials(key="nobody")):
            pytest.fail("logged in with an unknown key")


async def test_a_silent_client_is_closed_after_60_s(autojump_clock: MockClock) -> None:
    sim = new_sim(drive_market=False)
    start = trio.current_time()
    async with ws(sim, ping_interval=3600, pong_timeout=None) as conn:
        with pytest.raises(WsDisconnected) as caught:
            await conn.receive()
    assert trio.current_time() - start == pytest.approx(60, abs=0.5)
    assert caught.value.code == 1000 and "no ping" in caught.value.reason
    assert sim.connections == frozenset()


async def test_a_pinging_client_stays_connected(autojump_clock: MockClock) -> None:
    sim = new_sim(drive_market=False)
    async with ws(sim, ping_interval=20) as conn:
        frames = await collect(conn, 130)
        assert not conn.closed
    assert channels(frames).count("pong") == 6


async def test_gzip_frames_when_asked(autojump_clock: MockClock) -> None:
    sim = new_sim()
    plain = Subscription("ticker", {"symbol": ETH})
    async with (
        running(sim),
        ws(sim, Subscription("ticker", {"symbol": BTC}), gzip=True) as zipped,
        ws(sim, plain) as text,
    ):
        zipped_frames = [await zipped.receive() for _ in range(3)]
        text_frames = [await text.receive() for _ in range(3)]
    assert [f.compressed for f in zipped_frames] == [False, True, True]  # the ack is text
    assert json.loads(zipped_frames[1].text)["channel"] == "push.ticker"
    assert not any(f.compressed for f in text_frames)


async def test_only_the_edge_path_is_served(autojump_clock: MockClock) -> None:
    sim = new_sim()
    with pytest.raises(WsConnectFailed):
        async with open_mexc_ws("ws://sim.test/ws", clock=sim.clock, connect=sim.ws_connect):
            pytest.fail("connected to a wrong path")


async def test_a_slow_consumer_is_disconnected(autojump_clock: MockClock) -> None:
    sim = new_sim(outbox_size=8)
    async with running(sim), ws(sim, sub("depth", symbol=BTC, compress=False),
                                buffer_size=1, pong_timeout=None) as conn:  # fmt: skip
        await trio.sleep(5)  # nobody reads
        with pytest.raises(WsDisconnected) as caught:
            while True:  # bounded: the server closes the connection
                await conn.receive()
    assert caught.value.code == 1008
