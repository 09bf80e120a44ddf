"""Helpers for end-to-end tests: a session against the in-process simulator, virtual time."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from adapters.mexc.sim.faults import Faults
from adapters.mexc.sim.service import SimService
from adapters.mexc.venue import open_sim_venue
from engine.clock import TrioClock
from engine.projections import OrderStatus
from engine.runtime import RunOptions, Session, SessionSummary, run_session
from engine.testing import make_simulator, simulator_user

SCRIPTED = "tests.e2e.scripted:Scripted"


def make_sim(clock: TrioClock, *, seed: int = 1, symbols: tuple[str, ...] = ("BTC_USDT",),
             faults: Faults | None = None, **kwargs: Any) -> SimService:
    """A simulator service for one test (see :func:`engine.testing.make_simulator`)."""
    return make_simulator(clock, seed=seed, symbols=symbols, faults=faults, **kwargs)


async def run_sim_session(
    journal: Path,
    *,
    duration_s: float = 60.0,
    strategy: str = "market-maker",
    strategy_config: dict[str, Any] | None = None,
    symbols: tuple[str, ...] = ("BTC_USDT",),
    seed: int = 1,
    sim: SimService | None = None,
    clock: TrioClock | None = None,
    on_started: Callable[[Session], Any] | None = None,
    lines: list[str] | None = None,
    **options: Any,
) -> SessionSummary:
    """Run one session against an in-process simulator and return its summary."""
    opts = RunOptions(journal_path=journal, strategy=strategy,
                      strategy_config=strategy_config or {}, symbols=symbols,
                      duration_s=duration_s, synchronous="NORMAL", status_every_s=0,
                      **options)
    sink = lines if lines is not None else []
    return await run_session(
        opts, partial(open_sim_venue, symbols=symbols, seed=seed, in_process=True, sim=sim),
        clock=clock or TrioClock(), out=sink.append, on_started=on_started)


the_user = simulator_user
"""The one account the venue created."""


def assert_projections_match_exchange(state: Any, sim: SimService, symbol: str) -> None:
    """Positions, open orders and the balance the engine folded equal the simulator's."""
    user = the_user(sim)
    view = state.view()
    ex = sim.exchange
    ex_positions = {(p.symbol, int(p.position_type)): p.hold_vol for p in ex.positions(user)
                    if p.hold_vol}
    mine = {(p.symbol, int(p.position_type)): p.hold_vol for p in view.positions()
            if p.hold_vol}
    assert mine == ex_positions
    ex_open = {o.order_id for o in ex.open_orders(user)}
    local_open = {o.order_id for o in view.open_orders()
                  if o.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)}
    assert local_open == ex_open
    asset = ex.asset(user, "USDT")
    bal = view.balance("USDT")
    assert bal is not None and asset is not None
    assert bal.available == asset.available_balance
    assert bal.position_margin == asset.position_margin
