"""Positions, balances and market state."""

from __future__ import annotations

from decimal import Decimal

from engine.model import (
    FairPrice,
    FundingRate,
    IndexPrice,
    Kline,
    PositionState,
    PositionType,
    TakerSide,
    Ticker,
    Trade,
)
from engine.projections import State, project

from .projection_events import SYM, bal, contract, pos

D = Decimal
LONG, SHORT = PositionType.LONG, PositionType.SHORT
CLOSED = PositionState.CLOSED


def fold(*events: object) -> State:
    return project(State(), events)


def test_hedge_mode_keeps_long_and_short_apart():
    view = fold(pos("p1", LONG, 5), pos("p2", SHORT, 3), pos("p1", LONG, 7)).view()
    long, short = view.position(SYM, LONG), view.position(SYM, SHORT)
    assert long is not None and short is not None
    assert (long.hold_vol, short.hold_vol) == (7, 3)
    assert {p.position_id for p in view.positions(SYM)} == {"p1", "p2"}
    assert view.position("ETH_USDT", LONG) is None and view.positions("ETH_USDT") == ()


def test_closed_position_is_zeroed_and_stays_closed():
    state = fold(pos("p1", LONG, 5, ms=1), pos("p1", LONG, 4, CLOSED, ms=2))
    view = state.view()
    closed = view.position(SYM, LONG)
    assert closed is not None and closed.state is CLOSED and closed.hold_vol == 0
    assert view.positions() == ()
    project(state, [pos("p1", LONG, 5)])            # a late message about the closed id
    assert view.position(SYM, LONG) == closed
    project(state, [pos("p9", LONG, 2)])            # a new position reopens the side
    assert [p.position_id for p in view.positions()] == ["p9"]
    project(state, [pos("p1", LONG, 0, CLOSED)])    # the old id's close is not about p9
    assert [p.position_id for p in view.positions()] == ["p9"]
    assert state.positions.stale_updates == 2


def test_older_position_update_is_stale():
    state = fold(pos("p1", LONG, 5, ms=10), pos("p1", LONG, 2, ms=9))
    assert state.view().position(SYM, LONG).hold_vol == 5  # type: ignore[union-attr]


def test_balances_per_currency_newest_wins():
    state = fold(bal("USDT", "10", ms=5), bal("USDC", "1"), bal("USDT", "9", ms=4),
                 bal("USDT", "11", ms=6))
    view = state.view()
    assert view.balance("USDT").available == 11  # type: ignore[union-attr]
    assert view.balance("USDC").available == 1  # type: ignore[union-attr]
    assert view.balance("BTC") is None and state.balances.stale_updates == 1


def ticker(last: str, **kw: object) -> Ticker:
    fields: dict[str, object] = dict(
        symbol=SYM, last_price=D(last), bid1=None, ask1=None, volume24=D(1), amount24=None,
        hold_vol=None, low24=None, high24=None, rise_fall_rate=None, index_price=None,
        fair_price=None, funding_rate=None, ts_ms=None)
    fields.update(kw)
    return Ticker(**fields)  # type: ignore[arg-type]


def kline(interval: str, start: int, close: str) -> Kline:
    return Kline(symbol=SYM, interval=interval, start_s=start, open=D(1), close=D(close),
                 high=D(9), low=D(1), amount=D(1), volume=D(1))


def test_market_state_from_every_source():
    state = fold(
        ticker("100", bid1=D("99.5"), ask1=D("100.5"), funding_rate=D("0.0001"), ts_ms=1),
        Trade(symbol=SYM, price=D("101"), vol=D(2), taker_side=TakerSide.BUY, ts_ms=5),
        FairPrice(symbol=SYM, price=D("100.9"), ts_ms=6),
        IndexPrice(symbol=SYM, price=D("100.8")),
        FundingRate(symbol=SYM, rate=D("0.0003"), next_settle_ms=99, ts_ms=7),
        kline("Min1", 60, "5"), kline("Min1", 0, "4"), kline("Min5", 0, "3"),
        contract(),
    )
    m = state.view().market(SYM)
    assert m is not None
    assert (m.last_price, m.last_trade_ms, m.bid1, m.ask1) == (D(101), 5, D("99.5"), D("100.5"))
    assert (m.fair_price, m.index_price, m.funding_rate, m.next_settle_ms, m.ts_ms) == (
        D("100.9"), D("100.8"), D("0.0003"), 99, 7)
    assert m.kline("Min1").close == 5 and m.kline("Min5").close == 3  # type: ignore[union-attr]
    assert m.kline("Hour4") is None and state.market.stale_klines == 1
    assert state.view().contract(SYM) == contract()
    assert state.view().market("ETH_USDT") is None


def test_market_view_is_a_cached_frozen_value_refreshed_by_new_events():
    state = fold(ticker("100"))
    first = state.view().market(SYM)
    assert first is state.view().market(SYM)
    project(state, [ticker("102")])
    second = state.view().market(SYM)
    assert first is not None and second is not None
    assert (first.last_price, second.last_price) == (100, 102)
    # a ticker without optional fields keeps what other sources said
    project(state, [FairPrice(symbol=SYM, price=D(7)), ticker("103")])
    assert state.view().market(SYM).fair_price == 7  # type: ignore[union-attr]
