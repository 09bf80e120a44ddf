"""End to end under simulator faults (virtual time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import trio

from adapters.mexc.sim.faults import Faults
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


def _kinds(path: Path) -> list[str]:
    with Journal.open(path, readonly=True) as j:
        assert j.verify().ok
        return [ev.kind for ev in j.read()]


def _book_equals_exchange(session: Session, sim: Any, symbol: str, depth: int = 10) -> None:
    assert session.state is not None
    book = session.state.view().book(symbol)
    assert book is not None and book.synced
    snap = sim.exchange.depth_snapshot(symbol, sim.exchange_now())
    assert book.version == snap.version
    assert [tuple(lv[:2]) for lv in book.asks(depth)] == [tuple(lv[:2]) for lv in snap.asks[:depth]]
    assert [tuple(lv[:2]) for lv in book.bids(depth)] == [tuple(lv[:2]) for lv in snap.bids[:depth]]


async def _mm(
    tmp_path: Path, faults: Faults, duration_s: float = 60.0, **kwargs: Any
) -> tuple[Session, Any, Any]:
    clock = TrioClock()
    sim = make_sim(clock, faults=faults)
    holder: list[Session] = []

    summary = await run_sim_session(
        tmp_path / "j.sqlite",
        duration_s=duration_s,
        sim=sim,
        clock=clock,
        on_started=holder.append,
        **kwargs,
    )
    return holder[0], summary, sim


async def test_dropped_connections_resubscribe_and_book_is_right(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    session, _summary, sim = await _mm(tmp_path, Faults(ws_drop_every_s=15.0), cancel_on_stop=False)
    assert session.feeds is not None and session.feeds.statistics().reconnects >= 3
    kinds = _kinds(tmp_path / "j.sqlite")
    assert kinds.count("engine.disconnected") >= 3
    sim.drive_market = False  # freeze the market so the two books can be compared
    _book_equals_exchange(session, sim, "BTC_USDT")


async def test_depth_gaps_are_detected_and_repaired(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    _session, summary, _sim = await _mm(
        tmp_path, Faults(depth_gap_probability=0.05, seed=3), cancel_on_stop=False
    )
    kinds = _kinds(tmp_path / "j.sqlite")
    assert kinds.count("engine.book_gap") >= 1
    assert kinds.count("engine.book_resync") >= kinds.count("engine.book_gap")
    assert summary.killed is None


async def test_lost_answer_after_acceptance_ends_with_exactly_one_order(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    clock = TrioClock()
    sim = make_sim(
        clock, faults=Faults(rest_drop_after_next=1, rest_match="order/create"), drive_market=False
    )
    holder: list[Session] = []
    await run_sim_session(
        tmp_path / "j.sqlite",
        strategy=SCRIPTED,
        strategy_config={"actions": ["buy_far", "noop"]},
        duration_s=60,
        sim=sim,
        clock=clock,
        on_started=holder.append,
        cancel_on_stop=False,
    )
    (order,) = holder[0].state.view().orders()  # type: ignore[union-attr]
    assert order.status is OrderStatus.OPEN  # settled by query, not left unknown
    user = the_user(sim)
    at_exchange = [
        o for o in sim.exchange.open_orders(user) if o.external_oid == order.external_oid
    ]
    assert len(at_exchange) == 1
    kinds = _kinds(tmp_path / "j.sqlite")
    assert "order.unknown" in kinds and "rest.order_external" in kinds
    assert kinds.count("rest.order_create") == 0  # the one answer was lost, never re-sent
    assert_projections_match_exchange(holder[0].state, sim, "BTC_USDT")


async def test_404_storm_trips_the_kill_switch_and_cancels_everything(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    clock = TrioClock()
    faults = Faults()
    sim = make_sim(clock, faults=faults)
    holder: list[Session] = []

    def started(session: Session) -> None:
        holder.append(session)

    async def storm() -> None:
        await trio.sleep(20)  # the market maker has quotes resting by now
        faults.order_404 = True
        await trio.sleep(15)  # "MEXC changed the endpoints", then it comes back
        faults.order_404 = False

    async with trio.open_nursery() as nursery:
        nursery.start_soon(storm)
        summary = await run_sim_session(
            tmp_path / "j.sqlite",
            duration_s=120,
            sim=sim,
            clock=clock,
            on_started=started,
            exit_on_kill=False,
            cancel_on_stop=False,
        )
    assert summary.killed is not None and "unexpected failures" in summary.killed
    user = the_user(sim)
    assert sim.exchange.open_orders(user) == []
    kinds = _kinds(tmp_path / "j.sqlite")
    assert "engine.kill_switch" in kinds
    # after the trip no order was placed any more
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        trip = next(ev.seq for ev in j.read(kinds=["engine.kill_switch"]))
        later = [
            orjson.loads(ev.body)["key"] for ev in j.read(kinds=["risk.accepted"], from_seq=trip)
        ]
        denied = [orjson.loads(ev.body) for ev in j.read(kinds=["risk.denied"], from_seq=trip)]
    assert "CancelAll" in later
    assert not [key for key in later if key.startswith("tl")]  # no placement passed the gate
    assert all("kill switch" in d["reason"] for d in denied)
