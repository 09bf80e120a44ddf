"""The simulator's refusals: authentication (401/513/602), rate limits (510), trading
closed for a contract (1002/6005) with cancels and queries still working, unknown symbols
(1001), bad parameters (600/601) and unknown paths (HTTP 404/405)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from trio.testing import MockClock

from adapters.mexc.errors import (
    AuthError,
    RateLimitedError,
    RejectedError,
    RetryableError,
    TradingDisabledError,
)
from adapters.mexc.signing import query_string
from adapters.mexc.sim.contracts import BTC_USDT, make_contract
from engine.clock import TrioClock

from .server_support import (
    BTC,
    ETH,
    envelope,
    http_client,
    limit_order,
    new_sim,
    rest_client,
    signed,
)

ASSETS = "/api/v1/private/account/assets"
HISTORY = "/api/v1/private/order/list/history_orders"


async def test_a_wrong_secret_is_602(autojump_clock: MockClock) -> None:
    from .server_support import credentials

    sim = new_sim()
    async with rest_client(sim, creds=credentials(secret="not-the-secret")) as rest:
        with pytest.raises(AuthError) as caught:
            await rest.assets()
    assert caught.value.code == 602


async def test_an_unknown_key_is_401(autojump_clock: MockClock) -> None:
    from .server_support import credentials

    sim = new_sim()
    async with rest_client(sim, creds=credentials(key="nobody")) as rest:
        with pytest.raises(AuthError) as caught:
            await rest.assets()
    assert caught.value.code == 401
    async with http_client(sim) as http:
        answer = await http.get(ASSETS)  # no headers at all
        assert envelope(answer).code == 401


async def test_the_signature_covers_the_exact_query_or_its_sorted_form(
    autojump_clock: MockClock,
) -> None:
    sim = new_sim()
    raw = "symbol=BTC_USDT&page_size=5&states=3%2C4"
    canonical = query_string({"symbol": "BTC_USDT", "page_size": "5", "states": "3,4"})
    assert canonical != raw
    async with http_client(sim) as http:
        for text in (raw, canonical):
            answer = await signed(http, "GET", HISTORY, query=raw, signed_text=text)
            assert envelope(answer).success, text
        answer = await signed(http, "GET", HISTORY, query=raw, signed_text="symbol=ETH_USDT")
        assert envelope(answer).code == 602


async def test_a_post_is_signed_over_its_exact_body_bytes(autojump_clock: MockClock) -> None:
    sim = new_sim()
    body = b'{"symbol": "BTC_USDT", "vol": 1.0, "side": 1, "type": 5, "openType": 2}'
    path = "/api/v1/private/order/create"
    async with http_client(sim) as http:
        respaced = body.replace(b": ", b":")
        answer = await signed(http, "POST", path, body=body, signed_text=respaced)
        assert envelope(answer).code == 602
        assert envelope(await signed(http, "POST", path, body=body)).success


async def test_a_stale_request_time_is_513_unless_the_receive_window_covers_it(
    autojump_clock: MockClock,
) -> None:
    sim = new_sim()
    now = sim.server_ms()
    async with http_client(sim) as http:
        assert envelope(await signed(http, "GET", ASSETS, time_ms=now - 9_000)).success
        assert envelope(await signed(http, "GET", ASSETS, time_ms=now - 11_000)).code == 513
        assert envelope(await signed(http, "GET", ASSETS, time_ms=now + 11_000)).code == 513
        late = await signed(http, "GET", ASSETS, time_ms=now - 25_000, recv_window="30")
        assert envelope(late).success
        capped = await signed(http, "GET", ASSETS, time_ms=now - 70_000, recv_window="120")
        assert envelope(capped).code == 513
        headers = {"Request-Time": "yesterday"}
        assert envelope(await signed(http, "GET", ASSETS, headers=headers)).code == 513


async def test_the_client_classifies_513_as_retryable(autojump_clock: MockClock) -> None:
    sim = new_sim()
    sim.faults.clock_skew_s = 30
    async with rest_client(sim) as rest:
        with pytest.raises(RetryableError) as caught:
            await rest.assets()
    assert caught.value.code == 513


async def test_rate_limits_are_per_endpoint_and_per_key(autojump_clock: MockClock) -> None:
    sim = new_sim(rate_limits={"default": (3, 1.0), "assets": (2, 1.0)})
    sim.add_account("second-key", "second-secret", 100)
    async with http_client(sim) as http:
        codes = [envelope(await signed(http, "GET", ASSETS)).code for _ in range(3)]
        assert codes == [0, 0, 510]
        other = await signed(http, "GET", ASSETS, key="second-key", secret="second-secret")
        assert envelope(other).success  # another key has its own budget
        position = "/api/v1/private/position/open_positions"
        assert envelope(await signed(http, "GET", position)).success  # another endpoint too
        await trio.sleep(1)
        assert envelope(await signed(http, "GET", ASSETS)).success


async def test_the_client_sees_510_as_rate_limited(autojump_clock: MockClock) -> None:
    sim = new_sim(rate_limits={"default": (1, 10.0)})
    async with rest_client(sim) as rest:
        await rest.assets()
        with pytest.raises(RateLimitedError) as caught:
            await rest.assets()
    assert caught.value.code == 510


async def test_public_endpoints_are_limited_per_client_host(autojump_clock: MockClock) -> None:
    sim = new_sim(rate_limits={"default": (2, 1.0)})
    async with http_client(sim) as http:
        codes = [envelope(await http.get("/api/v1/contract/ping")).code for _ in range(3)]
    assert codes == [0, 0, 510]


async def test_rate_limit_windows_slide_while_a_skew_jumps_back(
    autojump_clock: MockClock,
) -> None:
    """Server time is held monotonic, so after a skew of +5 s goes back to 0 it stands still
    for 5 s; the rate-limit windows slide on the unskewed clock and must not stand with it."""
    sim = new_sim(rate_limits={"default": (2, 1.0)})
    ping = "/api/v1/contract/ping"
    async with http_client(sim) as http:
        sim.faults.clock_skew_s = 5
        assert [envelope(await http.get(ping)).code for _ in range(3)] == [0, 0, 510]
        frozen = sim.exchange_now()
        sim.faults.clock_skew_s = 0
        await trio.sleep(1.5)
        assert sim.exchange_now() == frozen  # the exchange's clock waits for real time
        assert [envelope(await http.get(ping)).code for _ in range(3)] == [0, 0, 510]
        await trio.sleep(1.5)
        assert envelope(await http.get(ping)).code == 0


async def test_rate_limiting_can_be_switched_off(autojump_clock: MockClock) -> None:
    sim = new_sim(rate_limits={"default": (1, 10.0)}, rate_limiting=False)
    async with http_client(sim) as http:
        for _ in range(5):
            assert envelope(await signed(http, "GET", ASSETS)).success


async def test_a_restricted_symbol_refuses_placement_but_cancels_and_queries_work(
    autojump_clock: MockClock,
) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        order_id = await rest.place_order(limit_order("95000", oid="r-1"))
        sim.restricted_symbols.add(BTC)
        with pytest.raises(TradingDisabledError) as caught:
            await rest.place_order(limit_order("95000", oid="r-2"))
        assert caught.value.code == 6005
        assert (await rest.order_get(order_id)).order_id == order_id
        assert len(await rest.open_orders(BTC)) == 1
        assert (await rest.depth(BTC)).symbol == BTC
        (result,) = await rest.cancel_orders([order_id])
        assert result.error_code == 0
        await rest.place_order(limit_order("2900", oid="e-1", symbol=ETH))  # others trade


async def test_a_contract_without_api_trading_is_1002(autojump_clock: MockClock) -> None:
    closed = make_contract("SOL_USDT", template=BTC_USDT, api_allowed=False, contract_id=12)
    sim = new_sim(
        contracts=[BTC_USDT, closed],
        start_prices={BTC: Decimal(100000), "SOL_USDT": Decimal(150)},
    )
    async with rest_client(sim) as rest:
        with pytest.raises(TradingDisabledError) as caught:
            await rest.place_order(limit_order("150", oid="s-1", symbol="SOL_USDT"))
        assert caught.value.code == 1002
        detail = await rest.contract_detail("SOL_USDT")
        assert detail.api_allowed is False
        await rest.cancel_all("SOL_USDT")
        assert await rest.open_orders("SOL_USDT") == ()
        assert (await rest.ticker("SOL_USDT")).symbol == "SOL_USDT"


async def test_an_unknown_symbol_is_1001(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        for call in (
            rest.place_order(limit_order("1", oid="u-1", symbol="NOPE_USDT")),
            rest.depth("NOPE_USDT"),
            rest.ticker("NOPE_USDT"),
            rest.open_orders("NOPE_USDT"),
        ):
            with pytest.raises(RejectedError) as caught:
                await call
            assert caught.value.code == 1001


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", 601),
        (b"[1,2]", 600),
        (b'{"symbol":"BTC_USDT","side":1,"type":1,"openType":2}', 600),
        (b'{"symbol":"BTC_USDT","side":1,"type":1,"openType":2,"vol":"x","price":1}', 600),
        (b'{"symbol":"BTC_USDT","side":9,"type":1,"openType":2,"vol":1,"price":95000}', 2001),
        (b'{"symbol":"BTC_USDT","side":1,"type":1,"openType":2,"vol":1,"price":95000,'
         b'"positionMode":2}', 600),
        (b'{"symbol":"BTC_USDT","side":1,"type":1,"openType":1,"vol":1,"price":95000,'
         b'"leverage":10,"externalOid":"dup"}', 0),
    ],
)  # fmt: skip
async def test_bad_order_bodies(autojump_clock: MockClock, body: bytes, code: int) -> None:
    sim = new_sim()
    async with http_client(sim) as http:
        answer = envelope(await signed(http, "POST", "/api/v1/private/order/create", body=body))
        assert answer.code == code, answer
        if code == 0:  # the same externalOid again
            again = await signed(http, "POST", "/api/v1/private/order/create", body=body)
            assert envelope(again).code == 603


async def test_unknown_paths_and_methods(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with http_client(sim) as http:
        missing = await http.get("/api/v1/contract/nothing_here")
        assert missing.status_code == 404 and missing.json()["status"] == 404
        wrong = await http.post("/api/v1/contract/ping")
        assert wrong.status_code == 405


async def test_an_order_that_does_not_exist_is_2040(autojump_clock: MockClock) -> None:
    sim = new_sim()
    async with rest_client(sim) as rest:
        with pytest.raises(RejectedError) as caught:
            await rest.order_by_external(BTC, "never-placed")
    assert caught.value.code == 2040


async def test_a_new_simulator_tells_the_time_of_its_clock(autojump_clock: MockClock) -> None:
    sim = new_sim(clock=TrioClock(1_700_000_000_000_000_000))
    assert abs(sim.server_ms() - 1_700_000_000_000 - int(trio.current_time() * 1000)) <= 1
