"""The guardian: its valuation and rules by hand, then a session in which an order placed
from outside the engine loses money on a price drop the test provokes, and the guardian
flattens the account; replayed identically."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio

from adapters.mexc.sim.service import SimService
from engine.clock import TrioClock
from engine.commands import CancelAll, CancelOrder, PlaceOrder
from engine.errors import PluginError
from engine.journal import Journal
from engine.model import (
    OpenType,
    OrderState,
    OrderType,
    OrderUpdate,
    PositionType,
    Side,
)
from engine.projections import OrderStatus
from engine.runtime import Session
from engine.strategy import make_config
from engine.testing import make_simulator, run_in_simulator, simulator_user, verify_replay
from strategies.guardian import Guardian
from tests.strategies.harness import SYM, Harness, balance, fair, position

SPEC = "strategies.guardian:Guardian"
D = Decimal
LONG = PositionType.LONG


def _guarded(**config: object) -> Harness[Guardian]:
    """10000 USDT of cash, 600 contracts long from 100000 (6000 USDT of BTC), fair 100000."""
    h = Harness(Guardian, dict(config))
    assert h.feed(balance(9400, margin=600)) == []
    assert h.feed(position(LONG, 600, 100000)) == []
    assert h.feed(fair(100000)) == []
    return h


def test_values_the_account_at_the_fair_price() -> None:
    h = _guarded()
    guardian = h.strategy
    view = h.state.view()
    assert guardian.equity(view) == D(10000)
    h.feed(fair(99000))
    pos = view.position(SYM, LONG)
    assert pos is not None
    assert guardian.unrealised(view, pos) == D(-60)  # 1000 x 0.06 BTC
    assert guardian.equity(view) == D(9940)
    assert guardian.peak == D(10000)


def test_a_drawdown_cancels_everything_and_closes_every_position() -> None:
    h = _guarded(max_drawdown="0.02")
    assert h.feed(fair(96700)) == []  # -198: 1.98 % below the peak
    cancel, close = h.feed(fair(96600))  # -204
    assert cancel == CancelAll(None)
    assert isinstance(close, PlaceOrder)
    assert (close.side, close.order_type, close.vol) == (Side.CLOSE_LONG, OrderType.MARKET,
                                                         D(600))
    assert h.feed(fair(96500)) == []  # the close has not settled: no second one
    h.fill(close, 96600)
    assert h.feed(fair(96400)) == []  # flat
    # tripped for good: an order placed from elsewhere is cancelled, once
    foreign = OrderUpdate(order_id="77", symbol=SYM, side=Side.OPEN_LONG,
                          order_type=OrderType.LIMIT, open_type=OpenType.ISOLATED,
                          price=D(90000), vol=D(5), deal_vol=D(0), deal_avg_price=D(0),
                          state=OrderState.OPEN, version=1)
    assert h.feed(foreign) == [CancelOrder("77", SYM)]
    assert h.tick("guard") == []
    # and a position that shows up again is closed again
    (again,) = h.feed(position(LONG, 5, 96000, update_ms=h.now_ms, position_id="p1-again"))
    assert isinstance(again, PlaceOrder) and (again.side, again.vol) == (Side.CLOSE_LONG, D(5))


def test_a_losing_position_is_closed_without_tripping() -> None:
    h = _guarded(max_drawdown="0.5", max_position_loss=50)
    h.feed(position(PositionType.SHORT, 100, 100000))
    assert h.feed(fair(99200)) == []  # long -48, short +8
    cancel, close = h.feed(fair(99100))  # long -54
    assert cancel == CancelAll(SYM)
    assert isinstance(close, PlaceOrder) and (close.side, close.vol) == (Side.CLOSE_LONG, D(600))
    h.fill(close, 99100)
    assert h.feed(fair(99000)) == []  # the short is winning: left alone
    assert h.strategy.tripped is None


def test_nothing_without_a_balance_or_a_price() -> None:
    h = Harness(Guardian, {"max_drawdown": "0.01"})
    assert h.feed(position(LONG, 600, 100000)) == []
    assert h.feed(balance(9400, margin=600)) == []  # position cannot be valued yet
    assert h.strategy.peak is None


@pytest.mark.parametrize("values", [
    {"max_drawdown": 0}, {"max_drawdown": 1}, {"max_position_loss": -1},
    {"check_every_s": 0},
])
def test_bad_configuration_is_refused(values: dict[str, object]) -> None:
    with pytest.raises(PluginError):
        make_config(Guardian, values)


async def _outside_trade_then_crash(sim: SimService) -> None:
    """5 s in: the account buys 1000 contracts and bids far below, as if from the web UI.
    15 s in: the whole market drops 5 %."""
    start = trio.current_time()
    await trio.sleep_until(start + 5)
    user, now = simulator_user(sim), sim.exchange_now()
    for order_type, vol, price in ((OrderType.MARKET, D(1000), None),
                                   (OrderType.LIMIT, D(5), D(90000))):
        sim.exchange.place_order(user, SYM, Side.OPEN_LONG, order_type, vol, price,
                                 OpenType.ISOLATED, 10, None, now)
    await trio.sleep_until(start + 15)
    sim.market.index[SYM] = (sim.market.index[SYM] * D("0.95")).quantize(D("0.1"))


async def test_flattens_the_account_after_a_drawdown(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    clock = TrioClock()
    sim = make_simulator(clock)
    journal = tmp_path / "guardian.sqlite"
    sessions: list[Session] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_outside_trade_then_crash, sim)
        summary = await run_in_simulator(
            SPEC, journal=journal, duration_s=30, sim=sim, clock=clock,
            strategy_config={"max_drawdown": "0.02"}, on_started=sessions.append,
            cancel_on_stop=False)  # whatever is cancelled, the guardian cancelled
        nursery.cancel_scope.cancel()
    assert summary.killed is None
    user = simulator_user(sim)
    assert not [p for p in sim.exchange.positions(user) if p.hold_vol]
    assert not sim.exchange.open_orders(user)
    state = sessions[0].state
    assert state is not None
    mine = [o for o in state.view().orders() if o.request is not None]
    assert mine and {o.side for o in mine} == {Side.CLOSE_LONG}  # it never opened anything
    assert OrderStatus.FILLED in {o.status for o in mine}
    with Journal.open(journal, readonly=True) as j:
        issued = [ev.body for ev in j.read(session=summary.session, kinds=["cmd.issued"])]
    assert any("CancelAll" in body or "cancel_all" in body for body in issued), issued

    result = verify_replay(journal, summary.session)
    assert result.identical, "\n".join(result.lines())
    assert result.compared > 0
