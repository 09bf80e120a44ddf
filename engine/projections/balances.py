"""Futures-account balances per currency, as the exchange reports them (pure).

The newest :class:`~engine.model.BalanceUpdate` of each currency wins; one older than the
stored one (by ``ts_ms``, when both have it) is stale and ignored.
"""

from __future__ import annotations

from typing import Any

from engine.codec import from_data, to_data
from engine.model import BalanceUpdate
from engine.projections.base import FoldContext

__all__ = ["BalanceProjection"]


class BalanceProjection:
    """Balance per currency; mutated only by the fold."""

    __slots__ = ("_balances", "_ctx", "stale_updates")

    def __init__(self, ctx: FoldContext) -> None:
        self._ctx = ctx
        self._balances: dict[str, BalanceUpdate] = {}
        self.stale_updates = 0

    def on_update(self, update: BalanceUpdate) -> None:
        """Store ``update`` unless it is older than what is known."""
        cur = self._balances.get(update.currency)
        if (
            cur is not None
            and update.ts_ms is not None
            and cur.ts_ms is not None
            and update.ts_ms < cur.ts_ms
        ):
            self.stale_updates += 1
            return
        self._balances[update.currency] = update

    def get(self, currency: str) -> BalanceUpdate | None:
        """The latest balance of ``currency``."""
        return self._balances.get(currency)

    def currencies(self) -> tuple[str, ...]:
        """Currencies seen, in order of first appearance."""
        return tuple(self._balances)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "balances": [to_data(b) for b in self._balances.values()],
            "stale_updates": self.stale_updates,
        }

    @classmethod
    def from_data(cls, ctx: FoldContext, data: dict[str, Any]) -> BalanceProjection:
        """Inverse of :meth:`to_data`."""
        proj = cls(ctx)
        for item in data["balances"]:
            bal: BalanceUpdate = from_data(item, BalanceUpdate)
            proj._balances[bal.currency] = bal
        proj.stale_updates = int(data["stale_updates"])
        return proj
