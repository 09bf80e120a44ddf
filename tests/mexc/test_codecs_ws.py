"""WebSocket frame decoding beyond the samples: tolerance, reporting, compression, purity."""

from __future__ import annotations

import ast
import gzip
import zlib
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from adapters.mexc import codecs
from adapters.mexc.codecs import WsFrame, decode_ws, decode_ws_gzip
from adapters.mexc.errors import DecodeError
from engine.model import BookDelta, ContractInfo, FundingRate, TakerSide, Trade

SYMBOL = "BTC_USDT"
FIXTURES = Path(__file__).parent / "fixtures"


def ws(frame: dict[str, Any]) -> WsFrame:
    return decode_ws(orjson.dumps(frame))


def depth(**data: Any) -> dict[str, Any]:
    body = {"asks": [[100.5, 3, 1]], "bids": [[100.4, 0, 0]], "version": 9}
    body.update(data)
    return {"channel": "push.depth", "symbol": SYMBOL, "ts": 5, "data": body}


def test_unknown_channels_are_tolerated_and_keep_their_name() -> None:
    got = ws({"channel": "push.personal.bonus", "data": {"x": 1}, "ts": 3, "extra": 1})
    assert got == WsFrame("push.personal.bonus", None, 3, (), None, None, ("extra",))


def test_unknown_fields_are_reported_not_rejected() -> None:
    frame = depth(cts=1, zzz=[1])
    frame["id"] = 7
    got = ws(frame)
    assert got.messages[0].version == 9
    assert got.unknown_fields == ("id", "data.cts", "data.zzz")
    tickers = ws({"channel": "push.tickers", "data": [
        {"symbol": "A_USDT", "lastPrice": 1, "volume24": 2, "new1": 0},
        {"symbol": "B_USDT", "lastPrice": 1, "volume24": 2, "new2": 0, "new1": 0},
    ]})  # fmt: skip
    assert tickers.unknown_fields == ("data.new1", "data.new2")


def test_str_and_bytes_frames_decode_alike() -> None:
    text = orjson.dumps(depth()).decode()
    assert decode_ws(text) == decode_ws(text.encode())


def test_booleans_elsewhere_in_a_depth_frame_change_nothing() -> None:
    plain = ws(depth())
    with_flag = ws(depth(flag=True))
    assert with_flag.messages == plain.messages
    assert with_flag.unknown_fields == ("data.flag",)


def test_depth_levels_edge_cases() -> None:
    got = ws(depth(asks=[[100.5, 3]], bids=[]))  # two-element level: count unknown -> 0
    assert got.messages[0].asks == ((D("100.5"), D(3), 0),)
    assert ws(depth(asks=[], bids=[])).messages[0] == BookDelta(SYMBOL, 9, (), (), 5)
    missing_sides = {"channel": "push.depth", "symbol": SYMBOL, "data": {"version": 9}}
    assert ws(missing_sides).messages[0] == BookDelta(SYMBOL, 9, (), ())
    for bad, where in (
        ([[100.5, 3, 1, 0]], r"data\.asks\[0\]: .*4 elements"),
        ([[100.5, -3, 1]], r"data\.asks\[0\]\[1\]"),
        ([[100.5, 3, 1.5]], r"data\.asks\[0\]\[2\]"),
        ([[-1, 3, 1]], r"data\.asks\[0\]\[0\]"),
        ([["x", 3, 1]], r"data\.asks\[0\]\[0\]"),
        ([[100.5, None, 1]], r"data\.asks\[0\]\[1\]"),
        ([100.5], r"data\.asks\[0\]"),
        ({"100.5": 3}, r"data\.asks"),
    ):
        with pytest.raises(DecodeError, match=where) as info:
            ws(depth(asks=bad))
        assert info.value.where == "push.depth"


def test_numbers_as_strings_keep_their_text() -> None:
    got = ws(depth(asks=[["100.50", "3", 1]], version="12"))
    assert got.messages[0].asks == ((D("100.50"), D(3), 1),)
    assert str(got.messages[0].asks[0][0]) == "100.50"
    assert got.messages[0].version == 12


def test_merged_depth_versions() -> None:
    got = ws(depth(begin=7, end=9)).messages[0]
    assert (got.first_version, got.last_version) == (7, 9)
    with pytest.raises(DecodeError, match="begin"):
        ws(depth(begin=10, end=9))
    with pytest.raises(DecodeError, match=r"data\.version"):
        ws(depth(version=-1))


def test_public_pushes_need_the_top_level_symbol() -> None:
    frame = depth()
    del frame["symbol"]
    with pytest.raises(DecodeError, match="symbol: missing") as info:
        ws(frame)
    assert info.value.where == "push.depth"
    with pytest.raises(DecodeError, match="symbol"):
        ws({"channel": "push.deal", "data": [{"p": 1, "v": 1, "T": 1, "t": 1}]})
    with pytest.raises(DecodeError, match="symbol"):
        ws({**depth(), "symbol": ""})


def test_deal_data_as_object_or_array() -> None:
    deal = {"p": 1.5, "v": 2, "T": 2, "O": 3, "M": 2, "t": 10, "i": 99}
    expected = (Trade(SYMBOL, D("1.5"), D(2), TakerSide.SELL, 10, False, "99"),)
    assert ws({"channel": "push.deal", "symbol": SYMBOL, "data": deal}).messages == expected
    assert ws({"channel": "push.deal", "symbol": SYMBOL, "data": [deal]}).messages == expected
    for key, value in (("T", 3), ("M", 0), ("i", 1.5), ("p", 0)):
        with pytest.raises(DecodeError, match=rf"data\[0\]\.{key}"):
            ws({"channel": "push.deal", "symbol": SYMBOL, "data": [{**deal, key: value}]})


def test_funding_rate_under_either_key() -> None:
    for key in ("rate", "fundingRate"):
        got = ws({"channel": "push.funding.rate", "symbol": SYMBOL, "ts": 4,
                  "data": {"symbol": SYMBOL, key: -0.0001}})  # fmt: skip
        assert got.messages == (FundingRate(SYMBOL, D("-0.0001"), None, 4),)


def test_kline_interval_must_be_known() -> None:
    data = {"symbol": SYMBOL, "interval": "Min3", "t": 1, "o": 1, "c": 1, "h": 1, "l": 1,
            "a": 1, "q": 1}  # fmt: skip
    with pytest.raises(DecodeError, match=r"data\.interval"):
        ws({"channel": "push.kline", "symbol": SYMBOL, "data": data})


def test_private_enums_reject_unknown_values() -> None:
    order = {"orderId": "1", "symbol": SYMBOL, "side": 1, "orderType": 1, "openType": 1,
             "price": 1, "vol": 1, "dealVol": 0, "dealAvgPrice": 0, "state": 2}  # fmt: skip
    assert ws({"channel": "push.personal.order", "data": order}).messages[0].order_id == "1"
    for key, value in (("state", 6), ("side", 5), ("orderType", 7), ("openType", 3),
                       ("state", True), ("category", 9), ("positionMode", 3),
                       ("reduceOnly", 1)):  # fmt: skip
        with pytest.raises(DecodeError, match=rf"data\.{key}"):
            ws({"channel": "push.personal.order", "data": {**order, key: value}})


def test_fill_taker_flag_names_and_missing() -> None:
    fill = {"id": 1, "orderId": 2, "symbol": SYMBOL, "side": 1, "vol": 1, "price": 1,
            "fee": -0.01, "timestamp": 5}  # fmt: skip
    for key in ("isTaker", "taker"):
        got = ws({"channel": "push.personal.order.deal", "data": {**fill, key: False}})
        assert got.messages[0].is_taker is False
        assert got.messages[0].fee == D("-0.01")
    with pytest.raises(DecodeError, match=r"data\.isTaker: missing"):
        ws({"channel": "push.personal.order.deal", "data": fill})


def test_push_contract_decodes_a_detail_object() -> None:
    doc = orjson.loads((FIXTURES / "rest_contract_detail.json").read_bytes())
    detail = doc["variants"][1]["payload"]["data"]
    got = ws({"channel": "push.contract", "symbol": SYMBOL, "data": detail, "ts": 1})
    assert isinstance(got.messages[0], ContractInfo)
    assert got.messages[0].price_unit == D("0.1")
    with pytest.raises(DecodeError, match=r"data\.contractSize"):
        ws({"channel": "push.contract", "data": {**detail, "contractSize": 0}})


def test_acks_pongs_and_errors() -> None:
    assert ws({"channel": "rs.sub.depth", "data": "success", "ts": 1}) == WsFrame(
        "rs.sub.depth", None, 1, (), "sub.depth"
    )
    assert ws({"channel": "rs.unsub.depth.full", "data": "success"}).ack == "unsub.depth.full"
    odd = ws({"channel": "rs.login", "data": {"code": 401, "msg": "bad"}})
    assert (odd.ack, odd.error) == ("login", '{"code":401,"msg":"bad"}')
    assert ws({"channel": "rs.error", "data": None}).error == "(no error text)"
    assert ws({"channel": "pong"}) == WsFrame("pong", None, None, (), "pong")
    assert ws({"channel": "pong", "data": 5, "ts": 6}).ts_ms == 6
    with pytest.raises(DecodeError, match="data"):
        ws({"channel": "pong", "data": "later"})


@pytest.mark.parametrize(
    ("frame", "where"),
    [
        (b"", "ws"),
        (b"[1]", "ws"),
        (b'{"data":1}', "ws"),
        (b'{"channel":5}', "ws"),
        (b'{"channel":"push.depth","ts":true,"symbol":"X","data":{"version":1}}', "push.depth"),
        (b'{"channel":"push.depth","ts":-5,"symbol":"X","data":{"version":1}}', "push.depth"),
        (b'{"channel":"push.depth","symbol":"X","data":[]}', "push.depth"),
        (b'{"channel":"push.depth","symbol":"X"}', "push.depth"),
    ],
)
def test_malformed_frames_name_where(frame: bytes, where: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_ws(frame)
    assert info.value.where == where


def test_compressed_frames() -> None:
    text = orjson.dumps(depth())
    expected = decode_ws(text)
    assert decode_ws_gzip(gzip.compress(text)) == expected
    assert decode_ws_gzip(zlib.compress(text)) == expected
    squeezed = gzip.compress(text)
    for bad in (squeezed[: len(squeezed) // 2], b"not gzip at all", b""):
        with pytest.raises(DecodeError, match=r"^ws:"):
            decode_ws_gzip(bad)
    with pytest.raises(DecodeError, match="16777216"):
        decode_ws_gzip(gzip.compress(b" " * (17 * 1024 * 1024)))
    with pytest.raises(DecodeError):
        decode_ws_gzip("text")  # type: ignore[arg-type]


FORBIDDEN = {"time", "datetime", "random", "trio", "httpx", "sqlite3", "asyncio", "socket"}


def test_the_codecs_package_is_pure() -> None:
    package = Path(codecs.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 6
    for module in modules:
        tree = ast.parse(module.read_text(), str(module))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{module.name} imports {name}"


def test_public_api_names() -> None:
    for name in ("PARSER_VERSION", "Envelope", "decode_envelope", "decode_rest", "WsFrame",
                 "decode_ws", "decode_ws_gzip", "CancelResult", "Page"):  # fmt: skip
        assert name in codecs.__all__ and hasattr(codecs, name)
    fields = [a.name for a in attrs.fields(WsFrame)]
    assert fields == ["channel", "symbol", "ts_ms", "messages", "ack", "error", "unknown_fields"]
    frame = ws(depth())
    with pytest.raises(AttributeError):
        frame.channel = "x"  # type: ignore[misc]


# ------------------------------------------------------------- hot-path values and memos

TICKER = {"channel": "push.ticker", "symbol": SYMBOL, "ts": 5, "data": {
    "symbol": SYMBOL, "lastPrice": 5.0, "bid1": 0.1, "ask1": 5, "volume24": 1.0,
    "amount24": 10374579341.00211, "holdVol": 2.5, "riseFallRate": -0.5, "fundingRate": 0.0,
    "indexPrice": 1, "fairPrice": 108779.2}}  # fmt: skip


def test_decoded_market_values_are_frozen() -> None:
    """Ticker, Trade, BookSnapshot and BookDelta are dict classes (faster to build): still
    frozen, and equal and hashed by their fields."""
    deal = {"channel": "push.deal", "symbol": SYMBOL,
            "data": [{"p": 100.5, "v": 2, "T": 1, "O": 3, "M": 2, "t": 7}]}  # fmt: skip
    full = {"channel": "push.depth.full", "symbol": SYMBOL,
            "data": {"asks": [[100.5, 3, 1]], "bids": [], "version": 9}}  # fmt: skip
    for frame in (depth(), TICKER, deal, full):
        message = ws(frame).messages[0]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            message.symbol = "ETH_USDT"
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            del message.symbol
        twin = attrs.evolve(message)
        assert twin == message and hash(twin) == hash(message) and twin is not message
        assert attrs.evolve(message, symbol="ETH_USDT") != message


def test_ticker_numbers_do_not_depend_on_the_memo() -> None:
    codecs._fields.clear_memos()
    cold = ws(TICKER).messages[0]
    warm = ws(TICKER).messages[0]
    texts = [str(v) for v in attrs.astuple(cold)]
    assert texts == [str(v) for v in attrs.astuple(warm)]
    assert texts == ["BTC_USDT", "5", "0.1", "5", "1", "10374579341.00211", "2.5", "None",
                     "None", "-0.5", "1", "108779.2", "0", "5"]  # fmt: skip
    for key in ("lastPrice", "volume24", "fundingRate", "indexPrice"):
        for bad in (True, False, [5.0], {"x": 5.0}):
            with pytest.raises(DecodeError, match=key):
                ws({**TICKER, "data": {**TICKER["data"], key: bad}})
