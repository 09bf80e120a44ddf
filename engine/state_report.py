"""Plain, JSON-ready summaries of projected state for reports and audits (pure).

Replay's divergence report, ``audit state`` and ``audit export`` all show orders, positions,
balances, book tops and market prices the same way: as flat dicts of strings and numbers
(Decimals become strings, enums their names in lower case), so a table, JSON and CSV
render them without knowing the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import Enum
from typing import Any

from engine.model import BalanceUpdate, PositionUpdate
from engine.projections import OrderView, State, StateView

__all__ = [
    "BALANCE_COLUMNS",
    "ORDER_COLUMNS",
    "POSITION_COLUMNS",
    "balance_row",
    "order_row",
    "plain",
    "position_row",
    "state_tables",
    "view_summary",
]

ORDER_COLUMNS = ("external_oid", "order_id", "symbol", "side", "type", "price", "vol", "status",
                 "filled_vol", "avg_price", "fees", "fills", "reason")
POSITION_COLUMNS = ("symbol", "position_type", "open_type", "state", "hold_vol",
                    "hold_avg_price", "realised", "leverage", "liquidate_price")
BALANCE_COLUMNS = ("currency", "available", "frozen", "position_margin", "equity",
                   "unrealized")


def plain(value: Any) -> Any:
    """A JSON-ready scalar: Decimals as strings, enums by lower-case name, None kept."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.name.lower()
    return value


def order_row(o: OrderView) -> dict[str, Any]:
    """One order as a flat row (see :data:`ORDER_COLUMNS`)."""
    return {
        "external_oid": o.external_oid, "order_id": o.order_id, "symbol": o.symbol,
        "side": plain(o.side), "type": plain(o.order_type), "price": plain(o.price),
        "vol": plain(o.vol), "status": str(o.status), "filled_vol": plain(o.filled_vol),
        "avg_price": plain(o.avg_price), "fees": plain(o.fees), "fills": o.fill_count,
        "reason": o.reason,
    }


def position_row(p: PositionUpdate) -> dict[str, Any]:
    """One position side as a flat row (see :data:`POSITION_COLUMNS`)."""
    return {
        "symbol": p.symbol, "position_type": plain(p.position_type),
        "open_type": plain(p.open_type), "state": plain(p.state), "hold_vol": plain(p.hold_vol),
        "hold_avg_price": plain(p.hold_avg_price), "realised": plain(p.realised),
        "leverage": p.leverage, "liquidate_price": plain(p.liquidate_price),
    }


def balance_row(b: BalanceUpdate) -> dict[str, Any]:
    """One currency's balance as a flat row (see :data:`BALANCE_COLUMNS`)."""
    return {
        "currency": b.currency, "available": plain(b.available), "frozen": plain(b.frozen),
        "position_margin": plain(b.position_margin), "equity": plain(b.equity),
        "unrealized": plain(b.unrealized),
    }


def _book_top(view: StateView, symbol: str) -> dict[str, Any] | None:
    book = view.book(symbol)
    if book is None:
        return None
    bid, ask = book.best_bid(), book.best_ask()
    return {
        "bid": None if bid is None else [str(bid[0]), str(bid[1])],
        "ask": None if ask is None else [str(ask[0]), str(ask[1])],
        "version": book.version, "synced": book.synced,
    }


def _market(view: StateView, symbol: str) -> dict[str, Any] | None:
    m = view.market(symbol)
    if m is None:
        return None
    return {"last": plain(m.last_price), "fair": plain(m.fair_price),
            "index": plain(m.index_price), "ts_ms": m.ts_ms}


def view_summary(state: State, symbols: Iterable[str] = (), *,
                 max_orders: int = 20) -> dict[str, Any]:
    """What a strategy could see: open orders, positions, balances, book tops and prices.

    Books and prices are shown for ``symbols`` and for every symbol the state has a book of.
    """
    view = state.view()
    wanted = list(dict.fromkeys([*symbols, *state.books.symbols()]))
    open_orders = view.open_orders()
    return {
        "open_orders": [order_row(o) for o in open_orders[:max_orders]],
        "open_order_count": len(open_orders),
        "positions": [position_row(p) for p in view.positions()],
        "balances": [balance_row(b) for c in state.balances.currencies()
                     if (b := view.balance(c)) is not None],
        "books": {s: top for s in wanted if (top := _book_top(view, s)) is not None},
        "market": {s: m for s in wanted if (m := _market(view, s)) is not None},
    }


def state_tables(state: State, *, open_only: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Orders, positions (with contracts) and balances of ``state`` as lists of flat rows."""
    view = state.view()
    orders = view.open_orders() if open_only else view.orders()
    return {
        "orders": [order_row(o) for o in orders],
        "positions": [position_row(p) for p in view.positions()],
        "balances": [balance_row(b) for c in state.balances.currencies()
                     if (b := view.balance(c)) is not None],
    }
