"""A recorded journal played back as the simulator's market (``tapeline sim --market-journal``)."""

from __future__ import annotations

from pathlib import Path

import trio
from click.testing import CliRunner

from adapters.mexc.errors import DecodeError
from adapters.mexc.interpret import interpret
from adapters.mexc.shadow import JournalMarket
from adapters.mexc.sim.cli import sim_command
from adapters.mexc.sim.service import SimService
from engine.clock import TrioClock
from engine.journal import Journal
from engine.rebuild import rebuild_state
from tests.e2e.support import run_sim_session


async def test_recorded_market_replays_into_the_simulator_and_can_be_traded(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    recorded = tmp_path / "recorded.sqlite"
    await run_sim_session(recorded, duration_s=30, seed=4)
    with Journal.open(recorded, readonly=True) as j:
        state, _, _ = rebuild_state(j, interpret, decode_errors=(DecodeError,))
    final = state.view().book("BTC_USDT")
    assert final is not None and final.synced

    clock = TrioClock()
    contracts = JournalMarket.contracts(str(recorded))
    assert "BTC_USDT" in [c.symbol for c in contracts]
    service = SimService(clock=clock, contracts=contracts, drive_market=False)
    market = JournalMarket(service, str(recorded), speed=4.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(market.run)
        summary = await run_sim_session(tmp_path / "replayed.sqlite", duration_s=30, sim=service,
                                        clock=clock)
        await market.finished.wait()
        nursery.cancel_scope.cancel()
    assert market.played > 100
    assert summary.orders > 0 and summary.killed is None
    snap = service.exchange.depth_snapshot("BTC_USDT", service.exchange_now())
    # the market participant ends up resting the recorded top of book
    top_levels = {lv[0] for lv in final.bids(5)} | {lv[0] for lv in final.asks(5)}
    mirrored = {lv[0] for lv in snap.bids[:5]} | {lv[0] for lv in snap.asks[:5]}
    assert len(top_levels & mirrored) >= 8


def test_market_journal_must_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(sim_command, ["--market-journal", str(tmp_path / "nope.sqlite")])
    assert result.exit_code == 2 and "does not exist" in result.output
