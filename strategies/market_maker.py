"""A small market maker: post-only quotes around the best bid and ask (pure).

Every ``quote_every_s`` seconds (a journaled timer) it looks at the book and its own open
orders. It keeps one bid and one ask resting ``offset_ticks`` away from the touch; when the
touch has moved it cancels the stale quote (by externalOid) and places a new one. It buys
with ``OPEN_LONG`` unless it holds a short (then ``CLOSE_SHORT``), and sells with
``OPEN_SHORT`` unless it holds a long (then ``CLOSE_LONG``), and stops adding to a side once
the position reaches ``max_position``.

A cancel is sent once: while it is on its way (for instance held back by the client's 510
backoff) the quote stays in the book and is not cancelled again on every tick; only if it is
still there ``cancel_retry_s`` later is the cancel repeated. A closing quote never asks to
close more than the position minus what its other closing orders (resting or in flight)
already cover, so it is not refused for an oversize close (2008) while a stale closing quote
waits for its cancel.
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
    cancel_retry_s: float = 30.0


class MarketMaker(Strategy):
    """Quote both sides post-only; cancel and replace when the touch moves."""

    name = "market-maker"
    version = "2"
    Config = MarketMakerConfig

    def on_start(self, ctx: StrategyContext) -> None:
        """Subscribe to the book and the account; quote on a timer."""
        self.ctx = ctx
        self.cfg: MarketMakerConfig = ctx.config or MarketMakerConfig()
        ctx.subscribe("depth", self.cfg.symbol)
        ctx.want_account("order", "order.deal", "position", "asset")
        ctx.set_timer("quote", self.cfg.quote_every_s)
        self._cancels: dict[str, int] = {}  # externalOid -> ns its cancel was last sent

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
        now = view.now_ns
        retry_ns = int(cfg.cancel_retry_s * 1e9)
        open_orders = view.open_orders(cfg.symbol)
        live = {o.external_oid for o in open_orders}
        self._cancels = {oid: t for oid, t in self._cancels.items() if oid in live}
        for is_buy, price in ((True, want_bid), (False, want_ask)):
            mine = [o for o in open_orders if o.side is not None and o.side.is_buy == is_buy]
            settled = [o for o in mine if o.status.value in ("open", "partially_filled")]
            in_flight = len(mine) - len(settled)
            keep = any(o.price == price for o in settled)
            for order in settled:
                oid = order.external_oid
                if order.price == price or not oid:
                    continue
                sent = self._cancels.get(oid)
                if sent is None or now - sent >= retry_ns:
                    self._cancels[oid] = now
                    commands.append(CancelByExternalOid(cfg.symbol, oid))
            if keep or in_flight:
                continue  # already quoting there, or an earlier quote is still on its way
            side = self._side(is_buy, held_long, held_short)
            if side is None:
                continue
            if side.opens:
                vol = cfg.vol
            else:  # never close more than the position its other closing orders leave
                held = held_short if is_buy else held_long
                closing = sum((_remaining(o) for o in mine if o.side is side), Decimal(0))
                vol = min(cfg.vol, held - closing)
                if vol <= 0:
                    continue
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


def _remaining(order: Any) -> Decimal:
    """What is left of an order to fill (its whole size while that is not known yet)."""
    if order.vol is None:
        return Decimal(0)
    return max(order.vol - max(order.fill_vol, order.exchange_deal_vol), Decimal(0))
