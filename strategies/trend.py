"""A trend follower: moving-average crosses of candle closes, stop-loss, take-profit (pure).

It subscribes to the ``kline`` channel at ``interval`` (``Min1`` by default). The market view
keeps only the *latest* candle per interval, so the strategy keeps its own bounded deque of
closes: a candle counts as closed when a candle with a later start time arrives, and the
close it had last is appended. Once ``slow`` closes are known it compares the mean of the
last ``fast`` closes with the mean of the last ``slow``:

* the fast mean crosses above the slow one → close a short if one is held, open a long;
* the fast mean crosses below → close a long if one is held, open a short.

Every candle update (each trade moves the current candle's close) is also a price check
for the position held: a long is closed once the price falls ``stop_loss`` below its entry
price or rises ``take_profit`` above it (mirrored for a short). The exchange never sees
these levels: the strategy places the closing order itself when the price crosses one.

Orders are ``market`` (default) or ``ioc``: an immediate-or-cancel limit ``ioc_slippage``
(a fraction of the price) through the last price, so a thin book cannot fill it far away.
Until its last order has settled (answered, and if it traded, reflected in the position:
see :mod:`strategies.tracking`) the strategy waits — a cross seen meanwhile is kept and acted
on afterwards — so one signal never sends two orders. A candle missing from
the feed (a minute without trades) is simply not counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from attrs import field, frozen, validators

from engine.commands import Command, PlaceOrder
from engine.model import Kline, OpenType, OrderType, PositionType, Side
from engine.strategy import Strategy, StrategyContext
from strategies.tracking import OrderTracker

__all__ = ["TrendConfig", "TrendFollower"]

_ZERO = Decimal(0)
_POSITIVE = validators.gt(_ZERO)


def _above_fast(instance: Any, _attribute: Any, value: int) -> None:
    if value <= instance.fast:
        raise ValueError(f"slow ({value}) must be greater than fast ({instance.fast})")


@frozen
class TrendConfig:
    """Parameters of :class:`TrendFollower`; ``stop_loss`` and ``take_profit`` are price
    distances from the entry price (USDT for a USDT-M contract)."""

    symbol: str = "BTC_USDT"
    interval: str = "Min1"
    fast: int = field(default=5, validator=validators.ge(1))
    slow: int = field(default=20, validator=_above_fast)
    vol: Decimal = field(default=Decimal("1"), validator=_POSITIVE)
    leverage: int = field(default=10, validator=validators.ge(1))
    order_type: str = field(default="market", validator=validators.in_(("market", "ioc")))
    ioc_slippage: Decimal = field(default=Decimal("0.001"), validator=validators.ge(_ZERO))
    stop_loss: Decimal = field(default=Decimal("200"), validator=_POSITIVE)
    take_profit: Decimal = field(default=Decimal("400"), validator=_POSITIVE)


class TrendFollower(Strategy):
    """Trade moving-average crosses of candle closes; exit on stop-loss or take-profit."""

    name = "trend"
    version = "1"
    Config = TrendConfig

    def on_start(self, ctx: StrategyContext) -> None:
        """Subscribe to candles and the account; reset the close history."""
        self.ctx = ctx
        self.cfg: TrendConfig = ctx.config or TrendConfig()
        self.closes: deque[Decimal] = deque(maxlen=self.cfg.slow)
        self.bar_start: int | None = None  # start (s) of the candle being formed
        self.bar_close: Decimal | None = None  # its close so far
        self.trend = 0  # +1 fast above slow, -1 below, 0 not known yet
        self.signal = 0  # a cross not acted on yet
        self.orders = OrderTracker()  # our orders until the account reflects them
        self.stopped = False
        ctx.subscribe("kline", self.cfg.symbol, interval=self.cfg.interval)
        ctx.want_account("order", "order.deal", "position", "asset")

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """React to candles of our symbol and interval; ignore everything else."""
        if not isinstance(event, Kline) or self.stopped:
            return ()
        cfg = self.cfg
        if event.symbol != cfg.symbol or event.interval != cfg.interval:
            return ()
        crossed = self._on_candle(event)
        if crossed:
            self.signal = crossed  # kept until acted on: an order may be in flight now
        if self.orders.busy(view):
            return ()  # an earlier order has not settled yet: decide once it has
        exits = self._exits(view, event.close)
        if exits:
            return exits
        if not self.signal:
            return ()
        direction, self.signal = self.signal, 0
        return self._follow(view, direction, event.close)

    def on_stop(self, view: Any) -> Sequence[Command]:
        """Place nothing more: the engine may deliver a few events while it shuts down."""
        self.stopped = True
        return ()

    # ------------------------------------------------------------------ signal

    def _on_candle(self, k: Kline) -> int:
        """Record the candle; return +1 / -1 when a closed candle makes the means cross."""
        if self.bar_start is not None and k.start_s < self.bar_start:
            return 0  # an older candle, delivered late: already counted
        crossed = 0
        if self.bar_start is not None and k.start_s > self.bar_start:
            assert self.bar_close is not None
            self.closes.append(self.bar_close)  # the previous candle has closed
            crossed = self._update_trend()
        self.bar_start, self.bar_close = k.start_s, k.close
        return crossed

    def _update_trend(self) -> int:
        cfg = self.cfg
        if len(self.closes) < cfg.slow:
            return 0
        closes = list(self.closes)
        # fast mean vs slow mean without dividing: sum_fast / fast  vs  sum_slow / slow
        fast_sum = sum(closes[-cfg.fast:], _ZERO) * cfg.slow
        slow_sum = sum(closes, _ZERO) * cfg.fast
        trend = 1 if fast_sum > slow_sum else -1 if fast_sum < slow_sum else self.trend
        crossed = trend if self.trend and trend != self.trend else 0
        self.trend = trend
        return crossed

    # ------------------------------------------------------------------ orders

    def _exits(self, view: Any, price: Decimal) -> list[Command]:
        """Close a position whose stop-loss or take-profit the price has crossed."""
        cfg = self.cfg
        out: list[Command] = []
        for kind, sign in ((PositionType.LONG, 1), (PositionType.SHORT, -1)):
            pos = view.position(cfg.symbol, kind)
            if pos is None or pos.hold_vol <= 0:
                continue
            gain = (price - pos.open_avg_price) * sign  # > 0 when the position is winning
            if gain <= -cfg.stop_loss or gain >= cfg.take_profit:
                side = Side.CLOSE_LONG if kind is PositionType.LONG else Side.CLOSE_SHORT
                out.append(self._order(view, side, pos.hold_vol, price))
        return out

    def _follow(self, view: Any, direction: int, price: Decimal) -> list[Command]:
        """Turn the position to ``direction``: close the opposite side, open this one."""
        cfg = self.cfg
        against = PositionType.SHORT if direction > 0 else PositionType.LONG
        along = PositionType.LONG if direction > 0 else PositionType.SHORT
        out: list[Command] = []
        opposite = view.position(cfg.symbol, against)
        if opposite is not None and opposite.hold_vol > 0:
            side = Side.CLOSE_SHORT if direction > 0 else Side.CLOSE_LONG
            out.append(self._order(view, side, opposite.hold_vol, price))
        held = view.position(cfg.symbol, along)
        if held is None or held.hold_vol <= 0:
            side = Side.OPEN_LONG if direction > 0 else Side.OPEN_SHORT
            out.append(self._order(view, side, cfg.vol, price))
        return out

    def _order(self, view: Any, side: Side, vol: Decimal, price: Decimal) -> PlaceOrder:
        cfg = self.cfg
        limit: Decimal | None = None
        order_type = OrderType.MARKET
        contract = view.contract(cfg.symbol)
        if cfg.order_type == "ioc" and contract is not None:
            tick = contract.price_unit
            if side.is_buy:  # willing to pay up to slippage above the last price
                limit = (price * (1 + cfg.ioc_slippage) / tick).to_integral_value(ROUND_FLOOR)
            else:
                limit = (price * (1 - cfg.ioc_slippage) / tick).to_integral_value(ROUND_CEILING)
            limit *= tick
            order_type = OrderType.IOC
        oid = self.ctx.new_oid()
        self.orders.add(oid, cfg.symbol)
        return PlaceOrder(
            symbol=cfg.symbol, side=side, order_type=order_type, vol=vol, external_oid=oid,
            price=limit, open_type=OpenType.ISOLATED,
            leverage=cfg.leverage if side.opens else None,
        )
