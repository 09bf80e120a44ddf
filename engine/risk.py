"""The pre-trade risk gate (pure).

Every command a strategy emits passes :meth:`RiskGate.check` before it is journaled as
accepted and handed to execution. The gate is deterministic: it reads time only from the
event being handled (``now_ns``) and keeps its own small state (the kill switch and the
recent order timestamps used for rate limiting), so a replay makes the same decisions.

Rules, in order, for order placement (cancels and queries always pass; they are what a
trader needs most when something is wrong):

1. kill switch tripped → deny;
2. symbol listed by the user as restricted, contract unknown, contract not enabled
   (``state != 0``), or ``api_allowed`` false → deny with the reason;
3. order rate: more than ``max_orders`` placements within ``window_s`` seconds → deny;
4. leverage outside the contract's bounds or above ``max_leverage`` → deny;
5. order notional (price × vol × contract size) above ``max_order_notional`` → deny;
6. resulting position above ``max_position_vol`` contracts on that side → deny;
7. more than ``max_open_orders`` open orders on the symbol → deny.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from attrs import field, frozen

from engine.commands import (
    CancelAll,
    CancelByExternalOid,
    CancelOrder,
    ChangeLeverage,
    ChangeMargin,
    Command,
    PlaceOrder,
)
from engine.model import ContractInfo, OrderType, PositionType

__all__ = ["Decision", "RiskGate", "RiskLimits", "RiskState"]


@frozen
class RiskLimits:
    """User-configured limits. The defaults respect MEXC's documented order-rate limits
    (``order/create`` 4 per 2 s in the new API generation)."""

    max_orders: int = 4
    window_s: float = 2.0
    max_leverage: int = 20
    max_order_notional: Decimal = Decimal("100000")
    max_position_vol: Decimal = Decimal("100000")
    max_open_orders: int = 50
    restricted_symbols: frozenset[str] = field(factory=frozenset, converter=frozenset)


@frozen
class Decision:
    """The gate's answer: ``accepted`` or not, with the reason for a denial."""

    accepted: bool
    reason: str = ""

    @classmethod
    def accept(cls) -> Decision:
        """An accepting decision."""
        return cls(True)

    @classmethod
    def deny(cls, reason: str) -> Decision:
        """A denying decision with its reason."""
        return cls(False, reason)


_ACCEPT = Decision(True)
"""The one accepting decision (frozen, so shared)."""


class RiskState(Protocol):
    """What the gate needs to read of the projections."""

    def contract(self, symbol: str) -> ContractInfo | None:
        """Contract parameters, or None when unknown."""
        ...

    def position_vol(self, symbol: str, position_type: PositionType) -> Decimal:
        """Contracts held on that side."""
        ...

    def open_order_count(self, symbol: str) -> int:
        """Orders requested and not yet terminal on the symbol."""
        ...

    def reference_price(self, symbol: str) -> Decimal | None:
        """A price to value market orders at (fair, last or mid)."""
        ...


class RiskGate:
    """Deterministic pre-trade checks plus the kill switch."""

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.limits = limits or RiskLimits()
        self.killed: str | None = None
        self._recent: deque[int] = deque()

    def trip(self, reason: str) -> None:
        """Trip the kill switch: from now on no order placement passes."""
        if self.killed is None:
            self.killed = reason

    def check(self, command: Command, state: RiskState, now_ns: int) -> Decision:
        """Accept or deny ``command`` given the projections and the event time."""
        if type(command) is PlaceOrder:  # the common case first
            return self._check_place(command, state, now_ns)
        if isinstance(command, CancelOrder | CancelByExternalOid | CancelAll):
            return _ACCEPT
        if isinstance(command, ChangeMargin):
            return _ACCEPT if self.killed is None else Decision.deny(
                f"kill switch tripped: {self.killed}")
        if isinstance(command, ChangeLeverage):
            if command.leverage > self.limits.max_leverage:
                return Decision.deny(
                    f"leverage {command.leverage} above the configured maximum "
                    f"{self.limits.max_leverage}")
            return _ACCEPT
        return self._check_place(command, state, now_ns)

    def _check_place(self, cmd: PlaceOrder, state: RiskState, now_ns: int) -> Decision:
        lim = self.limits
        if self.killed is not None:
            return Decision.deny(f"kill switch tripped: {self.killed}")
        if cmd.symbol in lim.restricted_symbols:
            return Decision.deny(f"{cmd.symbol} is restricted by configuration")
        contract = state.contract(cmd.symbol)
        if contract is None:
            return Decision.deny(f"{cmd.symbol}: unknown contract")
        if contract.state != 0:
            return Decision.deny(f"{cmd.symbol}: contract not enabled (state {contract.state})")
        if not contract.api_allowed:
            return Decision.deny(f"{cmd.symbol}: API trading not allowed (apiAllowed false)")
        window_ns = int(lim.window_s * 1_000_000_000)
        while self._recent and self._recent[0] <= now_ns - window_ns:
            self._recent.popleft()
        if len(self._recent) >= lim.max_orders:
            return Decision.deny(
                f"order rate limit: {lim.max_orders} orders per {lim.window_s:g} s")
        if cmd.leverage is not None:
            if not contract.min_leverage <= cmd.leverage <= contract.max_leverage:
                return Decision.deny(
                    f"leverage {cmd.leverage} outside {contract.min_leverage}.."
                    f"{contract.max_leverage}")
            if cmd.leverage > lim.max_leverage:
                return Decision.deny(
                    f"leverage {cmd.leverage} above the configured maximum {lim.max_leverage}")
        price = cmd.price
        if price is None or cmd.order_type in (OrderType.MARKET, OrderType.MARKET_TO_CURRENT):
            price = state.reference_price(cmd.symbol) or price
        if price is not None:
            notional = price * cmd.vol * contract.contract_size
            if notional > lim.max_order_notional:
                return Decision.deny(
                    f"order notional {notional} above the maximum {lim.max_order_notional}")
        if cmd.side.opens:
            held = state.position_vol(cmd.symbol, cmd.side.position_type)
            if held + cmd.vol > lim.max_position_vol:
                return Decision.deny(
                    f"position would be {held + cmd.vol} contracts, above the maximum "
                    f"{lim.max_position_vol}")
        if state.open_order_count(cmd.symbol) >= lim.max_open_orders:
            return Decision.deny(f"{lim.max_open_orders} open orders on {cmd.symbol} already")
        self._recent.append(now_ns)
        return _ACCEPT


def limits_from_mapping(data: Mapping[str, object]) -> RiskLimits:
    """Build :class:`RiskLimits` from a config table, refusing unknown keys."""
    known = {a.name for a in RiskLimits.__attrs_attrs__}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown risk option(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, object] = dict(data)
    for key in ("max_order_notional", "max_position_vol"):
        if key in kwargs:
            kwargs[key] = Decimal(str(kwargs[key]))
    return RiskLimits(**kwargs)  # type: ignore[arg-type]
