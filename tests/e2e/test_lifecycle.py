"""End to end (engine + adapter + simulator, virtual time): the order lifecycle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import trio

from engine.clock import TrioClock
from engine.journal import Journal
from engine.projections import OrderStatus
from engine.runtime import Session
from tests.e2e.support import (
    SCRIPTED,
    assert_projections_match_exchange,
    make_sim,
    run_sim_session,
    the_user,
)


def _orders(session: Session) -> list[Any]:
    assert session.state is not None
    return sorted(session.state.view().orders(), key=lambda o: o.external_oid or "")


async def _scripted(
    tmp_path: Path,
    actions: list[str],
    *,
    duration_s: float = 20.0,
    sim_kwargs: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[Session, Any, Any]:
    clock = TrioClock()
    sim = make_sim(clock, **(sim_kwargs or {}))
    holder: list[Session] = []
    summary = await run_sim_session(
        tmp_path / "j.sqlite",
        strategy=SCRIPTED,
        strategy_config={"actions": actions},
        duration_s=duration_s,
        sim=sim,
        clock=clock,
        on_started=holder.append,
        cancel_on_stop=False,
        **options,
    )
    return holder[0], summary, sim


async def test_place_fill_partial_cancel_reject(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # a still market (no other participants trading) keeps the partial fill partial
    session, summary, sim = await _scripted(
        tmp_path,
        [
            "buy_far",
            "buy_market",
            "buy_partial",
            "buy_bad_tick",
            "noop",
            "cancel_mine",
            "noop",
            "noop",
        ],
        sim_kwargs={"drive_market": False},
    )
    assert summary.killed is None
    far, market, partial, bad = _orders(session)
    assert far.status is OrderStatus.CANCELLED and far.filled_vol == 0
    assert market.status is OrderStatus.FILLED and market.filled_vol == 1
    assert partial.status is OrderStatus.CANCELLED
    assert 0 < partial.filled_vol < partial.vol
    assert bad.status is OrderStatus.REJECTED
    assert_projections_match_exchange(session.state, sim, "BTC_USDT")
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        assert j.verify().ok
        answers = [
            orjson.loads(orjson.loads(ev.body)["body"])
            for ev in j.read(kinds=["rest.order_create"])
        ]
    assert [a["code"] for a in answers if not a["success"]] == [2015]


async def test_restricted_symbol_refused_while_cancel_works(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    from engine.risk import RiskLimits

    session, _summary, _sim = await _scripted(
        tmp_path,
        ["buy_far", "noop", "cancel_mine", "noop"],
        sim_kwargs={"restricted_symbols": ["BTC_USDT"]},
    )
    (order,) = _orders(session)
    assert order.status is OrderStatus.REJECTED
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        answers = [
            orjson.loads(orjson.loads(ev.body)["body"])
            for ev in j.read(kinds=["rest.order_create"])
        ]
    assert [a["code"] for a in answers] == [6005]
    # and the engine's own gate refuses configured symbols before anything is sent
    (tmp_path / "b").mkdir()
    session2, _, _ = await _scripted(
        tmp_path / "b", ["buy_far", "noop"], risk=RiskLimits(restricted_symbols={"BTC_USDT"})
    )
    (denied,) = _orders(session2)
    assert denied.status is OrderStatus.DENIED
    assert "restricted" in (denied.reason or "")


async def test_strategy_exception_trips_kill_switch_and_cancels(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    session, summary, sim = await _scripted(
        tmp_path, ["buy_far", "noop", "boom", "buy_far"], duration_s=30
    )
    assert summary.killed is not None and "scripted failure" in summary.killed
    assert summary.exit_code != 0
    (order,) = _orders(session)
    assert order.status is OrderStatus.CANCELLED
    assert not sim.exchange.open_orders(the_user(sim))
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        kinds = [ev.kind for ev in j.read()]
    assert "strategy.failed" in kinds
