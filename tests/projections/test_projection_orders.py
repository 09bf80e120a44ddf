"""The order state machine, one transition at a time."""

from __future__ import annotations

from decimal import Decimal

from engine.model import OrderState
from engine.projections import OrderStatus, OrderView, State, project

from .projection_events import (
    SYM,
    accepted,
    denied,
    fill,
    rejected,
    req,
    sent,
    unknown,
    upd,
)

S = OrderStatus
FILLED, CANCELLED, OPEN, INVALID = (OrderState.FILLED, OrderState.CANCELLED, OrderState.OPEN,
                                    OrderState.INVALID)


def fold(*events: object) -> State:
    return project(State(), events)


def order(state: State, ext: str = "c1") -> OrderView:
    view = state.view().order(ext)
    assert view is not None
    return view


def kinds(state: State) -> list[str]:
    return [a.kind for a in state.anomalies]


def test_requested_then_denied_is_terminal():
    state = fold(req("c1"), denied("c1"))
    o = order(state)
    assert (o.status, o.phase, o.reason) == (S.DENIED, S.DENIED, "kill switch")
    project(state, [sent("c1"), accepted("c1", "9")])
    assert order(state).status is S.DENIED
    assert "late_sent" in kinds(state) and "late_accept" in kinds(state)
    assert state.view().open_orders() == ()


def test_denial_of_other_commands_is_ignored():
    state = fold(req("c1"), denied("CancelAll"))
    assert order(state).status is S.REQUESTED and kinds(state) == []


def test_happy_path_through_every_status():
    state = fold(req("c1", vol=10))
    assert order(state).status is S.REQUESTED
    seen = []
    for event in (
        sent("c1"), accepted("c1", "9"), upd("9", OPEN, 0, ext="c1", version=1),
        fill("f1", "9", 4, "100", ext="c1"), upd("9", OPEN, 4, "100", ext="c1", version=2),
        fill("f2", "9", 6, "101", ext="c1"), upd("9", FILLED, 10, "100.6", ext="c1", version=3),
    ):
        project(state, [event])
        seen.append(order(state).status)
    assert seen == [S.SENT, S.ACCEPTED, S.OPEN, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED,
                    S.FILLED, S.FILLED]
    o = order(state)
    assert o.order_id == "9" and o.filled_vol == 10 and o.avg_price == Decimal("100.6")
    assert o.remaining_vol == 0 and o.fill_count == 2 and o.fees == Decimal("0.02")
    assert state.view().order_by_id("9") is o
    assert kinds(state) == []


def test_rejection_is_definite_and_terminal():
    state = fold(req("c1"), sent("c1"), rejected("c1", code=2005))
    o = order(state)
    assert (o.status, o.reject_code, o.order_id) == (S.REJECTED, 2005, None)
    project(state, [accepted("c1", "9"), upd("9", FILLED, 10, ext="c1")])
    assert order(state).status is S.REJECTED
    assert {"late_accept", "terminal_status_kept"} <= set(kinds(state))


def test_unknown_is_settled_by_exchange_evidence():
    state = fold(req("c1"), sent("c1"), unknown("c1"))
    assert order(state).status is S.UNKNOWN and order(state).reason == "timeout"
    project(state, [upd("9", OPEN, 0, ext="c1")])
    o = order(state)
    assert (o.status, o.phase, o.order_id) == (S.OPEN, S.UNKNOWN, "9")


def test_unknown_is_settled_by_a_definite_rejection_only():
    state = fold(req("c1"), sent("c1"), unknown("c1"), denied("c1"), unknown("c1"))
    assert order(state).status is S.UNKNOWN
    project(state, [rejected("c1")])
    assert order(state).status is S.REJECTED


def test_unknown_then_invalid_on_the_exchange_is_invalid_not_rejected():
    state = fold(req("c1"), sent("c1"), unknown("c1"), upd("9", INVALID, 0, ext="c1"))
    assert order(state).status is S.INVALID


def test_late_unknown_does_not_undo_an_answer():
    state = fold(req("c1"), sent("c1"), accepted("c1", "9"), unknown("c1"))
    assert order(state).status is S.ACCEPTED and "late_unknown" in kinds(state)


def test_stale_version_never_overrides_newer():
    state = fold(req("c1"), accepted("c1", "9"),
                 upd("9", FILLED, 10, "100", ext="c1", version=3),
                 upd("9", OPEN, 4, "100", ext="c1", version=2),
                 upd("9", FILLED, 10, "100", ext="c1", version=3))
    o = order(state)
    assert (o.status, o.exchange_version, o.filled_vol) == (S.FILLED, 3, 10)
    assert state.orders.stale_updates == 2


def test_version_decides_between_otherwise_equal_views():
    # an amended price (version 5) must survive a late view of the old price (version 4)
    state = fold(req("c1"), accepted("c1", "9"), upd("9", OPEN, ext="c1", version=5, price="101"),
                 upd("9", OPEN, ext="c1", version=4, price="100"))
    assert order(state).price == 101 and state.orders.stale_updates == 1


def test_update_time_orders_unversioned_updates():
    state = fold(req("c1"), accepted("c1", "9"),
                 upd("9", OPEN, 5, "100", ext="c1", ms=20),
                 upd("9", OPEN, 2, "100", ext="c1", ms=10))
    assert order(state).filled_vol == 5 and order(state).exchange_update_ms == 20


def test_terminal_exchange_state_does_not_regress_even_with_higher_version():
    state = fold(req("c1"), accepted("c1", "9"),
                 upd("9", CANCELLED, 0, ext="c1", version=2),
                 upd("9", OPEN, 0, ext="c1", version=5))
    assert order(state).status is S.CANCELLED and order(state).exchange_version == 2
    assert "exchange_state_regressed" in kinds(state)


def test_duplicate_fills_count_once():
    f = fill("f1", "9", 3, "100", ext="c1")
    state = fold(req("c1"), accepted("c1", "9"), f, f, fill("f1", "9", 3, "100"))
    o = order(state)
    assert (o.fill_count, o.filled_vol, o.status) == (1, 3, S.PARTIALLY_FILLED)
    assert state.orders.duplicate_fills == 2


def test_fills_alone_can_complete_an_order():
    state = fold(req("c1", vol=5), accepted("c1", "9"), fill("a", "9", 2, "100"),
                 fill("b", "9", 3, "110"))
    o = order(state)
    assert o.status is S.FILLED and o.avg_price == Decimal(106)


def test_fill_before_update_and_update_lagging_behind_fills():
    state = fold(req("c1"), accepted("c1", "9"), fill("a", "9", 4, "100"),
                 upd("9", OPEN, 0, ext="c1", version=1))
    o = order(state)
    assert o.status is S.PARTIALLY_FILLED and o.filled_vol == 4 and o.avg_price == 100


def test_cancelled_after_partial_fill_keeps_the_fill():
    state = fold(req("c1"), accepted("c1", "9"), upd("9", CANCELLED, 3, "99", ext="c1"),
                 fill("a", "9", 3, "99"))
    o = order(state)
    assert (o.status, o.filled_vol, o.avg_price, o.remaining_vol) == (S.CANCELLED, 3, 99, 7)


def test_exchange_news_before_the_rest_answer_is_adopted():
    # the WS push overtakes the REST accept and carries no client id
    state = fold(req("c1"), sent("c1"), upd("9", OPEN, 2, "100", version=2),
                 fill("a", "9", 2, "100"))
    assert order(state).status is S.SENT
    orphan = state.view().order_by_id("9")
    assert orphan is not None and orphan.external_oid is None
    assert [o.order_id for o in state.view().open_orders()] == [None, "9"]
    project(state, [accepted("c1", "9")])
    o = order(state)
    assert (o.status, o.order_id, o.filled_vol, o.exchange_version) == (
        S.PARTIALLY_FILLED, "9", 2, 2)
    assert state.view().order_by_id("9") is o
    assert state.view().open_orders(SYM) == (o,)
    assert len(state.orders) == 1


def test_order_placed_by_hand_is_tracked_by_id():
    state = fold(upd("77", OPEN, 0, version=1), fill("z", "77", 1))
    o = state.view().order_by_id("77")
    assert o is not None and o.phase is None and o.external_oid is None
    assert o.status is S.PARTIALLY_FILLED and o.vol == 10
    assert kinds(state) == ["unknown_order"]


def test_update_with_client_id_of_an_order_from_elsewhere():
    state = fold(upd("77", FILLED, 10, "100", ext="manual-1", version=1))
    o = order(state, "manual-1")
    assert o.status is S.FILLED and state.view().order_by_id("77") is o


def test_events_for_unknown_client_ids_are_anomalies():
    state = fold(sent("zz"), rejected("zz"), unknown("zz"), accepted("zz", "5"))
    assert kinds(state) == ["unknown_external_oid"] * 4
    assert state.view().order("zz") is None
    project(state, [upd("5", OPEN)])   # linked by the accept: lands under the client id
    assert order(state, "zz").order_id == "5"


def test_client_id_reused_for_another_order_id():
    state = fold(req("c1"), accepted("c1", "9"), upd("8", OPEN, ext="c1"))
    assert order(state).order_id == "9"
    assert "external_oid_reused" in kinds(state)
    assert state.view().order_by_id("8") is not None


def test_duplicate_request_is_an_anomaly():
    state = fold(req("c1", vol=1), req("c1", vol=2))
    assert order(state).vol == 1 and kinds(state) == ["duplicate_request"]
