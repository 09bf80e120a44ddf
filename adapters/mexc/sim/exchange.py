"""The simulated MEXC Futures exchange: accounts, matching, positions, fees, funding (pure).

Theory of operation
-------------------
:class:`Exchange` is a deterministic state machine with no I/O and no clock: every mutating
method takes ``now_ms``, and identical calls give identical state, ids and pushes.

* **Participants.** *Accounts* (keyed by whatever id the server maps an API key to) have a
  USDT balance, hedge-mode positions and full order/fill history. *Liquidity participants*
  (by default ``"market"``, driven by :mod:`adapters.mexc.sim.market`) stand for everyone
  else: no balance or position checks, only a bounded order history, and their orders may
  match each other. An account's order never trades with the same account's resting order:
  reaching one cancels the resting order (self-trade prevention "cancel maker", order
  ``errorCode`` 8) and matching goes on behind it.
* **Placing an order** validates it (envelope codes in :data:`MESSAGES`), asks the book for
  a :class:`~adapters.mexc.sim.book.Plan`, applies the type's rule (post-only cancelled with
  ``errorCode`` 20 if it would take, FOK cancelled with 19 unless fully fillable), checks the
  margin of exactly those fills plus the resting remainder against the available balance
  (2005), then executes: fills for both sides, remainder rests (types 1, 2) or is cancelled
  (IOC 18, market types 5/6 with 21).
* **Money** follows :mod:`adapters.mexc.sim.ledger`: cash moves only by realised PnL, fees
  and funding; margins are parts of cash; ``available = cash - positionMargin - frozen``.
* **Funding.** ``rate = clamp(round6((fair - index) / index), ±maxFundingRate)``, updated
  whenever either price moves. At each settle time (every ``collectCycle`` hours from the
  epoch) :meth:`Exchange.tick` pays ``-hold * contractSize * fair * rate`` to each long and
  ``+hold * contractSize * fair * rate`` to each short (longs pay shorts when rate > 0).
* **Liquidation.** When the fair price reaches a position's liquidation price
  (:func:`~adapters.mexc.sim.ledger.liquidation_price`) the exchange takes it over: resting
  closing orders are cancelled (``errorCode`` 13) and a system order (``category`` 2) closes
  it at the liquidation price, fee-free, outside the book.
* **Outputs.** Queries return frozen facts (:mod:`adapters.mexc.sim.facts`). Every mutation
  appends :class:`~adapters.mexc.sim.facts.Push` values to an outbox, in causal order;
  the server calls :meth:`Exchange.drain_pushes` after each call and fans them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import IntEnum
from typing import TypeVar

from adapters.mexc.sim.book import Match, Plan, Resting
from adapters.mexc.sim.facts import (
    CancelResult,
    Changed,
    Placed,
    PriceView,
    Push,
    Rejected,
)
from adapters.mexc.sim.ledger import Account, OrderRecord, Slot, initial_margin, order_margin
from adapters.mexc.sim.queries import ExchangeQueries
from engine.model import OpenType, OrderState, OrderType, PositionType, Side

__all__ = ["MESSAGES", "Exchange", "PlaceResult"]

PlaceResult = Placed | Rejected
"""What :meth:`Exchange.place_order` returns."""

MESSAGES: dict[int, str] = {
    600: "Parameter error",
    603: "Repeated request: externalOid already used (OID_DUPLICATE)",
    1000: "Account does not exist",
    1001: "Contract does not exist",
    1002: "Contract not activated: API trading is disabled for this contract",
    1004: "Amount error",
    2001: "Wrong order direction",
    2002: "Wrong open type",
    2003: "Buy price too high",
    2004: "Sell price too low",
    2005: "Insufficient balance",
    2006: "Leverage error",
    2007: "Order price error",
    2008: "Insufficient close quantity",
    2009: "Position does not exist or has been closed",
    2011: "Order quantity error",
    2015: "Price or quantity precision error",
    2018: "Amount exceeds the maximum removable margin",
    2021: "Leverage differs from the position's leverage",
    2027: "Only one of cross or isolated per position direction",
    2028: "Maximum order quantity exceeded",
    2029: "Wrong order type",
    2030: "externalOid too long (max 32)",
    2036: "Too many open orders",
    6005: "Contract not available for trading",
}
"""Envelope codes the core returns, with their messages (PROTOCOL.md §4)."""

_ZERO = Decimal(0)
_E = TypeVar("_E", bound=IntEnum)
_STP_CANCEL = 8  # SYS_CANCEL
_MARKET_TYPES = (OrderType.MARKET, OrderType.MARKET_TO_CURRENT)


def _reject(code: int) -> Rejected:
    return Rejected(code, MESSAGES[code])


def _member(enum: type[_E], value: int | None) -> _E | None:
    """``enum(value)``, or None when ``value`` is not one of its members."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return None


class Exchange(ExchangeQueries):
    """The exchange core (module docstring); queries come from :class:`ExchangeQueries`.

    ``Exchange(now_ms, contracts=None, *, liquidity=("market",), default_leverage=20,
    commit_limit=1000, deal_limit=1000, kline_keep=2000, liquidity_history=1000)``:
    ``contracts`` defaults to BTC_USDT and ETH_USDT; ``liquidity`` names the liquidity
    participants; the limits bound the depth commits, public deals, candles per interval
    and finished orders kept per liquidity participant. ``now_ms`` fixes the first funding
    settle time.
    """

    # ----------------------------------------------------------------- accounts

    def open_account(self, user: str) -> None:
        """Create ``user``'s account with a zero balance (no-op if it exists)."""
        if user not in self._accounts:
            self._accounts[user] = Account(user)

    def deposit(self, user: str, amount: Decimal, now_ms: int) -> None:
        """Credit ``amount`` USDT to ``user`` (creating the account); pushes the asset."""
        if amount <= 0 or user in self._liquidity:
            raise ValueError("deposit needs a positive amount and a normal account")
        self.open_account(user)
        account = self._accounts[user]
        account.cash += amount
        account.deposits += amount
        self._touched_users[user] = None
        self._flush(now_ms)

    # ------------------------------------------------------------------ trading

    def place_order(
        self,
        user: str,
        symbol: str,
        side: int,
        order_type: int,
        vol: Decimal,
        price: Decimal | None,
        open_type: int,
        leverage: int | None,
        external_oid: str | None,
        now_ms: int,
        *,
        position_id: int | None = None,
        reduce_only: bool | None = None,
        stop_loss_price: Decimal | None = None,
        take_profit_price: Decimal | None = None,
    ) -> PlaceResult:
        """Place one order (MEXC ``order/create``); raw ints are accepted for the enums.

        Returns :class:`Placed` with the order as it stands after matching (it may already
        be filled or cancelled with an ``errorCode``), or :class:`Rejected` with an envelope
        code when nothing was created. ``reduce_only`` is recorded only (hedge mode);
        stop-loss and take-profit prices are recorded but never triggered.
        """
        account = self._accounts.get(user)
        if account is None:
            return _reject(1000)
        market = self._markets.get(symbol)
        if market is None:
            return _reject(1001)
        c = market.contract
        if not c.api_allowed:
            return _reject(1002)
        if c.state != 0:
            return _reject(6005)
        side_ = _member(Side, side)
        type_ = _member(OrderType, order_type)
        open_ = _member(OpenType, open_type)
        if side_ is None:
            return _reject(2001)
        if type_ is None:
            return _reject(2029)
        if open_ is None:
            return _reject(2002)
        side, order_type, open_type = side_, type_, open_
        tracked = user not in self._liquidity
        if vol <= 0 or vol < c.min_vol:
            return _reject(2011)
        if vol > c.max_vol:
            return _reject(2028)
        if not c.vol_on_step(vol):
            return _reject(2015)
        limit: Decimal | None = None
        if order_type not in _MARKET_TYPES:
            if price is None or price <= 0:
                return _reject(2007)
            if not c.price_on_tick(price):
                return _reject(2015)
            limit = price
            band = self._price_band_violation(market, side, price)
            if band:
                return _reject(band)
        if external_oid is not None:
            if len(external_oid) > 32:
                return _reject(2030)
            if external_oid in account.by_external:
                return _reject(603)
        if tracked and len(account.open_orders) >= c.max_num_orders[0]:
            return _reject(2036)
        kind = side.position_type
        position = account.positions.get((symbol, kind))
        if side.opens:
            slot = self._slot(account, c, kind)
            lev = slot.leverage if leverage is None else leverage
            if not c.min_leverage <= lev <= c.max_leverage:
                return _reject(2006)
            if tracked and self._slot_busy(account, symbol, kind):
                if open_type != slot.open_type:
                    return _reject(2027)
                if lev != slot.leverage:
                    return _reject(2021)
        else:
            if position_id is not None and (
                position is None or position.position_id != position_id
            ):
                return _reject(2009)
            held = position.hold_vol if position is not None else _ZERO
            if tracked and vol > held - account.close_frozen_vol(symbol, kind):
                return _reject(2008)
            lev = (
                position.leverage if position is not None else self._slot(account, c, kind).leverage
            )
            if position is not None:
                open_type = position.open_type

        found = market.book.plan(user, side.is_buy, vol, limit, prevent_self=tracked)
        plan: Plan | None = found
        error = 0
        if order_type == OrderType.POST_ONLY and found.crosses:
            plan, error = None, 20
        elif order_type == OrderType.FOK and found.filled < vol:
            plan, error = None, 19
        rest = _ZERO
        if plan is not None and order_type in (OrderType.LIMIT, OrderType.POST_ONLY):
            rest = vol - plan.filled
        if plan is not None and tracked and side.opens:
            need = sum((order_margin(c, m.price, m.vol, lev) for m in plan.matches), _ZERO)
            if rest:
                need += order_margin(c, price or _ZERO, rest, lev)
            if need > account.available:
                return _reject(2005)

        if side.opens and tracked and not self._slot_busy(account, symbol, kind):
            account.slots[(symbol, kind)] = Slot(lev, open_type)
        self._next_order += 1
        order = OrderRecord(
            order_id=str(self._next_order),
            owner=user,
            symbol=symbol,
            side=side,
            order_type=order_type,
            open_type=open_type,
            leverage=lev,
            price=price if price is not None else _ZERO,
            vol=vol,
            external_oid=external_oid,
            create_time=now_ms,
            update_time=now_ms,
            stop_loss_price=stop_loss_price,
            take_profit_price=take_profit_price,
            reduce_only=bool(reduce_only),
            position_id=position.position_id if position is not None else 0,
        )
        if tracked and side.opens:
            order.order_margin = order_margin(c, order.price, vol, lev) if limit else _ZERO
        account.orders[order.order_id] = order
        if external_oid is not None:
            account.by_external[external_oid] = order.order_id
        self._bump(order, now_ms)

        if plan is not None:
            market.book.execute(plan)
            for step in plan.steps:
                maker = self._open[step.maker_order_id]
                if isinstance(step, Match):
                    self._trade(market, order, maker, step, now_ms)
                else:
                    self._finish(maker, OrderState.CANCELLED, _STP_CANCEL, now_ms)
        if rest:
            market.book.add(Resting(order.order_id, user, side.is_buy, order.price, rest))
            self._open[order.order_id] = order
            account.open_orders[order.order_id] = order
            self._refreeze(order, c)
        elif order.deal_vol == vol:
            self._finish(order, OrderState.FILLED, 0, now_ms)
        else:
            if not error:
                error = 18 if order_type == OrderType.IOC else 21
            self._finish(order, OrderState.CANCELLED, error, now_ms)
        self._flush(now_ms)
        return Placed(order.view())

    def cancel_orders(self, user: str, order_ids: Iterable[str], now_ms: int) -> list[CancelResult]:
        """Cancel orders by id (``order/cancel``): one result row per id, 0/2040/2041."""
        account = self._accounts.get(user)
        results = []
        for order_id in order_ids:
            order = account.orders.get(str(order_id)) if account is not None else None
            results.append(self._cancel_one(order, str(order_id), now_ms))
        self._flush(now_ms)
        return results

    def cancel_order(self, user: str, order_id: str, now_ms: int) -> CancelResult:
        """Cancel one order by id."""
        return self.cancel_orders(user, [order_id], now_ms)[0]

    def cancel_by_external(
        self, user: str, symbol: str, external_oid: str, now_ms: int
    ) -> CancelResult:
        """Cancel one order by ``(symbol, externalOid)`` (``order/cancel_with_external``)."""
        account = self._accounts.get(user)
        order_id = account.by_external.get(external_oid) if account is not None else None
        order = account.orders.get(order_id) if account is not None and order_id else None
        if order is not None and order.symbol != symbol:
            order = None
        result = self._cancel_one(order, order_id or "", now_ms)
        self._flush(now_ms)
        return result

    def cancel_all(self, user: str, symbol: str | None, now_ms: int) -> list[CancelResult]:
        """Cancel every open order of ``user``, of one symbol or (None or "") of all."""
        account = self._accounts.get(user)
        if account is None:
            return []
        ids = [o.order_id for o in account.open_orders.values() if not symbol or o.symbol == symbol]
        return self.cancel_orders(user, ids, now_ms)

    def change_leverage(
        self,
        user: str,
        leverage: int,
        now_ms: int,
        *,
        position_id: int | None = None,
        symbol: str | None = None,
        position_type: int | None = None,
        open_type: int | None = None,
    ) -> Changed | Rejected:
        """``position/change_leverage``: by ``position_id``, or by symbol + position type.

        The open position's margin and the frozen margin of resting opening orders are
        recomputed at the new leverage; an increase beyond the available balance is 2005.
        Changing the margin mode is allowed only while the side is idle (else 2027).
        """
        account = self._accounts.get(user)
        if account is None or user in self._liquidity:
            return _reject(1000)
        if position_id is not None:
            found = self._position_by_id(account, position_id)
            if found is None:
                return _reject(2009)
            symbol, kind = found.symbol, found.position_type
        else:
            if symbol is None or symbol not in self._markets:
                return _reject(1001)
            kind_ = _member(PositionType, position_type)
            if kind_ is None:
                return _reject(600)
            kind = kind_
        if open_type is not None and _member(OpenType, open_type) is None:
            return _reject(2002)
        market = self._markets[symbol]
        c = market.contract
        if not c.min_leverage <= leverage <= c.max_leverage:
            return _reject(2006)
        slot = self._slot(account, c, kind)
        busy = self._slot_busy(account, symbol, kind)
        if open_type is not None and OpenType(open_type) != slot.open_type and busy:
            return _reject(2027)
        position = account.positions.get((symbol, kind))
        orders = [o for o in self._opening_orders(account, symbol, kind)]
        new_im = _ZERO
        delta = _ZERO
        if position is not None:
            new_im = (
                position.im
                - position.base_margin(c)
                + initial_margin(c, position.open_avg, position.hold_vol, leverage)
            )
            delta += new_im - position.im
        for o in orders:
            delta += order_margin(c, o.price, o.remaining, leverage) - o.frozen
        if delta > account.available:
            return _reject(2005)
        slot.leverage = leverage
        if open_type is not None:
            slot.open_type = OpenType(open_type)
        for o in orders:
            o.leverage = leverage
            self._refreeze(o, c)
            self._bump(o, now_ms)
        if position is not None:
            position.oim = initial_margin(c, position.open_avg, position.hold_vol, leverage)
            position.im = new_im
            position.leverage = leverage
            self._bump_position(user, position, now_ms)
        self._touched_users[user] = None
        self._flush(now_ms)
        return Changed(self._position_view(account, position) if position else None)

    def change_margin(
        self, user: str, position_id: int, amount: Decimal, kind: str, now_ms: int
    ) -> Changed | Rejected:
        """``position/change_margin`` on an isolated position: ``kind`` "ADD" or "SUB".

        ADD needs the amount available (2005); SUB may remove only margin above the
        position's initial margin at its leverage (2018). Cross positions: 600.
        """
        account = self._accounts.get(user)
        if account is None or user in self._liquidity:
            return _reject(1000)
        position = self._position_by_id(account, position_id)
        if position is None:
            return _reject(2009)
        if position.open_type != OpenType.ISOLATED or kind not in ("ADD", "SUB"):
            return _reject(600)
        if amount <= 0:
            return _reject(1004)
        c = self._markets[position.symbol].contract
        if kind == "ADD":
            if amount > account.available:
                return _reject(2005)
            position.im += amount
        else:
            if amount > position.im - position.base_margin(c):
                return _reject(2018)
            position.im -= amount
        self._bump_position(user, position, now_ms)
        self._touched_users[user] = None
        self._flush(now_ms)
        return Changed(self._position_view(account, position))

    # ---------------------------------------------------------- prices, funding

    def set_index_price(self, symbol: str, price: Decimal, now_ms: int) -> None:
        """Move the index price (pushes ``push.index.price``; updates the funding rate)."""
        market = self._markets[symbol]
        market.index_price = price
        market.index_klines.record(price, _ZERO, _ZERO, now_ms)
        self._outbox.append(
            Push("push.index.price", PriceView(symbol, price, now_ms), now_ms, symbol)
        )
        self._update_rate(market)

    def set_fair_price(self, symbol: str, price: Decimal, now_ms: int) -> None:
        """Move the fair (mark) price: pushes ``push.fair.price``, updates funding, liquidates."""
        market = self._markets[symbol]
        market.fair_price = price
        market.fair_klines.record(price, _ZERO, _ZERO, now_ms)
        self._outbox.append(
            Push("push.fair.price", PriceView(symbol, price, now_ms), now_ms, symbol)
        )
        self._update_rate(market)
        self._liquidate(market, now_ms)
        self._flush(now_ms)

    def tick(self, now_ms: int) -> None:
        """Settle funding due by ``now_ms``; push every ticker and funding rate."""
        for symbol, market in self._markets.items():
            cycle = market.contract.collect_cycle_h * 3_600_000
            while market.next_settle <= now_ms:
                self._settle_funding(market, market.next_settle)
                market.next_settle += cycle
            self._outbox.append(Push("push.ticker", self.ticker(symbol, now_ms), now_ms, symbol))
            rate = self.funding_rate(symbol, now_ms)
            self._outbox.append(Push("push.funding.rate", rate, now_ms, symbol))
        self._flush(now_ms)
