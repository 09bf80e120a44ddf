"""Market state per symbol: prices, funding, last candle per interval, contract info (pure).

Market data is the bulk of the stream, so each symbol's state is a small mutable record that
the fold updates in place; strategies get a frozen :class:`MarketView`, built on first request
after a change and cached until the next one. Last write wins, except for candles: a kline
whose window starts before the stored one of its interval is stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from attrs import frozen

from engine.codec import from_data, to_data
from engine.model import (
    ContractInfo,
    FairPrice,
    FundingRate,
    IndexPrice,
    Kline,
    Ticker,
    Trade,
)
from engine.projections.base import FoldContext, opt_dec, opt_str

__all__ = ["MarketProjection", "MarketView"]

_PRICE_FIELDS = ("last_price", "bid1", "ask1", "fair_price", "index_price", "funding_rate",
                 "volume24", "high24", "low24")
_INT_FIELDS = ("last_trade_ms", "next_settle_ms", "ts_ms")


@frozen
class MarketView:
    """What is known about one contract's market; ``ts_ms`` is the newest exchange time seen."""

    symbol: str
    last_price: Decimal | None
    last_trade_ms: int | None
    bid1: Decimal | None
    ask1: Decimal | None
    fair_price: Decimal | None
    index_price: Decimal | None
    funding_rate: Decimal | None
    next_settle_ms: int | None
    volume24: Decimal | None
    high24: Decimal | None
    low24: Decimal | None
    ts_ms: int | None
    klines: Mapping[str, Kline]

    def kline(self, interval: str) -> Kline | None:
        """The latest candle of ``interval`` (e.g. ``Min1``)."""
        return self.klines.get(interval)


class _Record:
    """The mutable per-symbol record behind a :class:`MarketView`."""

    __slots__ = (*_PRICE_FIELDS, *_INT_FIELDS, "klines", "symbol", "view")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last_price: Decimal | None = None
        self.bid1: Decimal | None = None
        self.ask1: Decimal | None = None
        self.fair_price: Decimal | None = None
        self.index_price: Decimal | None = None
        self.funding_rate: Decimal | None = None
        self.volume24: Decimal | None = None
        self.high24: Decimal | None = None
        self.low24: Decimal | None = None
        self.last_trade_ms: int | None = None
        self.next_settle_ms: int | None = None
        self.ts_ms: int | None = None
        self.klines: dict[str, Kline] = {}
        self.view: MarketView | None = None

    def freeze(self) -> MarketView:
        view = self.view
        if view is None:
            view = self.view = MarketView(
                self.symbol, self.last_price, self.last_trade_ms, self.bid1, self.ask1,
                self.fair_price, self.index_price, self.funding_rate, self.next_settle_ms,
                self.volume24, self.high24, self.low24, self.ts_ms,
                MappingProxyType(dict(self.klines)),
            )
        return view


class MarketProjection:
    """Per-symbol market records and contract details; mutated only by the fold."""

    __slots__ = ("_contracts", "_ctx", "_records", "stale_klines")

    def __init__(self, ctx: FoldContext) -> None:
        self._ctx = ctx
        self._records: dict[str, _Record] = {}
        self._contracts: dict[str, ContractInfo] = {}
        self.stale_klines = 0

    def _record(self, symbol: str) -> _Record:
        rec = self._records.get(symbol)
        if rec is None:
            rec = self._records[symbol] = _Record(symbol)
        rec.view = None
        return rec

    def on_trade(self, trade: Trade) -> None:
        """A public trade sets the last price."""
        rec = self._record(trade.symbol)
        rec.last_price = trade.price
        rec.last_trade_ms = rec.ts_ms = trade.ts_ms

    def on_ticker(self, t: Ticker) -> None:
        """A ticker sets last price, top of book and whatever else it carries."""
        rec = self._record(t.symbol)
        rec.last_price = t.last_price
        rec.volume24 = t.volume24
        for name in ("bid1", "ask1", "fair_price", "index_price", "funding_rate", "high24",
                     "low24"):
            value = getattr(t, name)
            if value is not None:
                setattr(rec, name, value)
        if t.ts_ms is not None:
            rec.ts_ms = t.ts_ms

    def on_fair_price(self, p: FairPrice) -> None:
        """Fair (mark) price."""
        rec = self._record(p.symbol)
        rec.fair_price = p.price
        if p.ts_ms is not None:
            rec.ts_ms = p.ts_ms

    def on_index_price(self, p: IndexPrice) -> None:
        """Index price."""
        rec = self._record(p.symbol)
        rec.index_price = p.price
        if p.ts_ms is not None:
            rec.ts_ms = p.ts_ms

    def on_funding_rate(self, f: FundingRate) -> None:
        """Funding rate and next settlement time."""
        rec = self._record(f.symbol)
        rec.funding_rate = f.rate
        if f.next_settle_ms is not None:
            rec.next_settle_ms = f.next_settle_ms
        if f.ts_ms is not None:
            rec.ts_ms = f.ts_ms

    def on_kline(self, k: Kline) -> None:
        """Latest candle per interval; an older window is stale."""
        rec = self._record(k.symbol)
        cur = rec.klines.get(k.interval)
        if cur is not None and k.start_s < cur.start_s:
            self.stale_klines += 1
            return
        rec.klines[k.interval] = k

    def on_contract(self, info: ContractInfo) -> None:
        """Contract details replace earlier ones."""
        self._contracts[info.symbol] = info

    def get(self, symbol: str) -> MarketView | None:
        """The market view of ``symbol``, None if nothing was seen."""
        rec = self._records.get(symbol)
        return None if rec is None else rec.freeze()

    def contract(self, symbol: str) -> ContractInfo | None:
        """Contract details of ``symbol``."""
        return self._contracts.get(symbol)

    def symbols(self) -> tuple[str, ...]:
        """Symbols with market data, in order of first appearance."""
        return tuple(self._records)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready form."""
        markets = {}
        for symbol, rec in self._records.items():
            item: dict[str, Any] = {name: opt_str(getattr(rec, name)) for name in _PRICE_FIELDS}
            item.update({name: getattr(rec, name) for name in _INT_FIELDS})
            item["klines"] = [to_data(k) for k in rec.klines.values()]
            markets[symbol] = item
        return {
            "markets": markets,
            "contracts": [to_data(c) for c in self._contracts.values()],
            "stale_klines": self.stale_klines,
        }

    @classmethod
    def from_data(cls, ctx: FoldContext, data: dict[str, Any]) -> MarketProjection:
        """Inverse of :meth:`to_data`."""
        proj = cls(ctx)
        for symbol, item in data["markets"].items():
            rec = proj._record(symbol)
            for name in _PRICE_FIELDS:
                setattr(rec, name, opt_dec(item[name]))
            for name in _INT_FIELDS:
                setattr(rec, name, item[name])
            for k in item["klines"]:
                kline: Kline = from_data(k, Kline)
                rec.klines[kline.interval] = kline
        for c in data["contracts"]:
            info: ContractInfo = from_data(c, ContractInfo)
            proj._contracts[info.symbol] = info
        proj.stale_klines = int(data["stale_klines"])
        return proj
