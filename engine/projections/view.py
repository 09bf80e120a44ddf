"""Read-only views of the projected state for strategies and the risk gate (pure).

A :class:`StateView` answers queries against the live :class:`~engine.projections.state.State`
without exposing anything that could change it: records are frozen values, collections are
returned as tuples, a book is wrapped in a :class:`BookView`. The view is live: it reflects
every event folded after it was made.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from engine.model import BalanceUpdate, ContractInfo, Level, PositionType, PositionUpdate
from engine.projections.base import DECIMAL_CONTEXT, Anomaly
from engine.projections.book import OrderBook
from engine.projections.market import MarketView
from engine.projections.order_view import OrderView

if TYPE_CHECKING:
    from engine.projections.state import State

__all__ = ["BookView", "StateView"]


class BookView:
    """A read-only window on one :class:`OrderBook` (live: it sees later folds)."""

    __slots__ = ("_book",)

    def __init__(self, book: OrderBook) -> None:
        self._book = book

    @property
    def symbol(self) -> str:
        """The contract."""
        return self._book.symbol

    @property
    def version(self) -> int:
        """Last version applied (-1 before the first snapshot)."""
        return self._book.version

    @property
    def synced(self) -> bool:
        """True when the book follows the exchange (snapshot taken, no gap since)."""
        return self._book.synced

    @property
    def gapped(self) -> bool:
        """True after a gap until the repairing snapshot."""
        return self._book.gap is not None

    @property
    def gap(self) -> tuple[int, int] | None:
        """(expected first version, version received) of the open gap."""
        return self._book.gap

    @property
    def gaps(self) -> int:
        """Gaps detected since the session began."""
        return self._book.gaps

    @property
    def ts_ms(self) -> int | None:
        """Exchange time of the last snapshot or delta applied."""
        return self._book.ts_ms

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        """(price, vol) of the highest bid."""
        return self._book.best_bid()

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        """(price, vol) of the lowest ask."""
        return self._book.best_ask()

    def bids(self, n: int | None = None) -> list[Level]:
        """The best ``n`` bids, best first."""
        return self._book.bids(n)

    def asks(self, n: int | None = None) -> list[Level]:
        """The best ``n`` asks, best first."""
        return self._book.asks(n)

    def mid(self) -> Decimal | None:
        """Mid price, None unless both sides have a level."""
        bid, ask = self._book.best_bid(), self._book.best_ask()
        if bid is None or ask is None:
            return None
        return DECIMAL_CONTEXT.divide(bid[0] + ask[0], 2)


class StateView:
    """What a strategy may ask of the state."""

    __slots__ = ("_state",)

    def __init__(self, state: State) -> None:
        self._state = state

    # orders
    def order(self, external_oid: str) -> OrderView | None:
        """The order placed with ``external_oid``."""
        return self._state.orders.get(external_oid)

    def order_by_id(self, order_id: str) -> OrderView | None:
        """The order the exchange calls ``order_id`` (also orders placed elsewhere)."""
        return self._state.orders.by_order_id(order_id)

    def open_orders(self, symbol: str | None = None) -> tuple[OrderView, ...]:
        """Orders not yet terminal (requested, sent, unknown, accepted, open, partly filled)."""
        return self._state.orders.open_orders(symbol)

    def open_order_count(self, symbol: str | None = None) -> int:
        """``len(open_orders(symbol))``, without building the tuple."""
        return self._state.orders.open_count(symbol)

    def orders(self) -> tuple[OrderView, ...]:
        """Every order of the session, oldest first."""
        return tuple(self._state.orders)

    # account
    def position(self, symbol: str, position_type: PositionType) -> PositionUpdate | None:
        """The exchange's latest record of one position side (hold_vol 0 once closed)."""
        return self._state.positions.get(symbol, position_type)

    def positions(self, symbol: str | None = None) -> tuple[PositionUpdate, ...]:
        """Positions holding contracts."""
        return self._state.positions.open_positions(symbol)

    def balance(self, currency: str) -> BalanceUpdate | None:
        """The latest balance of ``currency``."""
        return self._state.balances.get(currency)

    # market
    def book(self, symbol: str) -> BookView | None:
        """The local order book of ``symbol``."""
        book = self._state.books.get(symbol)
        return None if book is None else BookView(book)

    def market(self, symbol: str) -> MarketView | None:
        """Prices, funding and candles of ``symbol``."""
        return self._state.market.get(symbol)

    def contract(self, symbol: str) -> ContractInfo | None:
        """Contract details of ``symbol``."""
        return self._state.market.contract(symbol)

    # bookkeeping
    @property
    def applied(self) -> int:
        """Events folded so far."""
        return self._state.applied

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        """The most recent anomalies, oldest first."""
        return self._state.anomalies
