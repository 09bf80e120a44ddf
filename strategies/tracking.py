"""Knowing when a strategy's own order has settled into the account (pure).

An order's fill and the position push that reflects it are separate messages. Between the
two, the order is already terminal (filled) while the position still shows the volume from
before, so a strategy that only looks at open orders and positions would act twice: close a
position again, open a second one. :func:`settling` treats an order as unsettled until it is
terminal *and*, if it traded, the position side it acted on carries an update at least as
new as the order's last fill. :class:`OrderTracker` keeps a strategy's recent orders and
answers "is anything of mine still settling?".
"""

from __future__ import annotations

from typing import Any

__all__ = ["OrderTracker", "settling"]


def settling(view: Any, external_oid: str) -> bool:
    """True while the order is in flight, or filled with no position update since."""
    order = view.order(external_oid)
    if order is None:
        return False
    if not order.status.is_terminal:
        return True
    if order.filled_vol <= 0 or order.side is None:
        return False  # denied, rejected or cancelled untouched: nothing to wait for
    traded_ms = order.last_fill_ms or order.exchange_update_ms
    position = view.position(order.symbol, order.side.position_type)
    if position is None:
        return True  # the first push about this position side is still on its way
    if traded_ms is None or position.update_ms is None:
        return False  # no times to compare: trust the position as it stands
    return bool(position.update_ms < traded_ms)


class OrderTracker:
    """The externalOids a strategy placed that have not settled yet."""

    def __init__(self) -> None:
        self._oids: dict[str, str] = {}  # externalOid -> symbol

    def add(self, external_oid: str, symbol: str) -> None:
        """Remember an order just placed."""
        self._oids[external_oid] = symbol

    def busy(self, view: Any, symbol: str | None = None) -> bool:
        """Forget the orders that have settled; True if one (of ``symbol``) is still settling."""
        for oid in [o for o in self._oids if not settling(view, o)]:
            del self._oids[oid]
        return any(symbol is None or s == symbol for s in self._oids.values())

    def __len__(self) -> int:
        return len(self._oids)
