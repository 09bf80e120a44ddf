"""Order book sync: unit cases and random delta streams against the truth and a naive model."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import BookGapDetected, BookResynced
from engine.model import BookDelta, BookSnapshot
from engine.projections import MAX_PENDING, BookView, State, apply, project

from .projection_events import SYM, delta, lvl, snap

D = Decimal


def book_of(*events: object) -> BookView:
    view = project(State(), events).view().book(SYM)
    assert view is not None
    return view


def test_snapshot_then_contiguous_deltas():
    book = book_of(
        snap(10, [lvl(99, 1), lvl(98, 2)], [lvl(101, 1), lvl(102, 2)]),
        delta(11, [lvl(100, 5)]),
        delta(12, asks=[lvl(101, 0), lvl(103, 1, 4)]),
        delta(13, [lvl(97, 0)]),   # deleting an absent level is harmless
    )
    assert (book.version, book.synced, book.gapped, book.gaps) == (13, True, False, 0)
    assert book.best_bid() == (D(100), D(5)) and book.best_ask() == (D(102), D(2))
    assert book.bids(2) == [lvl(100, 5), lvl(99, 1)]
    assert book.asks() == [lvl(102, 2), lvl(103, 1, 4)]
    assert book.bids(0) == [] and len(book.bids()) == 3
    assert book.mid() == D(101)


def test_stale_deltas_are_ignored():
    book = book_of(snap(10, [lvl(99, 1)]), delta(9, [lvl(99, 7)]), delta(10, [lvl(99, 7)]))
    assert book.bids() == [lvl(99, 1)] and book.version == 10


def test_merged_frames_and_overlaps():
    book = book_of(snap(10, [lvl(99, 1)]), delta(12, [lvl(99, 2)], begin=11),
                   delta(14, [lvl(98, 3)], begin=12))  # overlaps 12: absolute, so safe
    assert book.version == 14 and book.bids() == [lvl(99, 2), lvl(98, 3)]


def test_gap_is_flagged_and_nothing_applies_until_a_snapshot():
    state = project(State(), [snap(10, [lvl(99, 1)]), delta(11, [lvl(99, 2)])])
    apply(state, delta(13, [lvl(99, 3)]))      # 12 is missing
    book = state.view().book(SYM)
    assert book is not None
    assert (book.gapped, book.synced, book.gap, book.gaps) == (True, False, (12, 13), 1)
    project(state, [delta(14, [lvl(99, 4)]), delta(15, [lvl(50, 1)])])
    assert book.version == 11 and book.bids() == [lvl(99, 2)]
    # the repair snapshot is older than what was buffered: the buffer continues it
    apply(state, snap(13, [lvl(99, 3)]))
    assert (book.synced, book.gap, book.version) == (True, None, 15)
    assert book.bids() == [lvl(99, 4), lvl(50, 1)] and book.gaps == 1


def test_deltas_before_the_first_snapshot_are_buffered():
    state = project(State(), [delta(5, [lvl(1, 1)]), delta(6, [lvl(2, 1)]), delta(7, [lvl(3, 1)])])
    book = state.view().book(SYM)
    assert book is not None and not book.synced and not book.gapped and book.version == -1
    apply(state, snap(5, [lvl(1, 1)]))
    assert book.version == 7 and [p for p, _, _ in book.bids()] == [D(3), D(2), D(1)]


def test_buffer_replay_can_find_a_new_gap():
    state = project(State(), [delta(6), delta(9), snap(5)])
    book = state.view().book(SYM)
    assert book is not None and book.version == 6 and book.gap == (7, 9) and book.gaps == 1


def test_pending_buffer_is_bounded():
    state = project(State(), [delta(v) for v in range(1, MAX_PENDING + 50)])
    assert len(state.books.get(SYM).pending) == MAX_PENDING  # type: ignore[union-attr]


def test_stale_snapshot_is_ignored_when_synced():
    book = book_of(snap(10, [lvl(99, 1)]), delta(11, [lvl(99, 2)]), snap(9, [lvl(1, 1)]))
    assert book.version == 11 and book.bids() == [lvl(99, 2)]


def test_engine_gap_and_commit_resync():
    state = project(State(), [snap(10, [lvl(99, 1)])])
    apply(state, BookGapDetected(symbol=SYM, expected=11, got=14, ts_ns=1))
    book = state.view().book(SYM)
    assert book is not None and book.gap == (11, 14) and book.gaps == 1
    apply(state, BookGapDetected(symbol=SYM, expected=11, got=15, ts_ns=2))
    assert book.gaps == 1
    project(state, [delta(14, [lvl(99, 4)]), delta(11, [lvl(99, 2)]), delta(13, begin=12)])
    assert book.version == 10
    apply(state, BookResynced(symbol=SYM, version=14, how="commits", ts_ns=3))
    assert (book.synced, book.version, book.bids()) == (True, 14, [lvl(99, 4)])
    apply(state, BookResynced(symbol=SYM, version=14, how="snapshot", ts_ns=3))
    assert book.version == 14


# ----------------------------------------------------------------------- random streams

Side = dict[Decimal, Decimal]


class NaiveBook:
    """The reference: the last accepted snapshot plus accepted deltas, rebuilt from scratch."""

    def __init__(self) -> None:
        self.base: BookSnapshot | None = None
        self.applied: list[BookDelta] = []
        self.pending: list[BookDelta] = []
        self.version = -1
        self.gap: tuple[int, int] | None = None
        self.gaps = 0

    @property
    def synced(self) -> bool:
        return self.base is not None and self.gap is None

    def feed(self, d: BookDelta) -> None:
        if not self.synced:
            self.pending.append(d)
        elif d.last_version > self.version:
            if d.first_version > self.version + 1:
                self.gap = (self.version + 1, d.first_version)
                self.gaps += 1
                self.pending.append(d)
            else:
                self.applied.append(d)
                self.version = d.last_version

    def flush(self) -> None:
        queued = sorted(self.pending, key=lambda d: (d.first_version, d.last_version))
        self.pending = []
        for d in queued:
            self.feed(d)

    def on(self, event: object) -> None:
        if isinstance(event, BookSnapshot):
            if self.synced and event.version < self.version:
                return
            self.base, self.applied, self.version, self.gap = event, [], event.version, None
            self.flush()
        elif isinstance(event, BookDelta):
            self.feed(event)
        elif isinstance(event, BookResynced) and self.gap is not None:
            self.gap = None
            self.flush()

    def sides(self) -> tuple[Side, Side]:
        assert self.base is not None
        bids = {p: v for p, v, _ in self.base.bids if v}
        asks = {p: v for p, v, _ in self.base.asks if v}
        for d in self.applied:
            for side, levels in ((bids, d.bids), (asks, d.asks)):
                for p, v, _ in levels:
                    side[p] = v
                    if not v:
                        del side[p]
        return bids, asks


def as_sides(view: BookView) -> tuple[Side, Side]:
    return {p: v for p, v, _ in view.bids()}, {p: v for p, v, _ in view.asks()}


@st.composite
def truth_and_stream(draw: st.DrawFn) -> tuple[list[tuple[Side, Side]], list[object]]:
    """A true book history (index = version - 100) and a lossy, reordered feed of it."""
    def changes() -> tuple[Side, Side]:
        pick = st.dictionaries(st.integers(1, 12).map(D), st.integers(0, 4).map(D), max_size=3)
        return draw(pick), draw(pick)

    first = 100
    start = draw(st.dictionaries(st.integers(1, 12).map(D), st.integers(1, 4).map(D)))
    truth: list[tuple[Side, Side]] = [(start, {})]
    diffs: list[tuple[Side, Side]] = [({}, {})]
    stream: list[object] = []

    def frame(begin: int, end: int) -> BookDelta:
        bids: Side = {}
        asks: Side = {}
        for v in range(begin, end + 1):
            bids.update(diffs[v - first][0])
            asks.update(diffs[v - first][1])
        def lv(side: Side) -> list[tuple[Decimal, Decimal, int]]:
            return [(p, q, 1) for p, q in side.items()]
        return delta(end, lv(bids), lv(asks), begin=begin if begin != end else None)

    def snapshot_at(v: int) -> BookSnapshot:
        bids, asks = truth[v - first]
        return snap(v, [(p, q, 1) for p, q in bids.items()], [(p, q, 1) for p, q in asks.items()])

    sent_up_to = first
    for _ in range(draw(st.integers(1, 30))):
        action = draw(st.sampled_from(["frame", "frame", "frame", "drop", "snapshot", "stale",
                                       "commits"]))
        if action in ("frame", "drop"):
            size = draw(st.integers(1, 3))
            for _ in range(size):
                bid_diff, ask_diff = changes()
                bids, asks = dict(truth[-1][0]), dict(truth[-1][1])
                for side, diff in ((bids, bid_diff), (asks, ask_diff)):
                    for p, q in diff.items():
                        side[p] = q
                        if not q:
                            del side[p]
                truth.append((bids, asks))
                diffs.append((bid_diff, ask_diff))
            top = first + len(truth) - 1
            begin = sent_up_to + 1 - draw(st.integers(0, 1))  # sometimes overlap by one
            if action == "frame":
                stream.append(frame(max(begin, first + 1), top))
            sent_up_to = top
        elif action == "snapshot":
            top = first + len(truth) - 1
            stream.append(snapshot_at(top - draw(st.integers(0, min(3, top - first)))))
        elif action == "stale" and sent_up_to > first:
            v = draw(st.integers(first + 1, sent_up_to))
            stream.append(frame(v, v))
        elif action == "commits" and sent_up_to > first:
            start = draw(st.integers(first + 1, sent_up_to))
            stream.extend(frame(v, v) for v in range(start, sent_up_to + 1))
            stream.append(BookResynced(symbol=SYM, version=sent_up_to, how="commits", ts_ns=0))
    return truth, stream


@settings(max_examples=100, deadline=None)
@given(truth_and_stream())
def test_book_follows_truth_and_reference_and_flags_every_gap(case):
    truth, stream = case
    state = State()
    ref = NaiveBook()
    for event in stream:
        before = state.books.get(SYM)
        was = (before.version, before.bids(), before.asks()) if before is not None else None
        was_gapped = before is not None and before.gapped
        apply(state, event)
        ref.on(event)
        book = state.view().book(SYM)
        if book is None:
            continue
        assert (book.version, book.synced, book.gap, book.gaps) == (
            ref.version, ref.synced, ref.gap, ref.gaps)
        if book.synced:
            assert as_sides(book) == ref.sides()
            assert as_sides(book) == truth[book.version - 100]
        if isinstance(event, BookDelta) and was is not None:
            if was_gapped or not before.synced:  # type: ignore[union-attr]
                assert (book.version, book.bids(), book.asks()) == was  # nothing applied
            elif book.version != was[0]:
                assert event.first_version <= was[0] + 1  # only contiguous frames apply
