"""Pieces every projection shares (pure): the fold context, anomalies, errors, decimal helpers.

The fold never raises for odd but well-typed input (a duplicate, a stale update, an update for
an order nobody asked for): it records an :class:`Anomaly` and carries on. It raises only
for input it cannot interpret at all (:class:`UnsupportedEventError`) or a snapshot it cannot
read (:class:`SnapshotError`)::

    EngineError
    └── ProjectionError
        ├── UnsupportedEventError   apply() got a value of a type no projection folds
        └── SnapshotError           State.restore() got data it cannot read
"""

from __future__ import annotations

from collections import deque
from decimal import Context, Decimal
from typing import Any, Final

from attrs import frozen

from engine.errors import EngineError

__all__ = [
    "DECIMAL_CONTEXT",
    "MAX_ANOMALIES",
    "ZERO",
    "Anomaly",
    "FoldContext",
    "ProjectionError",
    "SnapshotError",
    "UnsupportedEventError",
    "dec",
    "opt_dec",
    "opt_str",
]

MAX_ANOMALIES: Final = 1000
"""How many of the most recent anomalies the state keeps (it counts all of them)."""

ZERO: Final = Decimal(0)

# A private context so a caller's decimal settings cannot change what a fold computes.
DECIMAL_CONTEXT: Final = Context(prec=28)


class ProjectionError(EngineError):
    """A projection got input it cannot fold or restore."""


class UnsupportedEventError(ProjectionError, TypeError):
    """``apply`` got a value whose type no projection knows (e.g. an undecoded journal row)."""


class SnapshotError(ProjectionError, ValueError):
    """``State.restore`` got data that is not a snapshot this version can read."""


@frozen
class Anomaly:
    """Something inconsistent the fold noticed and survived.

    ``kind`` is a short stable name (see docs/projections.md), ``key`` the entity it concerns
    (an external_oid, an order id, a symbol), ``at`` the number of events folded before the
    one that caused it.
    """

    kind: str
    key: str
    detail: str
    at: int


class FoldContext:
    """The counters shared by all projections of one state: events folded and anomalies."""

    __slots__ = ("anomalies", "anomaly_count", "applied")

    def __init__(self) -> None:
        self.applied = 0
        self.anomaly_count = 0
        self.anomalies: deque[Anomaly] = deque(maxlen=MAX_ANOMALIES)

    def note(self, kind: str, key: str, detail: str = "") -> None:
        """Record an anomaly caused by the event being folded."""
        self.anomalies.append(Anomaly(kind, key, detail, self.applied))
        self.anomaly_count += 1

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "applied": self.applied,
            "anomaly_count": self.anomaly_count,
            "anomalies": [[a.kind, a.key, a.detail, a.at] for a in self.anomalies],
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> FoldContext:
        """Inverse of :meth:`to_data`."""
        ctx = cls()
        ctx.applied = int(data["applied"])
        ctx.anomaly_count = int(data["anomaly_count"])
        ctx.anomalies.extend(
            Anomaly(str(k), str(key), str(d), int(at)) for k, key, d, at in data["anomalies"]
        )
        return ctx


def dec(value: Any) -> Decimal:
    """A Decimal from its snapshot string."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise SnapshotError(f"expected a decimal string, got {value!r:.40}")
    return Decimal(value)


def opt_dec(value: Any) -> Decimal | None:
    """A Decimal or None from snapshot data."""
    return None if value is None else dec(value)


def opt_str(value: Decimal | None) -> str | None:
    """A Decimal or None as snapshot data."""
    return None if value is None else str(value)
