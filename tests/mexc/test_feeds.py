"""The market-data manager over an in-memory exchange, in virtual time: journal order, the
connection pool, reconnect backoff, the stale watchdog, rotation, book snapshots and repair."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from adapters.mexc.book_sync import BookSyncer
from adapters.mexc.config import MexcConfig
from adapters.mexc.execution import journaling_hook
from adapters.mexc.feeds import MarketDataManager
from adapters.mexc.reconnect import Backoff, StreamJournal
from adapters.mexc.rest import MexcRestClient
from engine.clock import TrioClock
from engine.events import BookGapDetected, BookResynced, Connected, Disconnected
from engine.model import BookDelta, BookSnapshot

from .fake_exchange import (
    FakeRest,
    FakeWsConn,
    FakeWsServer,
    Pipeline,
    commits_answer,
    depth_answer,
    depth_push,
    sample,
    wait_until,
)

URL = "ws://127.0.0.1:9/edge"
BTC = "BTC_USDT"


@asynccontextmanager
async def running(
    server: FakeWsServer, rest_fake: FakeRest, pipeline: Pipeline, subs: list[tuple[Any, ...]],
    **options: Any,
) -> AsyncIterator[MarketDataManager]:
    """A started manager (its fold's gap callback wired to it), cancelled on exit."""
    clock = TrioClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(rest_fake)) as http:
        rest = MexcRestClient(http, MexcConfig(), None, clock, journaling_hook(pipeline.emit))
        options.setdefault("jitter", lambda delay: delay)
        manager = MarketDataManager(
            URL, rest=rest, emit=pipeline.emit, clock=clock, book_status=pipeline.book_status,
            connect=server.connect, **options,
        )
        pipeline.core.on_gap = manager.request_repair
        for channel, *rest_args in subs:
            manager.subscribe(channel, *rest_args)
        async with trio.open_nursery() as nursery:
            await nursery.start(manager.run)
            yield manager
            nursery.cancel_scope.cancel()


def engine_events(pipeline: Pipeline, cls: type, until: int | None = None) -> list[Any]:
    return pipeline.values(cls, until)


# == journal order ===========================================================================


async def test_frames_are_emitted_verbatim_and_in_order_after_connected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    deal = sample("ws_push_deal")["push"]
    ticker = sample("ws_push_ticker")["push"]
    pushed: list[str] = []

    def on_sub(conn: FakeWsConn, request: dict[str, Any]) -> None:
        frame = json.dumps(deal if request["method"] == "sub.deal" else ticker)
        pushed.append(frame)
        conn.push(frame)

    server.on_sub = on_sub
    async with running(server, rest_fake, pipeline, [("deal", BTC), ("ticker", BTC)]) as manager:
        await wait_until(lambda: len(pipeline.inputs) >= 5)
        stats = manager.statistics()
    assert pipeline.kinds()[:5] == [
        "engine.connected", "ws.rs.sub.deal", "ws.push.deal", "ws.rs.sub.ticker", "ws.push.ticker",
    ]
    first = pipeline.inputs[0].value
    assert isinstance(first, Connected) and (first.conn_id, first.url) == ("md0.0", URL)
    bodies = [i.row.body for i in pipeline.inputs if i.row.kind.startswith("ws.push")]
    assert bodies == pushed  # the wire text, unchanged
    assert pipeline.state.view().market(BTC) is not None  # and the fold understood it
    assert stats.connections == 1 and stats.frames == 4 and stats.subscriptions == 2


# == the pool ================================================================================


async def test_65_subscriptions_need_3_connections_and_late_ones_fill_the_gaps(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    subs = [("ticker", f"S{i}_USDT") for i in range(65)]
    async with running(server, rest_fake, pipeline, subs, stale_after_s=None) as manager:
        await wait_until(lambda: sum(len(c.received) for c in server.connections) == 65)
        assert sorted(len(c.received) for c in server.connections) == [5, 30, 30]
        await wait_until(lambda: manager.statistics().connections == 3)
        # while running: the first slot with room takes it, on its live connection
        manager.subscribe("deal", "S0_USDT")
        assert manager.subscribe("deal", "S0_USDT") in manager.subscriptions[2]  # idempotent
        third = next(c for c in server.connections if len(c.received) <= 6)
        await wait_until(lambda: len(third.received) == 6)
        assert third.methods()[-1] == "sub.deal"
        # a full pool opens a fourth connection
        for i in range(25):
            manager.subscribe("deal", f"S{i + 1}_USDT")
        await wait_until(lambda: len(server.connections) == 4)
        await wait_until(lambda: len(server.connections[3].received) == 1)
        stats = manager.statistics()
    assert [len(s) for s in manager.subscriptions] == [30, 30, 30, 1]
    assert stats.slots == 4 and stats.subscriptions == 91 and stats.connections == 4
    conn_ids = [c.conn_id for c in engine_events(pipeline, Connected)]
    assert sorted(c.split(".")[0] for c in conn_ids) == ["md0", "md1", "md2", "md3"]
    assert sorted(int(c.split(".")[1]) for c in conn_ids) == [0, 1, 2, 3]


# == reconnect ===============================================================================


async def test_drop_reconnects_with_backoff_resubscribes_and_resnapshots(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    versions = iter([100, 200])
    rest_fake.route(f"/depth/{BTC}", lambda _r: depth_answer(next(versions)))
    # the exchange streams the version right after its snapshot
    server.on_sub = lambda conn, _r: conn.push(depth_push(BTC, 101 if conn.index == 0 else 201))
    async with running(server, rest_fake, pipeline, [("depth", BTC)]) as manager:
        await wait_until(lambda: pipeline.book_status(BTC) == (True, 101))
        await trio.sleep(5)
        dropped_at = trio.current_time()
        server.refuse = 3
        server.connections[0].drop()
        await wait_until(lambda: len(server.connections) == 2)
        await wait_until(lambda: pipeline.book_status(BTC) == (True, 201))
        stats, seen = manager.statistics(), len(pipeline.inputs)
    # attempts 1, 2, 4, 8 s apart: at +1, +3, +7 refused, at +15 connected
    retries = [round(t - dropped_at, 6) for t in server.attempts[1:]]
    assert retries == [1, 3, 7, 15]
    assert server.connections[1].methods() == ["sub.depth"]
    disconnects = engine_events(pipeline, Disconnected, seen)
    assert disconnects[0].conn_id == "md0.0" and disconnects[0].reason.startswith("lost:")
    assert [d.reason.split(":")[0] for d in disconnects[1:]] == ["connect failed"] * 3
    assert [c.conn_id for c in engine_events(pipeline, Connected)] == ["md0.0", "md0.4"]
    # the book was snapshotted again after the resubscription, and the journal says so
    assert len(rest_fake.paths("/depth/")) == 2
    resyncs = engine_events(pipeline, BookResynced)
    assert [(r.version, r.how) for r in resyncs] == [(100, "snapshot"), (200, "snapshot")]
    kinds = pipeline.kinds()
    second = kinds.index("engine.connected", 1)
    assert kinds[second:].index("rest.depth") < kinds[second:].index("engine.book_resync")
    assert stats.reconnects == 1 and stats.connect_failures == 3 and stats.resyncs == 2


async def test_backoff_doubles_to_the_cap_and_jitter_only_shortens() -> None:
    exact = Backoff(1.0, 30.0, lambda d: d)
    assert [exact.next() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    exact.reset()
    assert exact.next() == 1
    import random

    jittered = Backoff(1.0, 30.0, random.Random(7))
    delays = [jittered.next() for _ in range(8)]
    nominal = [1, 2, 4, 8, 16, 30, 30, 30]
    assert all(0.8 * n <= d <= n for d, n in zip(delays, nominal, strict=True))
    assert delays != nominal
    with pytest.raises(ValueError):
        Backoff(0, 30)


async def test_stale_watchdog_drops_a_silent_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()  # pongs, no data
    async with running(server, rest_fake, pipeline, [("ticker", BTC)], stale_after_s=40.0) as m:
        start = trio.current_time()
        await wait_until(lambda: len(server.connections) == 2)
        reopened = trio.current_time() - start
        stats, seen = m.statistics(), len(pipeline.inputs)
    dropped = engine_events(pipeline, Disconnected, seen)
    assert [d.reason for d in dropped] == ["stale: no data for 40 s"]
    assert reopened == pytest.approx(41, abs=0.05)  # the ack at ~0 s, 40 s of pongs only, +1 s
    assert "ws.pong" in pipeline.kinds()  # pongs were journaled but did not count as data
    assert server.connections[0].closed_by == "client" and stats.stale == 1


# == rotation ================================================================================


async def test_rotation_subscribes_the_new_connection_before_closing_the_old(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    rest_fake.route(f"/depth/{BTC}", depth_answer(100))
    trade_ids = iter(range(1, 10**6))
    deal = sample("ws_push_deal", 1)["push"]

    async def exchange_trades() -> None:
        while True:  # cancelled with the test
            await trio.sleep(0.1)
            trade = {**deal["data"][0], "i": next(trade_ids)}
            for conn in server.live():
                if "sub.deal" in conn.methods():
                    conn.push({**deal, "data": [trade]})

    opts = {"rotate_after_s": 100.0, "stale_after_s": None}
    async with running(server, rest_fake, pipeline, [("depth", BTC), ("deal", BTC)], **opts) as m:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(exchange_trades)
            await wait_until(lambda: len(server.connections) == 2)
            await wait_until(lambda: not server.connections[0].open)
            await trio.sleep(2)
            nursery.cancel_scope.cancel()
        stats, seen = m.statistics(), len(pipeline.inputs)
    events = [(i, e, t) for _, i, e, t in server.log if e in ("open", "recv", "close")]
    sub_deal = '{"method":"sub.deal","param":{"symbol":"BTC_USDT"},"gzip":false}'
    new_subscribed = events.index((1, "recv", sub_deal))
    old_closed = events.index((0, "close", "rotated"))
    assert events.index((1, "open", URL)) < new_subscribed < old_closed
    opened = [t for t, i, e, _ in server.log if e == "open"]
    assert opened[1] == pytest.approx(100, abs=0.5)
    # Connected(new) is journaled before Disconnected(old, rotated)
    kinds = [(type(i.value).__name__, getattr(i.value, "conn_id", ""))
             for i in pipeline.inputs[:seen] if isinstance(i.value, Connected | Disconnected)]
    assert kinds == [("Connected", "md0.0"), ("Connected", "md0.1"), ("Disconnected", "md0.0")]
    assert engine_events(pipeline, Disconnected)[0].reason == "rotated"
    # no trade was missed; trades seen by both during the overlap repeat
    ids = [t["i"] for i in pipeline.inputs if i.row.kind == "ws.push.deal"
           for t in json.loads(i.row.body)["data"]]
    assert set(ids) == set(range(1, max(ids) + 1))
    # the book needed no new snapshot
    assert len(rest_fake.paths("/depth/")) == 1 and stats.rotations == 1
    assert stats.connections == 1 and stats.reconnects == 0


# == book repair =============================================================================


async def test_gap_is_repaired_from_depth_commits(autojump_clock: trio.testing.MockClock) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    rest_fake.route(f"/depth/{BTC}", depth_answer(100))
    rest_fake.route(f"/depth_commits/{BTC}/1000", commits_answer(list(range(95, 105))))
    async with running(server, rest_fake, pipeline, [("depth", BTC)]) as manager:
        await wait_until(lambda: pipeline.book_status(BTC) == (True, 100))
        conn = server.connections[0]
        for version in (101, 102, 105):  # 103 and 104 are lost
            conn.push(depth_push(BTC, version))
        await wait_until(lambda: pipeline.book_status(BTC) == (True, 105))
        stats = manager.statistics()
    kinds = pipeline.kinds()
    gap_at = kinds.index("engine.book_gap")
    assert kinds[gap_at:gap_at + 3] == ["engine.book_gap", "rest.depth_commits",
                                        "engine.book_resync"]
    gap = engine_events(pipeline, BookGapDetected)[0]
    assert (gap.symbol, gap.expected, gap.got) == (BTC, 103, 105)
    assert [(r.version, r.how) for r in engine_events(pipeline, BookResynced)] == [
        (100, "snapshot"), (104, "commits")]
    assert len(rest_fake.paths("/depth/")) == 1  # no fallback
    assert stats.gaps == 1 and stats.repairs == 1 and stats.books.fallbacks == 0


async def test_repair_falls_back_to_a_snapshot_when_commits_do_not_bridge(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    snapshots = iter([100, 110])
    rest_fake.route(f"/depth/{BTC}", lambda _r: depth_answer(next(snapshots)))
    rest_fake.route(f"/depth_commits/{BTC}/1000", commits_answer([101, 102, 103]))  # 104 lost
    async with running(server, rest_fake, pipeline, [("depth", BTC)]) as manager:
        await wait_until(lambda: pipeline.book_status(BTC) == (True, 100))
        server.connections[0].push(depth_push(BTC, 105))
        gapped_at = trio.current_time()
        await wait_until(lambda: pipeline.book_status(BTC) == (True, 110))
        fixed_in = trio.current_time() - gapped_at
        stats, seen = manager.statistics(), len(pipeline.inputs)
    assert [(r.version, r.how) for r in engine_events(pipeline, BookResynced)] == [
        (100, "snapshot"), (103, "commits"), (110, "snapshot")]
    kinds = pipeline.kinds(seen)
    assert kinds[kinds.index("engine.book_gap"):] == [
        "engine.book_gap", "rest.depth_commits", "engine.book_resync", "rest.depth",
        "engine.book_resync"]
    assert 2.0 <= fixed_in <= 2.2  # the fold was given repair_settle_s to confirm the commits
    assert stats.books.fallbacks == 1 and stats.repairs == 0 and stats.resyncs == 2


class FakeDepthRest:
    """Just the two depth calls, answering model values, each call recorded."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.calls: list[tuple[float, str]] = []

    async def depth(self, symbol: str, limit: int | None = None) -> BookSnapshot:
        self.calls.append((trio.current_time(), "depth"))
        return BookSnapshot(symbol, 500, (), ())

    async def depth_commits(self, symbol: str, limit: int) -> tuple[BookDelta, ...]:
        self.calls.append((trio.current_time(), f"commits {limit}"))
        return tuple(BookDelta(symbol, v, (), ()) for v in (11, 12, 13))


async def test_request_repair_never_blocks_and_falls_back_while_the_fold_stays_gapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = Pipeline()
    rest = FakeDepthRest(pipeline)
    status: dict[str, Any] = {"synced": False, "version": 10}
    syncer = BookSyncer(
        rest=rest, journal=StreamJournal(pipeline.emit, TrioClock(), URL),
        book_status=lambda s: (status["synced"], status["version"]),
        retry_initial_s=1.0, retry_max_s=8.0, jitter=lambda d: d,
    )
    syncer.request_repair(BTC, (11, 14))  # before running: kept for the worker
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await wait_until(lambda: len(rest.calls) == 2)  # commits, then the snapshot
        await trio.sleep(2.5)  # the snapshot is not confirmed either: retried after 1 s
        status.update(synced=True, version=500)
        await wait_until(lambda: syncer.statistics().resyncs == 2)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [c for _, c in rest.calls] == ["commits 1000", "depth", "depth"]
    t0 = rest.calls[0][0]
    assert [round(t - t0, 2) for t, _ in rest.calls] == [0, 2.0, 5.0]  # settle 2, settle 2 + 1
    assert [(r.version, r.how) for r in pipeline.values(BookResynced)] == [
        (13, "commits"), (500, "snapshot"), (500, "snapshot")]
    stats = syncer.statistics()
    assert (stats.gaps, stats.fallbacks, stats.failures, stats.repairs) == (1, 1, 1, 0)


async def test_a_repair_the_snapshot_already_made_does_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pipeline = Pipeline()
    rest = FakeDepthRest(pipeline)
    syncer = BookSyncer(rest=rest, journal=StreamJournal(pipeline.emit, TrioClock(), URL),
                        book_status=lambda s: (True, 42))
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        syncer.request_repair(BTC, (40, 43))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert rest.calls == [] and pipeline.inputs == [] and syncer.statistics().healed == 1


async def test_cancellation_journals_a_shutdown_disconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server, rest_fake, pipeline = FakeWsServer(), FakeRest(), Pipeline()
    async with running(server, rest_fake, pipeline, [("tickers",)]):
        await wait_until(lambda: len(pipeline.inputs) >= 2)
    assert [(d.conn_id, d.reason) for d in engine_events(pipeline, Disconnected)] == [
        ("md0.0", "shutdown")]
    assert server.connections[0].closed_by == "client"


# == against the simulator ===================================================================


async def test_against_the_simulator_books_survive_gaps_and_drops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    service = pytest.importorskip("adapters.mexc.sim.service")
    clock = TrioClock()
    sim = service.SimService(clock=clock, seed=3)
    pipeline = Pipeline()
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(sim.rest_handler)) as http,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(sim.run)
        rest = MexcRestClient(http, MexcConfig(), None, clock, journaling_hook(pipeline.emit))
        manager = MarketDataManager(
            URL, rest=rest, emit=pipeline.emit, clock=clock, book_status=pipeline.book_status,
            connect=sim.ws_connect, jitter=lambda d: d,
        )
        pipeline.core.on_gap = manager.request_repair
        manager.subscribe("depth", BTC)
        manager.subscribe("deal", BTC)
        await nursery.start(manager.run)
        await wait_until(lambda: pipeline.book_status(BTC)[0], timeout=30)
        await trio.sleep(5)
        sim.faults.update({"depth_gap_next": 1})  # one commit never reaches the stream
        await wait_until(lambda: manager.statistics().gaps == 1, timeout=30)
        await wait_until(lambda: pipeline.book_status(BTC)[0], timeout=30)
        sim.drop_connections()
        await wait_until(lambda: manager.statistics().resyncs == 2, timeout=30)
        await trio.sleep(5)
        synced, version = pipeline.book_status(BTC)
        stats = manager.statistics()
        nursery.cancel_scope.cancel()
    assert synced and version > 0
    assert stats.repairs == 1 and stats.books.fallbacks == 0 and stats.reconnects == 1
    kinds = pipeline.kinds()
    assert "ws.push.depth" in kinds and "ws.push.deal" in kinds
    assert kinds.count("engine.book_gap") == 1
