"""The order value a strategy sees, the fold's record behind it, and the status rule (pure).

An :class:`OrderView` keeps the three kinds of evidence about one order side by side: the
local REST lifecycle (``phase``: requested, denied, sent, accepted, rejected, unknown), the
newest exchange view (``exchange_*`` fields, from :class:`~engine.model.OrderUpdate`) and the
sum of the distinct fills seen (``fill_*``). ``status`` is derived from all three by
:func:`derive_status`, and a terminal status never changes afterwards.

The fold keeps each order in a mutable :class:`OrderRecord` (same fields) and hands out the
frozen :class:`OrderView` built on first request after a change and cached until the next:
replacing a 25-field frozen value per event (``attrs.evolve``, ~4 µs) cost more than all the
rest of an order event's fold.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from attrs import fields, frozen

from engine.commands import PlaceOrder
from engine.model import OrderState, OrderType, Side
from engine.projections.base import DECIMAL_CONTEXT, ZERO

__all__ = ["OrderRecord", "OrderStatus", "OrderView", "derive_status", "exchange_rank"]


class OrderStatus(StrEnum):
    """Where an order is in its life; the last five are terminal besides denied and rejected."""

    REQUESTED = "requested"
    DENIED = "denied"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    INVALID = "invalid"

    @property
    def is_terminal(self) -> bool:
        """True for denied, rejected, filled, cancelled and invalid: nothing changes it again."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.REJECTED,
        OrderStatus.FILLED,
        OrderStatus.CANCELLED,
        OrderStatus.INVALID,
    }
)
_FROM_EXCHANGE_TERMINAL = {
    OrderState.FILLED: OrderStatus.FILLED,
    OrderState.CANCELLED: OrderStatus.CANCELLED,
    OrderState.INVALID: OrderStatus.INVALID,
}
_RANK = {
    OrderState.PENDING: 0,
    OrderState.OPEN: 1,
    OrderState.FILLED: 2,
    OrderState.CANCELLED: 2,
    OrderState.INVALID: 2,
}


def exchange_rank(
    version: int | None, update_ms: int | None, state: OrderState, deal_vol: Decimal
) -> tuple[int, int, int, Decimal]:
    """The order in which exchange views of one order supersede each other.

    Version first, then update time, then progress (pending < open < terminal), then dealt
    volume; a missing version or time sorts below any present one. A view replaces the stored
    one only if its rank is strictly greater, so the newest view wins whatever the delivery
    order and an exact duplicate changes nothing.
    """
    return (
        -1 if version is None else version,
        -1 if update_ms is None else update_ms,
        _RANK[state],
        deal_vol,
    )


def derive_status(
    phase: OrderStatus | None,
    exchange_state: OrderState | None,
    filled_vol: Decimal,
    vol: Decimal | None,
) -> OrderStatus:
    """The status the evidence supports, by precedence.

    1. a terminal exchange state (filled, cancelled, invalid);
    2. a local denial or definite rejection;
    3. fills: filled when they cover ``vol``, else partially filled;
    4. any other exchange view (pending or open): open;
    5. the local phase (requested, sent, accepted, unknown).
    """
    if exchange_state is not None:
        terminal = _FROM_EXCHANGE_TERMINAL.get(exchange_state)
        if terminal is not None:
            return terminal
    if phase is OrderStatus.DENIED or phase is OrderStatus.REJECTED:
        return phase
    if filled_vol > 0:
        if vol is not None and filled_vol >= vol:
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED
    if exchange_state is not None or phase is None:
        return OrderStatus.OPEN
    return phase


@frozen
class OrderView:
    """One order as far as the journal tells.

    ``external_oid`` is None only for orders this engine never placed and whose exchange view
    carries no client id (tracked by ``order_id``). ``side``/``order_type``/``price``/``vol``
    come from the request and are overwritten by the newest exchange view. ``phase`` is None for
    orders not requested here. ``fees`` sums the fees of the fills (in their fee currency).
    """

    symbol: str
    status: OrderStatus
    external_oid: str | None = None
    order_id: str | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    price: Decimal | None = None
    vol: Decimal | None = None
    request: PlaceOrder | None = None
    phase: OrderStatus | None = None
    reason: str | None = None
    reject_code: int | None = None
    requested_ns: int | None = None
    answered_ns: int | None = None
    exchange_state: OrderState | None = None
    exchange_version: int | None = None
    exchange_update_ms: int | None = None
    exchange_deal_vol: Decimal = ZERO
    exchange_avg_price: Decimal = ZERO
    error_code: int = 0
    fill_count: int = 0
    fill_vol: Decimal = ZERO
    fill_notional: Decimal = ZERO
    fees: Decimal = ZERO
    last_fill_ms: int | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the order can no longer change status."""
        return self.status in _TERMINAL

    @property
    def is_open(self) -> bool:
        """True while the order may still be (or become) live on the exchange."""
        return self.status not in _TERMINAL

    @property
    def filled_vol(self) -> Decimal:
        """Contracts dealt: the larger of the exchange's count and the fills seen."""
        return self.fill_vol if self.fill_vol > self.exchange_deal_vol else self.exchange_deal_vol

    @property
    def avg_price(self) -> Decimal | None:
        """Average deal price: from the fills when they are ahead, else the exchange's."""
        if self.fill_vol > self.exchange_deal_vol:
            return DECIMAL_CONTEXT.divide(self.fill_notional, self.fill_vol)
        if self.exchange_deal_vol > 0:
            return self.exchange_avg_price
        return None

    @property
    def remaining_vol(self) -> Decimal | None:
        """Contracts not yet dealt (None when the order size is unknown)."""
        return None if self.vol is None else max(ZERO, self.vol - self.filled_vol)

    def exchange_rank(self) -> tuple[int, int, int, Decimal] | None:
        """:func:`exchange_rank` of the stored exchange view, None if there is none."""
        if self.exchange_state is None:
            return None
        return exchange_rank(
            self.exchange_version, self.exchange_update_ms, self.exchange_state,
            self.exchange_deal_vol,
        )


_NAMES = tuple(a.name for a in fields(OrderView))


class OrderRecord:
    """The fold's mutable twin of an :class:`OrderView`; never leaves the projection."""

    __slots__ = (*_NAMES, "view")

    def __init__(self, symbol: str, status: OrderStatus) -> None:
        self.symbol = symbol
        self.status = status
        self.external_oid: str | None = None
        self.order_id: str | None = None
        self.side: Side | None = None
        self.order_type: OrderType | None = None
        self.price: Decimal | None = None
        self.vol: Decimal | None = None
        self.request: PlaceOrder | None = None
        self.phase: OrderStatus | None = None
        self.reason: str | None = None
        self.reject_code: int | None = None
        self.requested_ns: int | None = None
        self.answered_ns: int | None = None
        self.exchange_state: OrderState | None = None
        self.exchange_version: int | None = None
        self.exchange_update_ms: int | None = None
        self.exchange_deal_vol = ZERO
        self.exchange_avg_price = ZERO
        self.error_code = 0
        self.fill_count = 0
        self.fill_vol = ZERO
        self.fill_notional = ZERO
        self.fees = ZERO
        self.last_fill_ms: int | None = None
        self.view: OrderView | None = None

    @classmethod
    def of(cls, view: OrderView) -> OrderRecord:
        """A record holding ``view``'s fields."""
        rec = cls(view.symbol, view.status)
        for name in _NAMES:
            setattr(rec, name, getattr(view, name))
        rec.view = view
        return rec

    def freeze(self) -> OrderView:
        """The frozen view of this record (cached until the record changes)."""
        view = self.view
        if view is None:
            view = self.view = OrderView(*[getattr(self, name) for name in _NAMES])
        return view

    @property
    def filled_vol(self) -> Decimal:
        """As :attr:`OrderView.filled_vol`."""
        return self.fill_vol if self.fill_vol > self.exchange_deal_vol else self.exchange_deal_vol

    def exchange_rank(self) -> tuple[int, int, int, Decimal] | None:
        """As :meth:`OrderView.exchange_rank`."""
        if self.exchange_state is None:
            return None
        return exchange_rank(
            self.exchange_version, self.exchange_update_ms, self.exchange_state,
            self.exchange_deal_vol,
        )
