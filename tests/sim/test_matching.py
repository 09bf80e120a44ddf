"""Matching-engine unit tests: priority, every order type and side, self-trade prevention."""

from __future__ import annotations

from decimal import Decimal

from adapters.mexc.sim.book import OrderBook, Resting
from adapters.mexc.sim.contracts import BTC_USDT
from engine.model import OrderState, OrderType, PositionType, Side

from .helpers import BTC, T0, D, new_exchange, order_of, place, placed, quote

BUY, SELL = Side.OPEN_LONG, Side.OPEN_SHORT


def test_price_then_time_priority() -> None:
    ex = new_exchange("alice")
    first = quote(ex, SELL, "100010.0", 5)
    second = quote(ex, SELL, "100010.0", 5)
    best = quote(ex, SELL, "100000.0", 5)
    order = placed(place(ex, "alice", BUY, OrderType.IOC, 12, "100010.0"))
    assert order.state == OrderState.FILLED
    fills = ex.deals_of_order("alice", order.order_id)
    assert [(f.price, f.vol) for f in fills] == [
        (D("100000.0"), 5),
        (D("100010.0"), 5),
        (D("100010.0"), 2),
    ]
    assert [order_of(ex, "market", o.order_id).deal_vol for o in (best, first, second)] == [5, 5, 2]
    assert order.deal_avg_price == D("100005.83333333")  # (5*100000 + 7*100010) / 12


def test_limit_rests_then_fills_as_maker_at_its_own_price() -> None:
    ex = new_exchange("alice")
    order = placed(place(ex, "alice", BUY, OrderType.LIMIT, 10, "99990.0"))
    assert order.state == OrderState.OPEN and order.remain_vol == 10
    assert ex.depth_snapshot(BTC, T0).bids == ((D("99990.0"), D(10), 1),)
    taker = placed(
        ex.place_order("market", BTC, SELL, OrderType.MARKET, D(4), None, 2, None, None, T0 + 5)
    )
    assert taker.deal_vol == 4
    (fill,) = ex.deals_of_order("alice", order.order_id)
    assert (fill.price, fill.vol, fill.is_taker) == (D("99990.0"), 4, False)
    assert fill.fee == D("99990.0") * 4 * BTC_USDT.contract_size * BTC_USDT.maker_fee_rate
    now = order_of(ex, "alice", order.order_id)
    assert (now.state, now.deal_vol, now.remain_vol, now.maker_fee) == (
        OrderState.OPEN,
        4,
        6,
        fill.fee,
    )


def test_limit_that_crosses_takes_then_rests_the_remainder() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 3)
    order = placed(place(ex, "alice", BUY, OrderType.LIMIT, 10, "100000.0"))
    assert (order.state, order.deal_vol, order.remain_vol) == (OrderState.OPEN, 3, 7)
    snap = ex.depth_snapshot(BTC, T0)
    assert snap.asks == () and snap.bids == ((D("100000.0"), D(7), 1),)


def test_post_only_rests_when_it_would_not_take() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 3)
    order = placed(place(ex, "alice", BUY, OrderType.POST_ONLY, 5, "99999.9"))
    assert (order.state, order.error_code, order.remain_vol) == (OrderState.OPEN, 0, 5)


def test_post_only_that_would_take_is_cancelled_with_code_20() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 3)
    version = ex.depth_snapshot(BTC, T0).version
    order = placed(place(ex, "alice", BUY, OrderType.POST_ONLY, 5, "100000.0"))
    assert (order.state, order.error_code, order.deal_vol) == (OrderState.CANCELLED, 20, 0)
    assert ex.deals_of_order("alice", order.order_id) == []
    assert ex.depth_snapshot(BTC, T0).version == version


def test_ioc_fills_what_it_can_and_cancels_the_rest_with_code_18() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 3)
    quote(ex, SELL, "100100.0", 3)
    order = placed(place(ex, "alice", BUY, OrderType.IOC, 5, "100000.0"))
    assert (order.state, order.error_code, order.deal_vol, order.remain_vol) == (
        OrderState.CANCELLED,
        18,
        3,
        0,
    )
    assert ex.depth_snapshot(BTC, T0).bids == ()


def test_fok_that_cannot_fill_fully_does_nothing_and_is_cancelled_with_code_19() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 3)
    version = ex.depth_snapshot(BTC, T0).version
    order = placed(place(ex, "alice", BUY, OrderType.FOK, 5, "100000.0"))
    assert (order.state, order.error_code, order.deal_vol) == (OrderState.CANCELLED, 19, 0)
    assert ex.depth_snapshot(BTC, T0).version == version
    assert ex.positions("alice") == []


def test_fok_that_can_fill_fully_fills() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 3)
    quote(ex, SELL, "100000.5", 3)
    order = placed(place(ex, "alice", BUY, OrderType.FOK, 5, "100000.5"))
    assert (order.state, order.deal_vol) == (OrderState.FILLED, 5)


def test_market_orders_sweep_the_book_and_cancel_the_rest_with_code_21() -> None:
    for order_type in (OrderType.MARKET, OrderType.MARKET_TO_CURRENT):
        ex = new_exchange("alice")
        quote(ex, SELL, "100000.0", 3)
        quote(ex, SELL, "100500.0", 3)
        order = placed(place(ex, "alice", BUY, order_type, 10, None))
        assert (order.state, order.error_code, order.deal_vol) == (OrderState.CANCELLED, 21, 6)
        full = placed(place(ex, "alice", SELL, order_type, 1, None))
        assert full.state == OrderState.CANCELLED and full.deal_vol == 0  # empty bid side
        quote(ex, BUY, "99000.0", 2)
        filled = placed(place(ex, "alice", SELL, order_type, 2, None))
        assert (filled.state, filled.error_code, filled.deal_vol) == (OrderState.FILLED, 0, 2)


def test_every_side_opens_or_closes_the_right_position() -> None:
    ex = new_exchange("alice")
    quote(ex, SELL, "100000.0", 10)
    quote(ex, BUY, "99000.0", 10)
    placed(place(ex, "alice", Side.OPEN_LONG, OrderType.IOC, 4, "100000.0"))
    placed(place(ex, "alice", Side.OPEN_SHORT, OrderType.IOC, 3, "99000.0"))
    by_type = {p.position_type: p for p in ex.positions("alice")}
    assert by_type[PositionType.LONG].hold_vol == 4
    assert by_type[PositionType.SHORT].hold_vol == 3
    quote(ex, BUY, "101000.0", 10)
    close_long = placed(place(ex, "alice", Side.CLOSE_LONG, OrderType.IOC, 4, "101000.0"))
    assert close_long.profit == (D("101000.0") - D("100000.0")) * 4 * BTC_USDT.contract_size
    quote(ex, SELL, "98000.0", 10)
    close_short = placed(place(ex, "alice", Side.CLOSE_SHORT, OrderType.IOC, 1, "98000.0"))
    assert close_short.profit == (D("99000.0") - D("98000.0")) * 1 * BTC_USDT.contract_size
    (short,) = ex.positions("alice")
    assert (short.position_type, short.hold_vol) == (PositionType.SHORT, 2)
    (closed,) = ex.history_positions("alice")
    assert closed.position_type == PositionType.LONG and closed.state == 3


def test_own_resting_order_is_cancelled_not_traded_against() -> None:
    ex = new_exchange("alice")
    own = placed(place(ex, "alice", SELL, OrderType.LIMIT, 2, "100000.0"))
    quote(ex, SELL, "100000.0", 5)  # behind alice's ask in the queue
    order = placed(place(ex, "alice", BUY, OrderType.LIMIT, 3, "100000.0"))
    assert (order.state, order.deal_vol) == (OrderState.FILLED, 3)
    cancelled = order_of(ex, "alice", own.order_id)
    assert (cancelled.state, cancelled.error_code, cancelled.deal_vol) == (
        OrderState.CANCELLED,
        8,
        0,
    )
    assert all(f.price == D("100000.0") for f in ex.fills("alice"))
    assert ex.depth_snapshot(BTC, T0).asks == ((D("100000.0"), D(2), 1),)


def test_other_accounts_do_trade_with_each_other() -> None:
    ex = new_exchange("alice", "bob")
    ask = placed(place(ex, "bob", SELL, OrderType.LIMIT, 2, "100000.0"))
    bid = placed(place(ex, "alice", BUY, OrderType.IOC, 2, "100000.0"))
    assert bid.deal_vol == 2 and order_of(ex, "bob", ask.order_id).state == OrderState.FILLED
    (a,), (b,) = ex.fills("alice"), ex.fills("bob")
    assert a.deal_id == b.deal_id and a.is_taker and not b.is_taker


def test_each_book_change_is_one_commit_with_absolute_levels() -> None:
    ex = new_exchange("alice")
    base = ex.depth_snapshot(BTC, T0).version
    quote(ex, SELL, "100000.0", 3)
    quote(ex, SELL, "100000.0", 4)
    quote(ex, SELL, "100001.0", 1)
    placed(place(ex, "alice", BUY, OrderType.IOC, 8, "100001.0"))  # clears both levels at once
    commits = ex.depth_commits(BTC, 10)
    assert [c.version for c in commits] == [base + 1, base + 2, base + 3, base + 4]
    assert commits[1].asks == ((D("100000.0"), D(7), 2),)
    assert commits[3].asks == ((D("100000.0"), D(0), 0), (D("100001.0"), D(0), 0))
    assert ex.depth_snapshot(BTC, T0).version == base + 4


def test_plan_does_not_touch_the_book() -> None:
    book = OrderBook("X")
    book.add(Resting("1", "m", False, Decimal(10), Decimal(5)))
    book.add(Resting("2", "u", False, Decimal(10), Decimal(5)))
    book.add(Resting("3", "m", False, Decimal(11), Decimal(5)))
    first = book.commit(0)
    assert first is not None and first.version == 1
    plan = book.plan("u", True, Decimal(7), Decimal(11), prevent_self=True)
    assert [type(s).__name__ for s in plan.steps] == ["Match", "SelfCancel", "Match"]
    assert plan.filled == 7 and plan.crosses
    assert book.commit(0) is None and len(book) == 3
    book.execute(plan)
    commit = book.commit(1)
    assert commit is not None and commit.asks == (
        (Decimal(10), Decimal(0), 0),
        (Decimal(11), Decimal(3), 1),
    )
