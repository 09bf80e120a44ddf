"""The simulator core's outputs: frozen, MEXC-shaped facts and push events (pure).

Every value here is a snapshot the server layer can serialize without looking anything up:
``wire()`` returns the MEXC JSON object (keys as on the wire, numbers as :class:`Decimal`,
order ids as strings) and the server only chooses how to render numbers. A :class:`Push`
names its channel (``push.depth``, ``push.personal.order``, ...), its audience (``user`` is
None for public pushes) and carries one fact, or a tuple of facts for ``push.deal``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from attrs import frozen

from engine.model import (
    Level,
    OpenType,
    OrderState,
    OrderType,
    PositionState,
    PositionType,
    Side,
    TakerSide,
)

__all__ = [
    "AssetView",
    "CancelResult",
    "Candle",
    "Changed",
    "Deal",
    "DepthCommit",
    "DepthSnapshot",
    "Fact",
    "FillView",
    "FundingRateView",
    "FundingRecord",
    "FundingSettlement",
    "LeverageView",
    "OrderView",
    "Placed",
    "PositionView",
    "PriceView",
    "Push",
    "Rejected",
    "TickerView",
    "tidy",
]


class Fact(Protocol):
    """Anything with a MEXC wire form."""

    def wire(self) -> dict[str, Any]:
        """The MEXC JSON object."""
        ...


def tidy(value: Decimal) -> Decimal:
    """``value`` without trailing zeros or a negative zero (integers keep no exponent)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1)) + 0
    return value.normalize() + 0


def _tidy(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: tidy(v) if isinstance(v, Decimal) else v for k, v in obj.items()}


def _levels(levels: tuple[Level, ...]) -> list[list[Any]]:
    return [[tidy(price), tidy(vol), count] for price, vol, count in levels]


@frozen
class OrderView:
    """One order as MEXC reports it (§1.4), plus ``remainVol`` and ``version``."""

    order_id: str
    symbol: str
    position_id: int
    price: Decimal
    vol: Decimal
    leverage: int
    side: Side
    order_type: OrderType
    open_type: OpenType
    state: OrderState
    deal_vol: Decimal
    deal_avg_price: Decimal
    order_margin: Decimal
    used_margin: Decimal
    taker_fee: Decimal
    maker_fee: Decimal
    profit: Decimal
    external_oid: str | None
    error_code: int
    create_time: int
    update_time: int
    version: int
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    category: int = 1
    reduce_only: bool = False
    fee_currency: str = "USDT"

    @property
    def remain_vol(self) -> Decimal:
        """Volume neither filled nor cancelled (0 once the order is final)."""
        if self.state in (OrderState.PENDING, OrderState.OPEN):
            return self.vol - self.deal_vol
        return Decimal(0)

    def wire(self) -> dict[str, Any]:
        """The order object of ``order/get`` and ``push.personal.order``."""
        return _tidy(
            {
                "orderId": self.order_id,
                "symbol": self.symbol,
                "positionId": self.position_id,
                "price": self.price,
                "priceStr": str(self.price),
                "vol": self.vol,
                "leverage": self.leverage,
                "side": int(self.side),
                "category": self.category,
                "orderType": int(self.order_type),
                "dealAvgPrice": self.deal_avg_price,
                "dealAvgPriceStr": str(self.deal_avg_price),
                "dealVol": self.deal_vol,
                "orderMargin": self.order_margin,
                "usedMargin": self.used_margin,
                "takerFee": self.taker_fee,
                "makerFee": self.maker_fee,
                "totalFee": self.taker_fee + self.maker_fee,
                "profit": self.profit,
                "feeCurrency": self.fee_currency,
                "openType": int(self.open_type),
                "state": int(self.state),
                "externalOid": self.external_oid,
                "errorCode": self.error_code,
                "createTime": self.create_time,
                "updateTime": self.update_time,
                "stopLossPrice": self.stop_loss_price,
                "takeProfitPrice": self.take_profit_price,
                "remainVol": self.remain_vol,
                "version": self.version,
                "positionMode": 1,
                "reduceOnly": self.reduce_only,
            }
        )


@frozen
class FillView:
    """One private fill (``order/deal_details``, ``push.personal.order.deal``).

    ``profit`` is the realised PnL of a closing fill (0 when opening); ``fee`` is what was
    charged, in USDT. ``position_id`` is the hedge-mode position the fill changed and
    ``deal_id`` the public trade (``i``) it belongs to (0 for a liquidation).
    """

    fill_id: str
    order_id: str
    symbol: str
    side: Side
    vol: Decimal
    price: Decimal
    fee: Decimal
    profit: Decimal
    is_taker: bool
    timestamp: int
    position_id: int
    deal_id: int = 0
    external_oid: str | None = None
    category: int = 1
    fee_currency: str = "USDT"

    def wire(self) -> dict[str, Any]:
        """The fill object; carries both ``isTaker`` and ``taker`` as the venue does."""
        return _tidy(
            {
                "id": self.fill_id,
                "symbol": self.symbol,
                "side": int(self.side),
                "vol": self.vol,
                "price": self.price,
                "feeCurrency": self.fee_currency,
                "fee": self.fee,
                "timestamp": self.timestamp,
                "profit": self.profit,
                "isTaker": self.is_taker,
                "taker": self.is_taker,
                "category": self.category,
                "orderId": self.order_id,
                "isSelf": False,
                "externalOid": self.external_oid,
                "positionMode": 1,
                "reduceOnly": False,
                "positionId": self.position_id,
            }
        )


@frozen
class PositionView:
    """One hedge-mode position (``open_positions``, ``push.personal.position``)."""

    position_id: int
    symbol: str
    position_type: PositionType
    open_type: OpenType
    state: PositionState
    hold_vol: Decimal
    frozen_vol: Decimal
    close_vol: Decimal
    open_avg_price: Decimal
    close_avg_price: Decimal
    liquidate_price: Decimal
    im: Decimal
    oim: Decimal
    realised: Decimal
    unrealised: Decimal
    hold_fee: Decimal
    total_fee: Decimal
    leverage: int
    create_time: int
    update_time: int
    version: int

    def wire(self) -> dict[str, Any]:
        """The position object; adds ccxt's undocumented ``unRealizedPnl``."""
        return _tidy(
            {
                "positionId": self.position_id,
                "symbol": self.symbol,
                "positionType": int(self.position_type),
                "openType": int(self.open_type),
                "state": int(self.state),
                "holdVol": self.hold_vol,
                "frozenVol": self.frozen_vol,
                "closeVol": self.close_vol,
                "holdAvgPrice": self.open_avg_price,
                "openAvgPrice": self.open_avg_price,
                "closeAvgPrice": self.close_avg_price,
                "liquidatePrice": self.liquidate_price,
                "oim": self.oim,
                "im": self.im,
                "holdFee": self.hold_fee,
                "realised": self.realised,
                "unRealizedPnl": self.unrealised,
                "adlLevel": 1 if self.state == PositionState.HOLDING else 0,
                "leverage": self.leverage,
                "createTime": self.create_time,
                "updateTime": self.update_time,
                "autoAddIm": False,
                "positionMode": 1,
                "totalFee": self.total_fee,
                "version": self.version,
            }
        )


@frozen
class AssetView:
    """A user's USDT balance (``account/assets``, ``push.personal.asset``).

    ``available = cash - position_margin - frozen``; ``equity = cash + unrealized``.
    """

    currency: str
    cash_balance: Decimal
    position_margin: Decimal
    frozen_balance: Decimal
    available_balance: Decimal
    unrealized: Decimal
    equity: Decimal

    def wire(self) -> dict[str, Any]:
        """The asset object."""
        return _tidy(
            {
                "currency": self.currency,
                "positionMargin": self.position_margin,
                "availableBalance": self.available_balance,
                "cashBalance": self.cash_balance,
                "frozenBalance": self.frozen_balance,
                "equity": self.equity,
                "unrealized": self.unrealized,
                "bonus": Decimal(0),
                "availableCash": self.available_balance,
                "availableOpen": self.available_balance,
            }
        )


@frozen
class Deal:
    """One public trade (``deals``, ``push.deal``); ``opens`` reflects the taker's side."""

    symbol: str
    deal_id: int
    price: Decimal
    vol: Decimal
    taker_side: TakerSide
    opens: bool
    ts: int

    def wire(self) -> dict[str, Any]:
        """``{p, v, T, O, M, t, i}``; ``M`` is always 2 (the simulator forbids self-trades)."""
        return _tidy(
            {
                "p": self.price,
                "v": self.vol,
                "T": int(self.taker_side),
                "O": 1 if self.opens else 2,
                "M": 2,
                "t": self.ts,
                "i": self.deal_id,
            }
        )


@frozen
class DepthCommit:
    """One change of the aggregated book: absolute level volumes, 0 deletes the level."""

    symbol: str
    version: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    ts: int

    def wire(self) -> dict[str, Any]:
        """``{asks, bids, version}`` as in ``depth_commits`` and ``push.depth``."""
        return _tidy(
            {"asks": _levels(self.asks), "bids": _levels(self.bids), "version": self.version}
        )


@frozen
class DepthSnapshot:
    """The aggregated book at ``version``: asks ascending, bids descending."""

    symbol: str
    version: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    ts: int

    def wire(self) -> dict[str, Any]:
        """The ``depth/{symbol}`` object."""
        return _tidy(
            {
                "asks": _levels(self.asks),
                "bids": _levels(self.bids),
                "version": self.version,
                "timestamp": self.ts,
            }
        )


@frozen
class Candle:
    """One kline window; ``start_s`` in seconds, ``vol`` in contracts, ``amount`` in USDT."""

    symbol: str
    interval: str
    start_s: int
    open: Decimal
    close: Decimal
    high: Decimal
    low: Decimal
    vol: Decimal
    amount: Decimal

    def wire(self) -> dict[str, Any]:
        """The ``push.kline`` object (REST klines are columnar; the server transposes)."""
        return _tidy(
            {
                "symbol": self.symbol,
                "interval": self.interval,
                "t": self.start_s,
                "o": self.open,
                "c": self.close,
                "h": self.high,
                "l": self.low,
                "a": self.amount,
                "q": self.vol,
                "ro": self.open,
                "rc": self.close,
                "rh": self.high,
                "rl": self.low,
            }
        )


@frozen
class TickerView:
    """The ``ticker`` object; 24 h figures come from the Min1 candles of the last day."""

    symbol: str
    contract_id: int
    last_price: Decimal
    bid1: Decimal
    ask1: Decimal
    volume24: Decimal
    amount24: Decimal
    hold_vol: Decimal
    low24: Decimal
    high24: Decimal
    rise_fall_rate: Decimal
    rise_fall_value: Decimal
    index_price: Decimal
    fair_price: Decimal
    funding_rate: Decimal
    max_bid_price: Decimal
    min_ask_price: Decimal
    ts: int

    def wire(self) -> dict[str, Any]:
        """The ticker object of ``contract/ticker`` and ``push.ticker``."""
        return _tidy(
            {
                "contractId": self.contract_id,
                "symbol": self.symbol,
                "lastPrice": self.last_price,
                "bid1": self.bid1,
                "ask1": self.ask1,
                "volume24": self.volume24,
                "amount24": self.amount24,
                "holdVol": self.hold_vol,
                "lower24Price": self.low24,
                "high24Price": self.high24,
                "riseFallRate": self.rise_fall_rate,
                "riseFallValue": self.rise_fall_value,
                "indexPrice": self.index_price,
                "fairPrice": self.fair_price,
                "fundingRate": self.funding_rate,
                "maxBidPrice": self.max_bid_price,
                "minAskPrice": self.min_ask_price,
                "timestamp": self.ts,
            }
        )


@frozen
class PriceView:
    """An index or fair price (``push.index.price`` / ``push.fair.price``)."""

    symbol: str
    price: Decimal
    ts: int

    def wire(self) -> dict[str, Any]:
        """``{symbol, price}``; REST ``index_price``/``fair_price`` rename ``price``."""
        return _tidy({"symbol": self.symbol, "price": self.price})


@frozen
class FundingRateView:
    """The current funding rate of a contract (``funding_rate``, ``push.funding.rate``)."""

    symbol: str
    rate: Decimal
    max_rate: Decimal
    collect_cycle_h: int
    next_settle_time: int
    ts: int

    def wire(self) -> dict[str, Any]:
        """Carries both ``fundingRate`` (REST) and ``rate`` (WS)."""
        return _tidy(
            {
                "symbol": self.symbol,
                "fundingRate": self.rate,
                "rate": self.rate,
                "maxFundingRate": self.max_rate,
                "minFundingRate": -self.max_rate,
                "collectCycle": self.collect_cycle_h,
                "nextSettleTime": self.next_settle_time,
                "timestamp": self.ts,
            }
        )


@frozen
class FundingRecord:
    """One funding payment of one position; ``funding`` > 0 was received."""

    record_id: int
    symbol: str
    position_id: int
    position_type: PositionType
    position_value: Decimal
    funding: Decimal
    rate: Decimal
    settle_time: int

    def wire(self) -> dict[str, Any]:
        """A ``position/funding_records`` row."""
        return _tidy(
            {
                "id": self.record_id,
                "symbol": self.symbol,
                "positionId": self.position_id,
                "positionType": int(self.position_type),
                "positionValue": self.position_value,
                "funding": self.funding,
                "rate": self.rate,
                "settleTime": self.settle_time,
            }
        )


@frozen
class FundingSettlement:
    """One settlement of a contract's funding (``funding_rate/history`` row)."""

    symbol: str
    rate: Decimal
    settle_time: int
    collect_cycle_h: int

    def wire(self) -> dict[str, Any]:
        """``{symbol, fundingRate, settleTime, collectCycle}``."""
        return _tidy(
            {
                "symbol": self.symbol,
                "fundingRate": self.rate,
                "settleTime": self.settle_time,
                "collectCycle": self.collect_cycle_h,
            }
        )


@frozen
class LeverageView:
    """Leverage and margin mode of one position side (``position/leverage`` row)."""

    symbol: str
    position_type: PositionType
    open_type: OpenType
    leverage: int
    max_leverage: int
    imr: Decimal
    mmr: Decimal

    def wire(self) -> dict[str, Any]:
        """A ``position/leverage`` row (one risk tier)."""
        return _tidy(
            {
                "symbol": self.symbol,
                "positionType": int(self.position_type),
                "openType": int(self.open_type),
                "leverage": self.leverage,
                "level": 1,
                "maxLeverage": self.max_leverage,
                "maxLeverageView": self.max_leverage,
                "imr": self.imr,
                "mmr": self.mmr,
            }
        )


@frozen
class Placed:
    """``place_order`` accepted the order; ``order`` is its state after matching."""

    order: OrderView


@frozen
class Rejected:
    """A request refused with MEXC envelope ``code`` (nothing changed)."""

    code: int
    message: str


@frozen
class Changed:
    """A leverage or margin change succeeded; ``position`` when one was affected."""

    position: PositionView | None = None


@frozen
class CancelResult:
    """One row of an ``order/cancel`` answer: ``error_code`` 0, 2040 or 2041."""

    order_id: str
    error_code: int
    error_msg: str

    def wire(self) -> dict[str, Any]:
        """``{orderId, errorCode, errorMsg}``."""
        return _tidy(
            {"orderId": self.order_id, "errorCode": self.error_code, "errorMsg": self.error_msg}
        )


@frozen
class Push:
    """One WS push: ``user`` None for public channels, else the account it is private to."""

    channel: str
    data: Fact | tuple[Fact, ...]
    ts: int
    symbol: str | None = None
    user: str | None = None

    def frame(self) -> dict[str, Any]:
        """The frame ``{channel, data, [symbol,] ts}`` (private pushes carry no symbol)."""
        data: Any
        if isinstance(self.data, tuple):
            data = [fact.wire() for fact in self.data]
        else:
            data = self.data.wire()
        frame: dict[str, Any] = {"channel": self.channel, "data": data}
        if self.user is None and self.symbol is not None:
            frame["symbol"] = self.symbol
        frame["ts"] = self.ts
        return frame
