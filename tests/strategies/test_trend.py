"""The trend follower: its cross and exit rules by hand, then a session that rides a trend
the test pushes through the simulator, entering and exiting, replayed identically."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio

from engine.clock import TrioClock
from engine.commands import PlaceOrder
from engine.errors import PluginError
from engine.model import OrderType, PositionType, Side
from engine.projections import OrderStatus
from engine.runtime import Session
from engine.strategy import load_strategy_class, make_config
from engine.testing import make_simulator, run_in_simulator, simulator_user, verify_replay
from strategies.trend import TrendFollower
from tests.strategies.harness import SYM, Harness, kline

SPEC = "strategies.trend:TrendFollower"
D = Decimal


def _cross_up(h: Harness[TrendFollower]) -> list[PlaceOrder]:
    """Closes 100000, 99900, 99800 then 100100: the 2-bar mean crosses above the 3-bar one
    when the 100100 candle closes."""
    out = []
    for i, close in enumerate((100000, 99900, 99800, 100100, 100200)):
        out += h.feed(kline(i * 60, close))
    assert all(isinstance(c, PlaceOrder) for c in out)
    return out  # type: ignore[return-value]


def test_enters_long_on_a_cross_up_only_after_slow_closes() -> None:
    h = Harness(TrendFollower, {"fast": 2, "slow": 3})
    for i, close in enumerate((100000, 99900, 99800, 100100)):
        assert h.feed(kline(i * 60, close)) == []  # the first full window only sets the trend
        assert h.feed(kline(i * 60, close + 5)) == []  # updates of the forming candle
    (order,) = h.feed(kline(240, 100200))  # 100105 closes: mean(99800, 100105) > mean(3)
    assert isinstance(order, PlaceOrder)
    assert (order.side, order.order_type, order.vol, order.leverage) == (
        Side.OPEN_LONG, OrderType.MARKET, D(1), 10)
    assert list(h.strategy.closes) == [D(99905), D(99805), D(100105)]  # bounded by slow


def test_waits_while_an_order_is_in_flight_then_takes_profit() -> None:
    h = Harness(TrendFollower, {"fast": 2, "slow": 3, "take_profit": 300})
    (entry,) = _cross_up(h)
    assert h.feed(kline(240, 100900)) == []  # far past take-profit, but nothing is filled yet
    h.fill(entry, 100200)
    assert h.feed(kline(240, 100499)) == []  # +299: not yet
    (exit_,) = h.feed(kline(240, 100500))  # +300
    assert isinstance(exit_, PlaceOrder)
    assert (exit_.side, exit_.vol, exit_.leverage) == (Side.CLOSE_LONG, D(1), None)
    h.fill(exit_, 100500)
    assert h.feed(kline(240, 100600)) == []  # flat, and the cross was used


def test_stop_loss_closes_a_short() -> None:
    h = Harness(TrendFollower, {"fast": 2, "slow": 3, "stop_loss": 150})
    for i, close in enumerate((99800, 99900, 100000, 99700)):
        h.feed(kline(i * 60, close))
    (entry,) = h.feed(kline(240, 99600))
    assert isinstance(entry, PlaceOrder) and entry.side is Side.OPEN_SHORT
    h.fill(entry, 99600)
    assert h.feed(kline(240, 99749)) == []
    (stop,) = h.feed(kline(240, 99750))
    assert isinstance(stop, PlaceOrder) and stop.side is Side.CLOSE_SHORT


def test_an_opposite_cross_turns_the_position_round() -> None:
    h = Harness(TrendFollower, {"fast": 2, "slow": 3, "take_profit": 10_000,
                                "stop_loss": 10_000})
    (entry,) = _cross_up(h)
    h.fill(entry, 100200)
    assert h.feed(kline(300, 99000)) == []  # 100200 closes: still up
    close, reverse = h.feed(kline(360, 98000))  # 99000 closes: the 2-bar mean drops below
    assert isinstance(close, PlaceOrder) and isinstance(reverse, PlaceOrder)
    assert (close.side, close.vol) == (Side.CLOSE_LONG, D(1))
    assert reverse.side is Side.OPEN_SHORT


def test_ioc_orders_are_limited_through_the_last_price() -> None:
    h = Harness(TrendFollower, {"fast": 2, "slow": 3, "order_type": "ioc",
                                "ioc_slippage": "0.001"})
    (order,) = _cross_up(h)
    assert isinstance(order, PlaceOrder)
    assert order.order_type is OrderType.IOC
    assert order.price == D("100300.2")  # 100200 * 1.001, on the 0.1 tick


def test_late_candles_and_other_intervals_are_ignored() -> None:
    h = Harness(TrendFollower, {"fast": 2, "slow": 3})
    h.feed(kline(120, 100000))
    h.feed(kline(60, 90000))  # older window
    h.feed(kline(180, 100000, interval="Min5"))
    assert list(h.strategy.closes) == [] and h.strategy.bar_start == 120


@pytest.mark.parametrize("values", [
    {"fast": 5, "slow": 5}, {"fast": 0}, {"order_type": "limit"}, {"stop_loss": -1},
    {"take_profit": "x"}, {"unknown": 1},
])
def test_bad_configuration_is_refused(values: dict[str, object]) -> None:
    with pytest.raises(PluginError):
        make_config(TrendFollower, values)


def test_loads_by_module_path() -> None:
    assert load_strategy_class(SPEC) is TrendFollower


async def _push_trend(sim: object, steps: list[tuple[int, Decimal]]) -> None:
    """Every 5 s, scale the simulator's index by the factor scheduled for that many steps."""
    market = sim.market  # type: ignore[attr-defined]
    for count, factor in steps:
        for _ in range(count):
            await trio.sleep(5)
            market.index[SYM] = (market.index[SYM] * factor).quantize(D("0.1"))


async def test_rides_a_trend_in_the_simulator_and_replays_identically(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    clock = TrioClock()
    sim = make_simulator(clock, step_s=0.5)
    journal = tmp_path / "trend.sqlite"
    sessions: list[Session] = []
    # down 0.05 % every 5 s for 4 minutes, then up 0.1 % every 5 s for 3 minutes
    schedule = [(48, D("0.9995")), (36, D("1.001"))]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_push_trend, sim, schedule)
        summary = await run_in_simulator(
            SPEC, journal=journal, duration_s=8 * 60, sim=sim, clock=clock,
            strategy_config={"fast": 2, "slow": 4, "take_profit": 400, "stop_loss": 300},
            on_started=sessions.append)
        nursery.cancel_scope.cancel()
    assert summary.killed is None
    state = sessions[0].state
    assert state is not None
    mine = [o for o in state.view().orders() if o.request is not None]
    sides = [(o.side, o.status) for o in mine]
    assert sides[:2] == [(Side.OPEN_LONG, OrderStatus.FILLED),
                         (Side.CLOSE_LONG, OrderStatus.FILLED)], sides
    entry, exit_ = mine[0], mine[1]
    assert exit_.exchange_avg_price - entry.exchange_avg_price >= 300  # took profit
    user = simulator_user(sim)
    assert not [p for p in sim.exchange.positions(user)
                if p.position_type == PositionType.LONG and p.hold_vol]

    result = verify_replay(journal, summary.session)
    assert result.identical, "\n".join(result.lines())
    assert result.compared > 0
