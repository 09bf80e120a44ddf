"""A basis watcher: fade the gap between the fair (mark) price and the index price (pure).

The basis is ``(fair - index) / index``. A perpetual's fair price is pulled back towards the
index by funding, so a wide basis tends to close. The strategy subscribes to ``fair.price``,
``index.price`` and ``funding.rate`` and, on every price update of its symbol:

* basis above ``threshold``: the contract is rich → sell (open a short);
* basis below ``-threshold``: the contract is cheap → buy (open a long);
* holding a short and the basis back at or below ``exit_band`` (or a long and the basis at or
  above ``-exit_band``) → close it with a market order.

With ``funding_must_agree`` it opens only on the side the current funding rate pays (a short
when the rate is positive or zero, a long when it is negative or zero). Until its last order
has settled into the position (:mod:`strategies.tracking`) it waits, so one crossing never
sends two orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from attrs import field, frozen, validators

from engine.commands import Command, PlaceOrder
from engine.model import FairPrice, IndexPrice, OpenType, OrderType, PositionType, Side, Ticker
from engine.strategy import Strategy, StrategyContext
from strategies.tracking import OrderTracker

__all__ = ["BasisConfig", "BasisWatcher"]

_ZERO = Decimal(0)


def _below_threshold(instance: Any, _attribute: Any, value: Decimal) -> None:
    if not _ZERO <= value < instance.threshold:
        raise ValueError(f"exit_band ({value}) must be >= 0 and below threshold "
                         f"({instance.threshold})")


@frozen
class BasisConfig:
    """Parameters of :class:`BasisWatcher`; ``threshold`` and ``exit_band`` are fractions of
    the index price (0.001 = 10 basis points)."""

    symbol: str = "BTC_USDT"
    threshold: Decimal = field(default=Decimal("0.001"), validator=validators.gt(_ZERO))
    exit_band: Decimal = field(default=Decimal("0.0002"), validator=_below_threshold)
    vol: Decimal = field(default=Decimal("1"), validator=validators.gt(_ZERO))
    leverage: int = field(default=10, validator=validators.ge(1))
    funding_must_agree: bool = False


class BasisWatcher(Strategy):
    """Sell a rich basis, buy a cheap one, close when it comes back inside the band."""

    name = "basis"
    version = "1"
    Config = BasisConfig

    def on_start(self, ctx: StrategyContext) -> None:
        """Subscribe to the fair and index prices, the funding rate and the account."""
        self.ctx = ctx
        self.cfg: BasisConfig = ctx.config or BasisConfig()
        for channel in ("fair.price", "index.price", "funding.rate"):
            ctx.subscribe(channel, self.cfg.symbol)
        ctx.want_account("order", "order.deal", "position", "asset")
        self.orders = OrderTracker()
        self.stopped = False

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """Re-evaluate on every fair or index price (or ticker) of our symbol."""
        if not isinstance(event, FairPrice | IndexPrice | Ticker) or self.stopped:
            return ()
        cfg = self.cfg
        if event.symbol != cfg.symbol:
            return ()
        market = view.market(cfg.symbol)
        if market is None or market.fair_price is None or not market.index_price:
            return ()
        if self.orders.busy(view):
            return ()  # wait until the last order has settled into the position
        return self.decide(view, market.fair_price, market.index_price, market.funding_rate)

    def on_stop(self, view: Any) -> Sequence[Command]:
        """Place nothing more: the engine may deliver a few events while it shuts down."""
        self.stopped = True
        return ()

    def decide(self, view: Any, fair: Decimal, index: Decimal,
               funding_rate: Decimal | None) -> list[Command]:
        """The commands for this basis given the positions held (exits first)."""
        cfg = self.cfg
        gap = fair - index  # compared with fractions of the index, so no division
        short = self._held(view, PositionType.SHORT)
        long = self._held(view, PositionType.LONG)
        out: list[Command] = []
        if short and gap <= cfg.exit_band * index:
            out.append(self._market(Side.CLOSE_SHORT, short))
            short = _ZERO
        if long and gap >= -cfg.exit_band * index:
            out.append(self._market(Side.CLOSE_LONG, long))
            long = _ZERO
        rate = funding_rate if funding_rate is not None else _ZERO
        if not short and not long:
            if gap > cfg.threshold * index and (not cfg.funding_must_agree or rate >= 0):
                out.append(self._market(Side.OPEN_SHORT, cfg.vol))
            elif gap < -cfg.threshold * index and (not cfg.funding_must_agree or rate <= 0):
                out.append(self._market(Side.OPEN_LONG, cfg.vol))
        return out

    def _held(self, view: Any, kind: PositionType) -> Decimal:
        pos = view.position(self.cfg.symbol, kind)
        return pos.hold_vol if pos is not None else _ZERO

    def _market(self, side: Side, vol: Decimal) -> PlaceOrder:
        cfg = self.cfg
        oid = self.ctx.new_oid()
        self.orders.add(oid, cfg.symbol)
        return PlaceOrder(
            symbol=cfg.symbol, side=side, order_type=OrderType.MARKET, vol=vol,
            external_oid=oid, open_type=OpenType.ISOLATED,
            leverage=cfg.leverage if side.opens else None,
        )
