"""The sequencer's group commit and the journal's background checkpointer."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import trio

from adapters.mexc.interpret import interpret
from engine.commands import Command
from engine.core import Core
from engine.events import TimerFired
from engine.journal import Journal
from engine.projections import State
from engine.sequencer import Input, Sequencer, engine_input


class _Seen:
    """A strategy that notes the timers it sees, in order."""

    name = "seen"

    def __init__(self) -> None:
        self.names: list[str] = []

    def on_event(self, view: Any, event: Any) -> list[Command]:
        if isinstance(event, TimerFired):
            self.names.append(event.name)
        return []

    def on_stop(self, view: Any) -> list[Command]:
        return []


def _sequencer(tmp_path: Path, strategy: _Seen, **kwargs: Any) -> Sequencer:
    journal = Journal.open(tmp_path / "j.sqlite", synchronous="NORMAL")
    session = journal.start_session(started_ns=1)
    core = Core(State(), interpret, strategy=strategy)
    return Sequencer(journal, session, core, lambda seq, cmd: None, **kwargs)


def _timer(i: int) -> Input:
    return engine_input(TimerFired(f"t{i}", 1_000 + i))


async def test_a_burst_through_a_producer_task_is_committed_in_few_batches(
        tmp_path: Path) -> None:
    # a producer a task hop away moves one input a scheduling round: the sequencer gathers
    strategy = _Seen()
    seq = _sequencer(tmp_path, strategy)
    send, receive = trio.open_memory_channel[Input](1000)
    staged_send, staged_receive = trio.open_memory_channel[Input](1000)
    for i in range(200):
        staged_send.send_nowait(_timer(i))
    staged_send.close()

    async def pump() -> None:
        async with send:
            async for item in staged_receive:
                await send.send(item)

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(seq.run, receive)
            nursery.start_soon(pump)
        assert strategy.names == [f"t{i}" for i in range(200)]
        assert seq.events_in == 200
        assert seq.batches < 50
        rows = list(seq.journal.read(session=seq.session))
        assert [r.seq for r in rows] == list(range(1, 201))
    finally:
        seq.journal.close()


async def test_a_lone_input_is_committed_alone(tmp_path: Path) -> None:
    strategy = _Seen()
    seq = _sequencer(tmp_path, strategy)
    send, receive = trio.open_memory_channel[Input](10)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(seq.run, receive)
            for i in range(3):
                await send.send(_timer(i))
                while seq.events_in < i + 1:
                    await trio.sleep(0.001)
            await send.aclose()
        assert (seq.events_in, seq.batches) == (3, 3)
        assert strategy.names == ["t0", "t1", "t2"]
    finally:
        seq.journal.close()


async def test_gathering_is_bounded_when_another_task_spins(
        tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    # virtual time stands still while a task spins on sleep(0): the round limit ends it
    strategy = _Seen()
    seq = _sequencer(tmp_path, strategy)
    send, receive = trio.open_memory_channel[Input](10)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(seq.run, receive)
            send.send_nowait(_timer(0))
            send.send_nowait(_timer(1))
            while seq.events_in < 2:
                await trio.sleep(0)
            await send.aclose()
        assert strategy.names == ["t0", "t1"]
    finally:
        seq.journal.close()


async def test_a_fruitless_gathering_shortens_the_next_one(tmp_path: Path) -> None:
    # a lone input that found the sequencer still yielding is not a burst: after a gathering
    # that brought nothing the next waits one idle round; one that brought something (a
    # stream is flowing) restores the full wait
    seq = _sequencer(tmp_path, _Seen())
    send, receive = trio.open_memory_channel[Input](10)
    try:
        assert seq._idle_limit == 3
        batch = [_timer(0)]
        await seq._gather(receive, batch)
        assert len(batch) == 1 and seq._idle_limit == 1
        await seq._gather(receive, batch)
        assert len(batch) == 1 and seq._idle_limit == 1

        send.send_nowait(_timer(1))  # arrives while the sequencer yields
        await seq._gather(receive, batch)
        assert len(batch) > 1 and seq._idle_limit == 3
    finally:
        seq.journal.close()


def test_background_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    # 200 single-row commits with auto-checkpoint off grow the WAL to ~3.4 MB; with the
    # checkpointer the writer restarts the WAL once it has caught up (~0.9 MB here)
    path = tmp_path / "j.sqlite"
    journal = Journal.open(path, synchronous="NORMAL")
    try:
        journal.checkpoint_in_background(interval_s=0.01)
        journal.checkpoint_in_background(interval_s=0.01)  # idempotent
        assert journal._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        checkpointer = journal._checkpointer
        assert checkpointer is not None
        session = journal.start_session(started_ns=1)
        for r in range(4):
            for i in range(50):
                journal.append(session, [_timer(50 * r + i).row])
            done = checkpointer.checkpoints
            deadline = time.monotonic() + 10
            while checkpointer.checkpoints < done + 2 and time.monotonic() < deadline:
                time.sleep(0.005)
        assert os.path.getsize(f"{path}-wal") < 2_000_000
    finally:
        journal.close()
    assert journal._checkpointer is None
    with Journal.open(path, readonly=True) as reader:
        assert [e.seq for e in reader.read()] == list(range(1, 201))
        assert reader.verify().ok
