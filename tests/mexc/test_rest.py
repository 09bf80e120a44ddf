"""The REST client over httpx.MockTransport: exact requests, signatures, error mapping, the
journal hook and the rate limiter (virtual time)."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
import trio
from attrs import frozen

from adapters.mexc.auth import Credentials
from adapters.mexc.config import Generation, MexcConfig
from adapters.mexc.errors import (
    AmbiguousExchangeError,
    AuthError,
    CredentialsError,
    DecodeError,
    ExchangeError,
    InsufficientFundsError,
    PermissionDeniedError,
    RateLimitedError,
    RejectedError,
    ResponseLost,
    RetryableError,
    TradingDisabledError,
    TransportError,
    UnknownOutcome,
)
from adapters.mexc.ratelimit import RateLimiter
from adapters.mexc.rest import MexcRestClient, RawResponse
from engine.clock import FixedClock, TrioClock
from engine.commands import ChangeLeverage, ChangeMargin, MarginChange, PlaceOrder
from engine.model import OpenType, OrderType, PositionType, Side

KEY = "mx0aBYs33eIilxBW5C"
SECRET = "45d0b3c26f2644f19bfb98b07741b2f5"
CREDS = Credentials(KEY, SECRET)
NOW_NS = 1_767_225_600_000_000_000
NOW_MS = NOW_NS // 1_000_000
OK: dict[str, Any] = {"success": True, "code": 0, "data": {"x": 1}}


def real_codecs() -> Any:
    """adapters.mexc.codecs once it provides the two functions the client uses, else skip."""
    if importlib.util.find_spec("adapters.mexc.codecs") is None:
        pytest.skip("adapters.mexc.codecs not written yet")
    codecs = importlib.import_module("adapters.mexc.codecs")
    if not all(hasattr(codecs, name) for name in ("decode_envelope", "decode_rest")):
        pytest.skip("adapters.mexc.codecs has no decode_envelope/decode_rest yet")
    return codecs


@frozen
class FakeEnvelope:
    success: bool
    code: int
    message: str | None
    data: Any


class FakeDecoder:
    """Stands in for adapters.mexc.codecs: plain JSON, and a marker for decoded data."""

    def __init__(self, log: list[Any] | None = None, fail: bool = False) -> None:
        self.log = log if log is not None else []
        self.fail = fail

    def decode_envelope(self, text: str) -> FakeEnvelope:
        try:
            obj = json.loads(text)
            return FakeEnvelope(
                obj["success"], int(obj["code"]), obj.get("message"), obj.get("data")
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DecodeError("envelope", type(exc).__name__) from None

    def decode_rest(
        self, endpoint_name: str, data: Any, symbol: str | None = None, *, interval: str = "Min1"
    ) -> Any:
        self.log.append(("decode", endpoint_name))
        self.context = (symbol, interval)
        if self.fail:
            raise DecodeError(endpoint_name, "bad data")
        return ("decoded", endpoint_name, data)


Handler = Callable[[httpx.Request], httpx.Response]


@asynccontextmanager
async def rest_client(
    handler: Handler,
    *,
    config: MexcConfig | None = None,
    credentials: Credentials | None = CREDS,
    clock: Any = None,
    on_response: Callable[[RawResponse], Awaitable[None]] | None = None,
    limiter: RateLimiter | None = None,
    decoder: Any = None,
) -> AsyncIterator[MexcRestClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        yield MexcRestClient(
            http,
            config or MexcConfig(),
            credentials,
            clock or FixedClock(NOW_NS),
            on_response,
            limiter=limiter,
            decoder=decoder or FakeDecoder(),
        )


def recorder(
    *responses: httpx.Response | Exception,
) -> tuple[list[httpx.Request], Handler]:
    """A handler that records requests and answers with ``responses`` in turn (then OK)."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if not queue:
            return httpx.Response(200, json=OK)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return seen, handler


def hmac_hex(message: bytes) -> str:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def envelope(code: int | str, message: str = "m", status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "code": code, "message": message})


# -- every endpoint: request line, body bytes, headers, signature ------------------------------

Call = Callable[[MexcRestClient], Awaitable[Any]]
LIMIT_ORDER = PlaceOrder(
    symbol="BTC_USDT",
    side=Side.OPEN_LONG,
    order_type=OrderType.LIMIT,
    vol=Decimal("1"),
    external_oid="abc",
    price=Decimal("30000.0"),
    leverage=20,
)
FULL_ORDER = PlaceOrder(
    symbol="ETH_USDT",
    side=Side.CLOSE_LONG,
    order_type=OrderType.POST_ONLY,
    vol=Decimal("2.50"),
    external_oid="s1-000042",
    price=Decimal("2500.10"),
    open_type=OpenType.ISOLATED,
    leverage=5,
    position_id="1109973831",
    stop_loss_price=Decimal("2400"),
    take_profit_price=Decimal("1E+4"),
    position_mode=2,
    reduce_only=True,
    loss_trend=1,
    profit_trend=2,
    price_protect=1,
    stp_mode=0,
)
MARKET_ORDER = PlaceOrder(
    "LTC_USDT", Side.OPEN_LONG, OrderType.MARKET_TO_CURRENT, Decimal(1), "t-1"
)

# (id, call, request line, body, name handed to decode_rest or None for no decoding)
NEW_API: list[tuple[str, Call, str, bytes | None, str | None]] = [
    ("ping", lambda c: c.ping(), "GET /api/v1/contract/ping", None, "ping"),
    ("detail-all", lambda c: c.contract_detail(), "GET /api/v1/contract/detail", None, "detail"),
    ("detail-one", lambda c: c.contract_detail("BTC_USDT"),
     "GET /api/v1/contract/detail?symbol=BTC_USDT", None, "detail"),
    ("support_currencies", lambda c: c.support_currencies(),
     "GET /api/v1/contract/support_currencies", None, "support_currencies"),
    ("depth", lambda c: c.depth("BTC_USDT", 20),
     "GET /api/v1/contract/depth/BTC_USDT?limit=20", None, "depth"),
    ("depth-nolimit", lambda c: c.depth("BTC_USDT"),
     "GET /api/v1/contract/depth/BTC_USDT", None, "depth"),
    ("depth_commits", lambda c: c.depth_commits("BTC_USDT", 1000),
     "GET /api/v1/contract/depth_commits/BTC_USDT/1000", None, "depth_commits"),
    ("deals", lambda c: c.deals("BTC_USDT", 100),
     "GET /api/v1/contract/deals/BTC_USDT?limit=100", None, "deals"),
    ("kline", lambda c: c.kline("BTC_USDT", "Min15", 1761876000, 1761876900),
     "GET /api/v1/contract/kline/BTC_USDT?end=1761876900&interval=Min15&start=1761876000",
     None, "kline"),
    ("kline_index", lambda c: c.kline_index("BTC_USDT"),
     "GET /api/v1/contract/kline/index_price/BTC_USDT", None, "kline_index"),
    ("kline_fair", lambda c: c.kline_fair("BTC_USDT", "Hour4"),
     "GET /api/v1/contract/kline/fair_price/BTC_USDT?interval=Hour4", None, "kline_fair"),
    ("tickers", lambda c: c.ticker(), "GET /api/v1/contract/ticker", None, "ticker"),
    ("ticker", lambda c: c.ticker("BTC_USDT"),
     "GET /api/v1/contract/ticker?symbol=BTC_USDT", None, "ticker"),
    ("funding_rate", lambda c: c.funding_rate("BTC_USDT"),
     "GET /api/v1/contract/funding_rate/BTC_USDT", None, "funding_rate"),
    ("funding_rate_history", lambda c: c.funding_rate_history("BTC_USDT", 1, 3),
     "GET /api/v1/contract/funding_rate/history?page_num=1&page_size=3&symbol=BTC_USDT",
     None, "funding_rate_history"),
    ("index_price", lambda c: c.index_price("BTC_USDT"),
     "GET /api/v1/contract/index_price/BTC_USDT", None, "index_price"),
    ("fair_price", lambda c: c.fair_price("BTC_USDT"),
     "GET /api/v1/contract/fair_price/BTC_USDT", None, "fair_price"),
    ("risk_reverse", lambda c: c.risk_reverse(),
     "GET /api/v1/contract/risk_reverse", None, "risk_reverse"),
    ("assets", lambda c: c.assets(), "GET /api/v1/private/account/assets", None, "assets"),
    ("asset", lambda c: c.asset("USDT"), "GET /api/v1/private/account/asset/USDT", None, "asset"),
    ("open_positions", lambda c: c.open_positions("BTC_USDT"),
     "GET /api/v1/private/position/open_positions?symbol=BTC_USDT", None, "open_positions"),
    ("history_positions", lambda c: c.history_positions("BTC_USDT", 1, 1, 20),
     "GET /api/v1/private/position/list/history_positions"
     "?page_num=1&page_size=20&symbol=BTC_USDT&type=1", None, "history_positions"),
    ("funding_records", lambda c: c.funding_records("BTC_USDT", "1109973831", 2, 10),
     "GET /api/v1/private/position/funding_records"
     "?page_num=2&page_size=10&position_id=1109973831&symbol=BTC_USDT", None, "funding_records"),
    ("position_mode", lambda c: c.position_mode(),
     "GET /api/v1/private/position/position_mode", None, "position_mode"),
    ("change_position_mode", lambda c: c.change_position_mode(1),
     "POST /api/v1/private/position/change_position_mode", b'{"positionMode":1}', None),
    ("position_leverage", lambda c: c.position_leverage("BTC_USDT"),
     "GET /api/v1/private/position/leverage?symbol=BTC_USDT", None, "position_leverage"),
    ("change_leverage-position",
     lambda c: c.change_leverage(ChangeLeverage(20, position_id="1109973831")),
     "POST /api/v1/private/position/change_leverage",
     b'{"positionId":"1109973831","leverage":20}', None),
    ("change_leverage-symbol",
     lambda c: c.change_leverage(
         ChangeLeverage(20, symbol="ADA_USDT", open_type=OpenType.ISOLATED,
                        position_type=PositionType.SHORT)),
     "POST /api/v1/private/position/change_leverage",
     b'{"leverage":20,"openType":1,"symbol":"ADA_USDT","positionType":2}', None),
    ("change_margin",
     lambda c: c.change_margin(ChangeMargin("1109973831", Decimal("5.50"), MarginChange.ADD)),
     "POST /api/v1/private/position/change_margin",
     b'{"positionId":"1109973831","amount":5.50,"type":"ADD"}', None),
    ("risk_limit", lambda c: c.risk_limit(), "GET /api/v1/private/account/risk_limit",
     None, "risk_limit"),
    ("tiered_fee_rate", lambda c: c.tiered_fee_rate("BTC_USDT"),
     "GET /api/v1/private/account/tiered_fee_rate?symbol=BTC_USDT", None, "tiered_fee_rate"),
    ("open_orders-account", lambda c: c.open_orders(page_size=100),
     "GET /api/v1/private/order/list/open_orders?page_size=100", None, "open_orders"),
    ("open_orders-symbol", lambda c: c.open_orders("BTC_USDT", 1, 50),
     "GET /api/v1/private/order/list/open_orders/BTC_USDT?page_num=1&page_size=50",
     None, "open_orders"),
    ("history_orders",
     lambda c: c.history_orders("LTC_USDT", states=[3, 4], start_time=1704067200000,
                                end_time=1709251200000, page_size=10),
     "GET /api/v1/private/order/list/history_orders"
     "?end_time=1709251200000&page_size=10&start_time=1704067200000&states=3%2C4"
     "&symbol=LTC_USDT", None, "history_orders"),
    ("order_get", lambda c: c.order_get("739106551624717312", "BTC_USDT"),
     "GET /api/v1/private/order/get/739106551624717312?symbol=BTC_USDT", None, "order_get"),
    ("order_by_external", lambda c: c.order_by_external("BTC_USDT", "ext 11/a"),
     "GET /api/v1/private/order/external/BTC_USDT/ext%2011%2Fa", None, "order_external"),
    ("order_batch_query", lambda c: c.order_batch_query(["1", "2", "3"]),
     "GET /api/v1/private/order/batch_query?order_ids=1%2C2%2C3", None, "order_batch_query"),
    ("order_deal_details", lambda c: c.order_deal_details("102015012431820288"),
     "GET /api/v1/private/order/deal_details/102015012431820288", None, "order_deal_details"),
    ("order_deals",
     lambda c: c.order_deals("LTC_USDT", 1699457638000, 1707233637999, page_size=5),
     "GET /api/v1/private/order/list/order_deals"
     "?end_time=1707233637999&page_size=5&start_time=1699457638000&symbol=LTC_USDT",
     None, "order_deals"),
    ("place_order-limit", lambda c: c.place_order(LIMIT_ORDER),
     "POST /api/v1/private/order/create",
     b'{"symbol":"BTC_USDT","price":30000.0,"vol":1,"leverage":20,"side":1,"type":1,'
     b'"openType":2,"externalOid":"abc"}', "order_create"),
    ("place_order-market", lambda c: c.place_order(MARKET_ORDER),
     "POST /api/v1/private/order/create",
     b'{"symbol":"LTC_USDT","vol":1,"side":1,"type":6,"openType":2,"externalOid":"t-1"}',
     "order_create"),
    ("place_order-every-field", lambda c: c.place_order(FULL_ORDER),
     "POST /api/v1/private/order/create",
     b'{"symbol":"ETH_USDT","price":2500.10,"vol":2.50,"leverage":5,"side":4,"type":2,'
     b'"openType":1,"positionId":"1109973831","externalOid":"s1-000042","stopLossPrice":2400,'
     b'"takeProfitPrice":1E+4,"positionMode":2,"reduceOnly":true,"lossTrend":1,'
     b'"profitTrend":2,"priceProtect":1,"stpMode":0}', "order_create"),
    ("cancel_orders", lambda c: c.cancel_orders(["129402018493145088", "2"]),
     "POST /api/v1/private/order/cancel", b'["129402018493145088","2"]', "order_cancel"),
    ("cancel_with_external", lambda c: c.cancel_with_external("BTC_USDT", "ext_11"),
     "POST /api/v1/private/order/cancel_with_external",
     b'[{"symbol":"BTC_USDT","externalOid":"ext_11"}]', "order_cancel_with_external"),
    ("cancel_all-symbol", lambda c: c.cancel_all("LTC_USDT"),
     "POST /api/v1/private/order/cancel_all", b'{"symbol":"LTC_USDT"}', None),
    ("cancel_all-every", lambda c: c.cancel_all(),
     "POST /api/v1/private/order/cancel_all", b'{"symbol":""}', None),
    ("planorder_list",
     lambda c: c.planorder_list("BTC_USDT", [1], 1761800000000, 1761900000000, 1, 20),
     "GET /api/v1/private/planorder/list/orders?end_time=1761900000000&page_num=1"
     "&page_size=20&start_time=1761800000000&states=1&symbol=BTC_USDT", None, "planorder_list"),
    ("planorder_place",
     lambda c: c.planorder_place(symbol="ADA_USDT", side=3, vol=Decimal(1), open_type=2,
                                 trigger_price=Decimal("0.7"), trigger_type=1, execute_cycle=1,
                                 order_type=1, trend=1, price=Decimal("0.6")),
     "POST /api/v1/private/planorder/place",
     b'{"symbol":"ADA_USDT","price":0.6,"vol":1,"side":3,"openType":2,"triggerPrice":0.7,'
     b'"triggerType":1,"executeCycle":1,"orderType":1,"trend":1}', "planorder_place"),
    ("planorder_cancel", lambda c: c.planorder_cancel([("BTC_USDT", "739114860879304259")]),
     "POST /api/v1/private/planorder/cancel",
     b'[{"symbol":"BTC_USDT","orderId":"739114860879304259"}]', None),
    ("planorder_cancel_all", lambda c: c.planorder_cancel_all(),
     "POST /api/v1/private/planorder/cancel_all", b"{}", None),
    ("stoporder_list", lambda c: c.stoporder_list("BTC_USDT", False, page_num=1, page_size=20),
     "GET /api/v1/private/stoporder/list/orders?is_finished=0&page_num=1&page_size=20"
     "&symbol=BTC_USDT", None, "stoporder_list"),
]  # fmt: skip

OLD_API: list[tuple[str, Call, str, bytes | None, str | None]] = [
    ("place_order", lambda c: c.place_order(LIMIT_ORDER),
     "POST /api/v1/private/order/submit",
     b'{"symbol":"BTC_USDT","price":30000.0,"vol":1,"leverage":20,"side":1,"type":1,'
     b'"openType":2,"externalOid":"abc"}', "order_submit"),
    ("cancel_with_external", lambda c: c.cancel_with_external("BTC_USDT", "mexc-a-001"),
     "POST /api/v1/private/order/cancel_with_external",
     b'{"symbol":"BTC_USDT","externalOid":"mexc-a-001"}', "order_cancel_with_external"),
    ("cancel_all-every", lambda c: c.cancel_all(),
     "POST /api/v1/private/order/cancel_all", b"{}", None),
    ("open_orders-symbol", lambda c: c.open_orders("BTC_USDT"),
     "GET /api/v1/private/order/list/open_orders/BTC_USDT", None, "open_orders"),
    ("ping", lambda c: c.ping(), "GET /api/v1/contract/ping", None, "ping"),
]  # fmt: skip


def check_request(
    request: httpx.Request, config: MexcConfig, line: str, body: bytes | None
) -> None:
    """Request line, host, body bytes and headers, with the signature re-derived here."""
    assert f"{request.method} {request.url.raw_path.decode()}" == line
    assert f"{request.url.scheme}://{request.url.netloc.decode()}" == config.rest_base
    assert request.content == (body or b"")
    private = "/api/v1/private/" in line
    if not private:
        for name in ("ApiKey", "Request-Time", "Signature", "Recv-Window"):
            assert name not in request.headers
        return
    assert request.headers["ApiKey"] == KEY
    assert request.headers["Request-Time"] == str(NOW_MS)
    assert request.headers["Content-Type"] == "application/json"
    payload = request.url.query if request.method == "GET" else request.content
    assert request.headers["Signature"] == hmac_hex(f"{KEY}{NOW_MS}".encode() + payload)
    assert ("Recv-Window" in request.headers) is (config.recv_window is not None)


@pytest.mark.parametrize(
    ("call", "line", "body", "decoded_as"),
    [entry[1:] for entry in NEW_API],
    ids=[entry[0] for entry in NEW_API],
)
async def test_new_api_requests(
    call: Call, line: str, body: bytes | None, decoded_as: str | None
) -> None:
    seen, handler = recorder()
    config = MexcConfig()
    async with rest_client(handler, config=config) as client:
        result = await call(client)
    (request,) = seen
    check_request(request, config, line, body)
    expected = None if decoded_as is None else ("decoded", decoded_as, {"x": 1})
    assert result == expected


@pytest.mark.parametrize(
    ("call", "line", "body", "decoded_as"),
    [entry[1:] for entry in OLD_API],
    ids=[entry[0] for entry in OLD_API],
)
async def test_old_api_requests(
    call: Call, line: str, body: bytes | None, decoded_as: str | None
) -> None:
    seen, handler = recorder()
    config = MexcConfig(generation=Generation.OLD, recv_window=30)
    assert config.rest_base == "https://contract.mexc.com"
    async with rest_client(handler, config=config) as client:
        result = await call(client)
    (request,) = seen
    check_request(request, config, line, body)
    if "/private/" in line:
        assert request.headers["Recv-Window"] == "30"
    assert result == (None if decoded_as is None else ("decoded", decoded_as, {"x": 1}))


async def test_simulator_host_and_timeouts() -> None:
    seen, handler = recorder()
    config = MexcConfig.for_simulator("http://127.0.0.1:8765")
    async with rest_client(handler, config=config) as client:
        await client.assets()
    (request,) = seen
    assert str(request.url) == "http://127.0.0.1:8765/api/v1/private/account/assets"
    assert request.extensions["timeout"] == {
        "connect": 5.0,
        "read": 10.0,
        "write": 10.0,
        "pool": 5.0,
    }


async def test_private_call_without_credentials_sends_nothing() -> None:
    seen, handler = recorder()
    async with rest_client(handler, credentials=None) as client:
        with pytest.raises(CredentialsError, match="assets is private"):
            await client.assets()
        assert await client.ping() == ("decoded", "ping", {"x": 1})
    assert [r.url.path for r in seen] == ["/api/v1/contract/ping"]


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.cancel_orders([]),
        lambda c: c.cancel_orders([str(i) for i in range(51)]),
        lambda c: c.order_batch_query([str(i) for i in range(51)]),
        lambda c: c.kline("BTC_USDT", "1m"),
        lambda c: c.change_leverage(ChangeLeverage(10, symbol="BTC_USDT")),
        lambda c: c.change_position_mode(3),
        lambda c: c.place_order(PlaceOrder("X", Side.OPEN_LONG, OrderType.LIMIT, 1.5, "f")),  # type: ignore[arg-type]
        lambda c: c.place_order(
            PlaceOrder("X", Side.OPEN_LONG, OrderType.LIMIT, Decimal("NaN"), "f")
        ),
    ],
    ids=["no-ids", "51-ids", "51-query", "interval", "leverage", "mode", "float", "nan"],
)
async def test_bad_arguments_fail_before_sending(call: Call) -> None:
    seen, handler = recorder()
    async with rest_client(handler) as client:
        with pytest.raises((ValueError, TypeError)):
            await call(client)
    assert seen == []


# -- error mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (602, AuthError),
        ("602", AuthError),
        (401, AuthError),
        (406, PermissionDeniedError),
        (510, RateLimitedError),
        (513, RetryableError),
        (2005, InsufficientFundsError),
        (1002, TradingDisabledError),
        (600, RejectedError),
        (500, AmbiguousExchangeError),
        (9999, AmbiguousExchangeError),
    ],
)
async def test_error_envelopes_map_to_classes(code: int | str, cls: type[ExchangeError]) -> None:
    _, handler = recorder(envelope(code, "nope"))
    async with rest_client(handler) as client:
        with pytest.raises(cls) as info:
            await client.place_order(LIMIT_ORDER)
    assert info.value.code == int(code)
    assert info.value.message == "nope"
    assert info.value.endpoint == "order_create"
    assert info.value.http_status == 200


async def test_string_code_zero_is_success() -> None:
    body = {"success": True, "code": "0", "data": "1648124374985"}
    _, handler = recorder(httpx.Response(200, json=body))
    async with rest_client(handler) as client:
        assert await client.ping() == ("decoded", "ping", "1648124374985")


@pytest.mark.parametrize(
    ("answer", "mutating_cls", "read_cls"),
    [
        (httpx.Response(500, text="oops"), ResponseLost, TransportError),
        (httpx.Response(502, text="<html>bad gateway</html>"), ResponseLost, TransportError),
        (envelope(500, status=503), ResponseLost, TransportError),
        (httpx.ReadTimeout("read timed out"), ResponseLost, TransportError),
        (httpx.WriteTimeout("write timed out"), ResponseLost, TransportError),
        (httpx.RemoteProtocolError("peer closed"), ResponseLost, TransportError),
        (httpx.ReadError("reset"), ResponseLost, TransportError),
        (httpx.Response(200, text="<html>maintenance</html>"), ResponseLost, TransportError),
        (httpx.Response(200, text='{"success":tru'), ResponseLost, TransportError),
        (httpx.ConnectError("refused"), TransportError, TransportError),
        (httpx.ConnectTimeout("connect timed out"), TransportError, TransportError),
        (httpx.PoolTimeout("pool"), TransportError, TransportError),
    ],
    ids=["500", "502", "503-envelope", "read-timeout", "write-timeout", "disconnect",
         "read-error", "html", "truncated", "connect-error", "connect-timeout", "pool"],
)  # fmt: skip
async def test_no_usable_answer(
    answer: httpx.Response | Exception,
    mutating_cls: type[TransportError],
    read_cls: type[TransportError],
) -> None:
    _, handler = recorder(answer, answer)
    async with rest_client(handler) as client:
        with pytest.raises(mutating_cls) as post:
            await client.place_order(LIMIT_ORDER)
        with pytest.raises(read_cls) as get:
            await client.open_orders()
    assert type(post.value) is mutating_cls
    assert type(get.value) is read_cls
    assert isinstance(post.value, UnknownOutcome) is (mutating_cls is ResponseLost)
    assert not isinstance(get.value, UnknownOutcome)
    assert post.value.endpoint == "order_create"
    if isinstance(answer, Exception):
        assert post.value.__cause__ is answer


async def test_http_429_is_rate_limited_and_backs_off() -> None:
    _, handler = recorder(httpx.Response(429, headers={"Retry-After": "7"}))
    async with rest_client(handler) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.ticker()
        stats = client.limiter.statistics()["ticker"]
    assert (info.value.code, info.value.http_status) == (429, 429)
    assert stats.consecutive_hits == 1
    assert stats.blocked_until == pytest.approx(trio.current_time() + 7)


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthError), (403, PermissionDeniedError), (404, RejectedError)]
)
async def test_http_4xx_without_envelope(status: int, cls: type[ExchangeError]) -> None:
    _, handler = recorder(httpx.Response(status, text="Not Found"))
    async with rest_client(handler) as client:
        with pytest.raises(cls) as info:
            await client.place_order(LIMIT_ORDER)
    assert type(info.value) is cls
    assert info.value.http_status == status


async def test_http_4xx_with_envelope_uses_the_code() -> None:
    _, handler = recorder(envelope(600, "bad param", status=400))
    async with rest_client(handler) as client:
        with pytest.raises(RejectedError) as info:
            await client.assets()
    assert (info.value.code, info.value.http_status) == (600, 400)


async def test_undecodable_data() -> None:
    async with rest_client(recorder()[1], decoder=FakeDecoder(fail=True)) as client:
        with pytest.raises(DecodeError):
            await client.depth("BTC_USDT")
        with pytest.raises(ResponseLost) as info:
            await client.place_order(LIMIT_ORDER)
    assert isinstance(info.value.__cause__, DecodeError)


# -- the journal hook --------------------------------------------------------------------------


class TickingClock:
    """Advances one millisecond every time it is read."""

    def __init__(self) -> None:
        self.ns = NOW_NS

    def time_ns(self) -> int:
        self.ns += 1_000_000
        return self.ns

    def time_ms(self) -> int:
        return self.time_ns() // 1_000_000


async def test_on_response_sees_the_raw_answer_before_decoding() -> None:
    log: list[Any] = []
    raws: list[RawResponse] = []

    async def on_response(raw: RawResponse) -> None:
        await trio.sleep(0)
        log.append(("hook", raw.endpoint))
        raws.append(raw)

    answer = httpx.Response(
        200,
        headers={
            "Content-Type": "application/json",
            "Date": "Thu, 01 Jan 2026 00:00:00 GMT",
            "X-RateLimit-Remaining": "3",
            "Set-Cookie": "session=1",
            "X-Echo-ApiKey": KEY,
        },
        content=b'{"success":true,"code":0,"data":{"orderId":"1","ts":2}}',
    )
    seen, handler = recorder(answer)
    async with rest_client(
        handler, clock=TickingClock(), on_response=on_response, decoder=FakeDecoder(log)
    ) as client:
        await client.place_order(LIMIT_ORDER)
    assert log == [("hook", "order_create"), ("decode", "order_create")]
    (raw,) = raws
    (request,) = seen
    assert raw.endpoint == "order_create"
    assert (raw.method, raw.path, raw.query) == ("POST", "/api/v1/private/order/create", "")
    assert raw.request_body == request.content.decode()
    assert raw.status == 200
    assert raw.body_text == '{"success":true,"code":0,"data":{"orderId":"1","ts":2}}'
    assert raw.headers == (
        ("content-type", "application/json"),
        ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("x-ratelimit-remaining", "3"),
    )
    assert raw.header("X-RateLimit-Remaining") == "3"
    assert raw.received_ns > raw.sent_ns > NOW_NS
    assert raw.latency_ns == raw.received_ns - raw.sent_ns
    text = repr(raw)
    for secret in (KEY, SECRET, request.headers["Signature"]):
        assert secret not in text


async def test_on_response_records_the_signed_query_and_error_answers() -> None:
    raws: list[RawResponse] = []

    async def on_response(raw: RawResponse) -> None:
        raws.append(raw)

    seen, handler = recorder(httpx.Response(500, text="boom"))
    async with rest_client(handler, on_response=on_response) as client:
        with pytest.raises(TransportError):
            await client.history_orders("BTC_USDT", states=[3, 4])
    (raw,) = raws
    assert raw.query == "states=3%2C4&symbol=BTC_USDT" == seen[0].url.query.decode()
    assert raw.request_body is None
    assert (raw.status, raw.body_text) == (500, "boom")
    assert KEY not in repr(raw)


async def test_a_failing_hook_stops_the_call_before_decoding() -> None:
    log: list[Any] = []

    async def on_response(raw: RawResponse) -> None:
        raise RuntimeError("journal is down")

    async with rest_client(
        recorder()[1], on_response=on_response, decoder=FakeDecoder(log)
    ) as client:
        with pytest.raises(RuntimeError, match="journal is down"):
            await client.ping()
    assert log == []


# -- the rate limiter, in virtual time ---------------------------------------------------------


async def test_order_create_limit_is_honoured(autojump_clock: trio.abc.Clock) -> None:
    times: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        times.append(trio.current_time())
        return httpx.Response(200, json=OK)

    config = MexcConfig()  # order_create: 4 per 2 s
    async with rest_client(handler, config=config, clock=TrioClock()) as client:
        for _ in range(9):
            await client.place_order(LIMIT_ORDER)
        await client.ping()  # another key is not held up
    assert times[:9] == [0.0] * 4 + [2.0] * 4 + [4.0]
    assert times[9] == 4.0


async def test_backoff_after_510(autojump_clock: trio.abc.Clock) -> None:
    times: list[float] = []
    answers = [envelope(510), envelope(510), httpx.Response(200, json=OK)]

    def handler(request: httpx.Request) -> httpx.Response:
        times.append(trio.current_time())
        return answers.pop(0) if answers else httpx.Response(200, json=OK)

    config = MexcConfig(backoff_initial_s=1.0, backoff_max_s=30.0)
    async with rest_client(handler, config=config, clock=TrioClock()) as client:
        for _ in range(2):
            with pytest.raises(RateLimitedError):
                await client.assets()
        await client.assets()
        await client.assets()
        assert client.limiter.statistics()["assets"].consecutive_hits == 0
    assert times == [0.0, 1.0, 3.0, 3.0]


async def test_real_codecs_decode_an_error_and_a_string_code() -> None:
    codecs = real_codecs()
    body = {"success": True, "code": "0", "data": "1648124374985"}
    _, handler = recorder(envelope(2005, "Insufficient balance!"), httpx.Response(200, json=body))
    async with rest_client(handler, decoder=codecs) as client:
        with pytest.raises(InsufficientFundsError):
            await client.place_order(LIMIT_ORDER)
        assert await client.ping() is not None


async def test_symbol_and_interval_are_handed_to_the_decoder() -> None:
    decoder = FakeDecoder()
    async with rest_client(recorder()[1], decoder=decoder) as client:
        await client.kline("BTC_USDT", "Hour4")
        assert decoder.context == ("BTC_USDT", "Hour4")
        await client.depth("ETH_USDT")
        assert decoder.context == ("ETH_USDT", "Min1")
        await client.assets()
        assert decoder.context == (None, "Min1")


# -- decoded results, with the real codecs ------------------------------------------------------


def answer(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "code": 0, "data": data})


async def test_decoded_market_data() -> None:
    from engine.model import BookSnapshot, Kline

    codecs = real_codecs()
    depth = {
        "asks": [[108779.2, 3240, 1]],
        "bids": [[108779.1, 3240, 1], [108779, 3884, 1]],
        "version": 28111438870,
        "timestamp": 1761879567135,
    }
    kline = {"time": [1761876000], "open": [109573.9], "close": [109006.4], "high": [109628.1],
             "low": [108953.3], "vol": [5587051.0], "amount": [61062435.67181]}  # fmt: skip
    _, handler = recorder(answer(depth), answer(kline), answer(1761875313209))
    async with rest_client(handler, decoder=codecs) as client:
        book = await client.depth("BTC_USDT")
        candles = await client.kline("BTC_USDT", "Min15")
        server_ms = await client.ping()
    assert isinstance(book, BookSnapshot)
    assert (book.symbol, book.version) == ("BTC_USDT", 28111438870)
    assert book.asks[0] == (Decimal("108779.2"), Decimal("3240"), 1)
    (candle,) = candles
    assert isinstance(candle, Kline)
    assert (candle.symbol, candle.interval, candle.close) == (
        "BTC_USDT",
        "Min15",
        Decimal("109006.4"),
    )
    assert server_ms == 1761875313209


async def test_decoded_order_answers_of_both_generations() -> None:
    codecs = real_codecs()
    cancelled = [
        {"orderId": 101716841474621953, "errorCode": 2040, "errorMsg": "order not exist"},
        {"orderId": 108886241042563584, "errorCode": 0, "errorMsg": "success"},
    ]
    _, handler = recorder(
        answer({"orderId": "739113577038255616", "ts": 1761888808839}),
        answer(cancelled),
    )
    async with rest_client(handler, decoder=codecs) as client:
        assert await client.place_order(LIMIT_ORDER) == "739113577038255616"
        results = await client.cancel_orders(["101716841474621953", "108886241042563584"])
    assert [(r.order_id, r.error_code) for r in results] == [
        ("101716841474621953", 2040),
        ("108886241042563584", 0),
    ]
    _, handler = recorder(answer(102057569836905984))
    async with rest_client(handler, decoder=codecs, config=MexcConfig.legacy_api()) as client:
        assert await client.place_order(LIMIT_ORDER) == "102057569836905984"


async def test_decoded_account() -> None:
    from engine.model import BalanceUpdate

    codecs = real_codecs()
    asset = {"currency": "USDT", "positionMargin": 0, "availableBalance": 0.03176562,
             "cashBalance": 0.03176562, "frozenBalance": 0, "equity": 0.03176562,
             "unrealized": 0, "bonus": 0}  # fmt: skip
    _, handler = recorder(answer([asset]), httpx.Response(200, json={"success": True, "code": 0}))
    async with rest_client(handler, decoder=codecs) as client:
        (balance,) = await client.assets()
        await client.cancel_all("BTC_USDT")  # acknowledged without data
    assert isinstance(balance, BalanceUpdate)
    assert (balance.currency, balance.available) == ("USDT", Decimal("0.03176562"))


async def test_real_codecs_undecodable_order_answer_is_an_unknown_outcome() -> None:
    codecs = real_codecs()
    _, handler = recorder(answer({"ts": 1}), answer([{"nope": 1}]))
    async with rest_client(handler, decoder=codecs) as client:
        with pytest.raises(ResponseLost):
            await client.place_order(LIMIT_ORDER)
        with pytest.raises(DecodeError):
            await client.assets()
