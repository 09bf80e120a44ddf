"""tapeline's own REST client against the simulator, in process (httpx.MockTransport) and
in virtual time: placing (both API generations), querying, cancelling in every form,
positions, balances, leverage and market data."""

from __future__ import annotations

import json

import pytest
import trio
from trio.testing import MockClock

from adapters.mexc.config import Generation
from adapters.mexc.sim.asgi import rest_base_url, ws_url
from engine.commands import ChangeLeverage, ChangeMargin, MarginChange
from engine.model import BookDelta, OpenType, OrderState, OrderType, PositionType, Side

from .server_support import (
    BEFORE_SETTLE_NS,
    BTC,
    ETH,
    D,
    clock_at,
    envelope,
    http_client,
    limit_order,
    new_sim,
    rest_client,
    running,
    signed,
)


async def test_place_with_order_create_then_query_it_every_way(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        order_id = await rest.place_order(limit_order("95000", 2, oid="c-1"))
        assert isinstance(order_id, str) and order_id.isdigit()
        got = await rest.order_get(order_id, BTC)
        assert (got.order_id, got.state, got.vol, got.price) == (
            order_id, OrderState.OPEN, D(2), D(95000),
        )  # fmt: skip
        assert got.external_oid == "c-1" and got.open_type == OpenType.ISOLATED
        assert (await rest.order_by_external(BTC, "c-1")).order_id == order_id
        (batch,) = await rest.order_batch_query([order_id])
        assert batch.order_id == order_id
        assert [o.order_id for o in await rest.open_orders()] == [order_id]
        assert [o.order_id for o in await rest.open_orders(BTC)] == [order_id]
        assert await rest.open_orders(ETH) == ()
        history = await rest.history_orders(BTC, states=[2])
        assert [o.order_id for o in history] == [order_id]
        (asset,) = await rest.assets()
        assert asset.frozen > 0 and asset.available == D(10000) - asset.frozen


async def test_the_create_answer_is_an_object_with_id_and_ts(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with http_client(sim) as http:
        body = b'{"symbol":"BTC_USDT","price":95000.0,"vol":1.0,"side":1,"type":1,"openType":2}'
        data = envelope(await signed(http, "POST", "/api/v1/private/order/create", body=body)).data
        assert set(data) == {"orderId", "ts"} and isinstance(data["orderId"], str)
        assert 0 <= sim.server_ms() - data["ts"] < 1000
        answer = await signed(http, "POST", "/api/v1/private/order/submit", body=body)
        assert isinstance(envelope(answer).data, int)  # old API: the bare id as a number


async def test_old_generation_submits_and_uses_the_old_paths(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim, generation=Generation.OLD) as rest:
        order_id = await rest.place_order(limit_order("95000", oid="o-1"))
        assert isinstance(order_id, str)
        assert [o.order_id for o in await rest.open_orders(BTC)] == [order_id]
        (result,) = await rest.cancel_with_external(BTC, "o-1")  # object body
        assert (result.order_id, result.error_code) == (order_id, 0)
        await rest.place_order(limit_order("95000", oid="o-2"))
        await rest.cancel_all()  # body {}
        assert await rest.open_orders(BTC) == ()


async def test_cancel_by_ids_reports_each_id(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        first = await rest.place_order(limit_order("95000", oid="a"))
        second = await rest.place_order(limit_order("95000", oid="b"))
        results = await rest.cancel_orders([first, "123", first])
        assert [(r.order_id, r.error_code) for r in results] == [
            (first, 0), ("123", 2040), (first, 2041),
        ]  # fmt: skip
        assert results[0].error_msg == "success"  # what ccxt checks
        assert [o.order_id for o in await rest.open_orders()] == [second]


async def test_ids_are_accepted_as_json_numbers_or_strings(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest, http_client(sim) as http:
        first = await rest.place_order(limit_order("95000", oid="n-1"))
        second = await rest.place_order(limit_order("95000", oid="n-2"))
        body = f'[{first},"{second}"]'.encode()
        answer = await signed(http, "POST", "/api/v1/private/order/cancel", body=body)
        assert [(r["orderId"], r["errorCode"]) for r in envelope(answer).data] == [
            (first, 0), (second, 0),
        ]  # fmt: skip
        query = f"order_ids={first}%2C{second}"
        answer = await signed(http, "GET", "/api/v1/private/order/batch_query", query=query)
        assert len(envelope(answer).data) == 2


async def test_cancel_with_external_takes_an_object_or_a_list(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest, http_client(sim) as http:
        await rest.place_order(limit_order("95000", oid="x-1"))
        await rest.place_order(limit_order("95000", oid="x-2"))
        (result,) = await rest.cancel_with_external(BTC, "x-1")  # new API: list body
        assert result.error_code == 0
        body = b'{"symbol":"BTC_USDT","externalOid":"x-2"}'
        path = "/api/v1/private/order/cancel_with_external"
        (row,) = envelope(await signed(http, "POST", path, body=body)).data
        assert row["errorCode"] == 0
        (row,) = envelope(await signed(http, "POST", path, body=body)).data
        assert row["errorCode"] == 2041
        body = b'[{"symbol":"BTC_USDT","externalOid":"never"}]'
        path = "/api/v1/private/order/batch_cancel_with_external"
        (row,) = envelope(await signed(http, "POST", path, body=body)).data
        assert row["errorCode"] == 2040


@pytest.mark.parametrize("body", [b'{"symbol":""}', b"{}", b""])
async def test_cancel_all_without_a_symbol_cancels_every_contract(
    autojump_clock: MockClock, body: bytes
) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest, http_client(sim) as http:
        await rest.place_order(limit_order("95000", oid="b-1"))
        await rest.place_order(limit_order("2900", oid="e-1", symbol=ETH))
        answer = await signed(http, "POST", "/api/v1/private/order/cancel_all", body=body)
        assert json.loads(answer.text) == {"success": True, "code": 0}
        assert await rest.open_orders() == ()


async def test_cancel_all_of_one_symbol_keeps_the_others(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        await rest.place_order(limit_order("95000", oid="b-1"))
        eth = await rest.place_order(limit_order("2900", oid="e-1", symbol=ETH))
        await rest.cancel_all(BTC)
        assert [o.order_id for o in await rest.open_orders()] == [eth]


async def test_positions_fills_leverage_and_margin(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        market = limit_order("0", 5, oid="m-1", order_type=OrderType.MARKET)
        order_id = await rest.place_order(market)
        order = await rest.order_get(order_id)
        assert order.state == OrderState.FILLED and order.deal_vol == D(5)
        fills = await rest.order_deal_details(order_id)
        assert sum(f.vol for f in fills) == D(5)
        assert [f.order_id for f in await rest.order_deals(BTC)] == [order_id] * len(fills)
        (position,) = await rest.open_positions(BTC)
        assert (position.position_type, position.hold_vol, position.leverage) == (
            PositionType.LONG, D(5), 10,
        )  # fmt: skip
        await rest.change_leverage(ChangeLeverage(25, position_id=position.position_id))
        (position,) = await rest.open_positions()
        assert position.leverage == 25
        short = PositionType.SHORT
        await rest.change_leverage(
            ChangeLeverage(7, symbol=BTC, open_type=OpenType.CROSS, position_type=short)
        )
        tiers = {t.position_type: t for t in await rest.position_leverage(BTC)}
        assert tiers[PositionType.LONG].leverage == 25
        assert tiers[PositionType.SHORT].leverage == 7
        before = position.im
        await rest.change_margin(ChangeMargin(position.position_id, D("3.5"), MarginChange.ADD))
        (position,) = await rest.open_positions()
        assert position.im == before + D("3.5")
        assert await rest.position_mode() == 1
        close = limit_order("0", 5, side=Side.CLOSE_LONG, oid="m-2", order_type=OrderType.MARKET)
        await rest.place_order(close)
        assert await rest.open_positions() == ()
        (closed,) = await rest.history_positions()
        assert closed.hold_vol == 0


async def test_market_data_endpoints(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with running(sim), rest_client(sim) as rest:
        await trio.sleep(3)
        assert abs(await rest.ping() - sim.server_ms()) < 1000
        details = await rest.contract_detail()
        assert {c.symbol for c in details} == {BTC, ETH}
        assert (await rest.contract_detail(BTC)).symbol == BTC
        assert await rest.support_currencies() == ("USDT",)
        book = await rest.depth(BTC, 3)
        assert len(book.bids) == len(book.asks) == 3
        assert book.bids[0][0] < book.asks[0][0]
        ticker = await rest.ticker(BTC)
        assert ticker.symbol == BTC and ticker.bid1 == book.bids[0][0]
        assert len(await rest.ticker()) == 2
        rate = await rest.funding_rate(BTC)
        assert rate.symbol == BTC and rate.next_settle_ms > sim.server_ms()
        assert (await rest.index_price(BTC)).price > 0
        assert (await rest.fair_price(BTC)).price > 0
        deals = await rest.deals(BTC, 5)
        assert 0 < len(deals) <= 5
        candles = await rest.kline(BTC, "Min1")
        assert candles and all(c.symbol == BTC for c in candles)
        for interval in ("Min5", "Hour4", "Week1", "Month1"):
            assert await rest.kline(BTC, interval)
        assert await rest.kline_index(BTC, "Min1")
        assert await rest.kline_fair(BTC, "Min1")


async def test_depth_commits_replay_the_snapshot_forward(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with running(sim), rest_client(sim) as rest:
        old = await rest.depth(BTC)
        await trio.sleep(0.5)
        commits: tuple[BookDelta, ...] = await rest.depth_commits(BTC, 1000)
        new = await rest.depth(BTC)
    versions = [c.version for c in commits]
    assert versions == list(range(versions[0], versions[-1] + 1))
    assert versions[-1] == new.version > old.version >= versions[0] - 1
    asks = {p: v for p, v, _ in old.asks}
    bids = {p: v for p, v, _ in old.bids}
    for delta in commits:
        if delta.version <= old.version:
            continue
        for side, levels in ((asks, delta.asks), (bids, delta.bids)):
            for price, vol, _ in levels:
                if vol:
                    side[price] = vol
                else:
                    side.pop(price, None)
    assert asks == {p: v for p, v, _ in new.asks}
    assert bids == {p: v for p, v, _ in new.bids}


async def test_funding_settles_and_is_recorded(autojump_clock: MockClock) -> None:
    sim = new_sim(clock=clock_at(BEFORE_SETTLE_NS))
    async with running(sim), rest_client(sim) as rest:
        await rest.place_order(limit_order("0", 5, oid="f-1", order_type=OrderType.MARKET))
        await trio.sleep(12)
        history = await rest.funding_rate_history(BTC)
        assert history.total_count == 1
        records = await rest.funding_records(BTC)
        assert len(records.items) == 1 and records.items[0].symbol == BTC


async def test_spot_endpoints_that_ccxt_loads(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with http_client(sim) as http:
        info = await http.get("/api/v3/exchangeInfo")
        assert info.status_code == 200 and info.json()["symbols"] == []
        config = await http.get("/api/v3/capital/config/getall?timestamp=1&signature=x")
        assert config.json() == []


def test_url_helpers() -> None:
    assert rest_base_url("127.0.0.1", 80) == "http://127.0.0.1:80"
    assert ws_url("::1", 81) == "ws://[::1]:81/edge"
