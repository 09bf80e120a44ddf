"""A small market maker: post-only quotes around the best bid and ask (pure).

Every ``quote_every_s`` seconds (a journaled timer) it looks at the book and its own open
orders. It keeps one bid and one ask resting ``offset_ticks`` away from the touch; when the
touch has moved it cancels the stale quote (by externalOid) and places a new one. It buys
with ``OPEN_LONG`` unless it holds a short (then ``CLOSE_SHORT``), and sells with
``OPEN_SHORT`` unless it holds a long (then ``CLOSE_LONG``), and stops adding to a side once
the position reaches ``max_position``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from attrs import frozen

from engine.commands import CancelByExternalOid, Command, PlaceOrder
from engine.events import TimerFired
from engine.model import OpenType, OrderType, PositionType, Side
from engine.strategy import Strategy, StrategyContext


@frozen
class MarketMakerConfig:
    """Parameters of :class:`MarketMaker`."""

    symbol: str = "BTC_USDT"
    vol: Decimal = Decimal("1")
    offset_ticks: int = 1
    max_position: Decimal = Decimal("5")
    leverage: int = 10
    quote_every_s: float = 2.0


class MarketMaker(Strategy):
    """Quote both sides post-only; cancel and replace when the touch moves."""

    name = "market-maker"
    version = "1"
    Config = MarketMakerConfig

    def on_start(self, ctx: StrategyContext) -> None:
        """Subscribe to the book and the account; quote on a timer."""
        self.ctx = ctx
        self.cfg: MarketMakerConfig = ctx.config or MarketMakerConfig()
        ctx.subscribe("depth", self.cfg.symbol)
        ctx.want_account("order", "order.deal", "position", "asset")
        ctx.set_timer("quote", self.cfg.quote_every_s)

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """Requote on every ``quote`` timer tick; ignore everything else."""
        if not (isinstance(event, TimerFired) and event.name == "quote"):
            return ()
        cfg = self.cfg
        book = view.book(cfg.symbol)
        contract = view.contract(cfg.symbol)
        if book is None or not book.synced or contract is None:
            return ()
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return ()
        tick = contract.price_unit
        want_bid = bid[0] - tick * (cfg.offset_ticks - 1)
        want_ask = ask[0] + tick * (cfg.offset_ticks - 1)
        long_pos = view.position(cfg.symbol, PositionType.LONG)
        short_pos = view.position(cfg.symbol, PositionType.SHORT)
        held_long = long_pos.hold_vol if long_pos else Decimal(0)
        held_short = short_pos.hold_vol if short_pos else Decimal(0)

        commands: list[Command] = []
        for is_buy, price in ((True, want_bid), (False, want_ask)):
            mine = [o for o in view.open_orders(cfg.symbol)
                    if o.side is not None and o.side.is_buy == is_buy]
            settled = [o for o in mine if o.status.value in ("open", "partially_filled")]
            in_flight = len(mine) - len(settled)
            keep = any(o.price == price for o in settled)
            for order in settled:
                if order.price != price and order.external_oid:
                    commands.append(CancelByExternalOid(cfg.symbol, order.external_oid))
            if keep or in_flight:
                continue  # already quoting there, or an earlier quote is still on its way
            side = self._side(is_buy, held_long, held_short)
            if side is None:
                continue
            vol = cfg.vol if side.opens else min(cfg.vol, held_short if is_buy else held_long)
            commands.append(PlaceOrder(
                symbol=cfg.symbol, side=side, order_type=OrderType.POST_ONLY, vol=vol,
                external_oid=self.ctx.new_oid(), price=price, open_type=OpenType.ISOLATED,
                leverage=cfg.leverage,
            ))
        return commands

    def _side(self, is_buy: bool, held_long: Decimal, held_short: Decimal) -> Side | None:
        cfg = self.cfg
        if is_buy:
            if held_short > 0:
                return Side.CLOSE_SHORT
            return Side.OPEN_LONG if held_long < cfg.max_position else None
        if held_long > 0:
            return Side.CLOSE_LONG
        return Side.OPEN_SHORT if held_short < cfg.max_position else None
