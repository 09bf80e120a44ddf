"""Endpoint table, path filling, generation resolution, and the configuration it relies on."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from adapters.mexc.config import (
    DEFAULT_RATE_LIMIT,
    WS_URL,
    Generation,
    MexcConfig,
    Timeouts,
    default_rate_limits,
)
from adapters.mexc.endpoints import ENDPOINTS, Endpoint, resolve

NAMES = """
ping detail support_currencies depth depth_commits deals kline kline_index kline_fair ticker
funding_rate funding_rate_history index_price fair_price risk_reverse assets asset
open_positions history_positions funding_records open_orders history_orders order_get
order_external order_batch_query order_deal_details order_deals order_create order_submit
order_cancel order_cancel_with_external order_cancel_all change_leverage change_margin
position_mode change_position_mode position_leverage risk_limit tiered_fee_rate
planorder_list planorder_place planorder_cancel planorder_cancel_all stoporder_list
""".split()  # noqa: SIM905

POSTS = {
    "order_create",
    "order_submit",
    "order_cancel",
    "order_cancel_with_external",
    "order_cancel_all",
    "change_leverage",
    "change_margin",
    "change_position_mode",
    "planorder_place",
    "planorder_cancel",
    "planorder_cancel_all",
}
PUBLIC = set(NAMES[:15])


def test_every_named_endpoint_is_in_the_table_and_nothing_else() -> None:
    assert len(NAMES) == 44
    assert set(ENDPOINTS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_endpoint_shape(name: str) -> None:
    endpoint = ENDPOINTS[name]
    assert endpoint.name == name
    assert endpoint.method == ("POST" if name in POSTS else "GET")
    assert endpoint.mutating is (name in POSTS)
    assert endpoint.private is (name not in PUBLIC)
    prefix = "/api/v1/private/" if endpoint.private else "/api/v1/contract/"
    assert endpoint.path_template.startswith(prefix)
    assert endpoint.rate_key


@pytest.mark.parametrize(
    ("name", "params", "path"),
    [
        ("ping", {}, "/api/v1/contract/ping"),
        ("depth", {"symbol": "BTC_USDT"}, "/api/v1/contract/depth/BTC_USDT"),
        (
            "depth_commits",
            {"symbol": "BTC_USDT", "limit": 1000},
            "/api/v1/contract/depth_commits/BTC_USDT/1000",
        ),
        ("kline_index", {"symbol": "ETH_USDT"}, "/api/v1/contract/kline/index_price/ETH_USDT"),
        ("kline_fair", {"symbol": "ETH_USDT"}, "/api/v1/contract/kline/fair_price/ETH_USDT"),
        ("funding_rate_history", {}, "/api/v1/contract/funding_rate/history"),
        ("asset", {"currency": "USDT"}, "/api/v1/private/account/asset/USDT"),
        (
            "order_get",
            {"order_id": "739106551624717312"},
            "/api/v1/private/order/get/739106551624717312",
        ),
        (
            "order_external",
            {"symbol": "BTC_USDT", "external_oid": "a/b c?d%"},
            "/api/v1/private/order/external/BTC_USDT/a%2Fb%20c%3Fd%25",
        ),
        ("order_create", {}, "/api/v1/private/order/create"),
        ("order_submit", {}, "/api/v1/private/order/submit"),
        ("history_positions", {}, "/api/v1/private/position/list/history_positions"),
        ("planorder_list", {}, "/api/v1/private/planorder/list/orders"),
        ("stoporder_list", {}, "/api/v1/private/stoporder/list/orders"),
    ],
)
def test_path_filling_quotes_every_value(name: str, params: dict, path: str) -> None:
    assert ENDPOINTS[name].path(**params) == path


def test_path_needs_exactly_its_parameters() -> None:
    with pytest.raises(ValueError, match="symbol"):
        ENDPOINTS["depth"].path()
    with pytest.raises(ValueError):
        ENDPOINTS["ping"].path(symbol="BTC_USDT")
    with pytest.raises(ValueError, match="empty"):
        ENDPOINTS["depth"].path(symbol="")
    assert ENDPOINTS["order_external"].path_params == ("symbol", "external_oid")


def test_order_placement_resolves_per_generation() -> None:
    assert resolve("order_place", Generation.NEW).name == "order_create"
    assert resolve("order_place", Generation.OLD).name == "order_submit"
    # concrete names are never rewritten
    assert resolve("order_create", Generation.OLD).path(**{}) == "/api/v1/private/order/create"


def test_open_orders_with_or_without_symbol() -> None:
    for generation in Generation:
        by_symbol = resolve("open_orders", generation, {"symbol"})
        assert (
            by_symbol.path(symbol="BTC_USDT") == "/api/v1/private/order/list/open_orders/BTC_USDT"
        )
        account = resolve("open_orders", generation)
        assert account.path() == "/api/v1/private/order/list/open_orders"
        assert by_symbol.name == account.name == "open_orders"
        assert by_symbol.rate_key == account.rate_key


def test_unknown_endpoint() -> None:
    with pytest.raises(KeyError, match="nope"):
        resolve("nope", Generation.NEW)


def test_endpoints_are_frozen_values() -> None:
    endpoint = ENDPOINTS["ping"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        endpoint.path_template = "/x"  # type: ignore[misc]
    assert endpoint == Endpoint("ping", "GET", "/api/v1/contract/ping", False, "ping")


# -- configuration ---------------------------------------------------------------------------


def test_defaults_are_the_new_generation() -> None:
    config = MexcConfig()
    assert config.generation is Generation.NEW
    assert not config.legacy
    assert config.rest_base == "https://api.mexc.com"
    assert config.ws_url == WS_URL == "wss://contract.mexc.com/edge"
    assert config.recv_window is None
    assert config.timeouts == Timeouts()


def test_old_generation_defaults_to_the_old_host() -> None:
    for config in (MexcConfig(generation=Generation.OLD), MexcConfig(generation="old"),
                   MexcConfig.legacy_api()):  # fmt: skip
        assert config.legacy
        assert config.rest_base == "https://contract.mexc.com"
        assert config.ws_url == WS_URL


def test_documented_rate_limits() -> None:
    new = MexcConfig()
    assert new.rate_limit("order_create") == (4, 2.0)
    assert new.rate_limit("change_leverage") == (10, 10.0)
    for key in ("detail", "depth", "ticker"):
        assert new.rate_limit(key) == (10, 2.0)
    assert new.rate_limit("order_batch_query") == (5, 2.0)
    assert new.rate_limit("assets") == DEFAULT_RATE_LIMIT == (20, 2.0)
    old = MexcConfig.legacy_api()
    assert old.rate_limit("order_submit") == (20, 2.0)
    assert old.rate_limit("detail") == (1, 5.0)
    assert default_rate_limits(Generation.NEW)["default"] == (20, 2.0)
    for key in default_rate_limits(Generation.NEW):
        assert key == "default" or key in ENDPOINTS


def test_rate_limits_are_read_only_data() -> None:
    config = MexcConfig(rate_limits={"default": (5, 1), "order_create": (1, 3)})
    assert config.rate_limit("order_create") == (1, 3.0)
    assert config.rate_limit("ping") == (5, 1.0)
    with pytest.raises(TypeError):
        config.rate_limits["ping"] = (1, 1.0)  # type: ignore[index]
    with pytest.raises(ValueError, match="count"):
        MexcConfig(rate_limits={"ping": (0, 1.0)})
    with pytest.raises(ValueError, match="count"):
        MexcConfig(rate_limits={"ping": (1, 0)})


def test_recv_window_is_seconds_up_to_60() -> None:
    assert MexcConfig(recv_window=60).recv_window == 60
    for bad in (0, 61, 5000):
        with pytest.raises(ValueError, match="recv_window"):
            MexcConfig(recv_window=bad)


def test_validation() -> None:
    with pytest.raises(ValueError, match="rest_base"):
        MexcConfig(rest_base="api.mexc.com")
    with pytest.raises(ValueError, match="ws_url"):
        MexcConfig(ws_url="https://contract.mexc.com/edge")
    with pytest.raises(ValueError, match="timeout"):
        Timeouts(read=0)
    with pytest.raises(ValueError, match="backoff"):
        MexcConfig(backoff_initial_s=10, backoff_max_s=1)


def test_for_simulator() -> None:
    config = MexcConfig.for_simulator("http://127.0.0.1:8765/")
    assert config.rest_base == "http://127.0.0.1:8765"
    assert config.ws_url == "ws://127.0.0.1:8765/edge"
    assert config.generation is Generation.NEW
    old = MexcConfig.for_simulator(
        "https://127.0.0.1:9", generation=Generation.OLD, ws_url="ws://127.0.0.1:10/edge",
        recv_window=10,
    )  # fmt: skip
    assert (old.rest_base, old.ws_url, old.legacy, old.recv_window) == (
        "https://127.0.0.1:9",
        "ws://127.0.0.1:10/edge",
        True,
        10,
    )
    assert MexcConfig.for_simulator("https://127.0.0.1:9").ws_url == "wss://127.0.0.1:9/edge"


def test_base_urls_live_only_in_config() -> None:
    root = Path(__file__).resolve().parents[2] / "adapters"
    url = re.compile(r"\w+://[\w.-]*mexc\.com")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "config.py" or path.parent.name != "mexc"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if url.search(line)
    ]
    assert offenders == []
