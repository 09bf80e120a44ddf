"""A deliberately non-deterministic strategy for the replay tests: it reads the wall clock.

It quotes like the market maker, but sizes each quote from ``time.time_ns()`` read inside
``on_event``, so a replay (run at another wall time) places different orders than the
recording did. It lives outside ``strategies/`` on purpose: strategies must be pure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from attrs import evolve

from engine.commands import Command, PlaceOrder
from strategies.market_maker import MarketMaker


class WallClockMaker(MarketMaker):
    """The market maker, with quote sizes taken from the wall clock (wrong on purpose)."""

    name = "wall-clock-maker"
    version = "1"

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """Quote as the market maker does, sized ``1 + (µs of the wall clock) % 5``."""
        size = Decimal(1 + time.time_ns() // 1000 % 5)
        return [evolve(c, vol=size) if isinstance(c, PlaceOrder) and c.side.opens else c
                for c in super().on_event(view, event)]
