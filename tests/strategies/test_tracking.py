"""strategies.tracking: an order settles when it is answered and, if it traded, once the
position carries an update at least as new as the trade."""

from __future__ import annotations

from decimal import Decimal

from engine.commands import PlaceOrder
from engine.model import OpenType, OrderState, OrderUpdate, PositionType
from strategies.basis import BasisWatcher
from strategies.tracking import OrderTracker, settling
from tests.strategies.harness import SYM, Harness, fair, index, position

D = Decimal


def _short_requested() -> tuple[Harness[BasisWatcher], PlaceOrder]:
    h = Harness(BasisWatcher)
    h.feed(index(100000))
    (sell,) = h.feed(fair(100200))
    assert isinstance(sell, PlaceOrder)
    return h, sell


def _answer(h: Harness[BasisWatcher], cmd: PlaceOrder, state: OrderState, deal: int) -> None:
    h.feed(OrderUpdate(order_id="9", symbol=SYM, side=cmd.side, order_type=cmd.order_type,
                       open_type=OpenType.ISOLATED, price=D(0), vol=cmd.vol, deal_vol=D(deal),
                       deal_avg_price=D(100200), state=state, external_oid=cmd.external_oid,
                       version=2, update_ms=h.now_ms))


def test_unknown_orders_are_not_settling() -> None:
    h, _ = _short_requested()
    assert not settling(h.state.view(), "nobody-placed-this")


def test_in_flight_until_the_position_catches_up_with_the_fill() -> None:
    h, sell = _short_requested()
    view = h.state.view()
    assert settling(view, sell.external_oid)  # requested, unanswered
    _answer(h, sell, OrderState.FILLED, 1)
    assert view.order(sell.external_oid).status.is_terminal  # type: ignore[union-attr]
    assert settling(view, sell.external_oid)  # no position push yet
    h.feed(position(PositionType.SHORT, 1, 100200, update_ms=h.now_ms - 5_000))
    assert settling(view, sell.external_oid)  # a push older than the fill
    h.feed(position(PositionType.SHORT, 1, 100200, update_ms=h.now_ms))
    assert not settling(view, sell.external_oid)


def test_an_order_that_never_traded_settles_when_answered() -> None:
    h, sell = _short_requested()
    _answer(h, sell, OrderState.CANCELLED, 0)
    assert not settling(h.state.view(), sell.external_oid)


def test_the_tracker_forgets_what_has_settled() -> None:
    h, sell = _short_requested()
    tracker = OrderTracker()
    tracker.add(sell.external_oid, SYM)
    view = h.state.view()
    assert tracker.busy(view) and tracker.busy(view, SYM)
    assert not tracker.busy(view, "ETH_USDT")
    _answer(h, sell, OrderState.CANCELLED, 0)
    assert not tracker.busy(view) and len(tracker) == 0

