"""Decoders for MEXC market data (tickers, trades, klines, prices, contracts) (pure).

Shared by REST answers and WS pushes; the order book is in :mod:`._book`.

Every function takes the wire object (already parsed) and returns a model value or raises
:class:`~._fields.Invalid` with the field path relative to that object.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from engine.model import (
    ContractInfo,
    FairPrice,
    FundingRate,
    IndexPrice,
    Kline,
    TakerSide,
    Ticker,
    Trade,
)

from . import _fields as f
from .results import InsuranceFund

__all__ = [
    "KLINE_INTERVALS",
    "contract_info",
    "fair_price",
    "funding_rate",
    "index_price",
    "insurance_fund",
    "kline_columns",
    "kline_push",
    "ticker",
    "trade",
]

KLINE_INTERVALS: Final = frozenset(
    {"Min1", "Min5", "Min15", "Min30", "Min60", "Hour4", "Hour8", "Day1", "Week1", "Month1"}
)
_TAKER_SIDE: Final = f.table(TakerSide)
_POSITIVE: Final = f.POSITIVE
_CONTRACT_STATES: Final = frozenset({0, 1, 2, 3, 4})

# ----------------------------------------------------------------------------- tickers

TICKER_KNOWN: Final = frozenset(
    {
        "symbol", "contractId", "lastPrice", "bid1", "ask1", "volume24", "amount24",
        "holdVol", "lower24Price", "high24Price", "riseFallRate", "riseFallValue",
        "indexPrice", "fairPrice", "fundingRate", "maxBidPrice", "minAskPrice", "timestamp",
        "zone", "riseFallRates", "riseFallRatesOfTimezone",
    }
)  # fmt: skip


def ticker(d: dict[str, Any], ts_ms: int | None = None) -> Ticker:
    """A ticker object (REST ``ticker``, ``push.ticker``, one ``push.tickers`` entry).

    Written out field by field: it is on the hot path. Each number is first looked up in
    the float memo (a hit is always a valid value, see :data:`._fields.MEMO`), and only a
    miss calls the checked reader; an array or object where a number belongs cannot be
    looked up (TypeError), so the ticker is then decoded again without the memo.
    """
    try:
        return _ticker(d, ts_ms, f.MEMO.get)
    except TypeError:
        return _ticker(d, ts_ms, _no_memo)


def _no_memo(value: Any) -> None:
    return None


def _ticker(d: dict[str, Any], ts_ms: int | None, memo: Callable[[Any], Decimal | None]) -> Ticker:
    get = d.get
    nn = f.nonneg_value
    signed = f.number
    symbol = get("symbol")
    if type(symbol) is not str or not symbol:
        symbol = f.str_(d, "symbol")
    last = get("lastPrice")
    volume = get("volume24")
    if last is None or volume is None:
        f.nonneg(d, "lastPrice" if last is None else "volume24")  # raises: missing
    bid1 = get("bid1")
    ask1 = get("ask1")
    amount = get("amount24")
    hold = get("holdVol")
    low = get("lower24Price")
    high = get("high24Price")
    rate = get("riseFallRate")
    index = get("indexPrice")
    fair = get("fairPrice")
    funding = get("fundingRate")
    stamp = get("timestamp")
    if stamp is not None and (type(stamp) is not int or stamp < 0):
        stamp = f.ts(d, "timestamp")
    return Ticker(
        symbol,
        memo(last) or nn(last, "lastPrice"),
        None if bid1 is None else memo(bid1) or nn(bid1, "bid1"),
        None if ask1 is None else memo(ask1) or nn(ask1, "ask1"),
        memo(volume) or nn(volume, "volume24"),
        None if amount is None else f.running_total(amount, "amount24"),
        None if hold is None else memo(hold) or nn(hold, "holdVol"),
        None if low is None else memo(low) or nn(low, "lower24Price"),
        None if high is None else memo(high) or nn(high, "high24Price"),
        None if rate is None else memo(rate) or signed(rate, "riseFallRate"),
        None if index is None else memo(index) or nn(index, "indexPrice"),
        None if fair is None else memo(fair) or nn(fair, "fairPrice"),
        None if funding is None else memo(funding) or signed(funding, "fundingRate"),
        ts_ms if stamp is None else stamp,
    )


# ------------------------------------------------------------------------------ trades

DEAL_KNOWN: Final = frozenset({"p", "v", "T", "O", "M", "t", "i"})


def trade(d: dict[str, Any], symbol: str) -> Trade:
    """One public trade ``{p, v, T, O, M, t, i?}`` (REST ``deals`` and ``push.deal``).

    The common shape (a memoised price, an int volume, known side and flag codes, an int
    time, no id) is built inline; anything else goes through the checked path, which
    raises naming the field.
    """
    get = d.get
    price, vol, side, stamp, flag = get("p"), get("v"), get("T"), get("t"), get("M")
    if (
        (type(price) is float or type(price) is int)
        and type(vol) is int
        and vol >= 0
        and type(side) is int
        and type(stamp) is int
        and stamp >= 0
        and (flag is None or (type(flag) is int and (flag == 1 or flag == 2)))
        and get("i") is None
    ):
        p = _POSITIVE.get(price)
        taker = _TAKER_SIDE.get(side)
        if p is not None and taker is not None:
            return Trade(symbol, p, f.from_int(vol), taker, stamp, flag == 1, None)
    return _trade_checked(d, symbol)


def _trade_checked(d: dict[str, Any], symbol: str) -> Trade:
    try:
        price = d["p"]
    except KeyError:
        raise f.Invalid("p", "missing required field") from None
    try:
        vol = d["v"]
    except KeyError:
        raise f.Invalid("v", "missing required field") from None
    self_flag = d.get("M")
    if self_flag is not None and (type(self_flag) is not int or self_flag not in (1, 2)):
        raise f.Invalid("M", f"unknown value {self_flag!r}")
    return Trade(
        symbol,
        f.positive(price, "p"),
        f.size(vol, "v"),
        f.enum_(d, "T", _TAKER_SIDE),
        f.ts(d, "t"),
        self_flag == 1,
        f.opt_id(d, "i"),
    )


# ------------------------------------------------------------------------------ klines

KLINE_KNOWN: Final = frozenset(
    {"symbol", "interval", "t", "o", "c", "h", "l", "a", "q", "ro", "rc", "rh", "rl"}
)


def interval_(value: Any, field: str) -> str:
    """A kline interval name (``Min1`` ... ``Month1``)."""
    if type(value) is not str or value not in KLINE_INTERVALS:
        raise f.Invalid(field, f"unknown kline interval {value!r}")
    return str(value)


def kline_push(d: dict[str, Any], symbol: str | None, ts_ms: int | None) -> Kline:
    """A ``push.kline`` data object; ``t`` is the window start in seconds."""
    sym = f.opt_str(d, "symbol") or symbol
    if sym is None:
        raise f.Invalid("symbol", "missing required field")
    try:
        interval = d["interval"]
    except KeyError:
        raise f.Invalid("interval", "missing required field") from None
    return Kline(
        sym,
        interval_(interval, "interval"),
        f.ts(d, "t"),
        f.nonneg(d, "o"),
        f.nonneg(d, "c"),
        f.nonneg(d, "h"),
        f.nonneg(d, "l"),
        f.nonneg(d, "a"),
        f.nonneg(d, "q"),
        ts_ms,
    )


KLINE_COLUMNS_KNOWN: Final = frozenset(
    {"time", "open", "close", "high", "low", "vol", "amount"}
    | {"realOpen", "realClose", "realHigh", "realLow"}
)


def kline_columns(
    d: dict[str, Any], symbol: str, interval: str, *, volumes_required: bool
) -> tuple[Kline, ...]:
    """REST ``kline`` columnar arrays ``{time[], open[], ...}`` as candles.

    Index- and fair-price candles may come without ``vol``/``amount``; those are then 0.
    """
    interval = interval_(interval, "interval")
    times = _column(d, "time", None)
    n = len(times)
    starts = []
    for i, value in enumerate(times):
        if type(value) is not int or value < 0:
            raise f.Invalid(f"time[{i}]", f"expected seconds (an integer >= 0), got {value!r}")
        starts.append(int(value))
    opens = _numbers(d, "open", n)
    closes = _numbers(d, "close", n)
    highs = _numbers(d, "high", n)
    lows = _numbers(d, "low", n)
    if volumes_required or d.get("vol") is not None:
        vols = _numbers(d, "vol", n)
    else:
        vols = [Decimal(0)] * n
    if volumes_required or d.get("amount") is not None:
        amounts = _numbers(d, "amount", n)
    else:
        amounts = [Decimal(0)] * n
    return tuple(
        Kline(symbol, interval, *row)
        for row in zip(starts, opens, closes, highs, lows, amounts, vols, strict=True)
    )


def _column(d: dict[str, Any], key: str, n: int | None) -> list[Any]:
    try:
        column = d[key]
    except KeyError:
        raise f.Invalid(key, "missing required field") from None
    if type(column) is not list:
        raise f.Invalid(key, f"expected an array, got {f.type_name(column)}")
    if n is not None and len(column) != n:
        raise f.Invalid(key, f"has {len(column)} entries, time has {n}")
    return column


def _numbers(d: dict[str, Any], key: str, n: int) -> list[Decimal]:
    column = _column(d, key, n)
    out = []
    for i, value in enumerate(column):
        field = f"{key}[{i}]"
        if (type(value) is float or type(value) is int) and value < 0:
            raise f.Invalid(field, f"negative value {value!r}")
        number = f.number(value, field)
        if number < 0:
            raise f.Invalid(field, f"negative value {value!r}")
        out.append(number)
    return out


# ----------------------------------------------------------------- funding, index, fair

FUNDING_PUSH_KNOWN: Final = frozenset({"symbol", "rate", "fundingRate", "nextSettleTime"})


def funding_push(d: dict[str, Any], symbol: str | None, ts_ms: int | None) -> FundingRate:
    """A ``push.funding.rate`` data object (``rate``, or ``fundingRate`` per the doc table)."""
    sym = f.opt_str(d, "symbol") or symbol
    if sym is None:
        raise f.Invalid("symbol", "missing required field")
    key = "rate" if d.get("rate") is not None else "fundingRate"
    return FundingRate(sym, f.dec(d, key), f.opt_ts(d, "nextSettleTime"), ts_ms)


def funding_rate(d: dict[str, Any]) -> FundingRate:
    """REST ``funding_rate/{symbol}``."""
    cycle = f.opt_int(d, "collectCycle")
    if cycle is not None and cycle <= 0:
        raise f.Invalid("collectCycle", f"not a positive number of hours: {cycle}")
    return FundingRate(
        f.str_(d, "symbol"),
        f.dec(d, "fundingRate"),
        f.opt_ts(d, "nextSettleTime"),
        f.opt_ts(d, "timestamp"),
        f.opt_dec(d, "maxFundingRate"),
        f.opt_dec(d, "minFundingRate"),
        cycle,
    )


def funding_history_entry(d: dict[str, Any]) -> FundingRate:
    """One ``funding_rate/history`` entry; ``ts_ms`` is its ``settleTime``."""
    cycle = f.opt_int(d, "collectCycle")
    if cycle is not None and cycle <= 0:
        raise f.Invalid("collectCycle", f"not a positive number of hours: {cycle}")
    return FundingRate(
        f.str_(d, "symbol"),
        f.dec(d, "fundingRate"),
        None,
        f.ts(d, "settleTime"),
        collect_cycle_h=cycle,
    )


PRICE_PUSH_KNOWN: Final = frozenset({"symbol", "price"})


def index_price(d: dict[str, Any], symbol: str | None, ts_ms: int | None) -> IndexPrice:
    """REST ``index_price`` (``indexPrice``, ``timestamp``) or ``push.index.price``."""
    sym, price, stamp = _price_fields(d, symbol, ts_ms, "indexPrice")
    return IndexPrice(sym, price, stamp)


def fair_price(d: dict[str, Any], symbol: str | None, ts_ms: int | None) -> FairPrice:
    """REST ``fair_price`` (``fairPrice``, ``timestamp``) or ``push.fair.price``."""
    sym, price, stamp = _price_fields(d, symbol, ts_ms, "fairPrice")
    return FairPrice(sym, price, stamp)


def _price_fields(
    d: dict[str, Any], symbol: str | None, ts_ms: int | None, rest_key: str
) -> tuple[str, Decimal, int | None]:
    sym = f.opt_str(d, "symbol") or symbol
    if sym is None:
        raise f.Invalid("symbol", "missing required field")
    key = rest_key if rest_key in d else "price"
    stamp = f.opt_ts(d, "timestamp")
    return sym, f.nonneg(d, key), stamp if stamp is not None else ts_ms


def insurance_fund(d: dict[str, Any]) -> InsuranceFund:
    """One ``risk_reverse`` entry."""
    return InsuranceFund(
        f.str_(d, "symbol"),
        f.str_(d, "currency"),
        f.nonneg(d, "available"),
        f.opt_ts(d, "timestamp"),
    )


# ---------------------------------------------------------------------------- contract


def contract_info(d: dict[str, Any]) -> ContractInfo:
    """A contract-detail object (REST ``detail``, ``push.contract``).

    ``apiAllowed`` absent means not allowed; ``display_name`` prefers ``displayNameEn``.
    """
    orders = d.get("maxNumOrders")
    if orders is None:
        max_orders: tuple[int, ...] = ()
    elif type(orders) is list:
        max_orders = tuple(f.count(v, f"maxNumOrders[{i}]") for i, v in enumerate(orders))
    else:
        raise f.Invalid("maxNumOrders", f"expected an array, got {f.type_name(orders)}")
    contract_size = _positive(d, "contractSize")
    price_unit = _positive(d, "priceUnit")
    vol_unit = _positive(d, "volUnit")
    api_allowed = f.opt_bool(d, "apiAllowed")
    return ContractInfo(
        f.str_(d, "symbol"),
        f.str_(d, "baseCoin"),
        f.str_(d, "quoteCoin"),
        f.str_(d, "settleCoin"),
        contract_size,
        price_unit,
        vol_unit,
        f.nonneg(d, "minVol"),
        f.nonneg(d, "maxVol"),
        _nonneg_int(d, "minLeverage"),
        _nonneg_int(d, "maxLeverage"),
        _nonneg_int(d, "priceScale"),
        _nonneg_int(d, "volScale"),
        f.dec(d, "takerFeeRate"),
        f.dec(d, "makerFeeRate"),
        f.code_in(d, "state", _CONTRACT_STATES),
        bool(api_allowed),
        max_orders,
        f.opt_str(d, "displayNameEn") or f.opt_str(d, "displayName"),
    )


def _nonneg_int(d: dict[str, Any], key: str) -> int:
    value = f.int_(d, key)
    if value < 0:
        raise f.Invalid(key, f"negative value {value}")
    return value


def _positive(d: dict[str, Any], key: str) -> Decimal:
    try:
        value = d[key]
    except KeyError:
        raise f.Invalid(key, "missing required field") from None
    return f.positive(value, key)
