"""The account stream over an in-memory exchange, in virtual time: login and personal.filter,
journal order, reconciliation differences of every kind, reconnects, and the stale report."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from adapters.mexc.account import AccountStream, personal_filters
from adapters.mexc.auth import Credentials
from adapters.mexc.config import MexcConfig
from adapters.mexc.execution import journaling_hook
from adapters.mexc.rest import MexcRestClient
from engine.clock import TrioClock
from engine.commands import PlaceOrder
from engine.events import (
    Connected,
    Disconnected,
    OrderRejected,
    OrderRequested,
    ReconcileDifference,
)
from engine.model import OrderType, Side
from engine.projections import OrderStatus

from .fake_exchange import FakeRest, FakeWsServer, Pipeline, envelope, sample, wait_until

URL = "ws://127.0.0.1:9/edge"
BTC = "BTC_USDT"
CREDS = Credentials("mx0testkey", "not-a-real-secret")
T = 1_761_887_133_854


def order_data(order_id: str, external_oid: str, *, state: int, deal_vol: int = 0,
               version: int = 1) -> dict[str, Any]:
    """The documented open-order object with our ids, state and progress."""
    data = dict(sample("rest_open_orders")["data"][0])
    data.update(orderId=order_id, externalOid=external_oid, symbol=BTC, state=state, vol=5,
                dealVol=deal_vol, version=version, updateTime=T + version)
    return data


def position_data(hold_vol: int, update: int) -> dict[str, Any]:
    data = dict(sample("rest_open_positions")["data"][0])
    data.update(holdVol=hold_vol, updateTime=T + update)
    return data


def asset_data(available: str) -> dict[str, Any]:
    data = dict(sample("rest_account_assets")["data"][0])
    data.update(availableBalance=float(available), frozenBalance=0, positionMargin=0)
    return data


def believe(pipeline: Pipeline) -> None:
    """What the journal knows from an earlier session: orders 111 and 222 open, order ext-D
    requested but never answered, 5 contracts long, 100 USDT available."""
    for data in (order_data("111", "ext-A", state=2), order_data("222", "ext-B", state=2)):
        pipeline.feed_ws({"channel": "push.personal.order", "data": data, "ts": T})
    pipeline.feed_ws({"channel": "push.personal.position", "data": position_data(5, 0), "ts": T})
    pipeline.feed_ws({"channel": "push.personal.asset", "data": asset_data("100"), "ts": T})
    requested = OrderRequested(
        PlaceOrder(BTC, Side.OPEN_LONG, OrderType.LIMIT, Decimal(1), "ext-D",
                   price=Decimal("100")), 1)
    pipeline.feed_event(requested, stream="ext-D")


def exchange(rest: FakeRest) -> None:
    """What the exchange says: 222 still open, 333 open and unknown, 111 filled, ext-D never
    placed, 7 contracts long, 90 USDT available."""
    rest.route("/open_orders", envelope([order_data("222", "ext-B", state=2),
                                         order_data("333", "ext-C", state=2)]))
    rest.route("/open_positions", envelope([position_data(7, 5)]))
    rest.route("/assets", envelope([asset_data("90")]))
    rest.route("/order/get/111", envelope(order_data("111", "ext-A", state=3, deal_vol=5,
                                                       version=2)))
    rest.route(f"/order/external/{BTC}/ext-D",
               {"success": False, "code": 2040, "message": "order does not exist"})


@asynccontextmanager
async def running(
    server: FakeWsServer, rest_fake: FakeRest, pipeline: Pipeline, **options: Any
) -> AsyncIterator[AccountStream]:
    clock = TrioClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(rest_fake)) as http:
        rest = MexcRestClient(http, MexcConfig(), CREDS, clock, journaling_hook(pipeline.emit))
        options.setdefault("jitter", lambda delay: delay)
        stream = AccountStream(
            URL, rest=rest, emit=pipeline.emit, clock=clock, credentials=CREDS,
            state_view=pipeline.state.view(), connect=server.connect, **options,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(stream.run)
            yield stream
            nursery.cancel_scope.cancel()


async def test_login_filter_and_reconcile_report_every_kind_of_difference(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    believe(pipeline)
    exchange(rest_fake)
    options = {"channels": ["order", "position", "asset"], "symbols": [BTC]}
    async with running(server, rest_fake, pipeline, **options) as stream:
        await wait_until(lambda: stream.statistics().reconciles == 1)
        seen, stats = len(pipeline.inputs), stream.statistics()
    sent = [json.loads(m) for m in server.connections[0].received]
    assert sent[0]["method"] == "login" and sent[0]["subscribe"] is False
    assert sent[1] == {"method": "personal.filter", "param": {"filters": [
        {"filter": "order", "rules": [BTC]}, {"filter": "position", "rules": [BTC]},
        {"filter": "asset"}]}}
    kinds = pipeline.kinds(seen)
    assert kinds[:3] == ["engine.connected", "ws.rs.login", "ws.rs.personal.filter"]
    rest_rows = [i for i, k in enumerate(kinds) if k.startswith("rest.")]
    diff_rows = [i for i, k in enumerate(kinds) if k == "engine.reconcile_difference"]
    assert [kinds[i] for i in rest_rows] == [
        "rest.open_orders", "rest.open_positions", "rest.assets", "rest.order_get",
        "rest.order_external"]
    assert max(rest_rows) < min(diff_rows)  # every answer is journaled before any difference
    diffs = {(d.what, d.key): d.detail for d in pipeline.values(ReconcileDifference, seen)}
    assert set(diffs) == {
        ("order_missing", "ext-A"), ("order_missing", "ext-D"), ("order_unknown", "333"),
        ("position_changed", "BTC_USDT:long"), ("balance_changed", "USDT"),
    }
    assert "filled" in diffs["order_missing", "ext-A"]
    assert "querying it failed" in diffs["order_missing", "ext-D"]
    assert "hold_vol 5 in the journal, 7 at the exchange" in diffs["position_changed",
                                                                     "BTC_USDT:long"]
    assert "100/0/0 in the journal, 90/0/0 at the exchange" in diffs["balance_changed", "USDT"]
    assert all(d.startswith("connected: ") for d in diffs.values())
    # the fold healed itself from the journaled answers
    view = pipeline.state.view()
    assert view.order_by_id("111").status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert view.order_by_id("333") is not None
    assert view.position(BTC, position_data(7, 5)["positionType"]).hold_vol == 7  # type: ignore
    assert view.balance("USDT").available == Decimal(90)  # type: ignore[union-attr]
    assert stats.differences == 5 and stats.reconcile_failures == 1 and stats.connected


async def test_a_second_reconcile_finds_only_what_the_answers_cannot_settle_and_pages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    believe(pipeline)
    exchange(rest_fake)
    pages: list[str] = []

    def open_orders(request: httpx.Request) -> Any:
        page = request.url.params["page_num"]
        pages.append(page)
        if page == "1":
            return envelope([order_data("222", "ext-B", state=2),
                             order_data("333", "ext-C", state=2)])
        return envelope([])

    rest_fake.route("/open_orders", open_orders)
    async with running(server, rest_fake, pipeline, open_orders_page_size=2) as stream:
        await wait_until(lambda: stream.statistics().reconciles == 1)
        first = len(pipeline.values(ReconcileDifference))
        again = await stream.reconcile("audit")
    assert pages == ["1", "2", "1", "2"]  # a short page is the last one
    assert first == 5
    # the journal has caught up with the exchange; the order of an earlier run that the
    # exchange never heard of (2040) was closed by a journaled rejection
    assert [(d.what, d.key) for d in again] == []
    rejected = pipeline.values(OrderRejected)
    assert [(r.external_oid, r.code) for r in rejected] == [("ext-D", 2040)]


async def test_default_push_and_reconcile_after_every_reconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    exchange(rest_fake)
    async with running(server, rest_fake, pipeline) as stream:
        await wait_until(lambda: stream.statistics().reconciles == 1)
        dropped_at = trio.current_time()
        rest_fake.route("/assets", envelope([asset_data("80")]))  # changed while we were away
        server.connections[0].drop()
        await wait_until(lambda: stream.statistics().reconciles == 2)
        reconnected = server.attempts[1] - dropped_at
        seen, stats = len(pipeline.inputs), stream.statistics()
    assert [json.loads(m)["method"] for m in server.connections[0].received] == ["login"]
    assert "subscribe" not in json.loads(server.connections[0].received[0])
    assert reconnected == pytest.approx(1.0)
    assert len(rest_fake.paths("/open_orders")) == 2
    lifecycle = [(type(v).__name__, v.conn_id) for v in pipeline.values((Connected, Disconnected),
                                                                        seen)]
    assert lifecycle == [("Connected", "acct.0"), ("Disconnected", "acct.0"),
                         ("Connected", "acct.1")]
    details = [d.detail for d in pipeline.values(ReconcileDifference, seen)
               if d.detail.startswith("reconnected: ")]
    assert details == ["reconnected: available/frozen/position margin 90/0/0 in the journal, "
                       "80/0/0 at the exchange"]
    assert stats.connects == 2 and stats.reconnects == 1 and stats.reconciles == 2


async def test_on_stale_fires_when_the_stream_is_down_and_again_when_it_goes_silent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    exchange(rest_fake)
    server.refuse = 10**6
    reports: list[tuple[float, str]] = []

    async def on_stale(reason: str) -> None:
        reports.append((trio.current_time(), reason))

    async with running(server, rest_fake, pipeline, stale_after_s=20.0, on_stale=on_stale) as s:
        start = trio.current_time()
        await trio.sleep(100)
        assert len(reports) == 1  # once per outage
        assert [round(t - start) for t in server.attempts] == [0, 1, 3, 7, 15, 31, 61, 91]
        server.refuse = 0
        server.pong = False
        await wait_until(lambda: s.statistics().connects == 1)
        back = trio.current_time()
        await wait_until(lambda: len(reports) == 2)
        stats = s.statistics()
    assert reports[0][0] - start == pytest.approx(20)
    assert reports[0][1].startswith("account stream down for 20 s (last failure: could not")
    assert reports[1][0] - back == pytest.approx(20, abs=0.1)
    assert reports[1][1] == "account stream silent for 20 s"
    reasons = [d.reason for d in pipeline.values(Disconnected)]
    assert reasons[:8] == [reasons[0]] * 8 and reasons[0].startswith("connect failed:")
    assert "stale: no frame for 20 s" in reasons
    assert stats.stale_reports == 2 and stats.connect_failures == 8


def test_personal_filters() -> None:
    assert personal_filters(None, None) is None
    assert personal_filters(["asset", "order"], None) == {"asset": None, "order": None}
    every = personal_filters(None, [BTC])
    assert isinstance(every, dict) and every["adl.level"] is None and every["order"] == [BTC]
    with pytest.raises(ValueError, match="unknown filter"):
        personal_filters(["orders"], None)


async def test_against_the_simulator_login_filter_pushes_and_reconcile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = pytest.importorskip("adapters.mexc.sim.service")
    clock = TrioClock()
    sim = service.SimService(clock=clock, seed=5)
    sim.add_account(CREDS.api_key, CREDS.secret.reveal(), balance=1000)
    pipeline = Pipeline()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(sim.rest_handler)) as http,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(sim.run)
        rest = MexcRestClient(http, MexcConfig(), CREDS, clock, journaling_hook(pipeline.emit))
        stream = AccountStream(
            URL, rest=rest, emit=pipeline.emit, clock=clock, credentials=CREDS,
            state_view=pipeline.state.view(), connect=sim.ws_connect, jitter=lambda d: d,
            channels=["order", "asset"], symbols=[BTC],
        )
        await nursery.start(stream.run)
        await wait_until(lambda: stream.statistics().reconciles == 1, timeout=30)
        first = [(d.what, d.key) for d in pipeline.values(ReconcileDifference)]
        book = await rest.depth(BTC)
        price = book.bids[-1][0]  # far from the touch: the order rests
        # placed by another client of the account (not journaled): the push tells us
        elsewhere = MexcRestClient(http, MexcConfig(), CREDS, clock)
        await elsewhere.place_order(PlaceOrder(BTC, Side.OPEN_LONG, OrderType.LIMIT, Decimal(1),
                                               "sim-1", price=price, leverage=10))
        await wait_until(lambda: "ws.push.personal.order" in pipeline.kinds(), timeout=30)
        again = await stream.reconcile("audit")
        nursery.cancel_scope.cancel()
    assert first == [("balance_changed", "USDT")]  # the journal started empty
    assert again == ()  # pushes kept the journal in step with the exchange
    [order] = pipeline.state.view().open_orders(BTC)
    assert order.external_oid == "sim-1" and order.status is OrderStatus.OPEN
    assert "ws.push.personal.asset" in pipeline.kinds()
