"""The whole projected state, the fold over it, and its snapshots (pure).

``apply(state, event)`` routes one decoded event to the projection that folds it, by exact type
through a table of bound methods built once per :class:`State` (the same dispatch
``functools.singledispatch`` does, without its per-call overhead; subclasses resolve through
their MRO once and are cached). ``project(state, events)`` is the plain loop. The state is
mutated in place and returned: the sequencer is its single owner, and strategies see it only
through :class:`~engine.projections.view.StateView`.

If a handler raises, the state may be half-updated: a failed fold means the state has
diverged; rebuild it by replaying the journal.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any, Final

from engine.events import (
    BookGapDetected,
    BookResynced,
    CommandAccepted,
    CommandDenied,
    CommandIssued,
    Connected,
    DecodeFailed,
    Disconnected,
    KillSwitchTripped,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderRequested,
    OrderSent,
    ReconcileDifference,
    SessionEnded,
    SessionStarted,
    StopRequested,
    StrategyFailed,
    TimerFired,
)
from engine.model import (
    AdlLevel,
    BalanceUpdate,
    BookDelta,
    BookSnapshot,
    ContractInfo,
    FairPrice,
    Fill,
    FundingRate,
    IndexPrice,
    Kline,
    OrderUpdate,
    PlanOrderUpdate,
    PositionModeUpdate,
    PositionUpdate,
    RiskLimitUpdate,
    StopOrderUpdate,
    Ticker,
    Trade,
)
from engine.projections.balances import BalanceProjection
from engine.projections.base import (
    Anomaly,
    FoldContext,
    SnapshotError,
    UnsupportedEventError,
)
from engine.projections.book import BookProjection
from engine.projections.market import MarketProjection
from engine.projections.orders import OrderProjection
from engine.projections.positions import PositionProjection
from engine.projections.view import StateView

__all__ = ["IGNORED_TYPES", "MARKET_TYPES", "SNAPSHOT_FORMAT", "State", "apply", "folder",
           "project", "project_except"]

SNAPSHOT_FORMAT: Final = 1

IGNORED_TYPES: Final[tuple[type, ...]] = (
    CommandIssued,
    CommandAccepted,
    TimerFired,
    Connected,
    Disconnected,
    DecodeFailed,
    KillSwitchTripped,
    SessionEnded,
    SessionStarted,
    StrategyFailed,
    StopRequested,
    ReconcileDifference,
    PlanOrderUpdate,
    StopOrderUpdate,
    RiskLimitUpdate,
    AdlLevel,
    PositionModeUpdate,
)
"""Event types the fold accepts and counts but that change no projection (yet)."""


MARKET_TYPES: Final[frozenset[type]] = frozenset({
    BookSnapshot,
    BookDelta,
    BookGapDetected,
    BookResynced,
    Trade,
    Ticker,
    FairPrice,
    IndexPrice,
    FundingRate,
    Kline,
    ContractInfo,
})
"""Types only the books and market projections fold. Those two read nothing but these values
(not the other projections, not the fold context), so two states fed the same sequence of
them hold equal books and markets, whatever else each folded in between."""


def _ignore(_: object) -> None:
    return None


class State:
    """Orders, positions, balances, books and market state, folded from events."""

    __slots__ = ("_ctx", "_dispatch", "_view", "balances", "books", "market", "orders",
                 "positions")

    def __init__(self) -> None:
        ctx = FoldContext()
        self._setup(ctx, OrderProjection(ctx), PositionProjection(ctx), BalanceProjection(ctx),
                    BookProjection(), MarketProjection(ctx))

    def _setup(
        self,
        ctx: FoldContext,
        orders: OrderProjection,
        positions: PositionProjection,
        balances: BalanceProjection,
        books: BookProjection,
        market: MarketProjection,
    ) -> None:
        self._ctx = ctx
        self.orders = orders
        self.positions = positions
        self.balances = balances
        self.books = books
        self.market = market
        self._view: StateView | None = None
        dispatch: dict[type, Callable[[Any], None]] = {
            OrderRequested: orders.on_requested,
            CommandDenied: orders.on_denied,
            OrderSent: orders.on_sent,
            OrderAccepted: orders.on_accepted,
            OrderRejected: orders.on_rejected,
            OrderOutcomeUnknown: orders.on_unknown,
            OrderUpdate: orders.on_update,
            Fill: orders.on_fill,
            PositionUpdate: positions.on_update,
            BalanceUpdate: balances.on_update,
            BookSnapshot: books.on_snapshot,
            BookDelta: books.on_delta,
            BookGapDetected: books.on_gap_detected,
            BookResynced: books.on_resynced,
            Trade: market.on_trade,
            Ticker: market.on_ticker,
            FairPrice: market.on_fair_price,
            IndexPrice: market.on_index_price,
            FundingRate: market.on_funding_rate,
            Kline: market.on_kline,
            ContractInfo: market.on_contract,
        }
        dispatch.update(dict.fromkeys(IGNORED_TYPES, _ignore))
        self._dispatch = dispatch

    def handler_for(self, cls: type) -> Callable[[Any], None]:
        """The handler of ``cls`` (through its MRO); :class:`UnsupportedEventError` if none."""
        handler = self._dispatch.get(cls)
        if handler is None:
            for base in cls.__mro__[1:]:
                handler = self._dispatch.get(base)
                if handler is not None:
                    self._dispatch[cls] = handler
                    break
            else:
                raise UnsupportedEventError(
                    f"cannot fold a {cls.__module__}.{cls.__qualname__}: the fold takes decoded "
                    "engine events and model messages (decode journal rows first)"
                )
        return handler

    @property
    def applied(self) -> int:
        """Events folded into this state (including those folded before a snapshot)."""
        return self._ctx.applied

    @property
    def anomalies(self) -> tuple[Anomaly, ...]:
        """The most recent anomalies (up to ``MAX_ANOMALIES``), oldest first."""
        return tuple(self._ctx.anomalies)

    @property
    def anomaly_count(self) -> int:
        """All anomalies ever recorded, including those no longer kept."""
        return self._ctx.anomaly_count

    def view(self) -> StateView:
        """The read-only view strategies get (one per state, live)."""
        if self._view is None:
            self._view = StateView(self)
        return self._view

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-ready data (Decimals as strings); see :meth:`restore`."""
        return {
            "format": SNAPSHOT_FORMAT,
            "fold": self._ctx.to_data(),
            "orders": self.orders.to_data(),
            "positions": self.positions.to_data(),
            "balances": self.balances.to_data(),
            "books": self.books.to_data(),
            "market": self.market.to_data(),
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> State:
        """The state :meth:`snapshot` described; folding on from it equals folding on before."""
        if not isinstance(data, Mapping) or data.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"not a format-{SNAPSHOT_FORMAT} state snapshot")
        state = cls.__new__(cls)
        try:
            ctx = FoldContext.from_data(data["fold"])
            state._setup(
                ctx,
                OrderProjection.from_data(ctx, data["orders"]),
                PositionProjection.from_data(ctx, data["positions"]),
                BalanceProjection.from_data(ctx, data["balances"]),
                BookProjection.from_data(data["books"]),
                MarketProjection.from_data(ctx, data["market"]),
            )
        except SnapshotError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # incl. decode errors
            raise SnapshotError(f"unreadable state snapshot: {exc!r}") from exc
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"<State applied={self.applied} orders={len(self.orders)} "
                f"books={len(self.books.symbols())} anomalies={self.anomaly_count}>")


def apply(state: State, event: object) -> State:
    """Fold one decoded event into ``state`` (in place) and return it."""
    handler = state._dispatch.get(type(event))
    if handler is None:
        handler = state.handler_for(type(event))
    handler(event)
    state._ctx.applied += 1
    return state


def folder(state: State) -> Callable[[Iterable[object]], None]:
    """``fold(values)``: :func:`apply` each of ``values`` to ``state`` in order, for loops that
    fold many small batches (a journal row's values) without a call per value."""
    dispatch = state._dispatch
    ctx = state._ctx
    handler_for = state.handler_for

    def fold(values: Iterable[object]) -> None:
        for event in values:
            handler = dispatch.get(type(event))
            if handler is None:
                handler = handler_for(type(event))
            handler(event)
            ctx.applied += 1

    return fold


def project(initial: State, events: Iterable[object]) -> State:
    """Fold ``events`` into ``initial`` in order (in place) and return it."""
    dispatch = initial._dispatch
    ctx = initial._ctx
    for event in events:
        handler = dispatch.get(type(event))
        if handler is None:
            handler = initial.handler_for(type(event))
        handler(event)
        ctx.applied += 1
    return initial


def project_except(initial: State, events: Iterable[object], skip: Container[type]) -> State:
    """Fold ``events`` like :func:`project`, except that an event whose exact type is in
    ``skip`` is only counted (in :attr:`State.applied`), its projection left as it is."""
    dispatch = initial._dispatch
    ctx = initial._ctx
    for event in events:
        cls = type(event)
        if cls not in skip:
            handler = dispatch.get(cls)
            if handler is None:
                handler = initial.handler_for(cls)
            handler(event)
        ctx.applied += 1
    return initial
