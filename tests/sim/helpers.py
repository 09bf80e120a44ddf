"""Shared helpers for the simulator-core tests: a fixed start time and book builders."""

from __future__ import annotations

from decimal import Decimal

from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.facts import OrderView, Placed, Push, Rejected
from engine.model import OpenType, OrderType, Side

T0 = 1_767_225_600_000 + 1
"""2026-01-01 00:00:00.001 UTC: just after a funding settlement."""

BTC = "BTC_USDT"
D = Decimal


def new_exchange(*users: str, balance: str = "10000") -> Exchange:
    """An exchange with the default contracts and ``users`` funded with ``balance`` USDT."""
    ex = Exchange(T0)
    for user in users:
        ex.deposit(user, D(balance), T0)
    ex.drain_pushes()
    return ex


def quote(ex: Exchange, side: Side, price: str, vol: int, symbol: str = BTC) -> OrderView:
    """Rest a limit order of the liquidity participant ``market``."""
    return placed(
        ex.place_order(
            "market",
            symbol,
            side,
            OrderType.LIMIT,
            D(vol),
            D(price),
            OpenType.CROSS,
            None,
            None,
            T0,
        )
    )


def place(
    ex: Exchange,
    user: str,
    side: Side,
    order_type: OrderType,
    vol: int | str,
    price: str | None,
    *,
    leverage: int | None = 10,
    open_type: OpenType = OpenType.ISOLATED,
    oid: str | None = None,
    now: int = T0,
    symbol: str = BTC,
    **kwargs: object,
) -> Placed | Rejected:
    """Place an order of ``user`` with readable defaults (isolated, 10x)."""
    return ex.place_order(
        user,
        symbol,
        side,
        order_type,
        D(vol),
        D(price) if price is not None else None,
        open_type,
        leverage,
        oid,
        now,
        **kwargs,  # type: ignore[arg-type]
    )


def placed(result: Placed | Rejected) -> OrderView:
    """The order of an accepted placement (fails the test otherwise)."""
    assert isinstance(result, Placed), result
    return result.order


def order_of(ex: Exchange, user: str, order_id: str) -> OrderView:
    """The current state of an order that must exist."""
    order = ex.order(user, order_id)
    assert order is not None, order_id
    return order


def channels(pushes: list[Push]) -> list[str]:
    """The channel names of ``pushes``, in order."""
    return [p.channel for p in pushes]
