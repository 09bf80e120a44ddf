"""Local order books kept in sync by version (pure).

Theory of operation
-------------------
A book is *synced* once a :class:`~engine.model.BookSnapshot` has set its levels and
``version``. A :class:`~engine.model.BookDelta` covers versions ``first..last`` (one version,
or a merged ``begin..end`` frame) with absolute quantities, 0 deleting a level:

* ``last <= version``: stale, ignored (counted in ``stale``);
* ``first <= version + 1 <= last``: contiguous, applied, ``version = last``. A frame that
  overlaps versions already applied is safe because quantities are absolute and a merged
  frame carries the latest quantity of every level it touches;
* ``first > version + 1``: a gap. Nothing is applied; the book records ``gap = (expected,
  got)``, counts it in ``gaps`` and stops being synced.

While not synced (before the first snapshot, or after a gap) deltas are kept, in arrival
order, in a bounded ``pending`` buffer, never applied. The next snapshot resets the levels and
then replays the buffer sorted by version with the rules above: stale frames drop out, a
contiguous run continues the book, a hole is a new gap. This is MEXC's documented procedure
(buffer, snapshot, apply what is newer), done inside the fold so that replay sees exactly what
live did. :class:`~engine.events.BookResynced` with ``how="commits"`` re-arms a gapped book at
its own version and replays the buffer the same way (the adapter feeds the missing
``depth_commits`` as deltas first); :class:`~engine.events.BookGapDetected` marks a book gapped
when the engine saw a gap the fold could not.

Levels live in a dict per side (price → (vol, count)) plus an ascending list of prices kept
sorted with :mod:`bisect`; best bid is the last bid price, best ask the first ask price.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

from engine.events import BookGapDetected, BookResynced
from engine.model import BookDelta, BookSnapshot, Level
from engine.projections.base import SnapshotError, dec

__all__ = ["MAX_PENDING", "BookProjection", "OrderBook"]

MAX_PENDING: Final = 1000
"""Deltas a book keeps while waiting for a snapshot (the oldest are dropped beyond this)."""


def _load(levels: Iterable[Level]) -> tuple[dict[Decimal, tuple[Decimal, int]], list[Decimal]]:
    side = {price: (vol, count) for price, vol, count in levels if vol}
    return side, sorted(side)


def _update(
    side: dict[Decimal, tuple[Decimal, int]], prices: list[Decimal], levels: Iterable[Level]
) -> None:
    for price, vol, count in levels:
        if vol:
            if price not in side:
                insort(prices, price)
            side[price] = (vol, count)
        elif price in side:
            del side[price]
            del prices[bisect_left(prices, price)]


def _first(delta: BookDelta) -> int:
    return delta.begin if delta.begin is not None else delta.version


def _last(delta: BookDelta) -> int:
    return delta.end if delta.end is not None else delta.version


class OrderBook:
    """One symbol's book; mutated only by the fold. Strategies get a read-only ``BookView``."""

    __slots__ = ("_ask_px", "_asks", "_bid_px", "_bids", "full", "gap", "gaps", "pending",
                 "stale", "symbol", "synced", "ts_ms", "version")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.version = -1
        self.synced = False
        self.full = True
        self.gap: tuple[int, int] | None = None
        self.gaps = 0
        self.stale = 0
        self.ts_ms: int | None = None
        self.pending: deque[BookDelta] = deque(maxlen=MAX_PENDING)
        self._bids: dict[Decimal, tuple[Decimal, int]] = {}
        self._asks: dict[Decimal, tuple[Decimal, int]] = {}
        self._bid_px: list[Decimal] = []
        self._ask_px: list[Decimal] = []

    # ------------------------------------------------------------------ folding

    def on_snapshot(self, snap: BookSnapshot) -> None:
        """Reset to ``snap`` (unless it is older than a synced book), then replay the buffer."""
        if self.synced and snap.version < self.version:
            self.stale += 1
            return
        self._bids, self._bid_px = _load(snap.bids)
        self._asks, self._ask_px = _load(snap.asks)
        self.version = snap.version
        self.full = snap.full
        self.ts_ms = snap.ts_ms
        self.synced = True
        self.gap = None
        self._replay()

    def on_delta(self, delta: BookDelta) -> None:
        """Apply, ignore as stale, buffer, or flag a gap (see the module docstring)."""
        if not self.synced:
            self.pending.append(delta)
            return
        last = delta.end if delta.end is not None else delta.version
        if last <= self.version:
            self.stale += 1
            return
        first = delta.begin if delta.begin is not None else delta.version
        if first > self.version + 1:
            self._gapped(self.version + 1, first)
            self.pending.append(delta)
            return
        if delta.bids:
            _update(self._bids, self._bid_px, delta.bids)
        if delta.asks:
            _update(self._asks, self._ask_px, delta.asks)
        self.version = last
        if delta.ts_ms is not None:
            self.ts_ms = delta.ts_ms

    def on_gap_detected(self, expected: int, got: int) -> None:
        """The engine saw a gap: stop applying deltas until a resync."""
        if self.synced:
            self._gapped(expected, got)

    def on_resynced_by_commits(self) -> None:
        """Re-arm a gapped book at its own version and replay the buffered deltas."""
        if self.gap is not None:
            self.synced = True
            self.gap = None
            self._replay()

    def _gapped(self, expected: int, got: int) -> None:
        self.synced = False
        self.gap = (expected, got)
        self.gaps += 1

    def _replay(self) -> None:
        buffered = sorted(self.pending, key=lambda d: (_first(d), _last(d)))
        self.pending.clear()
        for i, delta in enumerate(buffered):
            self.on_delta(delta)
            if not self.synced:
                self.pending.extend(buffered[i + 1 :])
                return

    # ------------------------------------------------------------------ queries

    @property
    def gapped(self) -> bool:
        """True between a detected gap and the snapshot (or resync) that repairs it."""
        return self.gap is not None

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        """(price, vol) of the highest bid."""
        if not self._bid_px:
            return None
        price = self._bid_px[-1]
        return price, self._bids[price][0]

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        """(price, vol) of the lowest ask."""
        if not self._ask_px:
            return None
        price = self._ask_px[0]
        return price, self._asks[price][0]

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bid levels (all when None), best first."""
        px = self._bid_px
        chosen = px[::-1] if n is None else px[: -n - 1 : -1] if n > 0 else []
        side = self._bids
        return [(p, *side[p]) for p in chosen]

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` ask levels (all when None), best first."""
        chosen = self._ask_px if n is None else self._ask_px[: max(n, 0)]
        side = self._asks
        return [(p, *side[p]) for p in chosen]

    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels."""
        return len(self._bid_px), len(self._ask_px)

    # ------------------------------------------------------------------ snapshot

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": self.version,
            "synced": self.synced,
            "full": self.full,
            "gap": None if self.gap is None else list(self.gap),
            "gaps": self.gaps,
            "stale": self.stale,
            "ts_ms": self.ts_ms,
            "bids": _levels_data(self.bids()),
            "asks": _levels_data(self.asks()),
            "pending": [_delta_data(d) for d in self.pending],
        }

    @classmethod
    def from_data(cls, symbol: str, data: dict[str, Any]) -> OrderBook:
        """Inverse of :meth:`to_data`."""
        book = cls(symbol)
        book.version = int(data["version"])
        book.synced = bool(data["synced"])
        book.full = bool(data["full"])
        gap = data["gap"]
        book.gap = None if gap is None else (int(gap[0]), int(gap[1]))
        book.gaps = int(data["gaps"])
        book.stale = int(data["stale"])
        book.ts_ms = data["ts_ms"]
        book._bids, book._bid_px = _load(_levels(data["bids"]))
        book._asks, book._ask_px = _load(_levels(data["asks"]))
        book.pending.extend(_delta(symbol, d) for d in data["pending"])
        return book


class BookProjection:
    """Every symbol's :class:`OrderBook`; mutated only by the fold."""

    __slots__ = ("_books",)

    def __init__(self) -> None:
        self._books: dict[str, OrderBook] = {}

    def _book(self, symbol: str) -> OrderBook:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = OrderBook(symbol)
        return book

    def on_snapshot(self, snap: BookSnapshot) -> None:
        """A full or top-N snapshot."""
        self._book(snap.symbol).on_snapshot(snap)

    def on_delta(self, delta: BookDelta) -> None:
        """An incremental update."""
        book = self._books.get(delta.symbol)
        if book is None:
            book = self._book(delta.symbol)
        book.on_delta(delta)

    def on_gap_detected(self, event: BookGapDetected) -> None:
        """The engine reports a gap."""
        self._book(event.symbol).on_gap_detected(event.expected, event.got)

    def on_resynced(self, event: BookResynced) -> None:
        """The engine repaired a book; only ``how="commits"`` changes anything here."""
        if event.how == "commits":
            self._book(event.symbol).on_resynced_by_commits()

    def get(self, symbol: str) -> OrderBook | None:
        """The book of ``symbol``, None if nothing was seen."""
        return self._books.get(symbol)

    def symbols(self) -> tuple[str, ...]:
        """Symbols with a book, in order of first appearance."""
        return tuple(self._books)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {symbol: book.to_data() for symbol, book in self._books.items()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> BookProjection:
        """Inverse of :meth:`to_data`."""
        proj = cls()
        for symbol, item in data.items():
            proj._books[str(symbol)] = OrderBook.from_data(str(symbol), item)
        return proj


def _levels_data(levels: Iterable[Level]) -> list[list[Any]]:
    return [[str(p), str(v), c] for p, v, c in levels]


def _levels(data: Any) -> list[Level]:
    try:
        return [(dec(p), dec(v), int(c)) for p, v, c in data]
    except (TypeError, ValueError) as exc:
        raise SnapshotError(f"bad book levels: {exc}") from exc


def _delta_data(d: BookDelta) -> dict[str, Any]:
    return {"version": d.version, "begin": d.begin, "end": d.end, "ts_ms": d.ts_ms,
            "bids": _levels_data(d.bids), "asks": _levels_data(d.asks)}


def _delta(symbol: str, data: dict[str, Any]) -> BookDelta:
    return BookDelta(symbol=symbol, version=int(data["version"]), begin=data["begin"],
                     end=data["end"], ts_ms=data["ts_ms"], bids=tuple(_levels(data["bids"])),
                     asks=tuple(_levels(data["asks"])))
