"""Shadow mode: the market maker trades on books mirrored from an outside market (here a
second simulator standing in for MEXC), with fills from the local matching engine."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import httpx
import trio

from adapters.mexc.config import MexcConfig
from adapters.mexc.shadow import open_shadow_venue
from engine.clock import TrioClock
from engine.journal import Journal
from engine.runtime import RunOptions, Session, run_session
from tests.e2e.support import make_sim


async def test_shadow_mode_fills_against_live_fed_books(
        tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    clock = TrioClock()
    outside = make_sim(clock, seed=7)  # "MEXC": its own synthetic market moves the prices
    holder: list[Session] = []
    async with trio.open_nursery() as nursery, httpx.AsyncClient(
            transport=httpx.MockTransport(outside.rest_handler)) as outside_http:
        await nursery.start(outside.run)
        venue = partial(open_shadow_venue, source_config=MexcConfig.for_simulator(
            "http://outside.invalid"), symbols=("BTC_USDT",), source_http=outside_http,
            source_connect=outside.ws_connect)
        opts = RunOptions(journal_path=tmp_path / "j.sqlite", mode="shadow",
                          strategy="market-maker", duration_s=120, status_every_s=0,
                          synchronous="NORMAL")
        summary = await run_session(opts, venue, clock=clock, out=lambda line: None,
                                    on_started=holder.append)
        nursery.cancel_scope.cancel()
    assert summary.killed is None
    assert summary.fills > 0  # quotes were filled by the outside market trading through them
    state = holder[0].state
    assert state is not None
    book = state.view().book("BTC_USDT")
    outside_bid = outside.exchange.depth_snapshot("BTC_USDT", outside.exchange_now()).bids[0][0]
    assert book is not None and book.best_bid() is not None
    # the engine's book follows the outside market (within a few ticks of its last move)
    assert abs(book.best_bid()[0] - outside_bid) / outside_bid < 0.01
    with Journal.open(tmp_path / "j.sqlite", readonly=True) as j:
        assert j.verify().ok
        assert j.sessions()[0].mode == "shadow"
