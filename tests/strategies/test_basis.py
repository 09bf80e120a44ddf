"""The basis watcher: its rules by hand, then a session in which the test pushes the
simulator's fair price away from the index and back, replayed identically."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio

from adapters.mexc.sim.service import SimService
from engine.clock import TrioClock
from engine.commands import PlaceOrder
from engine.errors import PluginError
from engine.model import FundingRate, OrderType, Side
from engine.projections import OrderStatus
from engine.runtime import Session
from engine.strategy import make_config
from engine.testing import make_simulator, run_in_simulator, simulator_user, verify_replay
from strategies.basis import BasisWatcher
from tests.strategies.harness import SYM, Harness, fair, index

SPEC = "strategies.basis:BasisWatcher"
D = Decimal


def _watcher(**config: object) -> Harness[BasisWatcher]:
    h = Harness(BasisWatcher, dict(config))
    assert h.feed(index(100000)) == []
    return h


def test_sells_a_rich_basis_and_closes_inside_the_band() -> None:
    h = _watcher()  # threshold 0.001, exit band 0.0002
    assert h.feed(fair(100100)) == []  # exactly the threshold: not beyond it
    (sell,) = h.feed(fair(100150))
    assert isinstance(sell, PlaceOrder)
    assert (sell.side, sell.order_type, sell.vol) == (Side.OPEN_SHORT, OrderType.MARKET, D(1))
    assert h.feed(fair(100200)) == []  # in flight: no second short
    h.fill(sell, 100150)
    assert h.feed(fair(100200)) == []  # already short
    assert h.feed(fair(100021)) == []  # 2.1 bp: still outside the band
    (close,) = h.feed(fair(100020))
    assert isinstance(close, PlaceOrder)
    assert (close.side, close.vol, close.leverage) == (Side.CLOSE_SHORT, D(1), None)


def test_buys_a_cheap_basis_and_a_reversal_turns_the_position() -> None:
    h = _watcher(vol="3")
    (buy,) = h.feed(fair(99850))
    assert isinstance(buy, PlaceOrder) and (buy.side, buy.vol) == (Side.OPEN_LONG, D(3))
    h.fill(buy, 99850)
    close, sell = h.feed(fair(100150))  # straight through the band to rich
    assert isinstance(close, PlaceOrder) and isinstance(sell, PlaceOrder)
    assert (close.side, close.vol) == (Side.CLOSE_LONG, D(3))
    assert sell.side is Side.OPEN_SHORT


def test_index_moves_count_too() -> None:
    h = _watcher()
    h.feed(fair(100000))
    (sell,) = h.feed(index(99800))
    assert isinstance(sell, PlaceOrder) and sell.side is Side.OPEN_SHORT


def test_funding_must_agree() -> None:
    h = _watcher(funding_must_agree=True)
    h.feed(FundingRate(SYM, D("-0.0001")))
    assert h.feed(fair(100150)) == []  # rich, but shorts would pay funding
    (buy,) = h.feed(fair(99850))
    assert isinstance(buy, PlaceOrder) and buy.side is Side.OPEN_LONG


def test_other_symbols_and_missing_prices_are_ignored() -> None:
    h = Harness(BasisWatcher)
    assert h.feed(fair(100500)) == []  # no index yet
    assert h.feed(index(100000, symbol="ETH_USDT")) == []
    assert h.feed(fair(200000, symbol="ETH_USDT")) == []


@pytest.mark.parametrize("values", [
    {"exit_band": "0.001"}, {"threshold": 0}, {"exit_band": "-0.0001"}, {"vol": 0},
])
def test_bad_configuration_is_refused(values: dict[str, object]) -> None:
    with pytest.raises(PluginError):
        make_config(BasisWatcher, values)


async def _push_basis(sim: SimService, steps: list[tuple[int, str]]) -> None:
    """At each (time, fair/index ratio), set the index to 100000 and the fair price off it."""
    start = trio.current_time()
    for at_s, ratio in steps:
        await trio.sleep_until(start + at_s)
        now = sim.exchange_now()
        sim.exchange.set_index_price(SYM, D(100000), now)
        sim.exchange.set_fair_price(SYM, D(100000) * D(ratio), now)


async def test_trades_the_basis_the_simulator_is_pushed_to(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    clock = TrioClock()
    sim = make_simulator(clock, drive_market=False)  # prices move only when the test says
    journal = tmp_path / "basis.sqlite"
    sessions: list[Session] = []
    script = [(5, "1"), (10, "1.0015"), (20, "1.0001"), (30, "0.998"), (40, "0.99995")]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_push_basis, sim, script)
        summary = await run_in_simulator(SPEC, journal=journal, duration_s=50, sim=sim,
                                         clock=clock, on_started=sessions.append)
        nursery.cancel_scope.cancel()
    assert summary.killed is None
    state = sessions[0].state
    assert state is not None
    mine = [(o.side, o.status) for o in state.view().orders() if o.request is not None]
    filled = OrderStatus.FILLED
    assert mine == [(Side.OPEN_SHORT, filled), (Side.CLOSE_SHORT, filled),
                    (Side.OPEN_LONG, filled), (Side.CLOSE_LONG, filled)]
    assert not [p for p in sim.exchange.positions(simulator_user(sim)) if p.hold_vol]

    result = verify_replay(journal, summary.session)
    assert result.identical, "\n".join(result.lines())
    assert result.compared > 0
