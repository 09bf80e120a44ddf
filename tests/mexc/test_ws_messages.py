"""The WS message builders: exact wire text, key placement, the login signature, validation."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from adapters.mexc import ws_messages as m

FIXTURES = Path(__file__).parent / "fixtures"  # copies of ../shared/mexc/samples


def sample(name: str) -> dict:
    """A documented MEXC payload (see its ``source`` key)."""
    return json.loads((FIXTURES / name).read_text())


def parsed(text: str) -> dict:
    """The JSON object, after checking the text is compact (no spaces between tokens)."""
    obj = json.loads(text)
    assert text == json.dumps(obj, separators=(",", ":"))
    return obj


# -- subscriptions --------------------------------------------------------------------------

SUB_CASES = [
    (("tickers", {}), {"method": "sub.tickers", "param": {}}),
    (("ticker", {"symbol": "BTC_USDT"}), {"method": "sub.ticker", "param": {"symbol": "BTC_USDT"}}),
    (("deal", {"symbol": "BTC_USDT"}), {"method": "sub.deal", "param": {"symbol": "BTC_USDT"}}),
    (
        ("deal", {"symbol": "BTC_USDT", "compress": False}),
        {"method": "sub.deal", "param": {"symbol": "BTC_USDT", "compress": False}},
    ),
    (
        ("depth", {"symbol": "ETH_USDT", "compress": True}),
        {"method": "sub.depth", "param": {"symbol": "ETH_USDT", "compress": True}},
    ),
    (
        ("depth.full", {"symbol": "BTC_USDT", "limit": 5}),
        {"method": "sub.depth.full", "param": {"symbol": "BTC_USDT", "limit": 5}},
    ),
    (
        ("depth.full", {"symbol": "BTC_USDT"}),
        {"method": "sub.depth.full", "param": {"symbol": "BTC_USDT"}},
    ),
    (
        ("depth.step", {"symbol": "BTC_USDT", "step": "10"}),
        {"method": "sub.depth.step", "param": {"symbol": "BTC_USDT", "step": "10"}},
    ),
    (
        ("kline", {"symbol": "BTC_USDT", "interval": "Min60"}),
        {"method": "sub.kline", "param": {"symbol": "BTC_USDT", "interval": "Min60"}},
    ),
    (
        ("funding.rate", {"symbol": "BTC_USDT"}),
        {"method": "sub.funding.rate", "param": {"symbol": "BTC_USDT"}},
    ),
    (
        ("index.price", {"symbol": "BTC_USDT"}),
        {"method": "sub.index.price", "param": {"symbol": "BTC_USDT"}},
    ),
    (
        ("fair.price", {"symbol": "BTC_USDT"}),
        {"method": "sub.fair.price", "param": {"symbol": "BTC_USDT"}},
    ),
    (("contract", {}), {"method": "sub.contract", "param": {}}),
    (
        ("contract", {"symbol": "BTC_USDT"}),
        {"method": "sub.contract", "param": {"symbol": "BTC_USDT"}},
    ),
]


@pytest.mark.parametrize(("call", "expected"), SUB_CASES)
def test_sub_exact(call: tuple[str, dict], expected: dict) -> None:
    channel, params = call
    text = m.sub(channel, **params)
    assert parsed(text) == expected
    assert list(parsed(text)) == ["method", "param"]


def test_every_channel_is_covered() -> None:
    assert {call[0] for call, _ in SUB_CASES} == set(m.CHANNELS)


def test_exact_text_and_fixed_param_order() -> None:
    # keyword order does not change the bytes
    assert m.sub("deal", compress=False, symbol="BTC_USDT") == (
        '{"method":"sub.deal","param":{"symbol":"BTC_USDT","compress":false}}'
    )
    assert m.sub("tickers") == '{"method":"sub.tickers","param":{}}'


@pytest.mark.parametrize("flag", [True, False])
def test_gzip_is_top_level(flag: bool) -> None:
    text = m.sub("tickers", gzip=flag)
    obj = parsed(text)
    assert obj == {"method": "sub.tickers", "param": {}, "gzip": flag}
    assert list(obj) == ["method", "param", "gzip"]
    assert "gzip" not in obj["param"]
    # the documented plain-text request, exactly
    if not flag:
        assert text == '{"method":"sub.tickers","param":{},"gzip":false}'


def test_gzip_none_omits_the_key_and_is_separate_from_compress() -> None:
    obj = parsed(m.sub("depth", symbol="BTC_USDT", compress=True, gzip=False))
    assert obj == {
        "method": "sub.depth",
        "param": {"symbol": "BTC_USDT", "compress": True},
        "gzip": False,
    }
    assert "gzip" not in parsed(m.sub("depth", symbol="BTC_USDT"))


@pytest.mark.parametrize("interval", m.KLINE_INTERVALS)
def test_every_kline_interval(interval: str) -> None:
    assert parsed(m.sub("kline", symbol="X_USDT", interval=interval))["param"]["interval"] == (
        interval
    )


@pytest.mark.parametrize("limit", m.DEPTH_FULL_LIMITS)
def test_every_depth_full_limit(limit: int) -> None:
    assert parsed(m.sub("depth.full", symbol="X_USDT", limit=limit))["param"]["limit"] == limit


def test_matches_documented_sample() -> None:
    payload = sample("ws_sub_ack.json")["variants"][0]["payload"]
    assert parsed(m.sub("deal", symbol="BTC_USDT")) == payload["request"]
    assert m.ack_channel(payload["request"]["method"]) == payload["ok"]["channel"]


# -- unsubscriptions ------------------------------------------------------------------------


def test_unsub_exact() -> None:
    assert m.unsub("tickers") == '{"method":"unsub.tickers","param":{}}'
    assert m.unsub("deal", symbol="BTC_USDT") == (
        '{"method":"unsub.deal","param":{"symbol":"BTC_USDT"}}'
    )
    # kline and depth.full are unsubscribed by symbol alone; the docs' "usub" typo is not used
    assert parsed(m.unsub("kline", symbol="BTC_USDT")) == {
        "method": "unsub.kline",
        "param": {"symbol": "BTC_USDT"},
    }
    assert parsed(m.unsub("depth.full", symbol="BTC_USDT"))["method"] == "unsub.depth.full"
    assert m.ack_channel("unsub.depth.full") == "rs.unsub.depth.full"


def test_unsub_still_validates() -> None:
    with pytest.raises(ValueError, match="missing required parameter"):
        m.unsub("deal")
    with pytest.raises(ValueError, match="interval"):
        m.unsub("kline", symbol="BTC_USDT", interval="Min2")
    with pytest.raises(ValueError, match="unexpected parameter"):
        m.unsub("ticker", symbol="BTC_USDT", gzip=False)


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "params", "match"),
    [
        ("nope", {}, "unknown channel 'nope'"),
        ("sub.deal", {"symbol": "BTC_USDT"}, "pass the bare name, e.g. 'deal'"),
        ("ticker", {}, "missing required parameter.*symbol"),
        ("ticker", {"symbol": ""}, "symbol must be"),
        ("ticker", {"symbol": "BTC USDT"}, "symbol must be"),
        ("ticker", {"symbol": 5}, "symbol must be"),
        ("tickers", {"symbol": "BTC_USDT"}, r"unexpected parameter.*symbol.*allowed: none"),
        ("deal", {"symbol": "BTC_USDT", "compress": "yes"}, "compress must be a bool"),
        ("deal", {"symbol": "BTC_USDT", "compress": 1}, "compress must be a bool"),
        ("deal", {"symbol": "BTC_USDT", "limit": 5}, "unexpected parameter.*limit"),
        ("depth.full", {"symbol": "BTC_USDT", "limit": 15}, r"limit must be one of \(5, 10, 20\)"),
        ("depth.full", {"symbol": "BTC_USDT", "limit": "5"}, "limit must be one of"),
        ("depth.full", {"symbol": "BTC_USDT", "limit": True}, "limit must be one of"),
        ("kline", {"symbol": "BTC_USDT"}, "missing required parameter.*interval"),
        ("kline", {"symbol": "BTC_USDT", "interval": "Min3"}, "interval must be one of Min1"),
        ("kline", {"symbol": "BTC_USDT", "interval": "min1"}, "interval must be one of"),
        ("depth.step", {"symbol": "BTC_USDT", "step": "-1"}, "step must be a positive"),
        ("depth.step", {"symbol": "BTC_USDT", "step": "ten"}, "step must be a positive"),
    ],
)
def test_sub_validation(channel: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        m.sub(channel, **params)


def test_sub_gzip_must_be_bool() -> None:
    with pytest.raises(ValueError, match="gzip must be a bool"):
        m.sub("tickers", gzip="false")  # type: ignore[arg-type]


# -- login ----------------------------------------------------------------------------------


def _independent_signature(api_key: str, secret: str, req_time: int) -> str:
    return hmac.new(
        secret.encode("utf-8"), (api_key + str(req_time)).encode("utf-8"), hashlib.sha256
    ).hexdigest()


def test_login_exact_and_signature() -> None:
    text = m.login("mx0aBYs33eIilxBW5C", "s3cr3t", 1657186536762)
    obj = parsed(text)
    assert list(obj) == ["method", "param"]
    assert obj["method"] == "login"
    assert list(obj["param"]) == ["apiKey", "reqTime", "signature"]
    assert obj["param"]["apiKey"] == "mx0aBYs33eIilxBW5C"
    assert obj["param"]["reqTime"] == "1657186536762"  # a string, as documented
    expected = _independent_signature("mx0aBYs33eIilxBW5C", "s3cr3t", 1657186536762)
    assert obj["param"]["signature"] == expected
    assert len(expected) == 64 and expected == expected.lower()
    assert "s3cr3t" not in text


def test_login_subscribe_false_is_top_level() -> None:
    obj = parsed(m.login("key", "secret", 1611038237237, subscribe=False))
    assert obj["subscribe"] is False
    assert "subscribe" not in obj["param"]
    assert set(obj) == {"subscribe", "method", "param"}
    # the documented request carries the same keys in the same places
    documented = sample("ws_login.json")["variants"][0]["payload"]["request_disable_default_push"]
    assert set(documented) == set(obj)
    assert set(documented["param"]) == set(obj["param"])


def test_login_default_has_no_subscribe_key() -> None:
    assert "subscribe" not in parsed(m.login("key", "secret", 1))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "secret", 1), "api_key"),
        ((" key", "secret", 1), "api_key"),
        (("key", "", 1), "secret must be"),
        (("key", "secret", 0), "req_time_ms"),
        (("key", "secret", 1.5), "req_time_ms"),
        (("key", "secret", "1"), "req_time_ms"),
        (("key", "secret", True), "req_time_ms"),
    ],
)
def test_login_validation(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        m.login(*args)


def test_login_errors_never_show_the_secret() -> None:
    with pytest.raises(ValueError) as info:
        m.login("key", "hunter2-secret", -5)
    assert "hunter2" not in str(info.value)


# -- personal.filter ------------------------------------------------------------------------


def test_personal_filter_matches_documented_sample() -> None:
    payload = sample("ws_personal_filter.json")["variants"][0]["payload"]
    text = m.personal_filter(
        {
            "order": ["BTC_USDT"],
            "order.deal": ["EOS_USDT", "ETH_USDT", "BTC_USDT"],
            "position": ["EOS_USDT", "BTC_USDT"],
            "asset": None,
        }
    )
    assert parsed(text) == payload["request"]
    assert parsed(m.personal_filter()) == payload["reset_all"]
    # the same request from the list-of-entries form
    assert m.personal_filter(payload["request"]["param"]["filters"]) == text


def test_personal_filter_forms() -> None:
    assert m.personal_filter() == '{"method":"personal.filter"}'
    assert m.personal_filter([]) == '{"method":"personal.filter","param":{"filters":[]}}'
    assert parsed(m.personal_filter(["asset", "adl.level"]))["param"]["filters"] == [
        {"filter": "asset"},
        {"filter": "adl.level"},
    ]
    # empty rules = every symbol, kept as written
    assert parsed(m.personal_filter({"order.deal": []}))["param"]["filters"] == [
        {"filter": "order.deal", "rules": []}
    ]


@pytest.mark.parametrize("key", m.PERSONAL_FILTER_KEYS)
def test_personal_filter_every_key(key: str) -> None:
    obj = parsed(m.personal_filter({key: None}))
    assert obj == {"method": "personal.filter", "param": {"filters": [{"filter": key}]}}


@pytest.mark.parametrize(
    ("filters", "match"),
    [
        ({"orders": None}, "unknown filter 'orders'"),
        ({"asset": ["BTC_USDT"]}, "'asset' cannot be filtered by symbol"),
        ({"adl.level": ["BTC_USDT"]}, "'adl.level' cannot be filtered by symbol"),
        ({"order": "BTC_USDT"}, "must be a list of symbols"),
        ({"order": ["BTC_USDT", "BTC_USDT"]}, "duplicate symbols"),
        ({"order": [""]}, "symbol must be"),
        ([{"filter": "order"}, {"filter": "order"}], "given twice"),
        ([{"filter": "order", "rule": ["X"]}], "an entry is"),
        ([{"rules": ["X"]}], "an entry is"),
        ([42], "bad entry"),
        ("order", "not a str"),
    ],
)
def test_personal_filter_validation(filters: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        m.personal_filter(filters)  # type: ignore[arg-type]


# -- ping and readers -----------------------------------------------------------------------


def test_ping() -> None:
    assert m.ping() == '{"method":"ping"}'
    payload = sample("ws_ping_pong.json")["variants"][0]["payload"]
    assert json.loads(m.ping()) == payload["request"]
    assert m.channel_of(json.dumps(payload["response"])) == m.ack_channel("ping") == "pong"


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ('{"channel":"rs.login","data":"success","ts":"1587442022003"}', "rs.login"),
        ('{"channel": "pong", "data": 1}', "pong"),
        ('{"data":1}', None),
        ('{"channel":5}', None),
        ("[1,2]", None),
        ("not json", None),
    ],
)
def test_channel_of(text: str, channel: str | None) -> None:
    assert m.channel_of(text) == channel
