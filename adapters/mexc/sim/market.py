"""A seeded synthetic market: everyone else's order flow around a random-walk index (pure).

:class:`SyntheticMarket` drives one liquidity participant of an
:class:`~adapters.mexc.sim.exchange.Exchange`. Each :meth:`SyntheticMarket.step`, per symbol:

1. the index takes a Gaussian log-step (``volatility`` per step) and the fair price is the
   index plus a small Gaussian basis, both rounded to the price tick;
2. the participant keeps a ladder of ``levels`` quotes a side on a fixed price grid
   (``spacing`` times the start price, in ticks), starting ``half_spread`` away from the
   fair price: it cancels quotes no longer on the ladder (plus the odd random one) and
   places the missing rungs nearest the fair price first, with random sizes;
3. with probability ``taker_probability`` it sends a market order of random size and side,
   which trades with whatever rests there (other users' orders included), making deals,
   tickers and klines move.

At most ``max_actions`` order operations per symbol per step. Every random draw comes from
one ``random.Random`` (passed in, or seeded from ``seed``), and the exchange is
deterministic, so the same seed, start and calls give the same books, deals and pushes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from attrs import frozen

from adapters.mexc.sim.exchange import Exchange
from adapters.mexc.sim.ledger import quantize, ratio
from engine.model import OpenType, OrderType, Side

__all__ = ["DEFAULT_START_PRICES", "MarketParams", "SyntheticMarket"]

DEFAULT_START_PRICES: Mapping[str, Decimal] = {
    "BTC_USDT": Decimal("100000"),
    "ETH_USDT": Decimal("3000"),
}
"""Starting index prices for the default contracts."""

_ONE = Decimal(1)


@frozen
class MarketParams:
    """Knobs of the synthetic flow; rates are fractions of the price."""

    volatility: float = 0.0001
    basis: float = 0.0001
    levels: int = 10
    half_spread: Decimal = Decimal("0.0001")
    spacing: Decimal = Decimal("0.0002")
    min_vol: int = 1
    max_vol: int = 500
    taker_probability: float = 0.5
    taker_max_vol: int = 200
    random_cancel_probability: float = 0.3
    max_actions: int = 40


class SyntheticMarket:
    """The seeded "other participants" of the simulated exchange (see the module docstring)."""

    def __init__(
        self,
        exchange: Exchange,
        *,
        seed: int | None = None,
        rng: random.Random | None = None,
        participant: str = "market",
        start_prices: Mapping[str, Decimal] | None = None,
        params: MarketParams | None = None,
    ) -> None:
        if (seed is None) == (rng is None):
            raise ValueError("pass exactly one of seed and rng")
        self.exchange = exchange
        self.rng = rng if rng is not None else random.Random(seed)
        self.participant = participant
        self.params = params or MarketParams()
        prices = dict(DEFAULT_START_PRICES if start_prices is None else start_prices)
        self.index: dict[str, Decimal] = {}
        self.grid: dict[str, Decimal] = {}
        for symbol in sorted(exchange.contracts):
            if symbol not in prices:
                raise ValueError(f"no start price for {symbol}")
            unit = exchange.contracts[symbol].price_unit
            self.index[symbol] = quantize(prices[symbol], unit)
            self.grid[symbol] = max(unit, quantize(prices[symbol] * self.params.spacing, unit))

    def step(self, now_ms: int) -> None:
        """Advance every symbol by one step at ``now_ms``; pushes land in the exchange outbox."""
        for symbol in sorted(self.index):
            self._step_symbol(symbol, now_ms)

    def _step_symbol(self, symbol: str, now_ms: int) -> None:
        p = self.params
        rng = self.rng
        exchange = self.exchange
        c = exchange.contracts[symbol]
        tick = c.price_unit
        move = Decimal(f"{rng.gauss(0.0, p.volatility):.12f}")
        index = max(tick, quantize(self.index[symbol] * (1 + move), tick))
        self.index[symbol] = index
        basis = Decimal(f"{rng.gauss(0.0, p.basis):.12f}")
        fair = max(tick, quantize(index * (1 + basis), tick))
        exchange.set_index_price(symbol, index, now_ms)
        exchange.set_fair_price(symbol, fair, now_ms)

        budget = p.max_actions
        grid = self.grid[symbol]
        top_bid = ratio(fair * (1 - p.half_spread), grid, _ONE, ROUND_FLOOR) * grid
        top_ask = ratio(fair * (1 + p.half_spread), grid, _ONE, ROUND_CEILING) * grid
        targets = {(True, top_bid - grid * k) for k in range(p.levels) if top_bid - grid * k > 0}
        targets |= {(False, top_ask + grid * k) for k in range(p.levels)}
        mine = exchange.open_orders(self.participant, symbol)
        stale = [o.order_id for o in mine if (o.side.is_buy, o.price) not in targets]
        if mine and rng.random() < p.random_cancel_probability:
            stale.append(mine[rng.randrange(len(mine))].order_id)
        stale = list(dict.fromkeys(stale))[:budget]
        if stale:
            exchange.cancel_orders(self.participant, stale, now_ms)
            budget -= len(stale)

        resting = {(o.side.is_buy, o.price) for o in exchange.open_orders(self.participant, symbol)}
        for is_buy, price in sorted(targets - resting, key=lambda t: (abs(t[1] - fair), t[0])):
            if budget <= 0:
                break
            vol = c.vol_unit * rng.randint(p.min_vol, p.max_vol)
            side = Side.OPEN_LONG if is_buy else Side.OPEN_SHORT
            self._place(symbol, side, OrderType.LIMIT, vol, price, now_ms)
            budget -= 1

        if budget > 0 and rng.random() < p.taker_probability:
            side = Side.OPEN_LONG if rng.random() < 0.5 else Side.OPEN_SHORT
            vol = c.vol_unit * rng.randint(1, p.taker_max_vol)
            self._place(symbol, side, OrderType.MARKET, vol, None, now_ms)

    def _place(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        vol: Decimal,
        price: Decimal | None,
        now_ms: int,
    ) -> None:
        self.exchange.place_order(
            self.participant,
            symbol,
            side,
            order_type,
            vol,
            price,
            OpenType.CROSS,
            None,
            None,
            now_ms,
        )
