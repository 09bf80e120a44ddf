"""Read-only queries of the simulator core, the middle layer of :class:`Exchange` (pure).

Private queries answer for one account and return empty results for an unknown one; public
queries raise :class:`KeyError` for an unknown symbol (the server checks
:meth:`ExchangeQueries.contract` first and answers 1001). Lists come newest first where MEXC's
do (history, deals, fills), otherwise in creation order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from adapters.mexc.sim.contracts import Contract
from adapters.mexc.sim.facts import (
    AssetView,
    Candle,
    Deal,
    DepthCommit,
    DepthSnapshot,
    FillView,
    FundingRateView,
    FundingRecord,
    FundingSettlement,
    LeverageView,
    OrderView,
    PositionView,
    PriceView,
    TickerView,
)
from adapters.mexc.sim.ledger import Account, OrderRecord, quantize, ratio
from adapters.mexc.sim.state import ExchangeState, SymbolState
from engine.model import OpenType, OrderState, PositionType

__all__ = ["ExchangeQueries"]

_ZERO = Decimal(0)
_DAY_S = 86_400


class ExchangeQueries(ExchangeState):
    """Queries over the state an :class:`~adapters.mexc.sim.exchange.Exchange` keeps."""

    # ------------------------------------------------------------ reference data

    @property
    def contracts(self) -> Mapping[str, Contract]:
        """Every listed contract by symbol."""
        return {symbol: market.contract for symbol, market in self._markets.items()}

    def contract(self, symbol: str) -> Contract | None:
        """One contract, or None when the symbol is not listed."""
        market = self._markets.get(symbol)
        return market.contract if market is not None else None

    def has_account(self, user: str) -> bool:
        """True when ``user`` is an account (not a liquidity participant)."""
        return user in self._accounts and user not in self._liquidity

    # ---------------------------------------------------------------- private

    def _account(self, user: str) -> Account | None:
        return self._accounts.get(user)

    def order(self, user: str, order_id: str) -> OrderView | None:
        """One order of ``user`` by id (``order/get``)."""
        account = self._account(user)
        order = account.orders.get(str(order_id)) if account is not None else None
        return order.view() if order is not None else None

    def order_by_external(self, user: str, symbol: str, external_oid: str) -> OrderView | None:
        """One order by ``(symbol, externalOid)`` (``order/external``)."""
        account = self._account(user)
        if account is None or external_oid not in account.by_external:
            return None
        order = account.orders.get(account.by_external[external_oid])
        return order.view() if order is not None and order.symbol == symbol else None

    def orders_by_ids(self, user: str, order_ids: Iterable[str]) -> list[OrderView]:
        """The known orders among ``order_ids`` (``order/batch_query``)."""
        found = (self.order(user, order_id) for order_id in order_ids)
        return [view for view in found if view is not None]

    def open_orders(self, user: str, symbol: str | None = None) -> list[OrderView]:
        """Orders still open, oldest first (``order/list/open_orders``)."""
        account = self._account(user)
        if account is None:
            return []
        return [o.view() for o in account.open_orders.values() if not symbol or o.symbol == symbol]

    def history_orders(
        self,
        user: str,
        symbol: str | None = None,
        states: Iterable[int] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        side: int | None = None,
    ) -> list[OrderView]:
        """Every order, newest first, filtered (``order/list/history_orders``)."""
        account = self._account(user)
        if account is None:
            return []
        wanted = {OrderState(s) for s in states} if states is not None else None

        def keep(o: OrderRecord) -> bool:
            return (
                (not symbol or o.symbol == symbol)
                and (wanted is None or o.state in wanted)
                and (start_ms is None or o.create_time >= start_ms)
                and (end_ms is None or o.create_time <= end_ms)
                and (side is None or o.side == side)
            )

        return [o.view() for o in reversed(account.orders.values()) if keep(o)]

    def deals_of_order(self, user: str, order_id: str) -> list[FillView]:
        """The fills of one order, in order (``order/deal_details``)."""
        account = self._account(user)
        return list(account.fills_by_order.get(str(order_id), ())) if account else []

    def fills(
        self,
        user: str,
        symbol: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[FillView]:
        """The user's fills, newest first (``order/list/order_deals``)."""
        account = self._account(user)
        if account is None:
            return []
        return [
            f
            for f in reversed(account.fills)
            if (not symbol or f.symbol == symbol)
            and (start_ms is None or f.timestamp >= start_ms)
            and (end_ms is None or f.timestamp <= end_ms)
        ]

    def positions(
        self, user: str, symbol: str | None = None, position_id: int | None = None
    ) -> list[PositionView]:
        """Open positions (``position/open_positions``)."""
        account = self._account(user)
        if account is None:
            return []
        return [
            self._position_view(account, p)
            for p in account.positions.values()
            if (not symbol or p.symbol == symbol)
            and (position_id is None or p.position_id == position_id)
        ]

    def history_positions(
        self, user: str, symbol: str | None = None, position_type: int | None = None
    ) -> list[PositionView]:
        """Closed positions, newest first (``position/list/history_positions``)."""
        account = self._account(user)
        if account is None:
            return []
        return [
            self._position_view(account, p)
            for p in reversed(account.closed_positions)
            if (not symbol or p.symbol == symbol)
            and (position_type is None or p.position_type == position_type)
        ]

    def funding_records(
        self, user: str, symbol: str | None = None, position_id: int | None = None
    ) -> list[FundingRecord]:
        """Funding payments, newest first (``position/funding_records``)."""
        account = self._account(user)
        if account is None:
            return []
        return [
            r
            for r in reversed(account.funding)
            if (not symbol or r.symbol == symbol)
            and (position_id is None or r.position_id == position_id)
        ]

    def assets(self, user: str) -> list[AssetView]:
        """The account's balances (USDT only) (``account/assets``)."""
        account = self._account(user)
        if account is None or user in self._liquidity:
            return []
        return [account.asset(self._unrealized(account))]

    def asset(self, user: str, currency: str) -> AssetView | None:
        """One currency's balance (``account/asset/{currency}``)."""
        return next((a for a in self.assets(user) if a.currency == currency), None)

    def leverage(self, user: str, symbol: str) -> list[LeverageView]:
        """Leverage and margin mode of both position sides (``position/leverage``)."""
        market = self._markets[symbol]
        c = market.contract
        account = self._account(user)
        rows = []
        for kind in PositionType:
            slot = account.slots.get((symbol, kind)) if account is not None else None
            position = account.positions.get((symbol, kind)) if account is not None else None
            lev = position.leverage if position else slot.leverage if slot else 0
            open_type = (
                position.open_type if position else slot.open_type if slot else OpenType.CROSS
            )
            rows.append(
                LeverageView(
                    symbol,
                    kind,
                    open_type,
                    lev or 20,
                    c.max_leverage,
                    c.initial_margin_rate,
                    c.maintenance_margin_rate,
                )
            )
        return rows

    # ----------------------------------------------------------------- public

    def depth_snapshot(self, symbol: str, now_ms: int, limit: int | None = None) -> DepthSnapshot:
        """The aggregated book with its version (``depth/{symbol}``)."""
        return self._markets[symbol].book.snapshot(now_ms, limit)

    def depth_commits(self, symbol: str, limit: int = 1000) -> list[DepthCommit]:
        """The last ``limit`` depth commits, oldest first (``depth_commits``)."""
        return list(self._markets[symbol].book.commits(limit))

    def recent_deals(self, symbol: str, limit: int = 100) -> list[Deal]:
        """The last ``limit`` public trades, newest first (``deals/{symbol}``)."""
        deals = self._markets[symbol].deals
        return [deals[-1 - i] for i in range(min(limit, len(deals)))]

    def klines(
        self,
        symbol: str,
        interval: str = "Min1",
        start_s: int | None = None,
        end_s: int | None = None,
        source: str = "last",
        limit: int = 2000,
    ) -> list[Candle]:
        """Candles of the trade (``last``), ``index`` or ``fair`` price series."""
        market = self._markets[symbol]
        series = {"last": market.trades, "index": market.index_klines, "fair": market.fair_klines}
        return series[source].candles(interval, start_s, end_s, limit)

    def index_price(self, symbol: str, now_ms: int) -> PriceView:
        """The index price (``index_price/{symbol}``); falls back to the last price."""
        market = self._markets[symbol]
        return PriceView(symbol, self._reference(market, market.index_price), now_ms)

    def fair_price(self, symbol: str, now_ms: int) -> PriceView:
        """The fair price (``fair_price/{symbol}``); falls back to the last price."""
        market = self._markets[symbol]
        return PriceView(symbol, self._reference(market, market.fair_price), now_ms)

    def funding_rate(self, symbol: str, now_ms: int) -> FundingRateView:
        """The current funding rate and next settle time (``funding_rate/{symbol}``)."""
        market = self._markets[symbol]
        c = market.contract
        return FundingRateView(
            symbol,
            market.funding_rate,
            c.max_funding_rate,
            c.collect_cycle_h,
            market.next_settle,
            now_ms,
        )

    def funding_history(self, symbol: str) -> list[FundingSettlement]:
        """Past settlements, newest first (``funding_rate/history``)."""
        return list(reversed(self._markets[symbol].settlements))

    def ticker(self, symbol: str, now_ms: int) -> TickerView:
        """The ticker; 24 h figures from the Min1 candles of the last 24 hours."""
        market = self._markets[symbol]
        c = market.contract
        last = self._reference(market, market.last_price)
        day = market.trades.window("Min1", now_ms // 1000 - _DAY_S + 60)
        open24 = day[0].open if day else last
        change = last - open24
        index = self._reference(market, market.index_price)
        fair = self._reference(market, market.fair_price)
        hold = sum(
            (
                p.hold_vol
                for a in self._accounts.values()
                for (s, kind), p in a.positions.items()
                if s == symbol and kind == PositionType.LONG
            ),
            _ZERO,
        )
        return TickerView(
            symbol=symbol,
            contract_id=c.contract_id,
            last_price=last,
            bid1=market.book.best_bid or _ZERO,
            ask1=market.book.best_ask or _ZERO,
            volume24=sum((k.vol for k in day), _ZERO),
            amount24=sum((k.amount for k in day), _ZERO),
            hold_vol=hold,
            low24=min((k.low for k in day), default=last),
            high24=max((k.high for k in day), default=last),
            rise_fall_rate=ratio(change, open24, Decimal("1e-4")) if open24 else _ZERO,
            rise_fall_value=change,
            index_price=index,
            fair_price=fair,
            funding_rate=market.funding_rate,
            max_bid_price=quantize(index * (1 + c.bid_limit_price_rate), c.price_unit, ROUND_FLOOR),
            min_ask_price=quantize(
                index * (1 - c.ask_limit_price_rate), c.price_unit, ROUND_CEILING
            ),
            ts=now_ms,
        )

    def tickers(self, now_ms: int) -> list[TickerView]:
        """Every contract's ticker (``ticker`` without a symbol)."""
        return [self.ticker(symbol, now_ms) for symbol in self._markets]

    def _reference(self, market: SymbolState, price: Decimal | None) -> Decimal:
        for candidate in (price, market.last_price, market.fair_price, market.index_price):
            if candidate is not None:
                return candidate
        return _ZERO
