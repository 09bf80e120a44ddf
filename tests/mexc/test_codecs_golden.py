"""Golden tests: every documented MEXC sample decodes to hand-written expected values.

``tests/mexc/fixtures/`` holds the samples of ``shared/mexc/samples/`` unchanged. Each file
has one check below, and each check must account for every variant of its file (decode it,
or declare it a request-only example), so a new sample file or variant without a golden
check fails. Expected values are written out from the samples by hand: prices as exact
Decimals, ids as strings, enums as members.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.mexc.codecs import (
    PARSER_VERSION,
    CancelResult,
    DepthStep,
    Envelope,
    InsuranceFund,
    LeverageTier,
    Page,
    WsFrame,
    decode_envelope,
    decode_rest,
    decode_ws,
)
from adapters.mexc.errors import DecodeError
from engine.model import (
    AdlLevel,
    BalanceUpdate,
    BookDelta,
    BookSnapshot,
    ContractInfo,
    FairPrice,
    Fill,
    FundingRate,
    IndexPrice,
    Kline,
    OpenType,
    OrderState,
    OrderType,
    OrderUpdate,
    PlanOrderUpdate,
    PositionModeUpdate,
    PositionState,
    PositionType,
    PositionUpdate,
    RiskLimitUpdate,
    Side,
    StopOrderUpdate,
    TakerSide,
    Ticker,
    Trade,
)

FIXTURES = Path(__file__).parent / "fixtures"
ZERO = D(0)
BTC = "BTC_USDT"


class Sample:
    """One fixture file; records which variants a check has accounted for."""

    def __init__(self, path: Path) -> None:
        self.doc: dict[str, Any] = orjson.loads(path.read_bytes())
        self.variants: list[dict[str, Any]] = self.doc["variants"]
        self.seen: set[int] = set()

    def payload(self, i: int) -> dict[str, Any]:
        self.seen.add(i)
        return self.variants[i]["payload"]

    def text(self, i: int, key: str | None = None) -> bytes:
        """The JSON text of variant ``i``'s payload (or of ``payload[key]``)."""
        value = self.payload(i) if key is None else self.payload(i)[key]
        return orjson.dumps(value)

    def rest(self, i: int, endpoint: str, key: str | None = None, **kwargs: Any) -> Any:
        """Decode variant ``i`` as a whole REST answer: envelope first, then its data."""
        envelope = decode_envelope(self.text(i, key))
        assert envelope.success is True
        return decode_rest(endpoint, envelope.data, **kwargs)

    def ws(self, i: int, key: str | None = "push") -> WsFrame:
        return decode_ws(self.text(i, key))

    def request_only(self, *indexes: int) -> None:
        """Variants that document a request (nothing to decode)."""
        for i in indexes:
            payload = self.payload(i)
            assert not {"response", "push", "success", "channel"} & payload.keys(), payload


def order(**changes: Any) -> OrderUpdate:
    """The order of ``rest_order_get`` variant 0 / ``rest_order_external``, with changes."""
    base: dict[str, Any] = dict(
        order_id="739106551624717312", symbol=BTC, side=Side.OPEN_LONG,
        order_type=OrderType.MARKET, open_type=OpenType.ISOLATED, price=D("109777.5"),
        vol=D(5), deal_vol=D(5), deal_avg_price=D("109777.5"), state=OrderState.FILLED,
        external_oid="_m_903a9f81cc1148be99ac9ece15981374", error_code=0, leverage=2,
        position_id="1109973831", taker_fee=ZERO, maker_fee=ZERO, profit=ZERO,
        fee_currency="USDT", create_ms=1761887134000, update_ms=1761887134000, version=2,
        category=1, reduce_only=None, position_mode=1,
    )  # fmt: skip
    base.update(changes)
    return OrderUpdate(**base)


def frame(
    channel: str,
    messages: tuple[Any, ...],
    *,
    symbol: str | None = BTC,
    ts: int | None,
    unknown: tuple[str, ...] = (),
) -> WsFrame:
    return WsFrame(channel, symbol, ts, messages, None, None, unknown)


# ------------------------------------------------------------------------------- REST


def check_rest_account_asset_currency(s: Sample) -> None:
    got = s.rest(0, "asset")
    assert got == BalanceUpdate(
        "USDT", D("0.03176562"), ZERO, ZERO, D("0.03176562"), D("0.03176562"), ZERO, ZERO
    )


def check_rest_account_assets(s: Sample) -> None:
    assert s.rest(0, "assets") == (
        BalanceUpdate("USDT", D("32.80984793658"), ZERO, ZERO, D("32.80984793"),
                      D("32.80984793"), ZERO, ZERO),
    )  # fmt: skip
    assert s.rest(1, "assets") == (
        BalanceUpdate("USDT", D("0.03176562"), ZERO, ZERO, D("0.03176562"),
                      D("0.03176562"), ZERO, ZERO),
    )  # fmt: skip


def check_rest_cancel_all(s: Sample) -> None:
    assert s.rest(0, "order_cancel_all", "response") is None
    s.request_only(1)


def check_rest_cancel_with_external(s: Sample) -> None:
    s.request_only(0)
    got = s.rest(1, "order_cancel_with_external", "response")
    assert got == (CancelResult("108886241042563584", 0, "success"),)
    assert got[0].ok


def check_rest_change_leverage(s: Sample) -> None:
    assert s.rest(0, "change_leverage", "response") is None
    s.request_only(1)


def check_rest_change_margin(s: Sample) -> None:
    assert s.rest(0, "change_margin", "response") is None


def check_rest_contract_detail(s: Sample) -> None:
    listed = s.rest(0, "detail")
    assert listed == (
        ContractInfo(
            symbol=BTC, base_coin="BTC", quote_coin="USDT", settle_coin="USDT",
            contract_size=D("0.0001"), price_unit=D("0.5"), vol_unit=D(1), min_vol=D(1),
            max_vol=D(5000000), min_leverage=1, max_leverage=125, price_scale=2, vol_scale=0,
            taker_fee_rate=D("0.0006"), maker_fee_rate=D("0.0002"), state=0,
            api_allowed=False, max_num_orders=(200, 50), display_name="BTC_USDT SWAP",
        ),
    )  # fmt: skip
    one = s.rest(1, "detail")
    assert one == ContractInfo(
        symbol=BTC, base_coin="BTC", quote_coin="USDT", settle_coin="USDT",
        contract_size=D("0.0001"), price_unit=D("0.1"), vol_unit=D(1), min_vol=D(1),
        max_vol=D(400000), min_leverage=1, max_leverage=500, price_scale=1, vol_scale=0,
        taker_fee_rate=D("0.0004"), maker_fee_rate=D("0.0001"), state=0, api_allowed=False,
        max_num_orders=(200, 50), display_name="BTC_USDT PERPETUAL",
    )  # fmt: skip
    assert str(one.price_unit) == "0.1"


def check_rest_deals(s: Sample) -> None:
    assert s.rest(0, "deals", symbol=BTC) == (
        Trade(BTC, D("109177.4"), D(14), TakerSide.BUY, 1761883066648, False, None),
        Trade(BTC, D("109177.4"), D(12), TakerSide.BUY, 1761883066624, False, None),
    )


def check_rest_depth(s: Sample) -> None:
    snap = s.rest(0, "depth", symbol=BTC)
    assert snap == BookSnapshot(
        BTC, 28111438870,
        ((D("108779.2"), D(3240), 1), (D("108779.3"), D(3884), 1)),
        ((D("108779.1"), D(3240), 1), (D("108779"), D(3884), 1)),
        1761879567135, True,
    )  # fmt: skip
    # the old doc example is the bare data object; its first ask has no order count
    old = decode_rest("depth", s.payload(1), symbol=BTC)
    assert old == BookSnapshot(
        BTC, 1,
        ((D("3968.5"), D(121), 0), (D("3968.6"), D(160), 4)),
        ((D("3968.4"), D(179), 4), (D("3968"), D(914), 3)),
        1587442022003, True,
    )  # fmt: skip


def check_rest_depth_commits(s: Sample) -> None:
    got = s.rest(0, "depth_commits", symbol=BTC)
    assert got == (  # sorted by version; the answer lists newest first
        BookDelta(BTC, 26457599297, (), ((D("3818.89"), D(1123), 2),)),
        BookDelta(BTC, 26457599298, (), ((D("3818.89"), D(1524), 3),)),
        BookDelta(BTC, 26457599299, (), ((D("3818.91"), D(272), 1),)),
    )


def check_rest_error_envelope(s: Sample) -> None:
    assert decode_envelope(s.text(0)) == Envelope(False, 500, "System internal error!", None)
    assert decode_envelope(s.text(1)) == Envelope(
        False, 2009, "Position is not exists or closed.", None
    )


def check_rest_fair_price(s: Sample) -> None:
    assert s.rest(0, "fair_price") == FairPrice(BTC, D("31103.4"), 1609829705178)


def check_rest_funding_rate(s: Sample) -> None:
    got = s.rest(0, "funding_rate")
    assert got == FundingRate(
        BTC, D("0.000018"), 1761897600000, 1761879755894, D("0.0018"), D("-0.0018"), 8
    )


def check_rest_funding_rate_history(s: Sample) -> None:
    got = s.rest(0, "funding_rate_history")
    assert got == Page(
        (FundingRate(BTC, D("0.000021"), None, 1761868800000, collect_cycle_h=8),),
        page_size=3, total_count=1619, total_page=540, current_page=1,
    )  # fmt: skip


def check_rest_history_orders(s: Sample) -> None:
    assert s.rest(0, "history_orders") == (
        order(
            order_id="739211854408619008", symbol="DOGE_USDT", side=Side.OPEN_SHORT,
            price=D("0.18695"), vol=D(1), deal_vol=D(1), deal_avg_price=D("0.18695"),
            external_oid="test00002", leverage=20, position_id="1110417836",
            create_ms=1761912240000, update_ms=1761912240000,
        ),
    )  # fmt: skip
    s.request_only(1)


def check_rest_history_positions(s: Sample) -> None:
    assert s.rest(0, "history_positions") == (
        PositionUpdate(
            "1027177055", BTC, PositionType.LONG, OpenType.ISOLATED, PositionState.CLOSED,
            hold_vol=ZERO, hold_avg_price=D("112449.5"), open_avg_price=D("112449.5"),
            liquidate_price=D("56314.7"), im=ZERO, realised=D("0.2155"), leverage=2,
            frozen_vol=ZERO, close_vol=D(2), hold_fee=ZERO, update_ms=1757509217000,
        ),
    )  # fmt: skip


def check_rest_index_price(s: Sample) -> None:
    assert s.rest(0, "index_price") == IndexPrice(BTC, D("31103.4"), 1609829705178)


def check_rest_kline(s: Sample) -> None:
    expected = (
        Kline(BTC, "Min15", 1761876000, D("109573.9"), D("109006.4"), D("109628.1"),
              D("108953.3"), D("61062435.67181"), D(5587051)),
        Kline(BTC, "Min15", 1761876900, D("109006.4"), D("109301.5"), D("109426.2"),
              D("109006.4"), D("62700991.47368"), D(5739575)),
    )  # fmt: skip
    assert s.rest(0, "kline", symbol=BTC, interval="Min15") == expected
    data = s.payload(0)["data"]
    assert decode_rest("kline_index", data, BTC, interval="Min15") == expected
    assert decode_rest("kline_fair", data, BTC, interval="Min15") == expected
    assert str(expected[0].volume) == "5587051"  # "5587051.0" on the wire: integral


def check_rest_open_orders(s: Sample) -> None:
    assert s.rest(0, "open_orders") == (
        order(
            order_id="750330744886358528", symbol="ETH_USDT", order_type=OrderType.LIMIT,
            open_type=OpenType.CROSS, price=D(2500), vol=D(10), deal_vol=ZERO,
            deal_avg_price=ZERO, state=OrderState.OPEN,
            external_oid="_m_7dd52a7ebf5e480fb533a5945a2bc184", leverage=1,
            position_id=None, create_ms=1764563189993, update_ms=1764563190059, version=1,
            reduce_only=False, position_mode=2,
        ),
    )  # fmt: skip
    s.request_only(1)


def check_rest_open_positions(s: Sample) -> None:
    assert s.rest(0, "open_positions") == (
        PositionUpdate(
            "1109973831", BTC, PositionType.LONG, OpenType.ISOLATED, PositionState.HOLDING,
            hold_vol=D(5), hold_avg_price=D("109777.5"), open_avg_price=D("109777.5"),
            liquidate_price=D("55020.5"), im=D("27.444375"), realised=ZERO, leverage=2,
            update_ms=1761887133854,
        ),
    )  # fmt: skip
    assert s.rest(1, "open_positions") == (
        PositionUpdate(
            "1394650", "ETH_USDT", PositionType.LONG, OpenType.ISOLATED,
            PositionState.HOLDING, hold_vol=D(1), hold_avg_price=D("1217.3"),
            open_avg_price=D("1217.3"), liquidate_price=D("1211.2"), im=D("0.1290338"),
            realised=D("-0.0073"), leverage=100, update_ms=1609991676000,
        ),
    )  # fmt: skip


def check_rest_order_batch_query(s: Sample) -> None:
    assert s.rest(0, "order_batch_query") == (
        order(
            order_id="743829153601634818", order_type=OrderType.LIMIT,
            open_type=OpenType.CROSS, price=D(100000), vol=D(10), deal_vol=ZERO,
            deal_avg_price=ZERO, state=OrderState.OPEN,
            external_oid="_m_a6e614e4107e4d13893f9f4a3f46d2d8", leverage=20,
            position_id=None, create_ms=1763013089831, update_ms=1763013089904, version=1,
            reduce_only=False, position_mode=2,
        ),
    )  # fmt: skip


def check_rest_order_cancel(s: Sample) -> None:
    got = s.rest(0, "order_cancel")
    assert got == (
        CancelResult("101716841474621953", 2040, "order not exist"),
        CancelResult("108885377779302912", 2041, "order state cannot be cancelled"),
        CancelResult("108886241042563584", 0, "success"),
    )
    assert [r.ok for r in got] == [False, False, True]
    s.request_only(1)


def check_rest_order_create(s: Sample) -> None:
    assert s.rest(0, "order_create") == "739113577038255616"
    assert s.rest(1, "order_submit") == "102057569836905984"
    legacy = decode_envelope(s.text(2))  # {"code":200,"data":...}: no success key
    assert legacy == Envelope(True, 200, None, "2ff3163e8617443cb9c6fc19d42b1ca4")
    assert decode_rest("order_submit", legacy.data) == "2ff3163e8617443cb9c6fc19d42b1ca4"
    s.request_only(3, 4, 5, 6)


def check_rest_order_deal_details(s: Sample) -> None:
    assert s.rest(0, "order_deal_details") == (
        Fill("159274416", "102015012431820288", "ETH_USDT", Side.CLOSE_SHORT, D(1),
             D("1208.35"), D("0.0072501"), "USDT", ZERO, True, 1609992674000,
             external_oid=None, position_mode=None, category=1),
    )  # fmt: skip


def check_rest_order_deals(s: Sample) -> None:
    assert s.rest(0, "order_deals") == (
        Fill("9466823344", "739211854408619008", "DOGE_USDT", Side.OPEN_SHORT, D(1),
             D("0.18695"), ZERO, "USDT", ZERO, True, 1761912240000, position_mode=1,
             category=1),
    )  # fmt: skip
    s.request_only(1)


def check_rest_order_external(s: Sample) -> None:
    assert s.rest(0, "order_external") == order()


def check_rest_order_get(s: Sample) -> None:
    assert s.rest(0, "order_get") == order()
    assert s.rest(1, "order_get") == order(
        order_id="102015012431820288", symbol="ETH_USDT", side=Side.CLOSE_SHORT,
        price=D("1209.05"), vol=D(1), deal_vol=D(1), deal_avg_price=D("1208.35"),
        external_oid="_m_f95eb99b061d4eef8f64a04e9ac4dad3", leverage=0,
        position_id="1394917", taker_fee=D("0.0072501"), create_ms=1609992674000,
        update_ms=1609992674000, version=None, position_mode=None,
    )  # fmt: skip
    s.request_only(2)


def check_rest_ping(s: Sample) -> None:
    assert s.rest(0, "ping") == 1761875313209
    old = decode_envelope(s.text(1))  # no code
    assert (old.success, old.code) == (True, 0)
    assert decode_rest("ping", old.data) == 1587442022003
    quoted = decode_envelope(s.text(2))  # code and data as strings
    assert (quoted.success, quoted.code) == (True, 0)
    assert decode_rest("ping", quoted.data) == 1648124374985


def check_rest_planorder_list(s: Sample) -> None:
    assert s.rest(0, "planorder_list") == (
        PlanOrderUpdate(
            "739114860879304259", "DOGE_USD", Side.OPEN_LONG, vol=D(1),
            trigger_price=D("0.00001"), trigger_type=2, state=1, price=D("0.00001"),
            leverage=2, open_type=OpenType.ISOLATED, execute_cycle=87600, trend=1,
            order_type=1, order_id=None, error_code=0, update_ms=1761889115000,
        ),
    )  # fmt: skip


def check_rest_planorder_place(s: Sample) -> None:
    assert s.rest(0, "planorder_place") == "739206374277809664"
    assert s.rest(1, "planorder_place") == "259208506303929856"
    s.request_only(2)


def check_rest_position_leverage(s: Sample) -> None:
    tier = dict(level=6, max_vol=D(4500000), mmr=D("0.05"), imr=D("0.1"),
                open_type=OpenType.ISOLATED, leverage=2, max_leverage_view=500)  # fmt: skip
    assert s.rest(0, "position_leverage") == (
        LeverageTier(PositionType.LONG, **tier),  # type: ignore[arg-type]
        LeverageTier(PositionType.SHORT, **tier),  # type: ignore[arg-type]
    )


def check_rest_position_mode(s: Sample) -> None:
    assert s.rest(0, "position_mode", "get_response") == 2
    assert s.rest(0, "change_position_mode", "change_response") is None
    s.request_only(1)


def check_rest_risk_limit(s: Sample) -> None:
    assert s.rest(0, "risk_limit") == (
        RiskLimitUpdate(BTC, PositionType.LONG, 1, D(50000), 500, D("0.001"), D("0.002")),
    )


def check_rest_risk_reverse(s: Sample) -> None:
    assert s.rest(0, "risk_reverse") == (
        InsuranceFund(BTC, "USDT", D("97284530.44863409"), 1761883124789),
    )


def check_rest_stoporder_list(s: Sample) -> None:
    assert s.rest(0, "stoporder_list") == (
        StopOrderUpdate(BTC, "720733527158642176", D(111325), D("113573.9"), state=3,
                        position_id="1027177055", vol=D(2), plan_id="357859177"),
    )  # fmt: skip


def check_rest_ticker(s: Sample) -> None:
    got = s.rest(0, "ticker")
    assert got == Ticker(
        BTC,
        D("109167.1"),
        D(109167),
        D("109167.1"),
        D(954830625),
        D("10374579341.00211"),
        D(381485808),
        D(106226),
        D("111553.8"),
        D("0.014"),
        D(109235),
        D("109168.9"),
        ZERO,
        1761883095759,
    )
    # without a symbol the answer is a list of the same objects
    assert decode_rest("ticker", [s.payload(0)["data"]]) == (got,)


# --------------------------------------------------------------------------------- WS


def check_ws_login(s: Sample) -> None:
    got = s.ws(0, "response_ok")
    assert got == WsFrame("rs.login", None, 1587442022003, (), "login", None, ())
    s.request_only(1)


def check_ws_personal_filter(s: Sample) -> None:
    s.request_only(0)
    channel = s.payload(1)["ack_channel"]
    ok = decode_ws(orjson.dumps({"channel": channel, "data": "success"}))
    assert (ok.ack, ok.error) == ("personal.filter", None)
    code0 = decode_ws(orjson.dumps({"channel": channel, "data": {"code": 0}}))
    assert (code0.ack, code0.error) == ("personal.filter", None)
    failed = decode_ws(orjson.dumps({"channel": channel, "data": "failed"}))
    assert (failed.ack, failed.error) == ("personal.filter", "failed")


def check_ws_ping_pong(s: Sample) -> None:
    got = s.ws(0, "response")
    assert got == WsFrame("pong", None, 1587453241453, (), "pong", None, ())


def check_ws_push_deal(s: Sample) -> None:
    assert s.ws(0) == frame("push.deal", (
        Trade(BTC, D("6866.5"), D(2096), TakerSide.BUY, 1587442049632, True, None),
    ), ts=1587442022003)  # fmt: skip
    assert s.ws(1) == frame("push.deal", (
        Trade(BTC, D("115309.8"), D(55), TakerSide.SELL, 1755487578276, True, "13064218826"),
        Trade(BTC, D("115309.8"), D(11), TakerSide.BUY, 1755487578275, True, "13064218827"),
    ), ts=1755487578276)  # fmt: skip
    assert s.ws(2) == frame("push.deal", (
        Trade(BTC, D("114350.4"), D(4), TakerSide.SELL, 1760368563597, False, None),
    ), ts=1680055941870)  # fmt: skip


def check_ws_push_depth(s: Sample) -> None:
    plain = s.ws(0)
    assert plain == frame("push.depth", (
        BookDelta(BTC, 96801927, ((D("6859.5"), D(3251), 1),), (), 1587442022003),
    ), ts=1587442022003)  # fmt: skip
    merged = s.ws(1)
    assert merged == frame("push.depth", (
        BookDelta(BTC, 4895965272, ((D("39146.5"), D(11264), 1),), ((D(39144), D(35460), 1),),
                  1651239652372, begin=4895965271, end=4895965272),
    ), ts=1651239652372)  # fmt: skip
    delta = merged.messages[0]
    assert (delta.first_version, delta.last_version) == (4895965271, 4895965272)


def check_ws_push_depth_full(s: Sample) -> None:
    s.request_only(0)
    assert s.ws(1) == frame("push.depth.full", (
        BookSnapshot(BTC, 41925002140,
                     ((D("80468.7"), D(3446), 2), (D("80469.1"), D(1239), 1)),
                     ((D("80468.6"), D(31288), 7),), 1789897581013, full=False),
    ), ts=1789897581013, unknown=("data.cts",))  # fmt: skip


def check_ws_push_depth_step(s: Sample) -> None:
    assert s.ws(0) == frame("push.depth.step", (
        DepthStep(BTC, 27883254360,
                  ((D(111090), D(398676), 26), (D(111100), D(410175), 8)),
                  ((D(111080), D(461204), 35), (D(111070), D(386809), 3)),
                  D("111089.4"), D("111085.5"), 1760950364388),
    ), ts=None)  # fmt: skip


def check_ws_push_fair_price(s: Sample) -> None:
    assert s.ws(0) == frame(
        "push.fair.price", (FairPrice(BTC, D("0.001"), 1587442022003),), ts=1587442022003
    )


def check_ws_push_funding_rate(s: Sample) -> None:
    assert s.ws(0) == frame(
        "push.funding.rate",
        (FundingRate(BTC, D("0.001"), None, 1587442022003),),
        ts=1587442022003,
    )
    assert s.ws(1) == frame(
        "push.funding.rate",
        (FundingRate(BTC, D("-0.000021"), 1771084800000, 1771069020506),),
        ts=1771069020506,
    )


def check_ws_push_index_price(s: Sample) -> None:
    assert s.ws(0) == frame(
        "push.index.price", (IndexPrice(BTC, D("0.001"), 1587442022003),), ts=1587442022003
    )


def check_ws_push_kline(s: Sample) -> None:
    assert s.ws(0) == frame("push.kline", (
        Kline(BTC, "Min60", 1587448800, D("6894.5"), D(6885), D("6910.5"), D(6885),
              D("233.74026934364474"), D(1611754), 1587442022003),
    ), ts=1587442022003)  # fmt: skip
    assert s.ws(1) == frame("push.kline", (
        Kline(BTC, "Min1", 1651230660, D("38901.5"), D(38839), D("38909.5"), D(38833),
              D("325653.3287"), D(83808), 1651230713067),
    ), ts=1651230713067)  # fmt: skip


def check_ws_push_personal_adl_level(s: Sample) -> None:
    assert s.ws(0, None) == frame(
        "push.personal.adl.level", (AdlLevel("1397818", 0),), symbol=None, ts=1610005032231
    )


def check_ws_push_personal_asset(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.asset", (
        BalanceUpdate("USDT", D("0.7514236"), ZERO, ZERO, bonus=ZERO, ts_ms=1610005070083),
    ), symbol=None, ts=1610005070083)  # fmt: skip
    assert s.ws(1, None) == frame("push.personal.asset", (
        BalanceUpdate("USDT", D(9000), D(1000), D(5000), bonus=D(100), ts_ms=1760942212000),
    ), symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_personal_order(s: Sample) -> None:
    old = s.ws(0, None)
    assert old == frame("push.personal.order", (
        OrderUpdate(
            "102067003631907840", "CRV_USDT", Side.CLOSE_LONG, OrderType.MARKET,
            OpenType.ISOLATED, D("0.707"), D(1), D(1), D("0.731"), OrderState.FILLED,
            external_oid="_m_95bc2b72d3784bce8f9efecbdef9fe35", error_code=0, leverage=0,
            position_id="1397818", taker_fee=D("0.00004386"), maker_fee=ZERO,
            profit=D("-0.0005"), fee_currency="USDT", create_ms=1610005069976,
            update_ms=1610005069983, version=2, category=1,
        ),
    ), symbol=None, ts=1610005069989)  # fmt: skip
    new = s.ws(1, None)
    assert new == frame("push.personal.order", (
        OrderUpdate(
            "123456789", BTC, Side.OPEN_LONG, OrderType.LIMIT, OpenType.ISOLATED,
            D("45000.5"), D(10), D(5), D(45000), OrderState.OPEN, external_oid="ext_001",
            error_code=0, leverage=20, position_id="987654321", taker_fee=D("0.1125"),
            maker_fee=D("0.09"), profit=ZERO, fee_currency="USDT", create_ms=1760942212000,
            update_ms=1760942212000, version=None, category=1, reduce_only=False,
            position_mode=1,
        ),
    ), symbol=None, ts=1760942212000)  # fmt: skip
    assert isinstance(new.messages[0].order_id, str)  # sent as a number


def check_ws_push_personal_order_deal(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.order.deal", (
        Fill("987654321", "123456789", BTC, Side.OPEN_LONG, D(10), D("45000.5"),
             D("0.225"), "USDT", ZERO, True, 1760942212000, external_oid="ext_001",
             position_mode=1, category=1),
    ), symbol=None, ts=1760942212000)  # fmt: skip
    assert s.ws(1, None) == frame("push.personal.order.deal", (  # "taker", not "isTaker"
        Fill("311655369", "276461245253669888", "LTC_USDT", Side.CLOSE_LONG, D(1),
             D("100.48"), D("0.00060288"), "USDT", D("0.0003"), True, 1651583897276,
             position_mode=1, category=1),
    ), symbol=None, ts=1651583897291)  # fmt: skip


def check_ws_push_personal_plan_order(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.plan.order", (
        PlanOrderUpdate(
            "987654321", BTC, Side.OPEN_LONG, D(5), D(46000), trigger_type=1, state=1,
            price=D(45990), leverage=20, open_type=OpenType.ISOLATED, execute_cycle=24,
            trend=1, order_type=1, order_id=None, error_code=0, update_ms=1760942212000,
        ),
    ), symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_personal_position(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.position", (
        PositionUpdate(
            "1397818", "CRV_USDT", PositionType.LONG, OpenType.ISOLATED,
            PositionState.CLOSED, hold_vol=ZERO, hold_avg_price=D("0.736"),
            open_avg_price=D("0.736"), liquidate_price=ZERO, im=ZERO, realised=D("-0.0005"),
            leverage=15, frozen_vol=ZERO, close_vol=D(1), hold_fee=ZERO, update_ms=None,
        ),
    ), symbol=None, ts=1610005070157)  # fmt: skip
    assert s.ws(1, None) == frame("push.personal.position", (
        PositionUpdate(
            "123456789", BTC, PositionType.LONG, OpenType.ISOLATED, PositionState.HOLDING,
            hold_vol=D(10), hold_avg_price=D("45000.5"), open_avg_price=D("45000.5"),
            liquidate_price=D(40000), im=D("2250.025"), realised=ZERO, leverage=20,
            update_ms=1760942212000,
        ),
    ), symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_personal_position_mode(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.position.mode", (PositionModeUpdate(1),),
                                  symbol=None, ts=1610005070157)  # fmt: skip
    assert s.ws(1, None) == frame("push.personal.position.mode", (PositionModeUpdate(2),),
                                  symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_personal_risk_limit(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.risk.limit", (
        RiskLimitUpdate(BTC, PositionType.LONG, 2, D(500), 50, D("0.02"), D("0.04")),
    ), symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_personal_stop_order(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.stop.order", (
        StopOrderUpdate(BTC, "123456789", D(42000), D(48000)),
    ), symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_personal_stop_planorder(s: Sample) -> None:
    assert s.ws(0, None) == frame("push.personal.stop.planorder", (
        StopOrderUpdate(BTC, "123456789", D(42000), D(48000), state=1,
                        position_id="456789123", vol=D(10), plan_id="987654321"),
    ), symbol=None, ts=1760942212000)  # fmt: skip


def check_ws_push_ticker(s: Sample) -> None:
    assert s.ws(0) == frame("push.ticker", (
        Ticker(BTC, D("6865.5"), D(6865), D("6866.5"), D(164586129), None, D(2284742),
               D(6756), D("7223.5"), D("-0.0424"), D("6861.6"), D("6867.4"), D("0.0008"),
               1587442022003),
    ), ts=1587442022003)  # fmt: skip
    assert s.ws(1) == frame("push.ticker", (
        Ticker(BTC, D("76376.1"), D("76376.2"), D("76376.3"), D(962062810),
               D("7344207079.96768"), D(95479623), D("75620.2"), D(77210), D("-0.0006"),
               D("76385.8"), D("76374.4"), D("0.0001"), 1731137509138),
    ), ts=1731137509138)  # fmt: skip


def check_ws_push_tickers(s: Sample) -> None:
    assert s.ws(0) == frame("push.tickers", (
        Ticker("BSV_USDT", D(183), None, None, D(200), None, None, None, None, D("-0.0708"),
               None, D("183.01"), None, 1587442022003),
        Ticker("BCH_USDT", D("220.4"), None, None, D(200), None, None, None, None,
               D("-0.0686"), None, D("220.22"), None, 1587442022003),
    ), symbol=None, ts=1587442022003)  # fmt: skip
    assert s.ws(1) == frame("push.tickers", (
        Ticker("ETH_USDT", D("2324.5"), None, None, D(25868309), D("591752573.9792"), None,
               D("2239.39"), D("2332.59"), D("0.0356"), D("2325.44"), D("2324.32"), None,
               1725872514111),
    ), symbol=None, ts=1725872514111)  # fmt: skip


def check_ws_sub_ack(s: Sample) -> None:
    assert s.ws(0, "ok") == WsFrame("rs.sub.deal", None, 1587442022003, (), "sub.deal")
    assert s.ws(0, "fail") == WsFrame(
        "rs.error", None, 1587442022003, (), None, "Contract doesn't exist!"
    )
    assert s.ws(1, "ack") == WsFrame("rs.sub.depth.full", None, 1789498321789, (),
                                     "sub.depth.full")  # fmt: skip
    assert s.ws(1, "pong") == WsFrame("pong", None, 1789498336785, (), "pong")
    assert s.ws(1, "error") == WsFrame(
        "rs.error", None, 1789498321790, (), None, "Contract [NOPE_USDT] not exists"
    )


# ----------------------------------------------------------------------------- runner

CHECKS: dict[str, Callable[[Sample], None]] = {
    name.removeprefix("check_") + ".json": fn
    for name, fn in sorted(globals().items())
    if name.startswith("check_") and callable(fn)
}


def test_every_fixture_has_a_golden_check() -> None:
    files = {p.name for p in FIXTURES.glob("*.json")}
    assert files, "no fixtures found"
    assert files == set(CHECKS), {
        "fixtures without a check": sorted(files - set(CHECKS)),
        "checks without a fixture": sorted(set(CHECKS) - files),
    }


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_golden(name: str) -> None:
    sample = Sample(FIXTURES / name)
    assert sample.doc.get("source"), f"{name} has no source"
    assert all(v.get("source") for v in sample.variants), f"{name}: a variant has no source"
    CHECKS[name](sample)
    missed = set(range(len(sample.variants))) - sample.seen
    assert not missed, f"{name}: variants {sorted(missed)} have no golden check"


def test_parser_version_is_a_nonempty_tag() -> None:
    assert PARSER_VERSION.startswith("mexc-") and len(PARSER_VERSION) > 5


# ------------------------------------------------------ REST behaviour beyond the samples


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"success":true,"code":"0","data":[1]}', Envelope(True, 0, None, [1])),
        (b'{"success":true,"code":0}', Envelope(True, 0, None, None)),
        (b'{"code":200,"data":"x"}', Envelope(True, 200, None, "x")),
        (b'{"code":"510","message":"slow down"}', Envelope(False, 510, "slow down", None)),
        (b'{"success":false,"message":"no code"}', Envelope(False, -1, "no code", None)),
        ('{"success":false,"code":602,"message":"签名"}', Envelope(False, 602, "签名", None)),
    ],
)
def test_envelope_shapes(text: bytes | str, expected: Envelope) -> None:
    assert decode_envelope(text) == expected


@pytest.mark.parametrize(
    "text",
    [b"", b"<html>502</html>", b"[]", b'"ok"', b"{}", b'{"success":"true","code":0}',
     b'{"success":true,"code":true}', b'{"success":true,"code":1.5}',
     b'{"success":false,"code":1,"message":7}', b'{"success":true,"code":0,"data":NaN}'],
)  # fmt: skip
def test_envelope_rejects(text: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(text)
    assert info.value.where == "envelope"


def test_decode_rest_rules() -> None:
    with pytest.raises(DecodeError, match="no decoder") as info:
        decode_rest("order_teleport", {})
    assert info.value.where == "order_teleport"
    for name in ("depth", "depth_commits", "deals", "kline", "kline_index", "kline_fair"):
        with pytest.raises(DecodeError, match="symbol= is required"):
            decode_rest(name, {} if "kline" in name or name == "depth" else [])
    for name in ("order_cancel_all", "change_leverage", "change_margin", "change_position_mode",
                 "planorder_cancel", "planorder_cancel_all"):  # fmt: skip
        assert decode_rest(name, None) is None
    assert decode_rest("support_currencies", ["USDT", "USDC"]) == ("USDT", "USDC")
    assert decode_rest("order_submit", {"orderId": 5, "ts": 1}) == "5"
    assert decode_rest("order_create", 739113577038255616) == "739113577038255616"
    with pytest.raises(DecodeError, match="data: expected an id"):
        decode_rest("order_create", 1.5)
    with pytest.raises(DecodeError, match="data: unknown value 3"):
        decode_rest("position_mode", 3)
    with pytest.raises(DecodeError, match="data: expected an integer"):
        decode_rest("ping", True)


def test_rest_errors_name_the_path() -> None:
    doc = orjson.loads((FIXTURES / "rest_open_orders.json").read_bytes())
    order_data = doc["variants"][0]["payload"]["data"][0]
    with pytest.raises(DecodeError) as info:
        decode_rest("open_orders", [order_data, {**order_data, "price": -1}])
    assert (info.value.where, info.value.reason) == (
        "open_orders",
        "data[1].price: negative or not a number: -1",
    )
    paged = {"pageSize": 1, "totalCount": 1, "totalPage": 1, "currentPage": 1,
             "resultList": [order_data]}  # fmt: skip
    got = decode_rest("open_orders", paged)
    assert isinstance(got, Page) and got.items[0].order_id == "750330744886358528"
    with pytest.raises(DecodeError, match=r"data\.resultList\[0\]\.state"):
        decode_rest("history_orders", {**paged, "resultList": [{**order_data, "state": 9}]})
    with pytest.raises(DecodeError, match=r"data\.BTC_USDT\[0\]\.positionType"):
        decode_rest("risk_limit", {BTC: [{"level": 1, "maxVol": 1, "mmr": 0, "imr": 0,
                                          "maxLeverage": 5, "positionType": 3}]})  # fmt: skip


def test_kline_columns_must_line_up() -> None:
    data = {"time": [1, 2], "open": [1, 2], "close": [1, 2], "high": [1, 2], "low": [1, 2],
            "vol": [1, 2], "amount": [1, 2]}  # fmt: skip
    assert len(decode_rest("kline", data, BTC)) == 2
    with pytest.raises(DecodeError, match=r"data\.close: has 1 entries, time has 2"):
        decode_rest("kline", {**data, "close": [1]}, BTC)
    with pytest.raises(DecodeError, match=r"data\.low\[1\]"):
        decode_rest("kline", {**data, "low": [1, -2]}, BTC)
    with pytest.raises(DecodeError, match=r"data\.time\[0\]"):
        decode_rest("kline", {**data, "time": [1.5, 2]}, BTC)
    with pytest.raises(DecodeError, match=r"data\.vol: missing"):
        decode_rest("kline", {k: v for k, v in data.items() if k != "vol"}, BTC)
    bare = {k: v for k, v in data.items() if k not in ("vol", "amount")}
    index = decode_rest("kline_index", bare, BTC, interval="Hour4")
    assert index[1] == Kline(BTC, "Hour4", 2, D(2), D(2), D(2), D(2), ZERO, ZERO)
    with pytest.raises(DecodeError, match="interval"):
        decode_rest("kline", data, BTC, interval="1m")


def test_small_result_types() -> None:
    fee = decode_rest(
        "tiered_fee_rate",
        {
            "level": 0,
            "dealAmount": 12.5,
            "walletBalance": 3,
            "makerFee": -0.0001,
            "takerFee": 0.0004,
            "makerFeeDiscount": 1,
            "takerFeeDiscount": 0.8,
        },
    )
    assert (fee.maker_fee, fee.taker_fee, fee.taker_fee_discount) == (
        D("-0.0001"), D("0.0004"), D("0.8"))  # fmt: skip
    records = decode_rest("funding_records", {
        "pageSize": 20, "totalCount": 1, "totalPage": 1, "currentPage": 1,
        "resultList": [{"id": 7, "symbol": BTC, "positionType": 2, "positionValue": 100.5,
                        "funding": -0.01, "rate": 0.0001, "settleTime": 9}]})  # fmt: skip
    record = records.items[0]
    assert (record.record_id, record.position_type, record.funding, record.settle_ms) == (
        "7", PositionType.SHORT, D("-0.01"), 9)  # fmt: skip
