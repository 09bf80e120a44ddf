"""Keeps the local depth books in sync with MEXC (shell): snapshots and gap repair.

Theory of operation
-------------------
The books themselves live in the fold (:mod:`engine.projections.book`): it buffers deltas
while a book is unsynced, flags a gap when a delta skips versions, and is repaired by what
this module journals. :class:`BookSyncer` only decides *what to fetch and record, in which
order*:

* **snapshot** (asked for by the feed after every ``sub.depth``, and as the fallback of a
  repair): ``rest.depth(symbol)``, whose answer the REST client's journaling hook records
  (the fold resets the book from it and replays its buffer); then
  ``BookResynced(symbol, version, "snapshot")``.
* **repair** (asked for by the Core through :meth:`BookSyncer.request_repair` when the fold
  reports a gap): ``BookGapDetected``; ``rest.depth_commits(symbol, 1000)`` (recorded by the
  hook, so the missing versions are in the journal as deltas, *before*) ``BookResynced(symbol,
  version, "commits")``, which re-arms the book at its own version and replays its buffer.
  When the commits cannot bridge the hole (their first version is past the book's version +
  1), or the fold still reports the book unsynced after the resync, it falls back to a
  snapshot.

After emitting a resync, the worker polls ``book_status(symbol) -> (synced, version)`` (the
live projection, read through a callable the runtime passes in) every ``settle_poll_s`` for
at most ``settle_timeout_s`` of trio time, until the book is synced at the resync's version or
later. A resync that does not take (the fold lags, the snapshot was older than the buffered
deltas, REST failed) is retried with a snapshot after a backoff delay.

One worker task per symbol serialises that symbol's work, so a snapshot and a repair never
interleave; a repair requested while a snapshot is in flight first checks ``book_status`` and
does nothing when the snapshot already healed the book. ``request_repair`` and
``want_snapshot`` are synchronous and never block: they set a flag and wake the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

from adapters.mexc.errors import MexcError
from adapters.mexc.reconnect import Backoff, JitterSpec, StreamJournal
from engine.events import BookGapDetected, BookResynced

__all__ = ["BookStatus", "BookSyncStatistics", "BookSyncer"]

log = logging.getLogger(__name__)

BookStatus = Callable[[str], tuple[bool, int]]
"""``book_status(symbol) -> (synced, version)`` from the live projection; ``(False, -1)``
for a symbol without a book."""


def _first(delta: Any) -> int:
    begin = getattr(delta, "begin", None)
    return int(begin if begin is not None else delta.version)


def _last(delta: Any) -> int:
    end = getattr(delta, "end", None)
    return int(end if end is not None else delta.version)


@attrs.frozen
class BookSyncStatistics:
    """Counters of a :class:`BookSyncer` (see :meth:`BookSyncer.statistics`)."""

    books: int
    """Symbols with a worker."""
    gaps: int
    """Repairs requested by the fold."""
    healed: int
    """Requested repairs found unnecessary (a snapshot had already resynced the book)."""
    repairs: int
    """Gaps repaired from ``depth_commits``."""
    fallbacks: int
    """Repairs that fell back to a snapshot."""
    resyncs: int
    """Snapshots taken and journaled (``BookResynced(how="snapshot")``)."""
    failures: int
    """REST calls that failed or resyncs the fold did not confirm in time."""


@attrs.define
class _Book:
    symbol: str
    wake: trio.Event = attrs.Factory(trio.Event)
    snapshot_wanted: bool = False
    gap_wanted: bool = False
    gap: tuple[int, int] | None = None
    started: bool = False


class BookSyncer:
    """Snapshots and gap repair for every depth book, one worker task per symbol.

    ``rest`` is the :class:`~adapters.mexc.rest.MexcRestClient` (its ``on_response`` hook
    journals every answer); ``journal`` records the engine events; ``book_status`` reads the
    live projection.
    """

    def __init__(
        self,
        *,
        rest: Any,
        journal: StreamJournal,
        book_status: BookStatus,
        snapshot_limit: int | None = None,
        commits_limit: int = 1000,
        settle_timeout_s: float = 2.0,
        settle_poll_s: float = 0.05,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        jitter: JitterSpec = None,
    ) -> None:
        self.rest = rest
        self.journal = journal
        self.book_status = book_status
        self.snapshot_limit = snapshot_limit
        self.commits_limit = commits_limit
        self.settle_timeout_s = settle_timeout_s
        self.settle_poll_s = settle_poll_s
        self._retry = (retry_initial_s, retry_max_s, jitter)
        self._books: dict[str, _Book] = {}
        self._nursery: trio.Nursery | None = None
        self._gaps = self._healed = self._repairs = self._fallbacks = 0
        self._resyncs = self._failures = 0

    # -- requests (synchronous, never block) ------------------------------------------------

    def want_snapshot(self, symbol: str) -> None:
        """Take a fresh snapshot of ``symbol`` (after its ``sub.depth`` was sent)."""
        book = self._book(symbol)
        book.snapshot_wanted = True
        book.wake.set()

    def request_repair(self, symbol: str, gap: tuple[int, int] | None) -> None:
        """The fold found ``symbol``'s book gapped (``gap`` = (expected, got)); repair it.

        Called synchronously by the Core (``on_gap``); queues the work and returns at once.
        """
        self._gaps += 1
        book = self._book(symbol)
        book.gap_wanted = True
        book.gap = gap
        book.wake.set()

    def _book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = _Book(symbol)
        if not book.started and self._nursery is not None:
            book.started = True
            self._nursery.start_soon(self._worker, book)
        return book

    # -- running ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the workers until cancelled."""
        if self._nursery is not None:
            raise RuntimeError("BookSyncer.run is already running")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for symbol in list(self._books):
                    self._book(symbol)  # starts its worker
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            for book in self._books.values():
                book.started = False

    async def _worker(self, book: _Book) -> None:
        backoff = Backoff(*self._retry)
        while True:  # ends on cancellation
            await book.wake.wait()
            book.wake = trio.Event()
            while book.snapshot_wanted or book.gap_wanted:
                if book.snapshot_wanted:
                    book.snapshot_wanted = False
                    ok = await self._snapshot(book.symbol)
                else:
                    gap, book.gap, book.gap_wanted = book.gap, None, False
                    ok = await self._repair(book.symbol, gap)
                if ok:
                    backoff.reset()
                else:
                    self._failures += 1
                    book.snapshot_wanted = True
                    await trio.sleep(backoff.next())

    async def _repair(self, symbol: str, gap: tuple[int, int] | None) -> bool:
        synced, version = self.book_status(symbol)
        if synced:
            self._healed += 1
            return True
        expected, got = gap if gap is not None else (version + 1, -1)
        now = self.journal.clock.time_ns()
        await self.journal.event(BookGapDetected(symbol, expected, got, now), stream=symbol)
        try:
            commits = tuple(await self.rest.depth_commits(symbol, self.commits_limit))
        except MexcError as exc:
            log.warning("depth_commits %s failed: %s", symbol, exc)
            commits = ()
        if commits and version >= 0 and _first(commits[0]) <= version + 1:
            top = max(_last(c) for c in commits)
            if top > version:
                now = self.journal.clock.time_ns()
                await self.journal.event(BookResynced(symbol, top, "commits", now), stream=symbol)
                if await self._settled(symbol, top):
                    self._repairs += 1
                    return True
        self._fallbacks += 1
        return await self._snapshot(symbol)

    async def _snapshot(self, symbol: str) -> bool:
        try:
            snap = await self.rest.depth(symbol, self.snapshot_limit)
        except MexcError as exc:
            log.warning("depth snapshot %s failed: %s", symbol, exc)
            return False
        now = self.journal.clock.time_ns()
        await self.journal.event(BookResynced(symbol, snap.version, "snapshot", now),
                                 stream=symbol)
        self._resyncs += 1
        return await self._settled(symbol, snap.version)

    async def _settled(self, symbol: str, version: int) -> bool:
        """Poll the fold until the book is synced at ``version`` or later (bounded)."""
        deadline = trio.current_time() + self.settle_timeout_s
        while True:  # bounded by the deadline
            synced, have = self.book_status(symbol)
            if synced and have >= version:
                return True
            now = trio.current_time()
            if now >= deadline:
                return False
            await trio.sleep(min(self.settle_poll_s, deadline - now))

    def statistics(self) -> BookSyncStatistics:
        """A snapshot of the counters."""
        return BookSyncStatistics(
            books=len(self._books), gaps=self._gaps, healed=self._healed, repairs=self._repairs,
            fallbacks=self._fallbacks, resyncs=self._resyncs, failures=self._failures,
        )
