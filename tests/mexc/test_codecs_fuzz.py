"""Junk in, DecodeError out: the codecs never raise anything else (hypothesis + exhaustive).

* random JSON values into every entry point;
* every proper prefix of every real frame and answer;
* wrong types substituted into every field of every real payload: either a DecodeError
  or exactly the untouched result (the field is descriptive and ignored);
* NaN / infinity / negative injections into value fields;
* the fast (memo) path for book levels agrees with the checked path on random levels.

A DecodeError whose reason starts with ``internal:`` is a decoder bug caught by the safety
net, so it fails these tests too.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mexc.codecs import (
    CHANNELS,
    ENDPOINTS,
    _book,
    _fields,
    _market,
    decode_envelope,
    decode_rest,
    decode_ws,
    ws_messages,
)
from adapters.mexc.errors import DecodeError

FIXTURES = Path(__file__).parent / "fixtures"
SYMBOL = "BTC_USDT"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Which endpoint decodes each REST fixture's answers, and where the answer sits in a variant.
REST_ENDPOINTS = {
    "rest_account_asset_currency": "asset", "rest_account_assets": "assets",
    "rest_cancel_with_external": "order_cancel_with_external", "rest_contract_detail": "detail",
    "rest_deals": "deals", "rest_depth": "depth", "rest_depth_commits": "depth_commits",
    "rest_fair_price": "fair_price", "rest_funding_rate": "funding_rate",
    "rest_funding_rate_history": "funding_rate_history", "rest_history_orders": "history_orders",
    "rest_history_positions": "history_positions", "rest_index_price": "index_price",
    "rest_kline": "kline", "rest_open_orders": "open_orders",
    "rest_open_positions": "open_positions", "rest_order_batch_query": "order_batch_query",
    "rest_order_cancel": "order_cancel", "rest_order_create": "order_create",
    "rest_order_deal_details": "order_deal_details", "rest_order_deals": "order_deals",
    "rest_order_external": "order_external", "rest_order_get": "order_get",
    "rest_ping": "ping", "rest_planorder_list": "planorder_list",
    "rest_planorder_place": "planorder_place", "rest_position_leverage": "position_leverage",
    "rest_position_mode": "position_mode", "rest_risk_limit": "risk_limit",
    "rest_risk_reverse": "risk_reverse", "rest_stoporder_list": "stoporder_list",
    "rest_ticker": "ticker",
}  # fmt: skip


def _fixtures() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(FIXTURES.glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        for variant in doc["variants"]:
            yield path.stem, variant["payload"]


def _ws_frames() -> list[dict[str, Any]]:
    """Every server->client frame in the WS samples (pushes, acks, pongs, errors)."""
    frames = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("channel"), str) and "data" in value:
                frames.append(value)
                return
            for item in value.values():
                walk(item)

    for name, payload in _fixtures():
        if name.startswith("ws_"):
            walk(payload)
    return frames


def _rest_answers() -> list[tuple[str, dict[str, Any]]]:
    """(endpoint, envelope) for every REST answer in the samples."""
    answers = []
    for name, payload in _fixtures():
        if not name.startswith("rest_"):
            continue
        for key in (None, "response", "get_response", "change_response"):
            body = payload if key is None else payload.get(key)
            if isinstance(body, dict) and ("data" in body or "success" in body):
                endpoint = REST_ENDPOINTS.get(name, "order_cancel_all")
                if key == "change_response":
                    endpoint = "change_position_mode"
                answers.append((endpoint, body))
    return answers


WS_FRAMES = _ws_frames()
PUSH_FRAMES = [f for f in WS_FRAMES if f["channel"].startswith("push.")]
REST_ANSWERS = _rest_answers()


def test_the_corpus_covers_every_channel_and_most_endpoints() -> None:
    channels = {f["channel"] for f in PUSH_FRAMES}
    assert channels >= set(CHANNELS) - {"push.contract"}  # no sample of push.contract
    assert len(WS_FRAMES) > len(PUSH_FRAMES) + 5  # acks, pongs and errors too
    assert {endpoint for endpoint, _ in REST_ANSWERS} >= set(REST_ENDPOINTS.values())


def _only_decode_error(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a DecodeError (not an internal one) is fine, anything else fails."""
    try:
        return fn()
    except DecodeError as exc:
        assert not exc.reason.startswith("internal"), f"decoder bug: {exc}"
        return exc
    except Exception as exc:  # the point of the test: nothing else may escape
        pytest.fail(f"{type(exc).__name__} escaped instead of DecodeError: {exc!r}")


def _rest(endpoint: str, data: Any) -> Any:
    return decode_rest(endpoint, data, symbol=SYMBOL)


# ------------------------------------------------------------------ random JSON values

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["success", "NaN", "-1", "1e5", "0", SYMBOL, "push.depth"])
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "channel",
                    "data",
                    "symbol",
                    "ts",
                    "asks",
                    "bids",
                    "version",
                    "p",
                    "v",
                    "T",
                    "t",
                    "orderId",
                    "success",
                    "code",
                    "price",
                    "x",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@FUZZ
@given(json_values)
def test_random_json_into_decode_ws(value: Any) -> None:
    result = _only_decode_error(lambda: decode_ws(orjson.dumps(value)))
    if not isinstance(result, DecodeError):
        assert isinstance(value, dict)


@FUZZ
@given(st.sampled_from([*sorted(CHANNELS), "pong", "rs.error", "rs.sub.x", "odd"]), json_values,
       st.one_of(st.none(), st.just(SYMBOL), json_scalars))  # fmt: skip
def test_random_data_on_every_channel(channel: str, data: Any, symbol: Any) -> None:
    frame = {"channel": channel, "data": data, "ts": 1, "symbol": symbol}
    _only_decode_error(lambda: decode_ws(orjson.dumps(frame)))


@FUZZ
@given(st.sampled_from(sorted(ENDPOINTS)), json_values)
def test_random_data_on_every_endpoint(endpoint: str, data: Any) -> None:
    _only_decode_error(lambda: _rest(endpoint, data))


@FUZZ
@given(json_values | st.binary(max_size=40) | st.text(max_size=40))
def test_random_input_into_decode_envelope(value: Any) -> None:
    text = value if isinstance(value, bytes | str) else orjson.dumps(value)
    _only_decode_error(lambda: decode_envelope(text))


@pytest.mark.parametrize("junk", [None, 5, 1.5, [], {}, object()])
def test_non_text_input(junk: Any) -> None:
    with pytest.raises(DecodeError):
        decode_ws(junk)
    with pytest.raises(DecodeError):
        decode_envelope(junk)


# -------------------------------------------------------------------- truncated frames


def test_every_prefix_of_every_frame_is_a_decode_error() -> None:
    texts = [orjson.dumps(f) for f in WS_FRAMES]
    for text in texts:
        for n in range(len(text)):
            with pytest.raises(DecodeError):
                decode_ws(text[:n])
            with pytest.raises(DecodeError):
                decode_ws(text[:n].decode("utf-8", "ignore"))


def test_every_prefix_of_every_answer_is_a_decode_error() -> None:
    for _, envelope in REST_ANSWERS:
        text = orjson.dumps(envelope)
        for n in range(len(text)):
            with pytest.raises(DecodeError):
                decode_envelope(text[:n])


# --------------------------------------------------------------- wrong-type substitution


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) below ``value``, the root excluded."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*path, key), item
        yield from _paths(item, (*path, key))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    copied = copy.deepcopy(value)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copied


def _junk_for(original: Any) -> list[Any]:
    """Values of the wrong type for a field holding ``original`` (never valid there)."""
    if isinstance(original, bool):
        return [1, 0, "true", [True], {"x": 1}]
    if isinstance(original, int | float):
        return [True, False, "", [1], {"x": 1}]
    if isinstance(original, str):
        return [True, 12.5, [original], {"x": original}]
    if isinstance(original, list):
        return [{"x": 1}, "abc", 7, True]
    if isinstance(original, dict):
        return [[1], "abc", 7, True]
    return []


def _ws_value(frame: Any) -> Any:
    return decode_ws(orjson.dumps(frame))


def _cases() -> Iterator[tuple[Callable[[Any], Any], Any]]:
    for frame in PUSH_FRAMES:
        yield _ws_value, frame
    for endpoint, envelope in REST_ANSWERS:
        if envelope.get("data") is not None:
            yield partial(_rest, endpoint), envelope["data"]


def test_wrong_types_in_every_field_give_decode_error_or_are_ignored() -> None:
    checked = 0
    for decode, payload in _cases():
        baseline = decode(payload)
        for path, original in _paths(payload):
            for junk in _junk_for(original):
                bad = _replace(payload, path, junk)
                result = _only_decode_error(partial(decode, bad))
                if not isinstance(result, DecodeError):
                    assert result == baseline, (path, junk)
                checked += 1
    assert checked > 3_000


def test_missing_required_fields_name_the_field() -> None:
    frame = next(f for f in PUSH_FRAMES if f["channel"] == "push.personal.order")
    for key in ("orderId", "symbol", "side", "state", "price", "vol"):
        data = {k: v for k, v in frame["data"].items() if k != key}
        with pytest.raises(DecodeError) as info:
            decode_ws(orjson.dumps({**frame, "data": data}))
        assert info.value.where == "push.personal.order"
        assert key in info.value.reason and "missing" in info.value.reason


# ----------------------------------------------------------- NaN, infinity, negatives


def test_non_finite_floats_anywhere_in_rest_data() -> None:
    """Python data (as another parser might produce) with nan/inf in any number field."""
    for endpoint, envelope in REST_ANSWERS:
        data = envelope.get("data")
        if data is None:
            continue
        baseline = _rest(endpoint, data)
        for path, original in _paths(data):
            if isinstance(original, int | float) and not isinstance(original, bool):
                for bad in (float("nan"), float("inf"), float("-inf")):
                    result = _only_decode_error(partial(_rest, endpoint, _replace(data, path, bad)))
                    if not isinstance(result, DecodeError):
                        assert result == baseline, (endpoint, path)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"nan"])
def test_non_finite_literals_in_frames(literal: bytes) -> None:
    for frame in PUSH_FRAMES:
        text = json.dumps(frame).encode()
        for number in (b"6859.5", b"0.001", b"45000.5", b"1587442022003"):
            if number in text:
                with pytest.raises(DecodeError):
                    decode_ws(text.replace(number, literal, 1))


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "nan", "1_000", " 1", "0x10",
                                  "", "1e99999"])  # fmt: skip
def test_non_finite_or_odd_strings_in_price_fields(text: str) -> None:
    frame = {"channel": "push.ticker", "symbol": SYMBOL, "data": {
        "symbol": SYMBOL, "lastPrice": text, "volume24": 1}}  # fmt: skip
    with pytest.raises(DecodeError) as info:
        decode_ws(orjson.dumps(frame))
    assert "lastPrice" in info.value.reason


NONNEGATIVE = {
    "push.depth": ["data.asks.0.0", "data.asks.0.1", "data.asks.0.2", "data.version"],
    "push.depth.full": ["data.asks.0.0", "data.bids.0.1", "data.bids.0.2", "data.version"],
    "push.deal": ["data.0.p", "data.0.v", "data.0.t"],
    "push.ticker": ["data.lastPrice", "data.bid1", "data.ask1", "data.volume24",
                    "data.holdVol", "data.indexPrice", "data.fairPrice", "data.timestamp"],
    "push.kline": ["data.o", "data.c", "data.h", "data.l", "data.a", "data.q", "data.t"],
    "push.index.price": ["data.price"],
    "push.fair.price": ["data.price"],
    "push.personal.order": ["data.price", "data.vol", "data.dealVol", "data.dealAvgPrice",
                            "data.orderId", "data.positionId", "data.updateTime"],
    "push.personal.order.deal": ["data.vol", "data.price", "data.id", "data.timestamp"],
    "push.personal.position": ["data.holdVol", "data.holdAvgPrice", "data.openAvgPrice",
                               "data.positionId", "data.im", "data.liquidatePrice"],
    "push.personal.asset": ["data.availableBalance", "data.frozenBalance",
                            "data.positionMargin"],
    "push.personal.plan.order": ["data.vol", "data.triggerPrice", "data.price"],
    "push.personal.stop.planorder": ["data.vol", "data.stopLossPrice", "data.takeProfitPrice"],
    "push.personal.risk.limit": ["data.maxVol", "data.mmr", "data.imr", "data.level"],
    "push.personal.adl.level": ["data.adlLevel"],
}  # fmt: skip


def _path(frame: dict[str, Any], dotted: str) -> tuple[Any, ...]:
    out: list[Any] = []
    target: Any = frame
    for part in dotted.split("."):
        key: Any = int(part) if isinstance(target, list) else part
        out.append(key)
        target = target[key]
    return tuple(out)


def _get(frame: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        frame = frame[key]
    return frame


def test_negative_values_are_rejected_naming_the_field() -> None:
    checked = 0
    for frame in PUSH_FRAMES:
        for dotted in NONNEGATIVE.get(frame["channel"], ()):
            data = frame["data"]
            if isinstance(data, list) and not dotted.startswith("data.0"):
                continue
            try:
                path = _path(frame, dotted)
            except (KeyError, IndexError):
                continue
            value = _get(frame, path)
            if isinstance(value, str):
                continue
            for bad in (-1, -0.5, -abs(value) - 1):
                with pytest.raises(DecodeError) as info:
                    decode_ws(orjson.dumps(_replace(frame, path, bad)))
                assert info.value.where == frame["channel"]
                assert str(path[-1]) in info.value.reason, info.value.reason
                checked += 1
    assert checked > 100


def test_zero_price_levels_are_rejected_but_zero_volume_deletes() -> None:
    frame: dict[str, Any] = {"channel": "push.depth", "symbol": SYMBOL, "data": {
        "asks": [[100.5, 0, 0]], "bids": [], "version": 1}}  # fmt: skip
    assert decode_ws(orjson.dumps(frame)).messages[0].asks == ((Decimal("100.5"), 0, 0),)
    frame["data"]["asks"] = [[0, 5, 1]]
    with pytest.raises(DecodeError, match=r"asks\[0\]\[0\]"):
        decode_ws(orjson.dumps(frame))


# ----------------------------------------------------------- fast path == checked path

prices = st.integers(min_value=1, max_value=10**7).map(lambda t: t / 10) | st.integers(1, 10**6)
level_values = (
    prices | st.integers(-5, 10**9) | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans() | st.none() | st.text(max_size=4) | st.sampled_from(["1.5", "-1", "2"])
    | st.lists(st.integers(0, 3), max_size=2)
)  # fmt: skip
levels = st.lists(
    st.one_of(
        st.tuples(prices, st.integers(0, 10**7), st.integers(0, 50)).map(list),
        st.lists(level_values, min_size=0, max_size=4),
    ),
    max_size=6,
)


def _levels_via(decode: Callable[[Any, str], Any], raw: Any) -> Any:
    try:
        return decode(raw, "asks")
    except _fields.Invalid as exc:
        return ("Invalid", exc.field, exc.reason)


@settings(max_examples=300, deadline=None)
@given(levels, levels, st.booleans())
def test_fast_and_checked_level_paths_agree(asks: Any, bids: Any, cold: bool) -> None:
    if cold:
        _fields.clear_memos()
    fast = _levels_via(_book.levels, asks)
    checked = _levels_via(_book._levels_checked, asks)
    assert fast == checked
    if isinstance(fast, tuple) and fast and fast[0] != "Invalid":
        assert [[str(x) for x in level] for level in fast] == [
            [str(x) for x in level] for level in checked
        ]
    # and the same through both entry points
    data = {"asks": asks, "bids": bids, "version": 7}
    ws = _only_decode_error(
        lambda: decode_ws(orjson.dumps({"channel": "push.depth", "symbol": SYMBOL, "data": data}))
    )
    rest = _only_decode_error(lambda: _rest("depth_commits", [data]))
    if isinstance(ws, DecodeError) or isinstance(rest, DecodeError):
        assert isinstance(ws, DecodeError) and isinstance(rest, DecodeError), (ws, rest)
        assert ws.reason == rest.reason.replace("data[0].", "data."), (ws.reason, rest.reason)
    else:
        assert ws.messages[0] == rest[0]


def test_booleans_never_pass_as_numbers_even_after_the_memo_is_warm() -> None:
    warm = {"channel": "push.depth", "symbol": SYMBOL,
            "data": {"asks": [[1, 1, 1], [1.0, 1.0, 1]], "bids": [], "version": 1}}  # fmt: skip
    assert decode_ws(orjson.dumps(warm)).messages[0].asks[0] == (1, 1, 1)
    for level in ([True, 1, 1], [1, True, 1], [1, 1, True], [1, False, 0]):
        bad = {**warm, "data": {"asks": [level], "bids": [], "version": 1}}
        with pytest.raises(DecodeError, match="asks"):
            decode_ws(orjson.dumps(bad))


@pytest.mark.parametrize("first", [5, 5.0])
def test_decimal_text_does_not_depend_on_what_came_first(first: int | float) -> None:
    """The memo keys 5 and 5.0 alike; the result must be the same Decimal either way."""
    _fields.clear_memos()
    results = []
    for price in (first, 10.0 - first, 5, 5.0, 2.50, 2.5):
        frame = {"channel": "push.index.price", "symbol": SYMBOL, "data": {"price": price}}
        results.append(str(decode_ws(orjson.dumps(frame)).messages[0].price))
    assert results == ["5", "5", "5", "5", "2.5", "2.5"]


# ------------------------------------------------------ ws_messages agrees with decode_ws


def _agree(text: Any) -> tuple[Any, ...]:
    """``ws_messages`` gives ``decode_ws(...).messages``, or raises the same DecodeError;
    returns ``("ok", messages)`` or ``("error", where, reason)``."""
    outcomes = []
    for fn in (lambda: decode_ws(text).messages, lambda: ws_messages(text)):
        try:
            outcomes.append(("ok", fn()))
        except DecodeError as exc:
            outcomes.append(("error", exc.where, exc.reason))
    assert outcomes[0] == outcomes[1], text
    return outcomes[0]


def test_ws_messages_agrees_with_decode_ws_on_the_corpus_and_every_mutation() -> None:
    seen = {"ok": 0, "error": 0}
    for frame in WS_FRAMES:
        text = orjson.dumps(frame)
        assert _agree(text)[0] == "ok"
        for n in range(0, len(text), 7):
            assert _agree(text[:n])[0] == "error"
        for path, original in _paths(frame):
            for junk in _junk_for(original):
                seen[_agree(orjson.dumps(_replace(frame, path, junk)))[0]] += 1
    assert seen["ok"] > 300 and seen["error"] > 300, seen  # both paths were exercised


@FUZZ
@given(st.sampled_from([*sorted(CHANNELS), "pong", "rs.error", "rs.sub.x", "odd"]), json_values,
       st.one_of(st.none(), st.just(SYMBOL), json_scalars), st.one_of(st.none(), json_scalars))
def test_ws_messages_agrees_with_decode_ws_on_random_frames(
        channel: str, data: Any, symbol: Any, ts: Any) -> None:
    _agree(orjson.dumps({"channel": channel, "data": data, "ts": ts, "symbol": symbol}))


@pytest.mark.parametrize("junk", [None, 5, 1.5, [], {}, "", "[]", '{"channel":7}'])
def test_ws_messages_refuses_what_decode_ws_refuses(junk: Any) -> None:
    with pytest.raises(DecodeError):
        ws_messages(junk)
    assert _agree(junk)[0] == "error"


# ------------------------------------------- the inline trade path agrees with the checked one

_MISSING = object()
_TRADE_FIELDS = {
    "p": [100000.0, 100000.1, 7, 1, 1.0, True, -1.5, 0, "5", None, _MISSING],
    "v": [42, 0, -1, 1.5, True, None, _MISSING],
    "T": [1, 2, 3, True, "1", _MISSING],
    "t": [0, 1767225600005, -1, 1.0, True, _MISSING],
    "M": [_MISSING, 1, 2, 3, True, None],
    "i": [_MISSING, 7, "a", None],
}


def test_trade_fast_path_agrees_with_the_checked_path() -> None:
    _fields.positive(100000.0, "p")  # a price the memo holds, so the inline path is taken
    taken = {"ok": 0, "error": 0}
    for values in itertools.product(*_TRADE_FIELDS.values()):
        d = {k: v for k, v in zip(_TRADE_FIELDS, values, strict=True) if v is not _MISSING}
        outcomes = []
        for fn in (_market.trade, _market._trade_checked):
            try:
                value = fn(d, SYMBOL)
                outcomes.append(("ok", value, [type(x) for x in attrs.astuple(value)]))
            except _fields.Invalid as exc:
                outcomes.append(("error", exc.field, exc.reason))
        assert outcomes[0] == outcomes[1], d
        taken[outcomes[0][0]] += 1
    assert taken["ok"] > 200 and taken["error"] > 10_000, taken
