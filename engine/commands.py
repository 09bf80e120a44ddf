"""Commands a strategy emits, in the imperative (pure).

A command is an intent. The risk gate accepts or denies it (both journaled), and only then
does an adapter sign and send it. Every order command carries a deterministic
``external_oid`` so that an unknown outcome can be settled by query after a crash.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from attrs import frozen

from engine.model import OpenType, OrderType, PositionType, Side

__all__ = [
    "CancelAll",
    "CancelByExternalOid",
    "CancelOrder",
    "ChangeLeverage",
    "ChangeMargin",
    "Command",
    "MarginChange",
    "PlaceOrder",
]


@frozen
class PlaceOrder:
    """Place one order with every MEXC order field.

    ``price`` is required for every type but market orders. ``leverage`` is required for
    isolated opening orders on MEXC. ``position_mode`` 1 is hedge, 2 one-way; ``reduce_only``
    applies only in one-way mode.
    """

    symbol: str
    side: Side
    order_type: OrderType
    vol: Decimal
    external_oid: str
    price: Decimal | None = None
    open_type: OpenType = OpenType.CROSS
    leverage: int | None = None
    position_id: str | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    position_mode: int | None = None
    reduce_only: bool | None = None
    loss_trend: int | None = None
    profit_trend: int | None = None
    price_protect: int | None = None
    stp_mode: int | None = None


@frozen
class CancelOrder:
    """Cancel one order by exchange order id."""

    order_id: str
    symbol: str | None = None


@frozen
class CancelByExternalOid:
    """Cancel one order by the client id it was placed with."""

    symbol: str
    external_oid: str


@frozen
class CancelAll:
    """Cancel every open order, of one symbol or (``symbol=None``) all of them."""

    symbol: str | None = None


@frozen
class ChangeLeverage:
    """Change leverage of a position, or of a (symbol, side, open type) with no position."""

    leverage: int
    position_id: str | None = None
    symbol: str | None = None
    open_type: OpenType | None = None
    position_type: PositionType | None = None


class MarginChange(StrEnum):
    """Direction of a margin change."""

    ADD = "ADD"
    SUB = "SUB"


@frozen
class ChangeMargin:
    """Add or remove isolated margin of a position."""

    position_id: str
    amount: Decimal
    direction: MarginChange


Command = PlaceOrder | CancelOrder | CancelByExternalOid | CancelAll | ChangeLeverage | ChangeMargin
"""Every command a strategy may emit."""
