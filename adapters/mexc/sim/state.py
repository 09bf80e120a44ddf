"""The simulator core's state and the mutation primitives every operation uses (pure).

:class:`ExchangeState` owns the books, accounts, id counters and the push outbox; its private
methods apply a fill to an order, account and position, finish an order, settle funding,
liquidate, and turn whatever a call touched into pushes (:meth:`ExchangeState._flush`).
The public operations live in :mod:`adapters.mexc.sim.exchange`, the queries in
:mod:`adapters.mexc.sim.queries`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal

from attrs import Factory, define

from adapters.mexc.sim.book import Match, OrderBook
from adapters.mexc.sim.contracts import Contract, default_contracts
from adapters.mexc.sim.facts import (
    CancelResult,
    Deal,
    FillView,
    FundingRecord,
    FundingSettlement,
    PositionView,
    Push,
)
from adapters.mexc.sim.klines import Klines
from adapters.mexc.sim.ledger import (
    Account,
    OrderRecord,
    PositionRecord,
    Slot,
    average_price,
    close_profit,
    fee,
    initial_margin,
    order_margin,
    ratio,
    unrealised,
)
from engine.model import (
    OpenType,
    OrderState,
    OrderType,
    PositionState,
    PositionType,
    Side,
    TakerSide,
)

__all__ = ["ExchangeState", "SymbolState"]

_ZERO = Decimal(0)
_RATE_QUANTUM = Decimal("1e-6")


@define
class SymbolState:
    """Everything the core keeps about one symbol."""

    contract: Contract
    book: OrderBook
    deals: deque[Deal]
    trades: Klines
    index_klines: Klines
    fair_klines: Klines
    next_settle: int
    last_price: Decimal | None = None
    index_price: Decimal | None = None
    fair_price: Decimal | None = None
    funding_rate: Decimal = _ZERO
    settlements: list[FundingSettlement] = Factory(list)


class ExchangeState:
    """State and mutation primitives; constructor arguments are documented on
    :class:`~adapters.mexc.sim.exchange.Exchange`."""

    def __init__(
        self,
        now_ms: int,
        contracts: Iterable[Contract] | None = None,
        *,
        liquidity: Iterable[str] = ("market",),
        default_leverage: int = 20,
        commit_limit: int = 1000,
        deal_limit: int = 1000,
        kline_keep: int = 2000,
        liquidity_history: int = 1000,
    ) -> None:
        specs: Mapping[str, Contract] = (
            default_contracts() if contracts is None else {c.symbol: c for c in contracts}
        )
        self._markets: dict[str, SymbolState] = {}
        for symbol, contract in specs.items():
            cycle = contract.collect_cycle_h * 3_600_000
            self._markets[symbol] = SymbolState(
                contract=contract,
                book=OrderBook(symbol, commit_limit=commit_limit),
                deals=deque(maxlen=deal_limit),
                trades=Klines(symbol, kline_keep),
                index_klines=Klines(symbol, kline_keep),
                fair_klines=Klines(symbol, kline_keep),
                next_settle=(now_ms // cycle + 1) * cycle,
            )
        self._accounts: dict[str, Account] = {}
        self._liquidity: set[str] = set()
        self._liquidity_history = liquidity_history
        self._finished: dict[str, deque[str]] = {}
        for name in liquidity:
            self._accounts[name] = Account(name)
            self._liquidity.add(name)
            self._finished[name] = deque()
        self.default_leverage = default_leverage
        self._open: dict[str, OrderRecord] = {}
        self._next_order = 700_000_000_000_000_000
        self._next_position = 1_000_000_000
        self._next_fill = 300_000_000
        self._next_deal = 1
        self._next_funding = 1
        self._outbox: list[Push] = []
        self._touched_orders: dict[str, OrderRecord] = {}
        self._touched_positions: dict[tuple[str, str, PositionType], PositionRecord] = {}
        self._touched_users: dict[str, None] = {}
        self._new_fills: list[tuple[str, FillView]] = []
        self._new_deals: dict[str, list[Deal]] = {}

    def drain_pushes(self) -> list[Push]:
        """Every push since the last drain, in the order the changes happened."""
        pushes, self._outbox = self._outbox, []
        return pushes

    def _update_rate(self, market: SymbolState) -> None:
        index, fair = market.index_price, market.fair_price
        if index is None or fair is None or index <= 0:
            return
        cap = market.contract.max_funding_rate
        market.funding_rate = max(-cap, min(cap, ratio(fair - index, index, _RATE_QUANTUM)))

    def _settle_funding(self, market: SymbolState, settle_time: int) -> None:
        c = market.contract
        rate = market.funding_rate
        market.settlements.append(FundingSettlement(c.symbol, rate, settle_time, c.collect_cycle_h))
        mark = self._mark(market)
        if mark is None:
            return
        for account in self._accounts.values():
            for (symbol, kind), position in account.positions.items():
                if symbol != c.symbol:
                    continue
                value = position.hold_vol * c.contract_size * mark
                paid = value * rate if kind == PositionType.SHORT else -value * rate
                account.cash += paid
                position.realised += paid
                position.funding += paid
                account.funding.append(
                    FundingRecord(
                        self._next_funding,
                        c.symbol,
                        position.position_id,
                        kind,
                        value,
                        paid,
                        rate,
                        settle_time,
                    )
                )
                self._next_funding += 1
                self._bump_position(account.user, position, settle_time)
                self._touched_users[account.user] = None

    def _liquidate(self, market: SymbolState, now_ms: int) -> None:
        fair = market.fair_price
        c = market.contract
        for account in self._accounts.values():
            for (symbol, kind), position in list(account.positions.items()):
                if symbol != c.symbol or fair is None:
                    continue
                liq = self._position_view(account, position).liquidate_price
                long = kind == PositionType.LONG
                if liq <= 0 or (fair > liq if long else fair < liq):
                    continue
                for o in list(account.open_orders.values()):
                    if o.symbol == symbol and not o.side.opens and o.side.position_type == kind:
                        market.book.remove(o.order_id)
                        self._finish(o, OrderState.CANCELLED, 13, now_ms)
                self._next_order += 1
                order = OrderRecord(
                    order_id=str(self._next_order),
                    owner=account.user,
                    symbol=symbol,
                    side=Side.CLOSE_LONG if long else Side.CLOSE_SHORT,
                    order_type=OrderType.MARKET,
                    open_type=position.open_type,
                    leverage=position.leverage,
                    price=liq,
                    vol=position.hold_vol,
                    external_oid=None,
                    create_time=now_ms,
                    position_id=position.position_id,
                    category=2,
                )
                account.orders[order.order_id] = order
                self._bump(order, now_ms)
                self._fill(market, order, liq, position.hold_vol, True, now_ms, category=2)
                self._finish(order, OrderState.FILLED, 0, now_ms)

    # ---------------------------------------------------------------- internals

    def _slot(self, account: Account, c: Contract, kind: PositionType) -> Slot:
        key = (c.symbol, kind)
        slot = account.slots.get(key)
        if slot is None:
            lev = max(c.min_leverage, min(self.default_leverage, c.max_leverage))
            slot = account.slots[key] = Slot(lev, OpenType.CROSS)
        return slot

    def _opening_orders(
        self, account: Account, symbol: str, kind: PositionType
    ) -> list[OrderRecord]:
        return [
            o
            for o in account.open_orders.values()
            if o.symbol == symbol and o.side.opens and o.side.position_type == kind
        ]

    def _slot_busy(self, account: Account, symbol: str, kind: PositionType) -> bool:
        return (symbol, kind) in account.positions or bool(
            self._opening_orders(account, symbol, kind)
        )

    def _position_by_id(self, account: Account, position_id: int) -> PositionRecord | None:
        for position in account.positions.values():
            if position.position_id == position_id:
                return position
        return None

    def _price_band_violation(self, market: SymbolState, side: Side, price: Decimal) -> int:
        fair = market.fair_price
        if fair is None:
            return 0
        c = market.contract
        if side.is_buy and price > fair * (1 + c.bid_limit_price_rate):
            return 2003
        if not side.is_buy and price < fair * (1 - c.ask_limit_price_rate):
            return 2004
        return 0

    def _mark(self, market: SymbolState) -> Decimal | None:
        return market.fair_price if market.fair_price is not None else market.last_price

    def _unrealized(self, account: Account) -> Decimal:
        total = _ZERO
        for (symbol, kind), position in account.positions.items():
            market = self._markets[symbol]
            mark = self._mark(market)
            if mark is not None:
                cs = market.contract.contract_size
                total += unrealised(kind, position.open_avg, mark, position.hold_vol, cs)
        return total

    def _position_view(self, account: Account, position: PositionRecord) -> PositionView:
        market = self._markets[position.symbol]
        kind = position.position_type
        holding = position.state == PositionState.HOLDING
        frozen_vol = account.close_frozen_vol(position.symbol, kind) if holding else _ZERO
        backing = position.im
        if position.open_type == OpenType.CROSS:
            backing += max(_ZERO, account.available)
        return position.view(market.contract, self._mark(market), frozen_vol, backing)

    def _touch_order(self, order: OrderRecord) -> None:
        self._touched_orders[order.order_id] = order

    def _bump(self, order: OrderRecord, now_ms: int) -> None:
        order.version += 1
        order.update_time = now_ms
        self._touch_order(order)

    def _bump_position(self, user: str, position: PositionRecord, now_ms: int) -> None:
        position.version += 1
        position.update_time = now_ms
        self._touched_positions[(user, position.symbol, position.position_type)] = position

    def _refreeze(self, order: OrderRecord, c: Contract) -> None:
        if order.owner in self._liquidity or not order.side.opens or not order.is_open:
            order.frozen = _ZERO
        else:
            order.frozen = order_margin(c, order.price, order.remaining, order.leverage)
        self._touched_users[order.owner] = None

    def _finish(self, order: OrderRecord, state: OrderState, error: int, now_ms: int) -> None:
        order.state = state
        order.error_code = error
        order.frozen = _ZERO
        self._open.pop(order.order_id, None)
        account = self._accounts[order.owner]
        account.open_orders.pop(order.order_id, None)
        self._bump(order, now_ms)
        self._touched_users[order.owner] = None
        finished = self._finished.get(order.owner)
        if finished is not None:  # a liquidity participant: bounded history
            finished.append(order.order_id)
            while len(finished) > self._liquidity_history:
                old = account.orders.pop(finished.popleft())
                if old.external_oid is not None:
                    account.by_external.pop(old.external_oid, None)

    def _cancel_one(self, order: OrderRecord | None, order_id: str, now_ms: int) -> CancelResult:
        if order is None:
            return CancelResult(order_id, 2040, "order not exist")
        if not order.is_open:
            return CancelResult(order_id, 2041, "order state cannot be cancelled")
        self._markets[order.symbol].book.remove(order.order_id)
        self._finish(order, OrderState.CANCELLED, 0, now_ms)
        return CancelResult(order_id, 0, "success")

    def _trade(
        self, market: SymbolState, taker: OrderRecord, maker: OrderRecord, step: Match, now_ms: int
    ) -> None:
        c = market.contract
        side = TakerSide.BUY if taker.side.is_buy else TakerSide.SELL
        deal = Deal(c.symbol, self._next_deal, step.price, step.vol, side, taker.side.opens, now_ms)
        self._next_deal += 1
        market.deals.append(deal)
        self._new_deals.setdefault(c.symbol, []).append(deal)
        market.last_price = step.price
        market.trades.record(step.price, step.vol, step.price * step.vol * c.contract_size, now_ms)
        self._fill(market, taker, step.price, step.vol, True, now_ms, deal.deal_id)
        self._fill(market, maker, step.price, step.vol, False, now_ms, deal.deal_id)
        if maker.deal_vol == maker.vol:
            self._finish(maker, OrderState.FILLED, 0, now_ms)
        else:
            self._refreeze(maker, c)

    def _fill(
        self,
        market: SymbolState,
        order: OrderRecord,
        price: Decimal,
        vol: Decimal,
        is_taker: bool,
        now_ms: int,
        deal_id: int = 0,
        category: int = 1,
    ) -> None:
        order.deal_vol += vol
        order.deal_value += price * vol
        self._bump(order, now_ms)
        if order.owner in self._liquidity:
            return
        account = self._accounts[order.owner]
        c = market.contract
        paid = _ZERO if category == 2 else fee(c, price, vol, is_taker)
        kind = order.side.position_type
        position = account.positions.get((c.symbol, kind))
        profit = _ZERO
        if order.side.opens:
            if position is None:
                self._next_position += 1
                position = PositionRecord(
                    self._next_position, c.symbol, kind, order.open_type, order.leverage, now_ms
                )
                account.positions[(c.symbol, kind)] = position
            margin = initial_margin(c, price, vol, position.leverage)
            position.open_avg = average_price(position.open_avg, position.hold_vol, price, vol)
            position.hold_vol += vol
            position.im += margin
            position.oim += margin
            order.used_margin += margin
        else:
            if position is None:
                raise AssertionError(f"closing fill of {order.order_id} without a position")
            profit = close_profit(kind, position.open_avg, price, vol, c.contract_size)
            if vol == position.hold_vol:
                position.im = position.oim = _ZERO
            else:
                position.im -= ratio(position.im * vol, position.hold_vol)
                position.oim -= ratio(position.oim * vol, position.hold_vol)
            position.hold_vol -= vol
            position.close_vol += vol
            position.close_value += price * vol
        position.realised += profit - paid
        position.fees += paid
        account.cash += profit - paid
        order.profit += profit
        if is_taker:
            order.taker_fee += paid
        else:
            order.maker_fee += paid
        order.position_id = position.position_id
        self._bump_position(account.user, position, now_ms)
        if position.hold_vol == 0:
            position.state = PositionState.CLOSED
            del account.positions[(c.symbol, kind)]
            account.closed_positions.append(position)
        self._next_fill += 1
        fill = FillView(
            fill_id=str(self._next_fill),
            order_id=order.order_id,
            symbol=c.symbol,
            side=order.side,
            vol=vol,
            price=price,
            fee=paid,
            profit=profit,
            is_taker=is_taker,
            timestamp=now_ms,
            position_id=position.position_id,
            deal_id=deal_id,
            external_oid=order.external_oid,
            category=category,
        )
        account.fills.append(fill)
        account.fills_by_order.setdefault(order.order_id, []).append(fill)
        self._new_fills.append((account.user, fill))
        self._touched_users[account.user] = None

    def _flush(self, now_ms: int) -> None:
        """Commit depth and turn everything touched by this call into pushes."""
        out = self._outbox
        for symbol, market in self._markets.items():
            commit = market.book.commit(now_ms)
            if commit is not None:
                out.append(Push("push.depth", commit, now_ms, symbol))
            deals = self._new_deals.pop(symbol, None)
            if deals:
                out.append(Push("push.deal", tuple(deals), now_ms, symbol))
                for candle in market.trades.latest():
                    out.append(Push("push.kline", candle, now_ms, symbol))
        for user, fill in self._new_fills:
            out.append(Push("push.personal.order.deal", fill, now_ms, user=user))
        for order in self._touched_orders.values():
            if order.owner not in self._liquidity:
                out.append(Push("push.personal.order", order.view(), now_ms, user=order.owner))
        for (user, _, _), position in self._touched_positions.items():
            view = self._position_view(self._accounts[user], position)
            out.append(Push("push.personal.position", view, now_ms, user=user))
        for user in self._touched_users:
            if user not in self._liquidity:
                account = self._accounts[user]
                asset = account.asset(self._unrealized(account))
                out.append(Push("push.personal.asset", asset, now_ms, user=user))
        self._new_fills.clear()
        self._touched_orders.clear()
        self._touched_positions.clear()
        self._touched_users.clear()
