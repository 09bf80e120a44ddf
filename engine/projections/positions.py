"""Hedge-mode positions, as the exchange reports them (pure).

One record per (symbol, :class:`~engine.model.PositionType`): the newest
:class:`~engine.model.PositionUpdate`, which is authoritative. An update older than the stored
one (by ``update_ms``, when both have it) is stale. A closed position keeps its record with
``state`` CLOSED and ``hold_vol`` 0, so that a late message about it cannot bring it back: a
CLOSED position id never reopens (MEXC opens a new position id), and a CLOSED message for a
position id other than the one currently held concerns an older position.

No position is derived locally from fills: fills change the exchange position, and the
exchange pushes the result; a strategy that wants an estimate between pushes can add its own
order's ``filled_vol``.
"""

from __future__ import annotations

from typing import Any

from attrs import evolve

from engine.codec import from_data, to_data
from engine.model import PositionState, PositionType, PositionUpdate
from engine.projections.base import ZERO, FoldContext

__all__ = ["PositionProjection"]

_CLOSED = PositionState.CLOSED


class PositionProjection:
    """Long and short position per symbol; mutated only by the fold."""

    __slots__ = ("_ctx", "_positions", "stale_updates")

    def __init__(self, ctx: FoldContext) -> None:
        self._ctx = ctx
        self._positions: dict[tuple[str, PositionType], PositionUpdate] = {}
        self.stale_updates = 0

    def on_update(self, update: PositionUpdate) -> None:
        """Store ``update`` unless it is older than what is known."""
        key = (update.symbol, update.position_type)
        cur = self._positions.get(key)
        if cur is not None:
            new_ms, cur_ms = update.update_ms, cur.update_ms
            if new_ms is not None and cur_ms is not None and new_ms < cur_ms:
                self.stale_updates += 1
                return
            same_id = update.position_id == cur.position_id
            if (same_id and cur.state is _CLOSED and update.state is not _CLOSED) or (
                not same_id and update.state is _CLOSED and cur.state is not _CLOSED
            ):
                self.stale_updates += 1
                return
        if update.state is _CLOSED and update.hold_vol:
            update = evolve(update, hold_vol=ZERO)
        self._positions[key] = update

    def get(self, symbol: str, position_type: PositionType) -> PositionUpdate | None:
        """The latest record of that position side (CLOSED with hold_vol 0 once closed)."""
        return self._positions.get((symbol, position_type))

    def open_positions(self, symbol: str | None = None) -> tuple[PositionUpdate, ...]:
        """Positions that hold contracts, optionally of one symbol."""
        return tuple(
            p for p in self._positions.values()
            if p.hold_vol and p.state is not _CLOSED and (symbol is None or p.symbol == symbol)
        )

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "positions": [to_data(p) for p in self._positions.values()],
            "stale_updates": self.stale_updates,
        }

    @classmethod
    def from_data(cls, ctx: FoldContext, data: dict[str, Any]) -> PositionProjection:
        """Inverse of :meth:`to_data`."""
        proj = cls(ctx)
        for item in data["positions"]:
            pos: PositionUpdate = from_data(item, PositionUpdate)
            proj._positions[(pos.symbol, pos.position_type)] = pos
        proj.stale_updates = int(data["stale_updates"])
        return proj
