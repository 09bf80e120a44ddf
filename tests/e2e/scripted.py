"""A test-only strategy that performs one scripted action per timer tick (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from attrs import field, frozen

from engine.commands import CancelAll, CancelByExternalOid, Command, PlaceOrder
from engine.events import TimerFired
from engine.model import OpenType, OrderType, PositionType, Side
from engine.strategy import Strategy, StrategyContext


@frozen
class ScriptConfig:
    """``actions`` run one per ``every_s`` tick; see :meth:`Scripted.act`."""

    symbol: str = "BTC_USDT"
    actions: tuple[str, ...] = field(default=(), converter=tuple)
    every_s: float = 1.0


class Scripted(Strategy):
    """Places, fills and cancels orders on cue, for end-to-end tests."""

    name = "scripted"
    version = "1"
    Config = ScriptConfig

    def on_start(self, ctx: StrategyContext) -> None:
        self.ctx = ctx
        self.cfg: ScriptConfig = ctx.config or ScriptConfig()
        self.step = 0
        ctx.subscribe("depth", self.cfg.symbol)
        ctx.want_account("order", "order.deal", "position", "asset")
        ctx.set_timer("step", self.cfg.every_s)

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        if not (isinstance(event, TimerFired) and event.name == "step"):
            return ()
        if self.step >= len(self.cfg.actions):
            return ()
        book = view.book(self.cfg.symbol)
        contract = view.contract(self.cfg.symbol)
        if book is None or not book.synced or contract is None:
            return ()  # wait for the market before starting the script
        action = self.cfg.actions[self.step]
        self.step += 1
        return self.act(action, view, book, contract)

    def _place(self, side: Side, order_type: OrderType, vol: Decimal,
               price: Decimal | None = None) -> PlaceOrder:
        return PlaceOrder(symbol=self.cfg.symbol, side=side, order_type=order_type, vol=vol,
                          external_oid=self.ctx.new_oid(), price=price,
                          open_type=OpenType.ISOLATED, leverage=10)

    def act(self, action: str, view: Any, book: Any, contract: Any) -> list[Command]:
        tick = contract.price_unit
        bid = book.best_bid()[0]
        ask = book.best_ask()[0]
        sym = self.cfg.symbol
        if action == "buy_far":
            far = (bid * Decimal("0.9") / tick).to_integral_value() * tick  # 10 % under the bid
            return [self._place(Side.OPEN_LONG, OrderType.LIMIT, Decimal(1), far)]
        if action == "buy_market":
            return [self._place(Side.OPEN_LONG, OrderType.MARKET, Decimal(1))]
        if action == "buy_partial":
            # a limit at the touch for more than the touch holds: part fills, the rest rests
            vol = book.best_ask()[1] + 300
            return [self._place(Side.OPEN_LONG, OrderType.LIMIT, vol, ask)]
        if action == "buy_bad_tick":
            return [self._place(Side.OPEN_LONG, OrderType.LIMIT, Decimal(1), bid - tick / 3)]
        if action == "close_long":
            pos = view.position(sym, PositionType.LONG)
            if pos is None or not pos.hold_vol:
                return []
            return [self._place(Side.CLOSE_LONG, OrderType.MARKET, pos.hold_vol)]
        if action == "cancel_mine":
            return [CancelByExternalOid(sym, o.external_oid) for o in view.open_orders(sym)
                    if o.external_oid and o.status.value in ("open", "partially_filled")]
        if action == "cancel_all":
            return [CancelAll(sym)]
        if action == "boom":
            raise RuntimeError("scripted failure")
        if action == "noop":
            return []
        raise ValueError(f"unknown action {action!r}")
