"""A guardian: risk only. It never opens anything; it flattens the account on a loss (pure).

It watches the account (positions, orders, balance) and the fair price of its symbols, and
values the account on every relevant event::

    equity = available + frozen + position margin + Σ unrealised PnL at the fair price

(the unrealised PnL is computed here from each position's entry price and the latest fair
price, falling back to the last trade price, because the exchange's balance pushes are only
as fresh as the last account change). The highest equity seen in the session is the peak.

* **Drawdown.** When ``peak - equity`` exceeds ``max_drawdown`` × peak, the guardian trips
  for good: it cancels every open order (``CancelAll``) and closes every position with a
  market ``CLOSE_LONG`` / ``CLOSE_SHORT``; until the session ends it closes whatever
  position shows up again and cancels each order that appears (once).
* **Position loss.** When one position's unrealised loss exceeds ``max_position_loss``
  (USDT; 0 switches the rule off), that position is closed and the orders on its symbol
  are cancelled; the others are left alone.

While one of its closing orders is settling the guardian does not value the account (the
cash already holds the realised loss, the position push still shows it unrealised). A
position is sent one closing order at a time: until that order has settled into the
position (:mod:`strategies.tracking`) the guardian waits, and it tries again if the order
ended without closing it. Run it as the
session's strategy next to manual trading, or copy its checks into your own strategy.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from attrs import field, frozen, validators

from engine.commands import CancelAll, CancelOrder, Command, PlaceOrder
from engine.events import TimerFired
from engine.model import (
    BalanceUpdate,
    FairPrice,
    OrderType,
    OrderUpdate,
    PositionType,
    PositionUpdate,
    Side,
    Ticker,
    Trade,
)
from engine.strategy import Strategy, StrategyContext
from strategies.tracking import settling

__all__ = ["Guardian", "GuardianConfig"]

_ZERO = Decimal(0)
_WATCHED = (BalanceUpdate, PositionUpdate, OrderUpdate, FairPrice, Ticker, Trade, TimerFired)


@frozen
class GuardianConfig:
    """Parameters of :class:`Guardian`. ``max_drawdown`` is a fraction of the peak equity;
    ``symbols`` empty means the session's symbols."""

    symbols: tuple[str, ...] = field(default=(), converter=tuple)
    currency: str = "USDT"
    max_drawdown: Decimal = field(
        default=Decimal("0.05"), validator=[validators.gt(_ZERO), validators.lt(Decimal(1))])
    max_position_loss: Decimal = field(default=Decimal("0"), validator=validators.ge(_ZERO))
    check_every_s: float = field(default=1.0, validator=validators.gt(0))


class Guardian(Strategy):
    """Close positions and cancel orders on a drawdown or a position loss; place nothing else."""

    name = "guardian"
    version = "1"
    Config = GuardianConfig

    def on_start(self, ctx: StrategyContext) -> None:
        """Subscribe to fair prices and the account; check on a timer as well."""
        self.ctx = ctx
        self.cfg: GuardianConfig = ctx.config or GuardianConfig()
        self.symbols = self.cfg.symbols or ctx.symbols
        self.peak: Decimal | None = None
        self.tripped: str | None = None  # why the drawdown rule fired, once it has
        self.cancelled: set[str] = set()  # order ids already cancelled
        self.own: set[str] = set()  # externalOids of the closing orders placed here
        self.closing: dict[tuple[str, PositionType], str] = {}  # position -> its close order
        self.stopped = False
        for symbol in self.symbols:
            ctx.subscribe("fair.price", symbol)
        ctx.want_account("order", "order.deal", "position", "asset")
        ctx.set_timer("guard", self.cfg.check_every_s)

    def on_event(self, view: Any, event: Any) -> Sequence[Command]:
        """Value the account and act on a breach."""
        if not isinstance(event, _WATCHED) or self.stopped:
            return ()
        if any(settling(view, oid) for oid in self.closing.values()):
            return ()  # between fill and position push the loss would count twice: wait
        equity = self.equity(view)
        if equity is None:
            return ()
        if self.peak is None or equity > self.peak:
            self.peak = equity
        out: list[Command] = []
        if self.tripped is None and self.peak - equity > self.cfg.max_drawdown * self.peak:
            self.tripped = (f"drawdown: equity {equity} is more than {self.cfg.max_drawdown} "
                            f"below the peak {self.peak}")
            out.append(CancelAll(None))
            self.cancelled.update(o.order_id for o in view.open_orders() if o.order_id)
        if self.tripped is not None:
            out.extend(self._cancel_stragglers(view))
            out.extend(self._close(view, p) for p in view.positions() if self._can_close(view, p))
            return out
        if self.cfg.max_position_loss > 0:
            for pos in view.positions():
                pnl = self.unrealised(view, pos)
                if (pnl is not None and -pnl > self.cfg.max_position_loss
                        and self._can_close(view, pos)):
                    out.append(CancelAll(pos.symbol))
                    out.append(self._close(view, pos))
        return out

    def on_stop(self, view: Any) -> Sequence[Command]:
        """Place nothing more: the engine may deliver a few events while it shuts down."""
        self.stopped = True
        return ()

    # ------------------------------------------------------------------ valuation

    def mark(self, view: Any, symbol: str) -> Decimal | None:
        """The price positions of ``symbol`` are valued at: fair, else last."""
        market = view.market(symbol)
        if market is None:
            return None
        return market.fair_price if market.fair_price is not None else market.last_price

    def unrealised(self, view: Any, pos: PositionUpdate) -> Decimal | None:
        """Unrealised PnL of one position at the mark, None when it cannot be valued."""
        mark = self.mark(view, pos.symbol)
        contract = view.contract(pos.symbol)
        if mark is None or contract is None:
            return None
        sign = 1 if pos.position_type is PositionType.LONG else -1
        return (mark - pos.open_avg_price) * pos.hold_vol * contract.contract_size * sign

    def equity(self, view: Any) -> Decimal | None:
        """Cash plus unrealised PnL; None until the balance is known or while a position
        cannot be valued."""
        bal = view.balance(self.cfg.currency)
        if bal is None:
            return None
        total = bal.available + bal.frozen + bal.position_margin
        for pos in view.positions():
            pnl = self.unrealised(view, pos)
            if pnl is None:
                return None
            total += pnl
        return total

    # ------------------------------------------------------------------ orders

    def _can_close(self, view: Any, pos: PositionUpdate) -> bool:
        """True unless our last closing order for this position has not settled yet.

        A closing order resting elsewhere may freeze the volume and get ours rejected; the
        cancel sent along with every close clears it, and the next check tries again.
        """
        ours = self.closing.get((pos.symbol, pos.position_type))
        return pos.hold_vol > 0 and (ours is None or not settling(view, ours))

    def _close(self, view: Any, pos: PositionUpdate) -> PlaceOrder:
        long = pos.position_type is PositionType.LONG
        oid = self.ctx.new_oid()
        self.own.add(oid)
        self.closing[(pos.symbol, pos.position_type)] = oid
        return PlaceOrder(
            symbol=pos.symbol, side=Side.CLOSE_LONG if long else Side.CLOSE_SHORT,
            order_type=OrderType.MARKET, vol=pos.hold_vol, external_oid=oid,
            open_type=pos.open_type,
        )

    def _cancel_stragglers(self, view: Any) -> list[Command]:
        """After a trip, cancel each order that appears (not our own closes), once."""
        out: list[Command] = []
        for order in view.open_orders():
            if (order.order_id and order.order_id not in self.cancelled
                    and order.external_oid not in self.own):
                self.cancelled.add(order.order_id)
                out.append(CancelOrder(order.order_id, order.symbol))
        return out
