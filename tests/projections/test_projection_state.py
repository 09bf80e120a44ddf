"""State as a whole: dispatch, snapshot/restore equivalence, equality, the read-only view."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import Event, TimerFired
from engine.model import OrderState, PositionModeUpdate
from engine.projections import (
    SnapshotError,
    State,
    UnsupportedEventError,
    apply,
    project,
)

from .projection_events import (
    SYM,
    SYMBOLS,
    accepted,
    any_event,
    bal,
    delta,
    fill,
    lvl,
    req,
    snap,
    upd,
)


def fold(events: list[object]) -> State:
    return project(State(), events)


def through_json(state: State) -> State:
    """Snapshot, serialise as JSON text, parse back, restore."""
    return State.restore(orjson.loads(orjson.dumps(state.snapshot())))


@settings(max_examples=150, deadline=None)
@given(st.lists(any_event, max_size=60), st.data())
def test_fold_of_all_equals_restore_of_prefix_then_rest(events: list[object], data: st.DataObject):
    k = data.draw(st.integers(0, len(events)), label="k")
    whole = fold(events)
    resumed = project(through_json(fold(events[:k])), events[k:])
    assert resumed.snapshot() == whole.snapshot()
    assert resumed == whole
    assert resumed.applied == len(events)
    # what a strategy iterates over comes out in the same order too
    for symbol in (None, *SYMBOLS):
        assert resumed.view().open_orders(symbol) == whole.view().open_orders(symbol)
    assert resumed.view().orders() == whole.view().orders()


@settings(max_examples=60, deadline=None)
@given(st.lists(any_event, min_size=1, max_size=40))
def test_snapshot_is_stable_through_json(events: list[object]):
    state = fold(events)
    assert through_json(state).snapshot() == state.snapshot()


def test_equality_sees_differences():
    a = fold([req("c1"), bal()])
    b = fold([req("c1"), bal(avail="99")])
    assert a != b
    assert a == fold([req("c1"), bal()])
    assert a != "not a state"


def test_apply_returns_the_same_state_and_counts():
    state = State()
    assert apply(state, bal()) is state
    assert apply(state, TimerFired(name="t", ts_ns=1)) is state
    assert apply(state, PositionModeUpdate(position_mode=1)) is state
    assert state.applied == 3


def test_undecoded_row_is_a_clear_error():
    row = Event(seq=1, session="s", ts_ns=1, venue_ts_ms=None, source="ws", kind="ws.push.deal",
                stream=None, cause=None, body="{}", hash="0" * 64)
    state = State()
    with pytest.raises(UnsupportedEventError, match="decode journal rows first"):
        apply(state, row)
    with pytest.raises(UnsupportedEventError):
        project(state, [{"channel": "push.deal"}])
    assert state.applied == 0


def test_restore_refuses_junk():
    with pytest.raises(SnapshotError):
        State.restore({"format": 99})
    good = fold([req("c1"), upd("9", ext="c1")]).snapshot()
    broken = {**good, "orders": {**good["orders"], "orders": [{"symbol": 5}]}}
    with pytest.raises(SnapshotError):
        State.restore(broken)
    with pytest.raises(SnapshotError):
        State.restore({k: v for k, v in good.items() if k != "books"})


def test_snapshot_keeps_decimals_exact():
    state = fold([req("c1", vol="1.50"), accepted("c1", "9"), fill("f", "9", "0.50", "100.10")])
    data = state.snapshot()
    order = data["orders"]["orders"][0]
    assert order["vol"] == "1.50" and order["fill_notional"] == "50.0500"
    restored = State.restore(data).view().order("c1")
    assert restored is not None and restored.avg_price == Decimal("100.10")


def test_view_reads_every_projection():
    state = fold([
        req("c1"), accepted("c1", "9"), upd("9", ext="c1", version=1),
        snap(5, [lvl(99, 1)], [lvl(101, 2)]), delta(6, [lvl(100, 3)]), bal(),
    ])
    view = state.view()
    assert view is state.view()
    assert [o.external_oid for o in view.open_orders(SYM)] == ["c1"]
    assert view.order_by_id("9") is view.order("c1")
    book = view.book(SYM)
    assert book is not None and book.best_bid() == (Decimal(100), Decimal(3))
    assert view.balance("USDT") is not None and view.book("NOPE") is None
    assert view.applied == 6
    # the view is live, the records are frozen values
    apply(state, upd("9", OrderState.CANCELLED, ext="c1", version=2))
    assert view.open_orders() == ()
    with pytest.raises(AttributeError):
        view.order("c1").status = "open"  # type: ignore[misc, union-attr]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(any_event, max_size=4), max_size=20))
def test_folder_folds_batches_like_apply_one_by_one(batches: list[list[object]]):
    from engine.projections.state import folder

    by_batch = State()
    fold_batch = folder(by_batch)
    one_by_one = State()
    for batch in batches:
        fold_batch(batch)
        for event in batch:
            apply(one_by_one, event)
    assert by_batch == one_by_one
    assert by_batch.snapshot() == one_by_one.snapshot()
    assert by_batch.applied == one_by_one.applied == sum(map(len, batches))
