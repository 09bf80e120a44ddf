"""Pure folds of the journal: orders, positions, balances, books and market state (pure).

``state = State()``; ``apply(state, event)`` for each decoded event (or ``project(state,
events)``); strategies read ``state.view()``. ``State.snapshot()`` / ``State.restore(data)``
checkpoint the fold. See docs/projections.md.
"""

from __future__ import annotations

from engine.projections.base import (
    MAX_ANOMALIES,
    Anomaly,
    ProjectionError,
    SnapshotError,
    UnsupportedEventError,
)
from engine.projections.book import MAX_PENDING, OrderBook
from engine.projections.market import MarketView
from engine.projections.order_view import OrderStatus, OrderView
from engine.projections.state import (
    IGNORED_TYPES,
    MARKET_TYPES,
    SNAPSHOT_FORMAT,
    State,
    apply,
    project,
    project_except,
)
from engine.projections.view import BookView, StateView

__all__ = [
    "IGNORED_TYPES",
    "MARKET_TYPES",
    "MAX_ANOMALIES",
    "MAX_PENDING",
    "SNAPSHOT_FORMAT",
    "Anomaly",
    "BookView",
    "MarketView",
    "OrderBook",
    "OrderStatus",
    "OrderView",
    "ProjectionError",
    "SnapshotError",
    "State",
    "StateView",
    "UnsupportedEventError",
    "apply",
    "project",
    "project_except",
]
