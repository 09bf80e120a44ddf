"""The sequencer: the single task that journals, folds, decides and dispatches (shell).

Theory of operation
-------------------
Every producer (WebSocket connections, REST answers, timers, the execution manager) sends
:class:`Input` items into one bounded trio channel. The sequencer takes what is waiting (up
to ``max_batch``), appends it to the journal in one commit (group commit), then hands each
committed row to the :class:`~engine.core.Core`. On one trio thread a producer moves one
item a scheduling round, so before an inline commit the sequencer yields to the producers
(without becoming cancellable) until a few rounds in a row bring nothing, for at most
``gather_s``: a burst is committed as one batch. A lone input found waiting costs three idle
scheduling rounds, or one when the previous gathering brought nothing (no stream is flowing);
one the sequencer was already waiting for is committed at once. The decisions the core makes
are appended in a second commit, and only then are accepted commands handed to execution. So
a strategy never sees an event, and the exchange never sees a command, before it is committed.

A journal write failure is fatal: the sequencer calls ``on_fatal`` (the runtime trips the
kill switch and cancels what it can without recording) and re-raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import trio
from attrs import frozen

from engine import codec
from engine.commands import Command
from engine.core import Core, Decision
from engine.errors import JournalWriteError
from engine.events import EngineEvent, Event, NewEvent
from engine.journal import Journal

__all__ = ["Input", "Sequencer", "engine_input"]

_IDLE_ROUNDS = 3
"""Scheduling rounds in a row with nothing to do that end the gathering of a batch."""
_MAX_ROUNDS = 64
"""The most rounds a batch is gathered for (bounds it where time stands still, e.g. under
a virtual clock while another task spins)."""


@frozen
class Input:
    """A fact to journal: its row, and for engine-made events the value itself."""

    row: NewEvent
    value: Any = None


def engine_input(event: EngineEvent, *, stream: str | None = None,
                 cause: int | None = None) -> Input:
    """The input for an engine-made event (journaled, then folded without re-decoding)."""
    return Input(codec.encode(event, stream=stream, cause=cause), event)


class Sequencer:
    """Owns the journal writer, the fold and the strategy call for one session.

    ``max_batch`` bounds a group commit; ``threaded_commits`` runs commits in a worker thread
    (for ``synchronous=FULL``); ``gather_s`` bounds how long a burst is gathered before an
    inline commit (0: commit what is waiting at once).
    """

    def __init__(
        self,
        journal: Journal,
        session: str,
        core: Core,
        dispatch: Callable[[int, Command], None],
        *,
        max_batch: int = 512,
        on_fatal: Callable[[str], None] | None = None,
        threaded_commits: bool = False,
        gather_s: float = 0.001,
    ) -> None:
        self.journal = journal
        self.session = session
        self.core = core
        self.dispatch = dispatch
        self.max_batch = max_batch
        self.on_fatal = on_fatal
        self.threaded_commits = threaded_commits
        self.gather_s = gather_s
        self.events_in = 0
        self.decisions_out = 0
        self.batches = 0
        self._idle_limit = _IDLE_ROUNDS

    async def run(
        self,
        inputs: trio.MemoryReceiveChannel[Input],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Process inputs until the channel closes.

        With ``threaded_commits`` each commit runs in a worker thread: while the disk syncs,
        the producers keep running and the inputs that arrive meanwhile form the next batch
        (real group commit). The sequencer still waits for every commit before it folds or
        dispatches, so the record-first rule is unchanged. Without it (inline commits) the
        batch is gathered for up to ``gather_s`` first (see the module docstring).
        """
        task_status.started()
        async with inputs:
            while True:
                try:  # an input already waiting means a burst: gather it (inline commits)
                    batch = [inputs.receive_nowait()]
                    burst = True
                except trio.WouldBlock:
                    try:
                        batch = [await inputs.receive()]
                    except trio.EndOfChannel:
                        return
                    burst = False
                except trio.EndOfChannel:
                    return
                burst = self._take_waiting(inputs, batch) and (burst or len(batch) > 1)
                if burst and not self.threaded_commits and self.gather_s > 0:
                    await self._gather(inputs, batch)
                if self.threaded_commits:
                    seqs = await self._append_in_thread([i.row for i in batch])
                    decisions = self._fold(batch, seqs)
                    if decisions:
                        rows = self._decision_rows(decisions)
                        self._dispatch(decisions, await self._append_in_thread(rows))
                else:
                    self.process(batch)
                await trio.lowlevel.checkpoint()

    def _take_waiting(self, inputs: trio.MemoryReceiveChannel[Input], batch: list[Input]) -> bool:
        """Move what is waiting in ``inputs`` into ``batch`` (up to ``max_batch``); True when
        the channel may bring more (it is open and the batch is not full)."""
        while len(batch) < self.max_batch:
            try:
                batch.append(inputs.receive_nowait())
            except trio.WouldBlock:
                return True
            except trio.EndOfChannel:
                return False
        return False

    async def _gather(self, inputs: trio.MemoryReceiveChannel[Input], batch: list[Input]) -> None:
        # Yield until `limit` rounds in a row brought no input while no other task was
        # runnable (a producer may be a few task hops, or a socket read, from the channel),
        # or for at most gather_s (and _MAX_ROUNDS). Cancel-shielded: the batch has already
        # left the channel and must be journaled whole. `limit` is _IDLE_ROUNDS after a
        # gathering that brought something (a stream is flowing), else 1: a lone input that
        # merely found the sequencer still yielding after its previous batch (not a burst)
        # then waits one idle round, not three.
        deadline = trio.current_time() + self.gather_s
        statistics = trio.lowlevel.current_statistics
        limit = self._idle_limit
        start = len(batch)
        idle = 0
        try:
            for _ in range(_MAX_ROUNDS):
                before = len(batch)
                await trio.lowlevel.cancel_shielded_checkpoint()
                if not self._take_waiting(inputs, batch) or trio.current_time() >= deadline:
                    return
                if len(batch) > before or statistics().tasks_runnable:
                    idle = 0
                else:
                    idle += 1
                    if idle >= limit:
                        return
        finally:
            self._idle_limit = _IDLE_ROUNDS if len(batch) > start else 1

    def process(self, batch: Sequence[Input]) -> None:
        """Journal a batch, fold it, journal the decisions, dispatch accepted commands."""
        seqs = self._append([i.row for i in batch])
        self.commit_decisions(self._fold(batch, seqs))

    def _fold(self, batch: Sequence[Input], seqs: range) -> list[tuple[Decision, int]]:
        decisions: list[tuple[Decision, int]] = []
        session = self.session
        for item, seq in zip(batch, seqs, strict=True):
            r = item.row
            ev = Event(seq, session, r.ts_ns, r.venue_ts_ms, r.source, r.kind, r.stream,
                       r.cause, r.body, "")
            for d in self.core.handle(ev, item.value):
                decisions.append((d, seq))
        self.events_in += len(batch)
        self.batches += 1
        return decisions

    def _decision_rows(self, decisions: Sequence[tuple[Decision, int]]) -> list[NewEvent]:
        self.decisions_out += len(decisions)
        return [codec.encode(d.event, stream=d.stream, cause=cause) for d, cause in decisions]

    def _dispatch(self, decisions: Sequence[tuple[Decision, int]], seqs: range) -> None:
        for (d, _), seq in zip(decisions, seqs, strict=True):
            if d.command is not None:
                self.dispatch(seq, d.command)

    def commit_decisions(self, decisions: Sequence[tuple[Decision, int]]) -> None:
        """Journal decisions (with their causes), then dispatch the accepted commands."""
        if not decisions:
            return
        self._dispatch(decisions, self._append(self._decision_rows(decisions)))

    async def _append_in_thread(self, rows: Sequence[NewEvent]) -> range:
        # not cancellable: a commit that has begun must finish before anything else happens
        try:
            return await trio.to_thread.run_sync(
                self.journal.append, self.session, rows, abandon_on_cancel=False)
        except JournalWriteError as exc:  # reported from the trio thread, not the worker
            if self.on_fatal is not None:
                self.on_fatal(f"journal write failed: {exc}")
            raise

    def _append(self, rows: Sequence[NewEvent]) -> range:
        try:
            return self.journal.append(self.session, rows)
        except JournalWriteError as exc:
            if self.on_fatal is not None:
                self.on_fatal(f"journal write failed: {exc}")
            raise

    def statistics(self) -> dict[str, int]:
        """Counters: inputs journaled, decisions made, batches committed."""
        return {"events_in": self.events_in, "decisions_out": self.decisions_out,
                "batches": self.batches}
