"""Exchange-core unit tests: rejections, cancels, leverage, margin, funding, market data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from adapters.mexc.sim.contracts import BTC_USDT, ETH_USDT, default_contracts, make_contract
from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.facts import Changed, Placed, Rejected
from adapters.mexc.sim.klines import window_start
from adapters.mexc.sim.ledger import initial_margin, order_margin
from adapters.mexc.sim.market import MarketParams, SyntheticMarket
from engine.model import OpenType, OrderState, OrderType, PositionType, Side

from .helpers import BTC, T0, D, channels, new_exchange, order_of, place, placed, quote

BUY, SELL = Side.OPEN_LONG, Side.OPEN_SHORT
HOUR = 3_600_000


def code(result: Placed | Rejected | Changed) -> int:
    assert isinstance(result, Rejected), result
    return result.code


# ------------------------------------------------------------------ contracts


def test_default_contracts_follow_the_documented_sample() -> None:
    btc = default_contracts()["BTC_USDT"]
    assert (btc.contract_size, btc.price_unit, btc.vol_unit) == (D("0.0001"), D("0.1"), 1)
    assert (btc.min_vol, btc.max_vol, btc.min_leverage, btc.max_leverage) == (1, 400000, 1, 500)
    assert (btc.taker_fee_rate, btc.maker_fee_rate) == (D("0.0004"), D("0.0001"))
    assert btc.api_allowed and ETH_USDT.base_coin == "ETH"
    sol = make_contract("SOL_USDT", contract_size=D("0.1"))
    assert (sol.base_coin, sol.quote_coin, sol.contract_size) == ("SOL", "USDT", D("0.1"))
    assert btc.wire()["symbol"] == "BTC_USDT" and btc.wire()["contractSize"] == D("0.0001")


# ----------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"user": "nobody"}, 1000),
        ({"symbol": "NOPE_USDT"}, 1001),
        ({"side": 7}, 2001),
        ({"order_type": 9}, 2029),
        ({"open_type": 3}, 2002),
        ({"vol": "0"}, 2011),
        ({"vol": "400001"}, 2028),
        ({"vol": "1.5"}, 2015),
        ({"price": "100000.05"}, 2015),
        ({"price": None}, 2007),
        ({"price": "-1"}, 2007),
        ({"leverage": 0}, 2006),
        ({"leverage": 501}, 2006),
        ({"oid": "x" * 33}, 2030),
        ({"vol": "100000"}, 2005),  # 100000 contracts at 10x need ~100k USDT
    ],
)
def test_invalid_orders_are_rejected_with_the_envelope_code(
    kwargs: dict[str, Any], expected: int
) -> None:
    ex = new_exchange("alice")

    def attempt(
        user: str = "alice",
        symbol: str = BTC,
        side: int = BUY,
        order_type: int = OrderType.LIMIT,
        vol: str = "1",
        price: str | None = "100000.0",
        open_type: int = OpenType.ISOLATED,
        leverage: int = 10,
        oid: str | None = None,
    ) -> Placed | Rejected:
        limit = D(price) if price is not None else None
        return ex.place_order(
            user, symbol, side, order_type, D(vol), limit, open_type, leverage, oid, T0
        )

    result = attempt(**kwargs)
    assert code(result) == expected
    assert isinstance(result, Rejected) and result.message
    assert ex.open_orders("alice") == [] and ex.history_orders("alice") == []


def test_api_disabled_contract_refuses_orders_with_1002() -> None:
    ex = Exchange(T0, [evolve(BTC_USDT, api_allowed=False)])
    ex.deposit("alice", D(1000), T0)
    assert code(place(ex, "alice", BUY, OrderType.LIMIT, 1, "100000.0")) == 1002


def test_price_band_around_fair_price() -> None:
    ex = new_exchange("alice")
    ex.set_fair_price(BTC, D("100000.0"), T0)
    assert code(place(ex, "alice", BUY, OrderType.LIMIT, 1, "110000.1")) == 2003
    assert code(place(ex, "alice", SELL, OrderType.LIMIT, 1, "89999.9")) == 2004
    placed(place(ex, "alice", BUY, OrderType.LIMIT, 1, "110000.0"))


def test_closing_more_than_the_closable_volume_is_2008() -> None:
    ex = new_exchange("alice")
    assert code(place(ex, "alice", Side.CLOSE_LONG, OrderType.LIMIT, 1, "100000.0")) == 2008
    quote(ex, SELL, "100000.0", 5)
    placed(place(ex, "alice", BUY, OrderType.IOC, 5, "100000.0"))
    placed(place(ex, "alice", Side.CLOSE_LONG, OrderType.LIMIT, 3, "101000.0"))
    (position,) = ex.positions("alice")
    assert position.frozen_vol == 3
    assert code(place(ex, "alice", Side.CLOSE_LONG, OrderType.LIMIT, 3, "101000.0")) == 2008
    placed(place(ex, "alice", Side.CLOSE_LONG, OrderType.LIMIT, 2, "101000.0"))
    bad_id = place(ex, "alice", Side.CLOSE_LONG, OrderType.LIMIT, 1, "1.0", position_id=42)
    assert code(bad_id) == 2009


def test_leverage_and_margin_mode_must_match_a_busy_position_side() -> None:
    ex = new_exchange("alice")
    placed(place(ex, "alice", BUY, OrderType.LIMIT, 1, "90000.0", leverage=10))
    assert code(place(ex, "alice", BUY, OrderType.LIMIT, 1, "90000.0", leverage=20)) == 2021
    cross = place(ex, "alice", BUY, OrderType.LIMIT, 1, "90000.0", open_type=OpenType.CROSS)
    assert code(cross) == 2027
    placed(place(ex, "alice", SELL, OrderType.LIMIT, 1, "110000.0", leverage=20))  # other side


def test_external_oid_is_unique_per_user() -> None:
    ex = new_exchange("alice", "bob")
    first = placed(place(ex, "alice", BUY, OrderType.LIMIT, 1, "90000.0", oid="c-1"))
    duplicate = place(ex, "alice", BUY, OrderType.LIMIT, 1, "90000.0", oid="c-1")
    assert code(duplicate) == 603 and "OID_DUPLICATE" in duplicate.message  # type: ignore[union-attr]
    placed(place(ex, "bob", BUY, OrderType.LIMIT, 1, "90000.0", oid="c-1"))
    assert ex.order_by_external("alice", BTC, "c-1") == order_of(ex, "alice", first.order_id)
    assert ex.order_by_external("alice", "ETH_USDT", "c-1") is None


# -------------------------------------------------------------------- cancels


def test_cancel_codes() -> None:
    ex = new_exchange("alice", "bob")
    order = placed(place(ex, "alice", BUY, OrderType.LIMIT, 2, "90000.0"))
    frozen = ex.assets("alice")[0].frozen_balance
    assert frozen == order_margin(BTC_USDT, D("90000.0"), D(2), 10) > 0
    assert ex.cancel_order("bob", order.order_id, T0).error_code == 2040
    assert ex.cancel_order("alice", "123", T0).error_code == 2040
    ok = ex.cancel_order("alice", order.order_id, T0)
    assert (ok.error_code, ok.error_msg) == (0, "success")
    assert ex.cancel_order("alice", order.order_id, T0).error_code == 2041
    assert order_of(ex, "alice", order.order_id).state == OrderState.CANCELLED
    assert ex.assets("alice")[0].frozen_balance == 0
    assert ex.depth_snapshot(BTC, T0).bids == ()


def test_cancel_by_external_oid_and_cancel_all() -> None:
    ex = new_exchange("alice")
    placed(place(ex, "alice", BUY, OrderType.LIMIT, 1, "90000.0", oid="a"))
    placed(place(ex, "alice", BUY, OrderType.LIMIT, 1, "90001.0", oid="b"))
    placed(place(ex, "alice", BUY, OrderType.LIMIT, 1, "2900.00", symbol="ETH_USDT"))
    assert ex.cancel_by_external("alice", BTC, "zzz", T0).error_code == 2040
    assert ex.cancel_by_external("alice", "ETH_USDT", "a", T0).error_code == 2040
    assert ex.cancel_by_external("alice", BTC, "a", T0).error_code == 0
    assert ex.cancel_by_external("alice", BTC, "a", T0).error_code == 2041
    assert [r.error_code for r in ex.cancel_all("alice", BTC, T0)] == [0]
    assert [o.symbol for o in ex.open_orders("alice")] == ["ETH_USDT"]
    assert [r.error_code for r in ex.cancel_all("alice", None, T0)] == [0]
    assert ex.open_orders("alice") == []
    states = ex.history_orders("alice", states=[OrderState.CANCELLED])
    assert len(states) == 3


# ------------------------------------------------------------ leverage, margin


def open_long(ex: Exchange, vol: int = 10, leverage: int = 10) -> int:
    quote(ex, SELL, "100000.0", vol)
    placed(place(ex, "alice", BUY, OrderType.IOC, vol, "100000.0", leverage=leverage))
    (position,) = ex.positions("alice")
    return position.position_id


def test_change_leverage_recomputes_position_and_order_margin() -> None:
    ex = new_exchange("alice", balance="100")
    position_id = open_long(ex)
    placed(place(ex, "alice", BUY, OrderType.LIMIT, 5, "90000.0"))
    assert ex.positions("alice")[0].im == D(10)  # 10 * 100000 * 0.0001 / 10
    assert code(ex.change_leverage("alice", 0, T0, position_id=position_id)) == 2006
    assert code(ex.change_leverage("alice", 5, T0, position_id=999)) == 2009
    done = ex.change_leverage("alice", 5, T0, position_id=position_id)
    assert isinstance(done, Changed) and done.position is not None
    assert (done.position.leverage, done.position.im) == (5, D(20))
    (order,) = ex.open_orders("alice")
    assert order.leverage == 5
    assert ex.assets("alice")[0].frozen_balance == order_margin(BTC_USDT, D("90000.0"), D(5), 5)
    assert code(ex.change_leverage("alice", 1, T0, position_id=position_id)) == 2005
    assert code(ex.change_leverage("alice", 5, T0, symbol=BTC, position_type=3)) == 600
    idle = ex.change_leverage("alice", 50, T0, symbol=BTC, position_type=2, open_type=1)
    assert isinstance(idle, Changed) and idle.position is None
    short = {row.position_type: row for row in ex.leverage("alice", BTC)}[PositionType.SHORT]
    assert (short.leverage, short.open_type) == (50, OpenType.ISOLATED)


def test_change_margin_add_and_sub_on_isolated() -> None:
    ex = new_exchange("alice", balance="100")
    position_id = open_long(ex)
    before = ex.assets("alice")[0]
    added = ex.change_margin("alice", position_id, D(5), "ADD", T0)
    assert isinstance(added, Changed) and added.position is not None
    assert added.position.im == D(15)
    after = ex.assets("alice")[0]
    assert after.available_balance == before.available_balance - 5
    assert after.cash_balance == before.cash_balance
    assert added.position.liquidate_price < ex.positions("alice")[0].open_avg_price
    assert code(ex.change_margin("alice", position_id, D(6), "SUB", T0)) == 2018
    assert isinstance(ex.change_margin("alice", position_id, D(5), "SUB", T0), Changed)
    assert code(ex.change_margin("alice", position_id, D(1000), "ADD", T0)) == 2005
    assert code(ex.change_margin("alice", position_id, D(0), "ADD", T0)) == 1004
    assert code(ex.change_margin("alice", position_id, D(1), "MORE", T0)) == 600
    assert code(ex.change_margin("alice", 1, D(1), "ADD", T0)) == 2009


def test_change_margin_refuses_cross_positions() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 1)
    placed(place(ex, "alice", BUY, OrderType.IOC, 1, "100000.0", open_type=OpenType.CROSS))
    (position,) = ex.positions("alice")
    assert code(ex.change_margin("alice", position.position_id, D(1), "ADD", T0)) == 600


def test_liquidation_price_and_takeover() -> None:
    ex = new_exchange("alice", balance="100")
    open_long(ex, vol=10, leverage=10)
    (position,) = ex.positions("alice")
    # avg - (im - mm) / (hold * cs) = 100000 - (10 - 0.1) / 0.001
    assert position.liquidate_price == D("90100.0")
    placed(place(ex, "alice", Side.CLOSE_LONG, OrderType.LIMIT, 4, "105000.0"))
    ex.set_fair_price(BTC, D("90100.1"), T0 + 1)
    assert ex.positions("alice")[0].hold_vol == 10
    cash = ex.assets("alice")[0].cash_balance
    ex.set_fair_price(BTC, D("90100.0"), T0 + 2)
    assert ex.positions("alice") == []
    (closed,) = ex.history_positions("alice")
    assert closed.close_avg_price == D("90100.0")
    liquidation = ex.fills("alice")[0]
    assert (liquidation.category, liquidation.fee, liquidation.vol) == (2, 0, 10)
    assert ex.assets("alice")[0].cash_balance == cash + liquidation.profit
    cancelled = ex.history_orders("alice", states=[OrderState.CANCELLED])
    assert [o.error_code for o in cancelled] == [13]


# --------------------------------------------------------------------- funding


def test_funding_settles_from_fair_and_index_at_settle_times() -> None:
    ex = new_exchange("alice", "bob")
    ask = placed(place(ex, "bob", SELL, OrderType.LIMIT, 10, "100000.0"))
    placed(place(ex, "alice", BUY, OrderType.IOC, 10, "100000.0"))
    assert order_of(ex, "bob", ask.order_id).state == OrderState.FILLED
    ex.set_index_price(BTC, D("100000.0"), T0)
    ex.set_fair_price(BTC, D("100050.0"), T0)
    rate = ex.funding_rate(BTC, T0)
    assert rate.rate == D("0.0005") and rate.next_settle_time == T0 - 1 + 8 * HOUR
    cash = {u: ex.assets(u)[0].cash_balance for u in ("alice", "bob")}
    ex.tick(T0 + 8 * HOUR - 2)
    assert ex.funding_records("alice") == []
    ex.drain_pushes()
    ex.tick(T0 + 8 * HOUR)
    value = 10 * BTC_USDT.contract_size * D("100050.0")
    (paid,) = ex.funding_records("alice")
    (received,) = ex.funding_records("bob")
    assert paid.funding == -value * D("0.0005") and received.funding == value * D("0.0005")
    assert ex.assets("alice")[0].cash_balance == cash["alice"] + paid.funding
    assert ex.assets("bob")[0].cash_balance == cash["bob"] + received.funding
    assert ex.positions("alice")[0].realised == -ex.fills("alice")[0].fee + paid.funding
    assert ex.funding_history(BTC)[0].settle_time == T0 - 1 + 8 * HOUR
    assert {"push.ticker", "push.funding.rate", "push.personal.position"} <= set(
        channels(ex.drain_pushes())
    )
    ex.set_fair_price(BTC, D("120000.0"), T0 + 8 * HOUR)
    assert ex.funding_rate(BTC, T0).rate == BTC_USDT.max_funding_rate  # clamped


# ----------------------------------------------------------- market data, pushes


def test_deals_ticker_klines_and_push_shapes() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 5)
    quote(ex, BUY, "99000.0", 5)
    ex.drain_pushes()
    placed(place(ex, "alice", BUY, OrderType.IOC, 2, "100000.0", now=T0 + 61_000))
    pushes = ex.drain_pushes()
    deal_push = next(p for p in pushes if p.channel == "push.deal")
    frame = deal_push.frame()
    assert frame["symbol"] == BTC and isinstance(frame["data"], list)
    assert frame["data"][0] == {
        "p": D("100000.0"),
        "v": 2,
        "T": 1,
        "O": 1,
        "M": 2,
        "t": T0 + 61_000,
        "i": 1,
    }
    private = [p for p in pushes if p.user == "alice"]
    assert channels(private) == [
        "push.personal.order.deal",
        "push.personal.order",
        "push.personal.position",
        "push.personal.asset",
    ]
    assert all("symbol" not in p.frame() for p in private)
    assert private[1].frame()["data"]["orderId"] == private[0].frame()["data"]["orderId"]
    assert [d.price for d in ex.recent_deals(BTC)] == [D("100000.0")]
    ticker = ex.ticker(BTC, T0 + 62_000)
    assert (ticker.last_price, ticker.bid1, ticker.ask1) == (
        D("100000.0"),
        D("99000.0"),
        D("100000.0"),
    )
    assert (ticker.volume24, ticker.amount24, ticker.hold_vol) == (2, D(20), 2)
    (candle,) = ex.klines(BTC, "Min1")
    assert (candle.start_s, candle.open, candle.vol) == (
        (T0 + 61_000) // 60_000 * 60,
        D("100000.0"),
        2,
    )
    assert ex.klines(BTC, "Month1")[0].start_s == 1_767_225_600


def test_klines_fill_gaps_with_the_previous_close() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 5)
    quote(ex, SELL, "100100.0", 5)
    placed(place(ex, "alice", BUY, OrderType.IOC, 5, "100000.0", now=T0))
    placed(place(ex, "alice", BUY, OrderType.IOC, 5, "100100.0", now=T0 + 180_000))
    candles = ex.klines(BTC, "Min1")
    assert [c.vol for c in candles] == [5, 0, 0, 5]
    assert candles[1].open == candles[1].close == D("100000.0")
    assert len(ex.klines(BTC, "Min1", start_s=(T0 + 60_000) // 1000)) == 3
    assert len(ex.klines(BTC, "Min1", limit=2)) == 2


@given(st.integers(0, 4_000_000_000))
def test_kline_windows_are_utc_calendar_windows(t_s: int) -> None:
    day = datetime.fromtimestamp(t_s, UTC)
    month = int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp())
    assert window_start("Month1", t_s) == month
    monday = window_start("Week1", t_s)
    assert datetime.fromtimestamp(monday, UTC).weekday() == 0 and 0 <= t_s - monday < 7 * 86400
    assert window_start("Hour4", t_s) % 14400 == 0 and 0 <= t_s - window_start("Hour4", t_s) < 14400


# ------------------------------------------------------------ synthetic market


def run_market(seed: int, steps: int = 30) -> list[dict[str, object]]:
    ex = Exchange(T0)
    market = SyntheticMarket(ex, seed=seed)
    frames: list[dict[str, object]] = []
    for i in range(steps):
        market.step(T0 + i * 1000)
        ex.tick(T0 + i * 1000)
        frames.extend(p.frame() for p in ex.drain_pushes())
    return frames


def test_synthetic_market_is_deterministic_for_a_seed() -> None:
    assert run_market(7) == run_market(7)
    assert run_market(7) != run_market(8)


def test_synthetic_market_moves_books_deals_and_stays_bounded() -> None:
    ex = Exchange(T0)
    params = MarketParams(levels=5, max_actions=12)
    market = SyntheticMarket(ex, seed=1, params=params)
    for i in range(200):
        market.step(T0 + i * 1000)
        for symbol in ex.contracts:
            assert len(ex.open_orders("market", symbol)) <= 2 * params.levels
    for symbol in ex.contracts:
        snap = ex.depth_snapshot(symbol, T0)
        assert snap.bids and snap.asks and snap.bids[0][0] < snap.asks[0][0]
        assert ex.recent_deals(symbol)
        assert ex.klines(symbol, "Min1")
    assert len({d.price for d in ex.recent_deals(BTC, 1000)}) > 3  # prices move
    assert ex.index_price(BTC, T0).price != D("100000")
    assert len(ex.history_orders("market")) <= 1000 + 4 * params.levels  # bounded history


def test_users_trade_against_the_synthetic_market() -> None:
    ex = Exchange(T0)
    ex.deposit("alice", D(10_000), T0)
    market = SyntheticMarket(ex, seed=3)
    market.step(T0)
    bought = placed(place(ex, "alice", BUY, OrderType.MARKET, 3, None, now=T0 + 1))
    assert bought.state == OrderState.FILLED
    (position,) = ex.positions("alice")
    assert position.hold_vol == 3
    assert ex.positions("alice")[0].im == sum(
        (initial_margin(BTC_USDT, f.price, f.vol, 10) for f in ex.fills("alice")), Decimal(0)
    )
