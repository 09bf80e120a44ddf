"""The fault matrix, a representative subset (virtual time): every case keeps running or
stops safely through the kill switch, its journal verifies and replays identically, and at
the end its projections equal the simulator's own state (no lost fill, no duplicate, no
orphan). The full matrix runs with ``python -m bench.reliability matrix``.

Also the regression tests of the engine bugs the matrix found.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import trio

from adapters.mexc.sim.faults import Faults
from bench.reliability.checks import check_journal, view_of_sim
from bench.reliability.matrix import (
    CASES,
    DEFAULT_SUBSET,
    case_named,
    run_case,
    settle_by_restart,
)
from engine.clock import TrioClock
from engine.journal import Journal
from engine.model import OpenType, OrderType, Side
from engine.projections import OrderStatus
from engine.runtime import Session
from tests.e2e.support import SCRIPTED, make_sim, run_sim_session, the_user


def test_the_subset_names_real_cases_and_every_case_says_what_safe_means() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    assert set(DEFAULT_SUBSET) <= set(names)
    switches = {s for c in CASES for s in c.switches}
    # every fault switch of the simulator is exercised by some case
    assert switches >= set(Faults().switches()) - {"seed", "rest_5xx_status", "rest_drop_mode",
                                                   "rest_match"}
    assert all(c.safe and c.fault for c in CASES)


@pytest.mark.parametrize("name", DEFAULT_SUBSET)
async def test_fault_case(name: str, tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    result = await run_case(case_named(name), tmp_path)
    assert result.ok, "\n".join(result.problems())
    assert result.verdict.orders_requested > 0


async def test_a_request_lost_before_the_exchange_is_rejected_not_unknown_forever(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    """Regression: a placement dropped before it reached the exchange stayed ``unknown`` for
    the rest of the session (settling gave up after 6 "does not exist" answers), and the
    market maker, waiting for it, never quoted that side again."""
    clock = TrioClock()
    sim = make_sim(clock, faults=Faults(rest_drop_next=1, rest_match="order/create"),
                   drive_market=False)
    holder: list[Session] = []
    await run_sim_session(tmp_path / "j.sqlite", strategy=SCRIPTED,
                          strategy_config={"actions": ["buy_far", "noop"]}, duration_s=60,
                          sim=sim, clock=clock, on_started=holder.append, cancel_on_stop=False)
    assert holder[0].state is not None
    (order,) = holder[0].state.view().orders()
    assert order.status is OrderStatus.REJECTED
    assert "never reached it" in (order.reason or "")
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        kinds = [ev.kind for ev in j.read()]
        unknown_at = next(ev.ts_ns for ev in j.read(kinds=["order.unknown"]))
        rejected_at = next(ev.ts_ns for ev in j.read(kinds=["order.rejected"]))
    assert kinds.count("rest.order_create") == 0  # never re-sent
    # not before the request is older than two receive windows (10 s each)
    assert rejected_at - unknown_at >= 20 * 10**9
    verdict = check_journal(tmp_path / "j.sqlite", view_of_sim(sim))
    assert verdict.ok, verdict.problems()


async def test_exit_on_kill_while_cancel_all_keeps_failing_ends_cleanly(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    """Regression: with ``exit_on_kill`` during a 404 storm, cancel-all was still retrying
    when the stop's wait ran out; its next journaled answer hit the closed input channel and
    the session crashed with ``trio.ClosedResourceError``."""
    result = await run_case(case_named("order-404-exit"), tmp_path)
    assert result.killed is not None
    assert result.ok, "\n".join(result.problems())
    assert any("abandoned" in line for line in result.lines)


async def test_a_placement_abandoned_at_stop_is_journaled_unknown_and_settled_at_restart(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    """Regression: a placement still waiting for its answer when the stop's wait ran out
    was left ``requested``/``sent`` with nothing in the journal saying why."""
    clock = TrioClock()
    # the placement never reaches the exchange, and its answer is awaited for 10 s
    sim = make_sim(clock, faults=Faults(rest_drop_next=1, rest_match="order/create"),
                   drive_market=False)
    lines: list[str] = []
    path = tmp_path / "j.sqlite"
    await run_sim_session(path, strategy=SCRIPTED, duration_s=10, sim=sim, clock=clock,
                          strategy_config={"actions": ["buy_far"], "every_s": 8.0},
                          stop_timeout_s=2.0, lines=lines)
    assert any("abandoned" in line for line in lines)
    with Journal.open(path, readonly=True) as j:
        (unknown,) = [ev for ev in j.read(kinds=["order.unknown"])]
    assert "abandoned at stop" in unknown.body
    sim.faults.clear()
    assert check_journal(path, view_of_sim(sim)).dangling  # unsettled until the next start
    await settle_by_restart(path, sim, clock, lines)
    verdict = check_journal(path, view_of_sim(sim))
    assert verdict.ok, verdict.problems()
    with Journal.open(path, readonly=True) as j:
        (rejected,) = [ev for ev in j.read(kinds=["order.rejected"])]
    assert "2040" in rejected.body


async def test_a_position_closed_while_its_pushes_were_lost_is_closed_by_reconciliation(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    """Regression (found by ``drops+lost-answers+gaps``): a position closed while the
    account stream was down stayed open in the journal for good, because the reconciliation's
    ``open_positions`` answer lists only open positions; the journal's positions then
    differed from the exchange's at every later reconciliation."""
    clock = TrioClock()
    sim = make_sim(clock, drive_market=False)
    path = tmp_path / "j.sqlite"

    async def close_behind_its_back() -> None:
        await trio.sleep(10)  # the scripted market buy has opened a long position by now
        user = the_user(sim)
        (long,) = sim.exchange.positions(user)
        assert long.hold_vol == 1
        sim.exchange.place_order(user, "BTC_USDT", Side.CLOSE_LONG, OrderType.MARKET,
                                 Decimal(1), None, OpenType.ISOLATED, 10, None,
                                 sim.exchange_now())
        sim.exchange.drain_pushes()  # its pushes are lost, as in a disconnection
        sim.drop_connections()       # the stream reconnects and reconciles

    async with trio.open_nursery() as nursery:
        nursery.start_soon(close_behind_its_back)
        await run_sim_session(path, strategy=SCRIPTED, duration_s=30, sim=sim, clock=clock,
                              strategy_config={"actions": ["buy_market"]})
    verdict = check_journal(path, view_of_sim(sim))
    assert verdict.ok, verdict.problems()
    with Journal.open(path, readonly=True) as j:
        assert any(True for _ in j.read(kinds=["rest.history_positions"]))
