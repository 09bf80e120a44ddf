"""Differences between what the journal believes and what the exchange answers (pure).

:class:`Belief` is the journal's view of the account, taken from the live
:class:`~engine.projections.StateView` *before* asking the exchange; the ``*_differences``
functions compare it with the exchange's REST answers (model values) and return
:class:`~engine.events.ReconcileDifference` events, each with a stable ``what``:

``order_missing``
    an order the journal holds open that the exchange does not list as open (it was filled,
    cancelled or never placed; the caller queries it so that the fold learns which);
``order_unknown``
    an order open at the exchange that the journal did not hold open;
``order_changed``
    an order both hold open, with more volume dealt at the exchange than the journal saw;
``position_changed``
    a position side whose held volume differs (absent counts as 0);
``balance_changed``
    a currency whose available, frozen or position-margin balance differs.

Orders are matched by exchange order id when both sides have it, else by ``externalOid``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from attrs import frozen

from engine.events import ReconcileDifference
from engine.model import BalanceUpdate, OrderUpdate, PositionState, PositionType, PositionUpdate
from engine.projections.order_view import OrderView

__all__ = [
    "Belief",
    "BeliefSource",
    "balance_differences",
    "missing_order_difference",
    "order_differences",
    "position_differences",
    "position_key",
]

ZERO = Decimal(0)


class BeliefSource(Protocol):
    """The parts of :class:`~engine.projections.StateView` that reconciliation reads."""

    def open_orders(self, symbol: str | None = None) -> tuple[OrderView, ...]: ...
    def positions(self, symbol: str | None = None) -> tuple[PositionUpdate, ...]: ...
    def balance(self, currency: str) -> BalanceUpdate | None: ...


@frozen
class Belief:
    """The journal's account view at one moment: open orders, open positions, balances."""

    orders: tuple[OrderView, ...]
    positions: tuple[PositionUpdate, ...]
    balances: tuple[tuple[str, BalanceUpdate | None], ...]

    @classmethod
    def read(cls, view: BeliefSource, currencies: Iterable[str]) -> Belief:
        """Read ``view`` now (frozen values, so later folds do not change the belief)."""
        return cls(
            tuple(view.open_orders()),
            tuple(view.positions()),
            tuple((c, view.balance(c)) for c in dict.fromkeys(currencies)),
        )


def _order_key(order: OrderView) -> str:
    return order.external_oid or order.order_id or "?"


def order_differences(
    believed: Sequence[OrderView], exchange: Sequence[OrderUpdate], ts_ns: int, note: str = ""
) -> tuple[list[ReconcileDifference], list[OrderView]]:
    """Differences in open orders, and the believed-open orders the exchange did not list."""
    by_id = {o.order_id: o for o in exchange}
    by_ext = {o.external_oid: o for o in exchange if o.external_oid}
    matched: set[str] = set()
    out: list[ReconcileDifference] = []
    missing: list[OrderView] = []
    for order in believed:
        found = by_id.get(order.order_id) if order.order_id else None
        if found is None and order.external_oid:
            found = by_ext.get(order.external_oid)
        if found is None:
            missing.append(order)
            continue
        matched.add(found.order_id)
        if found.deal_vol > order.filled_vol:
            out.append(ReconcileDifference(
                "order_changed", _order_key(order),
                f"{note}{order.symbol} order {found.order_id}: dealt {found.deal_vol} at the "
                f"exchange, {order.filled_vol} in the journal", ts_ns))
    for found in exchange:
        if found.order_id not in matched:
            out.append(ReconcileDifference(
                "order_unknown", found.order_id,
                f"{note}{found.symbol} order {found.order_id} (externalOid "
                f"{found.external_oid or '-'}, {found.side.name.lower()} {found.vol} @ "
                f"{found.price}, dealt {found.deal_vol}) is open at the exchange, not in the "
                "journal", ts_ns))
    return out, missing


def missing_order_difference(
    order: OrderView, answer: OrderUpdate | None, failure: str | None, ts_ns: int, note: str = ""
) -> ReconcileDifference:
    """The ``order_missing`` event of ``order``, with what querying it found."""
    if answer is not None:
        found = (f"the exchange has it {answer.state.name.lower()}, dealt {answer.deal_vol}"
                 f" of {answer.vol}")
    else:
        found = f"querying it failed: {failure}" if failure else "it was not queried"
    ids = f"order {order.order_id or '-'} (externalOid {order.external_oid or '-'})"
    return ReconcileDifference(
        "order_missing", _order_key(order),
        f"{note}{order.symbol} {ids}: {order.status} in the journal, not open at the "
        f"exchange; {found}", ts_ns)


def position_key(symbol: str, position_type: PositionType) -> str:
    """``BTC_USDT:long``."""
    return f"{symbol}:{position_type.name.lower()}"


def _held(positions: Iterable[PositionUpdate]) -> dict[tuple[str, PositionType], Decimal]:
    out: dict[tuple[str, PositionType], Decimal] = {}
    for p in positions:
        if p.hold_vol and p.state is not PositionState.CLOSED:
            key = (p.symbol, p.position_type)
            out[key] = out.get(key, ZERO) + p.hold_vol
    return out


def position_differences(
    believed: Sequence[PositionUpdate], exchange: Sequence[PositionUpdate], ts_ns: int,
    note: str = "",
) -> list[ReconcileDifference]:
    """Position sides whose held volume differs (a side absent on one side holds 0)."""
    mine, theirs = _held(believed), _held(exchange)
    out: list[ReconcileDifference] = []
    for key in dict.fromkeys([*mine, *theirs]):
        a, b = mine.get(key, ZERO), theirs.get(key, ZERO)
        if a != b:
            out.append(ReconcileDifference(
                "position_changed", position_key(*key),
                f"{note}hold_vol {a} in the journal, {b} at the exchange", ts_ns))
    return out


def _amounts(b: BalanceUpdate | None) -> tuple[Decimal, Decimal, Decimal]:
    if b is None:
        return ZERO, ZERO, ZERO
    return b.available, b.frozen, b.position_margin


def balance_differences(
    believed: Mapping[str, BalanceUpdate | None], exchange: Sequence[BalanceUpdate], ts_ns: int,
    note: str = "",
) -> list[ReconcileDifference]:
    """Differences for the currencies in ``believed`` (the ones read before asking).

    A currency the journal had no balance for compares as zero; one the exchange does not
    list compares as zero too. Currencies not in ``believed`` are not compared: the journal's
    belief about them was not read in time.
    """
    theirs = {b.currency: b for b in exchange}
    out: list[ReconcileDifference] = []
    for currency, mine in believed.items():
        a, b = _amounts(mine), _amounts(theirs.get(currency))
        if a != b:
            out.append(ReconcileDifference(
                "balance_changed", currency,
                f"{note}available/frozen/position margin {_fmt(a)} in the journal, {_fmt(b)} "
                "at the exchange", ts_ns))
    return out


def _fmt(amounts: tuple[Any, ...]) -> str:
    return "/".join(str(a) for a in amounts)
