"""REST handlers of the simulator's public market data and of ccxt's spot stubs (pure).

Each handler takes a :class:`~adapters.mexc.sim.rest_api.Call` and returns the envelope's
``data`` (JSON-ready values, Decimals kept exact) or raises
:class:`~adapters.mexc.sim.rest_api.Refusal`; the shapes follow PROTOCOL.md §1.2 and the
documented samples. The private endpoints are in :mod:`adapters.mexc.sim.rest_handlers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters.mexc.sim.contracts import Contract
from adapters.mexc.sim.facts import Candle
from adapters.mexc.sim.klines import INTERVALS
from adapters.mexc.sim.rest_api import Call, Handler, Refusal, int_value

__all__ = ["MARKET_HANDLERS", "contract_detail"]

_INSURANCE_FUND = Decimal("10000000")


def contract_detail(contract: Contract) -> dict[str, Any]:
    """The ``contract/detail`` object: the core's fields plus the venue's descriptive ones."""
    data = contract.wire()
    extra: dict[str, Any] = {
        "baseCoinName": contract.base_coin,
        "quoteCoinName": contract.quote_coin,
        "riskBaseVol": contract.max_vol,
        "riskIncrVol": 0,
        "riskIncrMmr": 0,
        "riskIncrImr": 0,
        "riskLevelLimit": 1,
        "priceCoefficientVariation": Decimal("0.004"),
        "indexOrigin": ["SIM"],
        "conceptPlate": [],
        "marketOrderMaxLevel": 20,
        "marketOrderPriceLimitRate1": Decimal("0.2"),
        "marketOrderPriceLimitRate2": Decimal("0.005"),
        "triggerProtect": Decimal("0.1"),
        "appraisal": 0,
        "showAppraisalCountdown": 0,
        "automaticDelivery": 0,
        "limitMaxVol": contract.max_vol,
        "depthStepList": [str(contract.price_unit * 10**k) for k in range(4)],
        "riskLimitCustom": [
            {
                "level": 1,
                "maxVol": contract.max_vol,
                "mmr": contract.maintenance_margin_rate,
                "imr": contract.initial_margin_rate,
                "maxLeverage": contract.max_leverage,
            }
        ],
        "riskLimitMode": "CUSTOM",
        "riskLongShortSwitch": 0,
        "countryConfigContractMaxLeverage": 0,
        "conceptPlateId": [],
        "threshold": 0,
        "vid": "sim",
        "createTime": 0,
        "openingTime": 0,
        "openingCountdownOption": 1,
        "showBeforeOpen": True,
        "isMaxLeverage": False,
        "isZeroFeeRate": False,
        "isZeroFeeSymbol": False,
        "liquidationFeeRate": contract.taker_fee_rate,
        "feeRateMode": "TIERED",
        "stopOnlyFair": False,
    }
    return {**data, **{k: v for k, v in extra.items() if k not in data}}


def _ping(call: Call) -> Any:
    return call.server_ms


def _detail(call: Call) -> Any:
    symbol = call.query_symbol()
    if symbol is not None:
        contract = call.exchange.contract(symbol)
        assert contract is not None
        return contract_detail(contract)
    return [contract_detail(c) for c in call.exchange.contracts.values()]


def _support_currencies(call: Call) -> Any:
    return sorted({c.settle_coin for c in call.exchange.contracts.values()})


def _depth(call: Call) -> Any:
    symbol = call.path_symbol()
    limit = call.query_int("limit", None, low=1, high=2000)
    return call.exchange.depth_snapshot(symbol, call.now_ms, limit).wire()


def _depth_commits(call: Call) -> Any:
    symbol = call.path_symbol()
    limit = int_value(call.path_params.get("limit"), "limit", low=1, high=1000)
    commits = call.exchange.depth_commits(symbol, limit)
    return [commit.wire() for commit in reversed(commits)]  # newest first, as documented


def _deals(call: Call) -> Any:
    symbol = call.path_symbol()
    limit = call.query_int("limit", 100, low=1, high=100)
    assert limit is not None
    return [deal.wire() for deal in call.exchange.recent_deals(symbol, limit)]


def _columns(candles: list[Candle]) -> dict[str, list[Any]]:
    return {
        "time": [c.start_s for c in candles],
        "open": [c.open for c in candles],
        "close": [c.close for c in candles],
        "high": [c.high for c in candles],
        "low": [c.low for c in candles],
        "vol": [c.vol for c in candles],
        "amount": [c.amount for c in candles],
        "realOpen": [c.open for c in candles],
        "realClose": [c.close for c in candles],
        "realHigh": [c.high for c in candles],
        "realLow": [c.low for c in candles],
    }


def _kline_handler(source: str) -> Handler:
    def handle(call: Call) -> Any:
        symbol = call.path_symbol()
        interval = call.query.get("interval") or "Min1"
        if interval not in INTERVALS:
            raise Refusal(600, f"interval must be one of {', '.join(INTERVALS)}")
        start = call.query_int("start", None, low=0)
        end = call.query_int("end", None, low=0)
        candles = call.exchange.klines(symbol, interval, start, end, source=source, limit=2000)
        return _columns(candles)

    return handle


def _ticker(call: Call) -> Any:
    symbol = call.query_symbol()
    if symbol is not None:
        return call.exchange.ticker(symbol, call.now_ms).wire()
    return [t.wire() for t in call.exchange.tickers(call.now_ms)]


def _funding_rate(call: Call) -> Any:
    data = call.exchange.funding_rate(call.path_symbol(), call.now_ms).wire()
    data.pop("rate", None)  # the WS push's name for it; REST says fundingRate
    return data


def _funding_rate_history(call: Call) -> Any:
    symbol = call.query_symbol(required=True)
    assert symbol is not None
    rows = [s.wire() for s in call.exchange.funding_history(symbol)]
    return call.paged(rows, default_size=20, max_size=1000)


def _price_handler(kind: str) -> Handler:
    def handle(call: Call) -> Any:
        symbol = call.path_symbol()
        view = (
            call.exchange.index_price(symbol, call.now_ms)
            if kind == "indexPrice"
            else call.exchange.fair_price(symbol, call.now_ms)
        )
        return {"symbol": symbol, kind: view.price, "timestamp": call.now_ms}

    return handle


def _risk_reverse(call: Call) -> Any:
    symbol = call.symbol(call.path_params.get("symbol") or call.query.get("symbol"), required=False)
    contracts = call.exchange.contracts
    chosen = [contracts[symbol]] if symbol else list(contracts.values())
    rows = [
        {
            "symbol": c.symbol,
            "currency": c.settle_coin,
            "available": _INSURANCE_FUND,
            "timestamp": call.now_ms,
        }
        for c in chosen
    ]
    return rows[0] if symbol else rows


# -------------------------------------------------------------------------------- spot


def _spot_exchange_info(call: Call) -> Any:
    return {
        "timezone": "UTC",
        "serverTime": call.server_ms,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [],
    }


def _spot_capital_config(call: Call) -> Any:
    return []


def _spot_ping(call: Call) -> Any:
    return {}


def _spot_time(call: Call) -> Any:
    return {"serverTime": call.server_ms}


MARKET_HANDLERS: Mapping[str, Handler] = {
    "ping": _ping,
    "detail": _detail,
    "support_currencies": _support_currencies,
    "depth": _depth,
    "depth_commits": _depth_commits,
    "deals": _deals,
    "kline": _kline_handler("last"),
    "kline_index": _kline_handler("index"),
    "kline_fair": _kline_handler("fair"),
    "ticker": _ticker,
    "funding_rate": _funding_rate,
    "funding_rate_history": _funding_rate_history,
    "index_price": _price_handler("indexPrice"),
    "fair_price": _price_handler("fairPrice"),
    "risk_reverse": _risk_reverse,
    "spot_exchange_info": _spot_exchange_info,
    "spot_capital_config": _spot_capital_config,
    "spot_ping": _spot_ping,
    "spot_time": _spot_time,
}
"""Public endpoint name → handler (plus the spot stubs ccxt calls while loading markets)."""
